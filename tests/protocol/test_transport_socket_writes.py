"""FdPort.write over a socket pair: a write the kernel takes in one send, one larger than
the socket buffer (sent in parts as the peer reads), each of the types pyserial takes,
and one to a peer that stopped reading (bounded by write_timeout)."""

from __future__ import annotations

import threading

import pytest

from kdcon.protocol.transports import LinkError, socket_pair

BIG = bytes(range(256)) * 8192  # 2 MiB, far beyond a socket pair's buffer


def _drain(port, n: int, into: bytearray) -> None:
    while len(into) < n:
        chunk = port.read_available(1 << 16)
        if not chunk:
            return
        into += chunk


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_a_small_write_arrives_whole_whatever_its_buffer_type(kind) -> None:
    a, b = socket_pair(timeout=2)
    with a, b:
        data = bytes(range(256)) * 3
        assert a.write(kind(data)) == len(data)
        got = bytearray()
        _drain(b, len(data), got)
        assert bytes(got) == data


def test_a_write_larger_than_the_socket_buffer_arrives_whole_and_in_order() -> None:
    a, b = socket_pair(timeout=2)
    with a, b:
        got = bytearray()
        reader = threading.Thread(target=_drain, args=(b, len(BIG), got))
        reader.start()
        assert a.write(BIG) == len(BIG)
        reader.join(10)
        assert not reader.is_alive()
        assert bytes(got) == BIG


def test_a_write_to_a_peer_that_stopped_reading_ends_at_the_write_timeout() -> None:
    a, b = socket_pair(timeout=2)
    with a, b:
        a.write_timeout = 0.2
        with pytest.raises(LinkError, match="stopped reading"):
            a.write(BIG)
