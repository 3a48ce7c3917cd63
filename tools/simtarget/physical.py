"""The simulated machine's physical memory: runs of RAM, each one host buffer.

What it does: keeps the machine's physical RAM as non-overlapping runs (a base physical
address and a size), each backed by one anonymous host mapping that unicorn maps at a
virtual address with ``mem_map_ptr``, so a virtual access and a physical access to the
same byte touch the same storage.  Runs no virtual address maps (the page tables) are
reached through here only.  What it does not do: translate addresses (paging.py,
memory.py) or hide breakpoints (memory.py).
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
from dataclasses import dataclass, field

from .errors import SimTargetError

__all__ = ["PhysicalRun", "PhysicalMemory"]


@dataclass(eq=False)
class PhysicalRun:
    """``size`` bytes of RAM from physical ``base``; ``pointer`` is its host address."""

    base: int
    size: int
    buffer: mmap.mmap = field(repr=False)
    pointer: int = field(repr=False)
    # Holds the export that keeps ``pointer`` valid as long as the run lives.
    _view: ctypes.c_char = field(repr=False)

    @property
    def end(self) -> int:
        return self.base + self.size


class PhysicalMemory:
    """The RAM runs of one machine, sorted by physical address."""

    def __init__(self) -> None:
        self._runs: list[PhysicalRun] = []
        self._bases: list[int] = []

    def add(self, base: int, size: int) -> PhysicalRun:
        """New zeroed RAM at [base, base + size); an overlap with a run is refused."""
        i = bisect.bisect(self._bases, base)
        if (i > 0 and self._runs[i - 1].end > base) or (i < len(self._runs) and self._runs[i].base < base + size):
            raise SimTargetError(f"physical range {base:#x}+{size:#x} overlaps RAM already in use")
        buffer = mmap.mmap(-1, size)            # anonymous: zero pages, committed when touched
        view = ctypes.c_char.from_buffer(buffer)
        run = PhysicalRun(base, size, buffer, ctypes.addressof(view), view)
        self._runs.insert(i, run)
        self._bases.insert(i, base)
        return run

    def remove(self, base: int) -> None:
        """Forget the run at ``base``; its buffer goes once nothing maps it any more."""
        i = bisect.bisect_left(self._bases, base)
        if i < len(self._runs) and self._runs[i].base == base:
            del self._runs[i], self._bases[i]

    def run_at(self, address: int) -> PhysicalRun | None:
        i = bisect.bisect(self._bases, address) - 1
        if i >= 0 and address < self._runs[i].end:
            return self._runs[i]
        return None

    @property
    def runs(self) -> list[PhysicalRun]:
        return list(self._runs)

    def read(self, address: int, size: int) -> bytes:
        """The bytes of [address, address + size) up to the first address no run backs."""
        out = bytearray()
        while len(out) < size:
            at = address + len(out)
            run = self.run_at(at)
            if run is None:
                break
            n = min(size - len(out), run.end - at)
            out += run.buffer[at - run.base: at - run.base + n]
        return bytes(out)

    def write(self, address: int, data: bytes) -> int:
        """Write the backed prefix of ``data``; the count written."""
        done = 0
        while done < len(data):
            at = address + done
            run = self.run_at(at)
            if run is None:
                break
            n = min(len(data) - done, run.end - at)
            run.buffer[at - run.base: at - run.base + n] = data[done: done + n]
            done += n
        return done
