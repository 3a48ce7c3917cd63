"""Every write has a bound: a pty nobody reads ends in TransportError, not a hang."""

from __future__ import annotations

import pytest

from kdcon.protocol.connection import KdConnection
from kdcon.protocol.errors import TransportError
from kdcon.protocol.events import LinkClosed
from kdcon.protocol.link import DEFAULT_WRITE_TIMEOUT, KdLink
from kdcon.protocol.state import Role
from kdcon.protocol.transports import LinkWriteTimeout, open_link, wrap_link


@pytest.fixture
def unread_pty():
    port = open_link("pty://")  # nobody opens the slave: nothing is ever read
    yield port
    port.close()


def test_write_to_a_pty_nobody_reads_times_out(unread_pty) -> None:
    unread_pty.write_timeout = 0.05
    with pytest.raises(LinkWriteTimeout) as raised:
        for _ in range(10_000):  # far more than any pty buffer holds
            unread_pty.write(b"\0" * 4096)
    assert isinstance(raised.value, TransportError)
    assert "stopped reading" in str(raised.value)


@pytest.mark.parametrize("pace", [None, 115200])
def test_link_bounds_a_port_whose_writes_have_no_bound(unread_pty, pace) -> None:
    port = wrap_link(unread_pty, pace=pace)
    assert unread_pty.write_timeout is None
    link = KdLink(port, Role.HOST, start=False)
    assert unread_pty.write_timeout == DEFAULT_WRITE_TIMEOUT
    link.close()


def test_link_keeps_a_bound_the_port_already_has(unread_pty) -> None:
    unread_pty.write_timeout = 0.5
    KdLink(unread_pty, Role.HOST, start=False).close()
    assert unread_pty.write_timeout == 0.5


def test_target_resending_into_a_pty_nobody_reads_closes_the_link(unread_pty) -> None:
    # Retransmitted at every pump, the print soon fills the pty's buffer.
    conn = KdConnection(Role.TARGET, ack_timeout=0.0, byte_time=0.0, retries=1_000_000)
    link = KdLink(unread_pty, Role.TARGET, connection=conn, write_timeout=0.1)
    try:
        link.send_debug_print(b"x" * 3900)
        closed = link.wait_for(LinkClosed, 20)
        assert "write" in closed.reason and link.closed
        with pytest.raises(TransportError):
            link.send_debug_print(b"again")
    finally:
        link.close()
