"""The packet trace (``.kdtrace``, kd's Ctrl+D): every byte of the wire, to a file, with times.

What it does: ``PacketTrace(path)`` is a tap for the session's counting port
(``CountingPort.tap``). Every chunk the console sends or receives is appended to
``path`` as it travels, so the file is the raw byte stream ``kdcon-kdtrace`` decodes
(both directions in the order they crossed the port, one line per packet), and one
JSON line per chunk goes to ``path.times``: where the chunk starts in the capture, its
length, its direction and when it crossed (``elapsed`` seconds since the trace began,
and the wall-clock ``time``). ``timed(rows, times)`` puts those times on the rows
``kdcon-kdtrace --json`` prints. Both files are flushed chunk by chunk: a crash loses
nothing that crossed the wire.
What it does not do: decode packets (tools/kdtrace.py) or keep the directions apart in
the capture (a host's ACK written while a target's packet is half read lands between
its bytes; kdcon-kdtrace shows that packet as damaged, the times file shows why).
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["PacketTrace", "times_path", "read_times", "timed"]

log = logging.getLogger(__name__)


def times_path(path: str | Path) -> Path:
    """The times file beside a capture: ``capture.bin.times``."""
    path = Path(path)
    return path.with_name(path.name + ".times")


class PacketTrace:
    """One capture being written; call it with (direction, data), ``close()`` at the end."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data = open(self.path, "wb")  # noqa: SIM115 - open until close()
        try:
            self._times = open(times_path(self.path), "w", encoding="utf-8")  # noqa: SIM115
        except OSError:
            self._data.close()
            raise
        self._started = time.monotonic()
        self.offset = 0
        self.bytes = {"sent": 0, "received": 0}
        self.error: str | None = None

    @property
    def closed(self) -> bool:
        return self._data.closed

    def __call__(self, direction: str, data: bytes) -> None:
        elapsed = time.monotonic() - self._started
        stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        with self._lock:
            if self._data.closed or self.error is not None:
                return
            record = {"offset": self.offset, "length": len(data), "direction": direction,
                      "elapsed": round(elapsed, 6), "time": stamp}
            try:
                self._data.write(data)
                self._data.flush()
                self._times.write(json.dumps(record) + "\n")
                self._times.flush()
            except OSError as exc:
                # Never into the port's reader: the trace stops, the link goes on.
                self.error = exc.strerror or str(exc)
                log.debug("packet trace stopped: %s", exc)
                return
            self.offset += len(data)
            self.bytes[direction] = self.bytes.get(direction, 0) + len(data)

    def close(self) -> None:
        with self._lock:
            for handle in (self._data, self._times):
                try:
                    handle.close()
                except OSError as exc:
                    self.error = self.error or exc.strerror or str(exc)


def read_times(path: str | Path) -> list[dict[str, Any]]:
    """The records of a times file, in capture order (lines that do not parse are skipped)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("offset"), int):
                records.append(record)
    records.sort(key=lambda r: r["offset"])
    return records


def timed(rows: Iterable[dict[str, Any]], times: list[dict[str, Any]]
          ) -> Iterator[dict[str, Any]]:
    """``rows`` (kdcon-kdtrace records, with ``offset``) with the ``elapsed``, ``time``
    and ``direction`` of the chunk their first byte came in."""
    starts = [record["offset"] for record in times]
    for row in rows:
        index = bisect.bisect_right(starts, row["offset"]) - 1
        if index >= 0:
            chunk = times[index]
            row = {**row, "elapsed": chunk.get("elapsed"), "time": chunk.get("time"),
                   "direction": chunk.get("direction")}
        yield row
