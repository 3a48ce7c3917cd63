"""Pacing as a property of the schedule: deadlines, no drift, no bursts, no busy waiting.

The wrapper's clock and sleep are injected: a fake clock whose sleep oversleeps by a
random amount (as a loaded machine does) lets the tests check when each byte was let
through without timing anything.
"""

from __future__ import annotations

import random

import pytest

from kdcon.protocol.transports import LineSchedule, PacedPort, byte_time

BAUD = 115200
BT = 10 / BAUD  # 86.8 µs: 8N1 is 10 bits a byte


class FakeClock:
    def __init__(self, seed: int, max_oversleep: float) -> None:
        self.now = 1000.0
        self.sleeps = 0
        self._rng = random.Random(seed)
        self._max = max_oversleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps += 1
        self.now += seconds + self._rng.uniform(0, self._max)


class RecordingPort:
    """Inner port: records when each byte was written; serves ``incoming`` to reads."""

    def __init__(self, clock: FakeClock, incoming: bytes = b"") -> None:
        self.clock = clock
        self.written: list[tuple[float, int]] = []
        self.incoming = bytearray(incoming)
        self.timeout = None
        self.is_open = True

    def write(self, data: bytes) -> int:
        self.written.extend((self.clock.now, b) for b in data)
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self.incoming)

    def read(self, size: int = 1) -> bytes:
        out = bytes(self.incoming[:size])
        del self.incoming[:size]
        return out


def test_byte_time_is_86_8_microseconds_at_115200():
    assert byte_time(115200) == pytest.approx(86.8e-6, abs=0.05e-6)
    with pytest.raises(ValueError):
        byte_time(0)


def test_schedule_deadlines_are_absolute_and_reanchor_after_idle():
    line = LineSchedule(BAUD)
    assert line.admit(3, now=10.0) == pytest.approx([10.0 + BT, 10.0 + 2 * BT, 10.0 + 3 * BT])
    # Offered while busy: queued behind the first three, not at "now".
    assert line.admit(1, now=10.0 + BT) == pytest.approx([10.0 + 4 * BT])
    # 100,000 more bytes in 1-byte pieces: the last deadline has no accumulated error.
    for _ in range(100_000):
        last = line.admit(1, now=10.0)[0]
    assert last == pytest.approx(10.0 + 100_004 * BT, abs=1e-9)
    # After the line went idle a new burst starts from its own offer time.
    assert line.admit(1, now=100.0) == [pytest.approx(100.0 + BT)]


@pytest.mark.parametrize("seed", [1, 2])
def test_written_bytes_leave_at_their_deadlines_without_drift(seed):
    fake = FakeClock(seed, max_oversleep=0.0004)
    inner = RecordingPort(fake)
    paced = PacedPort(inner, BAUD, quantum=0.001, clock=fake.clock, sleep=fake.sleep)
    rng = random.Random(seed)
    start = fake.now
    total = 0
    while total < 11520:  # one second of line time, in packet-sized writes
        n = rng.randint(1, 600)
        assert paced.write(bytes(n)) == n
        total += n
    times = [t for t, _ in inner.written]
    assert len(times) == total
    for k, t in enumerate(times):
        deadline = start + (k + 1) * BT
        assert t >= deadline - 1e-9, f"byte {k} early"
        assert t <= deadline + 0.001 + 0.0004 + BT, f"byte {k} late by {t - deadline:.6f}s"
    # Oversleeping on every sleep did not add up: the run ends on the schedule.
    assert times[-1] - start == pytest.approx(total * BT, abs=0.0015)
    # No busy waiting: about one sleep per quantum of line time, not one per byte.
    assert fake.sleeps <= total * BT / 0.001 + total / 600 * 2 + 10
    assert fake.sleeps < total / 5


def test_write_after_idle_does_not_burst_to_catch_up():
    fake = FakeClock(3, max_oversleep=0)
    inner = RecordingPort(fake)
    paced = PacedPort(inner, BAUD, clock=fake.clock, sleep=fake.sleep)
    paced.write(bytes(10))
    fake.now += 5.0  # the line idles
    resume = fake.now
    paced.write(bytes(100))
    later = [t for t, _ in inner.written[10:]]
    assert later[0] >= resume + BT - 1e-9
    assert later[-1] == pytest.approx(resume + 100 * BT, abs=0.0011)


@pytest.mark.parametrize("baud", [19200, 57600, 115200])
def test_received_bytes_are_released_at_line_rate(baud):
    bt = 10 / baud
    fake = FakeClock(4, max_oversleep=0.0003)
    n = baud // 20  # half a second of line time, all of it already in the inner port
    inner = RecordingPort(fake, incoming=bytes(range(256)) * (n // 256 + 1))
    del inner.incoming[n:]
    paced = PacedPort(inner, baud, clock=fake.clock, sleep=fake.sleep)
    paced.timeout = 10.0
    start = fake.now
    got = bytearray()
    stamps = []
    while len(got) < n:
        assert paced.in_waiting <= (fake.now - start) / bt + 1
        chunk = paced.read(max(1, paced.in_waiting))
        assert chunk
        stamps.extend([fake.now] * len(chunk))
        got += chunk
    assert bytes(got) == (bytes(range(256)) * (n // 256 + 1))[:n]
    for k, t in enumerate(stamps):
        assert t >= start + (k + 1) * bt - 1e-9
    assert stamps[-1] - start == pytest.approx(n * bt, abs=bt + 0.0004)


def test_read_times_out_on_the_wrappers_own_clock():
    fake = FakeClock(5, max_oversleep=0)
    inner = RecordingPort(fake)
    paced = PacedPort(inner, BAUD, clock=fake.clock, sleep=fake.sleep)
    paced.timeout = 0
    assert paced.read(5) == b""
