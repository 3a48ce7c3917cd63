"""open_loopback: the simulated target in a child process, over a socket pair."""

from __future__ import annotations

import os

import pytest

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.link import KdLink
from kdcon.protocol.state import Role
from kdcon.protocol.transports import LinkError
from kdcon.tools.simtarget.loopback import open_loopback

LOAD_SYMBOLS = 0x3031


def test_child_serves_a_debugger_and_ends_with_the_port() -> None:
    port = open_loopback(seed=3, include_trackdemo=False)
    process = port.process
    with KdLink(port, Role.HOST, start=False) as host:
        first = host.sync(30, breakin=False)
        assert first.new_state == LOAD_SYMBOLS and b"ntoskrnl.exe" in first.data
        assert host.request(A.DbgKdGetVersionApi, timeout=10).return_status == 0
    # Closing the link closed the port, which ended and reaped the child.
    assert process.returncode == 0


def test_child_leaves_ctrl_c_to_the_caller() -> None:
    port = open_loopback(include_trackdemo=False)
    try:
        # A process group of its own: the terminal's SIGINT goes to ours only.
        assert os.getpgid(port.process.pid) == port.process.pid != os.getpgrp()
    finally:
        port.close()
    assert port.process.returncode is not None


def test_missing_driver_is_one_line_before_any_child_starts(tmp_path) -> None:
    with pytest.raises(LinkError, match="no such driver file: .*nothere.sys"):
        open_loopback(drivers=[tmp_path / "nothere.sys"])
