"""Counting the wire: every byte the console sends and receives, per command.

What it does: ``CountingPort`` wraps any pyserial-like port the link drives and
counts the bytes read and written through it, passing everything else through
(including the optional fast paths the link looks for: ``read_available``,
``peer_in_process``). The session reads the counters before and after a command to
say what it cost on the wire: on a 115200-baud cable each byte is 87 µs.
What it does not do: pace or damage bytes (protocol/transports do that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["CountingPort", "line_seconds"]


def line_seconds(byte_count: int, baud: int = 115200) -> float:
    """Seconds ``byte_count`` bytes take on a serial line (10 bits a byte)."""
    return byte_count * 10 / baud


class CountingPort:
    """A port that counts bytes in both directions; ``tap("sent"|"received", data)``,
    when set, sees every byte too (the packet trace, ``.kdtrace``)."""

    def __init__(self, port: Any) -> None:
        self._port = port
        self._lock = threading.Lock()
        self.bytes_read = 0
        self.bytes_written = 0
        self.tap: Callable[[str, bytes], None] | None = None
        if getattr(port, "read_available", None) is not None:
            self.read_available = self._read_available

    def __getattr__(self, name: str) -> Any:
        return getattr(self._port, name)

    @property
    def timeout(self) -> float | None:
        return self._port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._port.timeout = value

    @property
    def in_waiting(self) -> int:
        return self._port.in_waiting

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        with self._lock:
            self.bytes_read += len(data)
        if data and self.tap is not None:
            self.tap("received", data)
        return data

    def _read_available(self, limit: int, spin: float) -> bytes:
        data = self._port.read_available(limit, spin)
        with self._lock:
            self.bytes_read += len(data)
        if data and self.tap is not None:
            self.tap("received", data)
        return data

    def write(self, data: bytes) -> int | None:
        written = self._port.write(data)
        with self._lock:
            self.bytes_written += len(data)
        if data and self.tap is not None:
            self.tap("sent", bytes(data))
        return written

    def close(self) -> None:
        self._port.close()
