"""Progress of long jobs, with an ETA from the wire rate measured while they run.

What it does: ``Progress(console, what, total)`` is used as a context manager by a
command that moves a lot of data (``.writemem``, ``.readmem``, ``s`` over a large
range, ``.reload /f`` of many modules, extensions' scans). ``update(done)`` checks
for Ctrl+C (the target's cancel event: ``Cancelled`` ends the job), and at most four
times a second records where the job is and when it should end, computed from the
bytes the link carried since the job began: on a serial cable that is the only rate
that matters. The REPL's toolbar shows the current job; ``--json`` gets ``progress``
events. Nothing is printed into the command's own output.
What it does not do: draw anything itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .console import Console

__all__ = ["Progress", "ProgressState", "format_progress"]

_EVERY = 0.25


@dataclass(frozen=True)
class ProgressState:
    what: str
    done: int
    total: int | None
    eta: float | None          # seconds left, None until a rate is known
    rate: float | None         # bytes a second on the wire


class Progress:
    """One long job's progress; ``with Progress(...) as progress: progress.update(n)``."""

    def __init__(self, console: Console, what: str, total: int | None) -> None:
        self._console = console
        self.what = what
        self.total = total
        self._started = time.monotonic()
        self._wire_at_start = console.session.wire().total
        self._last = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._console.state.values.pop("progress", None)

    def update(self, done: int) -> None:
        target = self._console.target
        if target is not None:
            target.check_cancelled()
        now = time.monotonic()
        if now - self._last < _EVERY and (self.total is None or done < self.total):
            return
        self._last = now
        elapsed = now - self._started
        moved = self._console.session.wire().total - self._wire_at_start
        rate = moved / elapsed if elapsed > 0 and moved > 0 else None
        eta = None
        if self.total and done and elapsed > 0:
            eta = elapsed * (self.total - done) / done
        state = ProgressState(self.what, done, self.total, eta, rate)
        self._console.state.values["progress"] = state
        self._console.emit_event("progress", what=self.what, done=done, total=self.total,
                                 eta=None if eta is None else round(eta, 1),
                                 wire_rate=None if rate is None else round(rate))


def format_progress(state: ProgressState) -> str:
    """``.writemem 45% (0x2d000 of 0x64000), 12 s left at 11.3 KB/s``."""
    text = state.what
    if state.total:
        text += f" {100 * state.done // state.total}% ({state.done:#x} of {state.total:#x})"
    else:
        text += f" {state.done:#x}"
    if state.eta is not None:
        text += f", {state.eta:.0f} s left"
    if state.rate is not None:
        text += f" at {state.rate / 1000:.1f} KB/s"
    return text
