"""Paced and noisy ports are pyserial ports: SerialBase's API over the wrapper's own bytes.

The receive model below upper-cases what arrives, so a line that comes back upper-cased
proves it went through the wrapper's ``read`` and not around it to the socket beneath.
"""

from __future__ import annotations

import gc

import pytest
import serial

from kdcon.protocol.transports import (
    FaultModel,
    FaultyPort,
    PacedPort,
    open_link,
    socket_pair,
    wrap_link,
)
from kdcon.protocol.transports.wrapper import PortWrapper

FAST_PACE = 1_000_000  # 10 µs a byte: paced, without slowing the test down


class Upper:
    """A line model that changes every byte it can, and nothing else."""

    def apply(self, data: bytes) -> bytes:
        return data.upper()


def _noisy_paced(port):
    return PacedPort(FaultyPort(port, model_rx=Upper()), FAST_PACE)


def _send(port, data: bytes, pieces: str) -> None:
    if pieces == "whole":
        port.write(data)
    else:
        for i in range(len(data)):
            port.write(data[i:i + 1])


@pytest.fixture
def pair():
    a, b = socket_pair(timeout=2.0)
    yield a, b
    a.close()
    b.close()


def test_every_wrapper_open_link_returns_is_a_pyserial_port():
    port = open_link("loop://?pace=115200&faults=drop=0.5,seed=3")
    try:
        assert isinstance(port, serial.SerialBase) and isinstance(port.inner, serial.SerialBase)
        assert isinstance(port, PacedPort) and isinstance(port.inner, FaultyPort)
    finally:
        port.close()


@pytest.mark.parametrize("pieces", ["whole", "bytewise"])
def test_readline_and_read_until_see_the_lines_bytes(pair, pieces):
    a, b = pair
    port = _noisy_paced(a)
    _send(b, b"kd> g\nbp 1\r\nrest", pieces)
    assert port.readline() == b"KD> G\n"
    assert port.read_until(b"\r\n") == b"BP 1\r\n"
    # What follows the last terminator comes whole once the timeout ends the search.
    port.timeout = 0.05
    assert list(port.iread_until(b"\n")) == [b"REST"]


def test_read_until_stops_at_size_and_leaves_the_rest(pair):
    a, b = pair
    port = FaultyPort(a, model_rx=Upper())
    b.write(b"abcdef\n")
    assert port.read_until(b"\n", size=4) == b"ABCD"
    assert port.read_until() == b"EF\n"


def test_readline_through_a_paced_port_is_on_the_lines_schedule():
    inner = _ScriptedPort(b"0i\n")
    fake = _FakeTime()
    port = PacedPort(inner, 115200, clock=fake.clock, sleep=fake.sleep)
    port.timeout = 1.0
    assert port.readline() == b"0i\n"
    # Three bytes of 86.8 µs each: released no earlier than the third's deadline.
    assert fake.now >= 3 * 10 / 115200


def test_settings_are_the_wrapped_ports_except_the_wrappers_own_timeout(pair):
    a, _ = pair
    port = _noisy_paced(a)
    port.baudrate = 57600
    port.write_timeout = 3.0
    assert (a.baudrate, a.write_timeout) == (57600, 3.0)
    a.parity = serial.PARITY_EVEN
    assert port.parity == serial.PARITY_EVEN and port.get_settings()["parity"] == serial.PARITY_EVEN
    port.timeout = 0.25
    assert port.timeout == 0.25 and a.timeout == 2.0  # the wrapper drives a's on each read
    port.apply_settings({"baudrate": 38400, "timeout": 0.5, "write_timeout": None})
    assert (a.baudrate, a.write_timeout, port.timeout) == (38400, None, 0.5)
    assert port.get_settings() == {**a.get_settings(), "timeout": 0.5}
    with pytest.raises(ValueError):
        port.timeout = -1


def test_names_state_and_extras_are_the_wrapped_ports(pair):
    a, _ = pair
    port = _noisy_paced(a)
    assert (port.port, port.portstr, port.name) == ("socketpair:a",) * 3
    assert port.is_open and port.peer_in_process and port.fileno() == a.fileno()
    # The fast read of our transports would go around the wrapper's bytes.
    assert port.read_available is None
    assert repr(port) == f"PacedPort(FaultyPort({a!r}), baud={FAST_PACE})"


def test_with_closes_the_wrapped_port(pair):
    a, b = pair
    with _noisy_paced(a) as port:
        b.write(b"x")
        assert port.read(1) == b"X"
    assert not a.is_open and not port.is_open


def test_a_dropped_wrapper_leaves_the_wrapped_port_open(pair):
    a, b = pair
    port = wrap_link(a, pace=FAST_PACE, faults=FaultModel(5, bit_flip=0.5))
    assert isinstance(port, PacedPort)
    del port
    gc.collect()
    assert a.is_open
    b.write(b"still")
    assert a.read(5) == b"still"


def test_the_base_wrapper_passes_bytes_through_both_ways(pair):
    a, b = pair
    port = PortWrapper(a)
    assert port.write(b"0000") == 4 and b.read(4) == b"0000"
    b.write(b"iiii\n")
    assert port.in_waiting == 5 and port.readline() == b"iiii\n"


class _FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _ScriptedPort:
    """An inner port that has ``incoming`` waiting from the start."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = bytearray(incoming)
        self.timeout = None
        self.is_open = True

    @property
    def in_waiting(self) -> int:
        return len(self.incoming)

    def read(self, size: int = 1) -> bytes:
        out = bytes(self.incoming[:size])
        del self.incoming[:size]
        return out
