"""unix://, tcp:// and socket_pair over real OS sockets: data, timeouts, EOF, listen, reconnect."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import serial

from kdcon.protocol.errors import TransportError
from kdcon.protocol.transports import LinkError, open_link, socket_pair

ALL_BYTES = bytes(range(256))


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "kd.sock")


def _listening_unix(path: str) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(2)
    server.settimeout(10)  # a failing test must not hang in accept
    return server


def _read_exactly(port, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = port.read(n - len(got))
        assert chunk, f"timed out after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


def test_socket_pair_carries_every_byte_value_both_ways():
    a, b = socket_pair(timeout=2)
    with a, b:
        a.write(ALL_BYTES)
        assert _read_exactly(b, 256) == ALL_BYTES
        b.write(ALL_BYTES[::-1])
        assert _read_exactly(a, 256) == ALL_BYTES[::-1]


def test_in_waiting_is_the_exact_count_so_short_reads_never_block():
    a, b = socket_pair(timeout=None)  # a read(4096) here would block forever
    with a, b:
        a.write(b"iiii\x04\x00")  # a unix socketpair queues the bytes before send returns
        assert b.in_waiting == 6
        assert b.read(max(1, b.in_waiting)) == b"iiii\x04\x00"


def test_read_returns_empty_bytes_when_the_timeout_expires():
    a, b = socket_pair(timeout=0.05)
    with a, b:
        assert b.read(10) == b""
        a.write(b"ab")
        assert b.read(10) == b"ab"  # partial data once the timeout expires


def test_cancel_read_wakes_a_blocked_reader():
    a, b = socket_pair(timeout=None)
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(b.read(1)))
    with a, b:
        reader.start()
        b.cancel_read()  # before or during select: either way the read returns
        reader.join(5)
        assert not reader.is_alive() and result == [b""]


def test_read_available_returns_what_is_there_or_nothing_at_the_timeout():
    a, b = socket_pair(timeout=0.05)
    with a, b:
        assert b.read_available() == b""
        a.write(b"iiii\x04\x00")
        a.write(b"\x00\x00")
        assert b.read_available() == b"iiii\x04\x00\x00\x00"  # one call, every byte
        a.write(ALL_BYTES)
        assert b.read_available(100) == ALL_BYTES[:100]
        assert b.read_available() == ALL_BYTES[100:]


def test_read_available_waits_for_the_first_byte_and_wakes_on_cancel():
    a, b = socket_pair(timeout=None)
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(b.read_available()))
    with a, b:
        reader.start()
        a.write(b"b")
        reader.join(5)
        assert result == [b"b"]
        reader = threading.Thread(target=lambda: result.append(b.read_available()))
        reader.start()
        b.cancel_read()
        reader.join(5)
        assert not reader.is_alive() and result == [b"b", b""]


def test_read_available_spinning_still_returns_data_or_nothing_at_the_timeout():
    a, b = socket_pair(timeout=0.05)
    with a, b:
        assert a.peer_in_process and b.peer_in_process
        assert b.read_available(spin=0.01) == b""
        a.write(b"0000")
        assert b.read_available(spin=0.01) == b"0000"


def test_read_available_reports_the_peer_closing_after_pending_bytes():
    a, b = socket_pair(timeout=1)
    a.write(b"last")
    a.close()
    assert b.read_available() == b"last"
    with pytest.raises(LinkError):
        b.read_available()
    b.close()


def test_peer_close_raises_link_closed_after_pending_bytes():
    a, b = socket_pair(timeout=1)
    a.write(b"last")
    a.close()
    assert b.read(100) == b"last"
    with pytest.raises(LinkError):
        b.read(1)
    # Both hierarchies see it: pyserial users and protocol-layer users.
    with pytest.raises(serial.SerialException):
        b.read(1)
    with pytest.raises(TransportError):
        b.write(b"x")
    b.close()


def test_pyserial_reader_thread_sees_link_closed_as_connection_lost():
    from serial.threaded import Protocol, ReaderThread

    lost = threading.Event()
    received = bytearray()

    class Collect(Protocol):
        def data_received(self, data):
            received.extend(data)

        def connection_lost(self, exc):
            lost.exc = exc
            lost.set()

    a, b = socket_pair(timeout=1)
    thread = ReaderThread(b, Collect)
    thread.start()
    a.write(b"0000")
    a.close()
    assert lost.wait(5)
    assert bytes(received) == b"0000" and isinstance(lost.exc, LinkError)
    thread.join(5)


def test_unix_client_talks_to_a_listening_socket_and_sees_eof_when_the_peer_exits(sock_path):
    server = _listening_unix(sock_path)
    port = open_link(f"unix://{sock_path}", timeout=5)
    conn, _ = server.accept()
    with port, conn, server:
        port.write(ALL_BYTES)
        got = bytearray()
        while len(got) < 256:
            got += conn.recv(256)
        assert bytes(got) == ALL_BYTES
    # A separate process as the peer: its exit must end the link.
    child_code = (
        "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'0000'); s.close()"
    )
    listener = open_link(f"unix://{sock_path}-2?listen", timeout=5)
    with listener:
        subprocess.run([sys.executable, "-c", child_code, f"{sock_path}-2"], check=True, timeout=30)
        assert _read_exactly(listener, 4) == b"0000"
        with pytest.raises(LinkError):
            listener.read(1)


def test_unix_listen_binds_at_open_accepts_lazily_and_unlinks_on_close(sock_path):
    port = open_link(f"unix://{sock_path}?listen", timeout=5)
    assert os.path.exists(sock_path) and not port.attached
    peer = socket.socket(socket.AF_UNIX)
    peer.connect(sock_path)
    assert port.wait_for_peer(5)
    peer.sendall(b"iiii")
    assert _read_exactly(port, 4) == b"iiii"
    # One peer only: a second one is refused once the first is attached.
    with pytest.raises(OSError):
        socket.socket(socket.AF_UNIX).connect(sock_path)
    port.close()
    peer.close()
    assert not os.path.exists(sock_path)


def test_unix_listen_with_no_peer_reads_nothing_within_timeout(sock_path):
    with open_link(f"unix://{sock_path}?listen", timeout=0.05) as port:
        assert port.read(1) == b"" and port.in_waiting == 0


def test_unix_listen_replaces_a_stale_socket_but_not_a_live_one_or_a_file(sock_path, tmp_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()  # the file stays, nobody listens: stale
    with open_link(f"unix://{sock_path}?listen") as first:
        with pytest.raises(LinkError, match="another process is listening"):
            open_link(f"unix://{sock_path}?listen")
        assert first.is_open
    plain = tmp_path / "plain"
    plain.write_bytes(b"data")
    with pytest.raises(LinkError, match="not a socket"):
        open_link(f"unix://{plain}?listen")
    assert plain.read_bytes() == b"data"


def test_unix_client_with_reconnect_survives_the_peer_going_away(sock_path):
    server = _listening_unix(sock_path)
    with server, open_link(f"unix://{sock_path}?reconnect", timeout=5) as port:
        first, _ = server.accept()
        first.sendall(b"one")
        assert _read_exactly(port, 3) == b"one"
        first.close()
        port.timeout = 0.05
        assert port.read(1) == b""  # EOF is swallowed, not raised
        assert port.wait_for_peer(5)  # reconnected (or reconnects now)
        second, _ = server.accept()  # the reconnection is queued on the listener
        with second:
            port.timeout = 5
            second.sendall(b"two")
            assert _read_exactly(port, 3) == b"two"
            port.write(b"back")
            assert second.recv(4) == b"back"
        assert port.reconnects == 1


def test_unix_listener_with_reconnect_accepts_the_next_peer(sock_path):
    with open_link(f"unix://{sock_path}?listen&reconnect", timeout=5) as port:
        for word in (b"first", b"second"):
            peer = socket.socket(socket.AF_UNIX)
            peer.connect(sock_path)
            peer.sendall(word)
            assert _read_exactly(port, len(word)) == word
            peer.close()
            port.timeout = 0.05
            assert port.read(1) == b""
            port.timeout = 5


def test_unix_write_with_reconnect_and_no_peer_loses_bytes_like_a_cable(sock_path):
    server = _listening_unix(sock_path)
    port = open_link(f"unix://{sock_path}?reconnect", timeout=0.05)
    conn, _ = server.accept()
    conn.close()
    server.close()
    os.unlink(sock_path)
    assert port.read(1) == b""
    port.write_timeout = 0.05
    assert port.write(b"lost") == 4
    port.close()


def test_tcp_listen_and_connect_use_nodelay_and_carry_data():
    with open_link("tcp://127.0.0.1:0?listen", timeout=5) as server:
        host, tcp_port = server.address
        with open_link(f"tcp://{host}:{tcp_port}", timeout=5) as client:
            assert client.fileno() and server.wait_for_peer(5)
            for end in (client, server):
                sock = socket.socket(fileno=os.dup(end.fileno()))
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                sock.close()
            client.write(ALL_BYTES)
            assert _read_exactly(server, 256) == ALL_BYTES
            server.write(b"0000")
            assert _read_exactly(client, 4) == b"0000"
        with pytest.raises(LinkError):
            server.read(1)


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_tcp_listen_refuses_non_loopback_without_allow_remote(host):
    with pytest.raises(LinkError, match="allow_remote"):
        open_link(f"tcp://{host}:0?listen")


def test_tcp_listen_on_any_address_is_allowed_with_allow_remote():
    with open_link("tcp://0.0.0.0:0?listen&allow_remote") as port:
        assert port.address[1] > 0


@pytest.mark.parametrize(
    "url, message",
    [
        ("tcp://127.0.0.1:1", "refused"),
        ("tcp://127.0.0.1", "bad TCP address"),
        ("tcp://127.0.0.1:99999", "bad TCP address"),
        ("tcp://:5555", "needs a host"),
        ("tcp://127.0.0.1:5555?nodelay", "unknown option"),
        ("unix://", "no socket path"),
        ("unix:///nonexistent-dir/kd.sock", "no such socket"),
    ],
)
def test_bad_socket_urls_fail_with_one_clear_line(url, message):
    with pytest.raises(LinkError, match=message) as info:
        open_link(url)
    assert "\n" not in str(info.value)


def test_unix_connect_to_a_stale_socket_says_nobody_listens(sock_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()
    with pytest.raises(LinkError, match="nobody listens"):
        open_link(f"unix://{sock_path}")


def _poll_with_yields(monkeypatch, slow: list[bool]) -> float:
    """read_available polling 20 ms for bytes that never come, its yields slow (0.5 ms:
    another process ran) as ``slow`` says, then fast; the port's polling pause after."""
    from kdcon.protocol.transports import fdport

    pattern = iter(slow)

    def yield_cpu() -> None:
        if next(pattern, False):
            time.sleep(0.0005)

    monkeypatch.setattr(fdport, "_yield_cpu", yield_cpu)
    a, b = socket_pair(timeout=0.01)
    with a, b:
        assert b.read_available(spin=0.02) == b""
        return b._busy_until


def test_one_slow_yield_does_not_stop_the_polling(monkeypatch):
    # A kernel thread that ran for a moment: not a busy machine.
    assert _poll_with_yields(monkeypatch, [True]) == 0.0
    assert _poll_with_yields(monkeypatch, [True, False, False, False, True]) == 0.0


def test_three_slow_yields_in_a_row_stop_the_polling_for_a_pause(monkeypatch):
    before = time.perf_counter()
    assert _poll_with_yields(monkeypatch, [True, True, True]) > before + 0.5
