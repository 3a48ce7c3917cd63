"""``PacedPort``: a port that moves bytes no faster than a real 8N1 line, both ways.

At 115200 baud a byte is 10 bit times, 86.8 µs (kd-protocol.md §10.2, simulated-target.md
§8.4). ``LineSchedule`` is the pure part: it gives every byte an absolute deadline,
``anchor + k * byte_time`` for the k-th byte since the line last went idle, so that
sleeping late never accumulates into drift over long runs. ``PacedPort`` applies it:

- ``write`` hands bytes to the inner port as their deadlines pass, several at a time
  (at most ``quantum`` late, 1 ms by default) and sleeps in between: no busy waiting.
  It returns once the last byte is on the wire. A write that follows within two quanta
  continues the same busy period, so late wake-ups do not add up.
- ``read`` stamps bytes with deadlines when it first sees them (a pump that is always
  reading sees them as they arrive) and releases each only once its deadline passed,
  also waking at most once a quantum.

The clock and sleep are injectable, so tests check the schedule without timing anything.
Not here: faults (``faulty_port``) and what the bytes mean.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Any, Callable

from .wrapper import PortWrapper

__all__ = ["LineSchedule", "PacedPort", "byte_time"]

log = logging.getLogger(__name__)

BITS_PER_BYTE_8N1 = 10  # start + 8 data + stop


def byte_time(baud: int, bits_per_byte: int = BITS_PER_BYTE_8N1) -> float:
    """Seconds one byte occupies the line."""
    if baud <= 0:
        raise ValueError(f"baud rate must be positive, got {baud!r}")
    return bits_per_byte / baud


class LineSchedule:
    """Deadlines of bytes on one direction of a line (pure: time is passed in)."""

    def __init__(self, baud: int, bits_per_byte: int = BITS_PER_BYTE_8N1, *, slack: float = 0.0) -> None:
        self.baud = baud
        self.byte_time = byte_time(baud, bits_per_byte)
        # Bytes offered within ``slack`` of the line going idle continue the busy period,
        # as a UART's FIFO would have taken them before the line drained; otherwise the
        # writer's own late wake-ups would add up to drift.
        self.slack = slack
        self._anchor = -math.inf  # when the current busy period began
        self._count = 0  # bytes scheduled since the anchor

    @property
    def idle_at(self) -> float:
        """When the line has sent everything scheduled so far."""
        return self._anchor + self._count * self.byte_time

    def admit(self, count: int, now: float) -> list[float]:
        """Schedule ``count`` bytes offered at ``now``; their arrival deadlines."""
        anchor, first = self.admit_range(count, now)
        return [anchor + (first + i + 1) * self.byte_time for i in range(count)]

    def admit_range(self, count: int, now: float) -> tuple[float, int]:
        """Like ``admit`` without the list: ``(anchor, index of the first byte)``."""
        if now > self.idle_at + self.slack:
            self._anchor, self._count = now, 0
        first = self._count
        self._count += count
        return self._anchor, first

    def due(self, anchor: float, first: int, count: int, now: float) -> int:
        """How many of ``count`` bytes starting at index ``first`` have their deadline at or before ``now``."""
        done = math.floor((now - anchor) / self.byte_time + 1e-9) - first
        return max(0, min(count, done))


class PacedPort(PortWrapper):
    """Delivers bytes through ``port`` at ``baud`` (8N1) in both directions."""

    def __init__(
        self,
        port: Any,
        baud: int = 115200,
        *,
        quantum: float = 0.001,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(port, clock=clock)
        self.pace_baud = baud
        self.quantum = quantum
        self._sleep = sleep
        self._tx = LineSchedule(baud, slack=2 * quantum)
        self._rx = LineSchedule(baud, slack=2 * quantum)
        self._rx_buf: deque[tuple[float, int]] = deque()
        self._tx_lock = threading.Lock()
        self._rx_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PacedPort({self.inner!r}, baud={self.pace_baud})"

    # -- transmit ----------------------------------------------------------------

    def write(self, data: bytes) -> int:
        data = bytes(data)
        with self._tx_lock:
            anchor, first = self._tx.admit_range(len(data), self._clock())
            per_quantum = max(1, int(self.quantum / self._tx.byte_time))
            sent = 0
            while sent < len(data):
                due = self._tx.due(anchor, first, len(data), self._clock())
                if due > sent:
                    self.inner.write(data[sent:due])
                    sent = due
                    continue
                # Sleep until a batch is due rather than waking for every byte.
                target = min(len(data), sent + per_quantum)
                wake = anchor + (first + target) * self._tx.byte_time
                self._sleep(max(0.0, wake - self._clock()))
        return len(data)

    # -- receive -----------------------------------------------------------------

    @property
    def in_waiting(self) -> int:
        with self._rx_lock:
            self._pull(block_for=0)
            return self._released(self._clock())

    def read(self, size: int = 1) -> bytes:
        out = bytearray()
        deadline = self._deadline()
        with self._rx_lock:
            while len(out) < size:
                now = self._clock()
                ready = min(self._released(now), size - len(out))
                for _ in range(ready):
                    out.append(self._rx_buf.popleft()[1])
                if len(out) >= size:
                    break
                left = None if deadline is None else deadline - now
                if left is not None and left <= 0:
                    break
                if self._rx_buf:
                    # Wake once per quantum, not once per byte: at most ``quantum`` late.
                    wait = max(self._rx_buf[0][0] - now, min(self.quantum, self._rx_buf[-1][0] - now))
                    if left is not None:
                        wait = min(wait, left)
                    self._pull(block_for=0)
                    if wait > 0:
                        self._sleep(wait)
                else:
                    if not self._pull(block_for=left):
                        break
        return bytes(out)

    def reset_input_buffer(self) -> None:
        with self._rx_lock:
            self._rx_buf.clear()
            self.inner.reset_input_buffer()

    def _released(self, now: float) -> int:
        count = 0
        for due, _ in self._rx_buf:
            if due > now:
                break
            count += 1
        return count

    def _pull(self, block_for: float | None) -> int:
        """Move what the inner port has into the schedule; wait up to ``block_for`` for a first byte."""
        waiting = self.inner.in_waiting
        if waiting == 0 and block_for == 0:
            return 0
        self._set_inner_timeout(block_for if waiting == 0 else 0)
        chunk = self.inner.read(max(1, waiting))
        if chunk:
            deadlines = self._rx.admit(len(chunk), self._clock())
            self._rx_buf.extend(zip(deadlines, chunk))
        return len(chunk)
