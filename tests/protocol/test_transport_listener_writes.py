"""Writes on unix:// and tcp:// listeners with no peer: dropped at once, never waiting.

A writer blocked in accept() would hold KdLink's lock until a debugger connects. Each
write runs on a thread the test waits for with a timeout, so a write that waits for a
peer fails the test instead of hanging it.
"""

from __future__ import annotations

import socket
import threading

import pytest

from kdcon.protocol.link import KdLink
from kdcon.protocol.state import Role
from kdcon.protocol.transports import open_link

# Far longer than a write that does not wait needs; reached only by a write that waits.
GIVE_UP = 10.0


def _write_in_thread(port, data: bytes) -> int:
    """port.write(data) on another thread; fails if it has not returned by GIVE_UP."""
    done = threading.Event()
    result: list[int] = []

    def write() -> None:
        result.append(port.write(data))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(GIVE_UP), "the write waited for a peer"
    return result[0]


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(GIVE_UP)
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        assert chunk, f"the peer closed after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


def _unix_peer(path: str) -> socket.socket:
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.connect(path)
    return peer


@pytest.fixture(params=["unix", "tcp"])
def listener(request, tmp_path):
    """(listening port, a function that connects a peer socket to it)."""
    if request.param == "unix":
        path = str(tmp_path / "kd.sock")
        port = open_link(f"unix://{path}?listen", timeout=0.05)

        def connect() -> socket.socket:
            return _unix_peer(path)
    else:
        port = open_link("tcp://127.0.0.1:0?listen", timeout=0.05)

        def connect() -> socket.socket:
            return socket.create_connection(port.address, timeout=GIVE_UP)
    yield port, connect
    port.close()


@pytest.mark.parametrize("write_timeout", [None, 30.0])
def test_write_with_no_peer_is_dropped_without_waiting(listener, write_timeout):
    port, connect = listener
    port.write_timeout = write_timeout
    assert _write_in_thread(port, b"lost") == 4
    assert not port.attached
    peer = connect()
    assert port.wait_for_peer(GIVE_UP)
    assert _write_in_thread(port, b"kept") == 4
    # The peer sees only what was written after it connected.
    assert _read_exactly(peer, 4) == b"kept"
    peer.close()


def test_write_takes_a_peer_already_waiting_to_be_accepted(tmp_path):
    path = str(tmp_path / "kd.sock")
    with open_link(f"unix://{path}?listen", timeout=0.05) as port:
        peer = _unix_peer(path)  # queued in the backlog, not yet accepted
        assert _write_in_thread(port, b"0000") == 4
        assert port.attached
        assert _read_exactly(peer, 4) == b"0000"
        peer.close()


def test_reconnecting_listener_drops_writes_between_peers(tmp_path):
    path = str(tmp_path / "kd.sock")
    with open_link(f"unix://{path}?listen&reconnect", timeout=0.05) as port:
        first = _unix_peer(path)
        assert port.wait_for_peer(GIVE_UP)
        first.close()
        while port.attached:      # each read notices EOF or times out after 0.05 s
            port.read(1)
        assert _write_in_thread(port, b"lost") == 4
        second = _unix_peer(path)
        assert _write_in_thread(port, b"kept") == 4
        assert _read_exactly(second, 4) == b"kept"
        second.close()


def test_target_link_sends_with_no_debugger_attached(listener):
    port, _ = listener
    # KdLink writes under its lock: a write stuck in accept() would block this thread.
    with KdLink(port, Role.TARGET) as target:
        done = threading.Event()

        def send() -> None:
            target.send_debug_print(b"nobody listens\n")
            done.set()

        threading.Thread(target=send, daemon=True).start()
        assert done.wait(GIVE_UP), "the link's writer waited for a peer"
