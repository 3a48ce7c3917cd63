"""kdsim:// opens a fresh simulated target, in a thread or a child process."""

from __future__ import annotations

import pytest

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.link import KdLink
from kdcon.protocol.state import Role
from kdcon.protocol.transports import LinkError, PacedPort, open_link

LOAD_SYMBOLS = 0x3031


@pytest.mark.parametrize("url", ["kdsim://?no_trackdemo&seed=2",
                                 "kdsim://?no_trackdemo&process"])
def test_kdsim_url_opens_an_attached_simulated_target(url) -> None:
    with KdLink(open_link(url), Role.HOST, start=False) as host:
        first = host.sync(30, breakin=False)
        assert first.new_state == LOAD_SYMBOLS and b"ntoskrnl.exe" in first.data
        assert host.request(A.DbgKdGetVersionApi, timeout=10).return_status == 0


def test_kdsim_takes_the_wrappers_of_every_url() -> None:
    port = open_link("kdsim://?no_trackdemo&pace=115200")
    try:
        assert isinstance(port, PacedPort) and port.pace_baud == 115200
    finally:
        port.close()


@pytest.mark.parametrize("url, says", [
    ("kdsim://?sead=1", "unknown option 'sead'"),
    ("kdsim://?seed=x", "seed='x' is not a number"),
    ("kdsim://?flavour=debug", "use checked or free"),
    ("kdsim://?driver=/nonexistent/drv.sys", "no such driver file: /nonexistent/drv.sys"),
])
def test_bad_kdsim_url_is_one_line(url, says) -> None:
    with pytest.raises(LinkError) as raised:
        open_link(url)
    assert says in str(raised.value) and "\n" not in str(raised.value)
