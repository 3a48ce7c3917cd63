"""Guest memory: mapped regions, physical runs, and reads and writes with the
semantics a KD target gives them.

- ``read_virtual`` returns the readable prefix (a short read stops at the first
  unmapped byte, b"" if the first byte is unmapped) and shows original bytes where
  the debugger has armed a breakpoint (kd-protocol.md §5.7, simulated-target.md §5.11).
- ``write_virtual`` writes the writable prefix, keeps armed breakpoints armed (the
  new byte becomes the saved original) and flushes the translation cache for the
  range (simulated-target.md §5.8).
- Physical memory is real: every region is one linear run of RAM (``layout``) in a host
  buffer that unicorn maps at the region's address (``physical.py``), so a virtual and a
  physical access to one byte touch the same storage.  The x64 page tables at CR3
  (``paging.py``) describe every region, page by page, with its protection; physical
  reads and writes reach the tables too (they have no virtual address).
- ``protect`` changes a range's protection in the CPU (unicorn enforces it on the guest)
  and in the page tables alike; reads and writes made here, like the kernel debugger's,
  ignore it.

Does not know about images or the CPU's registers.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Callable

from unicorn import UC_PROT_READ, UC_PROT_WRITE, Uc

from .layout import CR3_VALUE, PAGE_SIZE
from .paging import PTE_BASE, PTE_END, PageTables
from .physical import PhysicalMemory, PhysicalRun

__all__ = ["Region", "GuestMemory", "MemoryInfo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Region:
    """One mapped virtual range and the physical run behind it."""

    base: int
    size: int
    physical: int
    name: str
    run: PhysicalRun | None = field(default=None, repr=False, compare=False)

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True)
class MemoryInfo:
    """QueryMemory's answer for one address."""

    address: int
    base: int
    size: int
    readable: bool
    writable: bool
    executable: bool
    name: str


class GuestMemory:
    """The mapped regions of one unicorn instance and the armed software breakpoints."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self.physical = PhysicalMemory()
        self.page_tables = PageTables(self.physical, CR3_VALUE)
        self._regions: list[Region] = []       # sorted by base
        self._bases: list[int] = []
        self._phys: list[Region] = []          # sorted by physical
        self._phys_bases: list[int] = []
        self.breakpoint_bytes: dict[int, int] = {}   # address -> original byte
        # Called with (address, size) before a read, so state kept outside guest memory
        # can be written into it on demand.
        self.before_read: Callable[[int, int], None] | None = None
        # Called with each new region once it is mapped (deferred breakpoints go in).
        self.on_map: Callable[[Region], None] | None = None

    # ---- mapping ----

    def map(self, base: int, size: int, physical: int, name: str,
            prot: int = UC_PROT_READ | UC_PROT_WRITE) -> Region:
        """Map new zeroed RAM at physical ``physical`` onto ``base`` with ``prot``
        (UC_PROT_* bits; data, not code, unless told)."""
        size = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        run = self.physical.add(physical, size)
        self._uc.mem_map_ptr(base, size, prot, run.pointer)
        self.page_tables.map(base, size, physical, prot)
        region = Region(base, size, physical, name, run)
        i = bisect.bisect(self._bases, base)
        self._regions.insert(i, region)
        self._bases.insert(i, base)
        j = bisect.bisect(self._phys_bases, physical)
        self._phys.insert(j, region)
        self._phys_bases.insert(j, physical)
        if self.on_map is not None:
            self.on_map(region)
        return region

    def protect(self, address: int, size: int, prot: int) -> None:
        """Give [address, address + size) (whole pages of one region) protection ``prot``."""
        self._uc.mem_protect(address, size, prot)
        self.page_tables.protect(address, size, prot)

    def unmap(self, base: int) -> Region | None:
        """Unmap the region at ``base``; its RAM stays (free pages, as the kernel's PFN
        database says), reachable by physical address only."""
        region = self.region_at(base)
        if region is None or region.base != base:
            return None
        self._uc.mem_unmap(region.base, region.size)
        self._uc.ctl_remove_cache(region.base, region.end)
        self.page_tables.unmap(region.base, region.size)
        i = self._regions.index(region)
        del self._regions[i], self._bases[i]
        j = self._phys.index(region)
        del self._phys[j], self._phys_bases[j]
        for address in [a for a in self.breakpoint_bytes if region.base <= a < region.end]:
            del self.breakpoint_bytes[address]
        return region

    @property
    def regions(self) -> list[Region]:
        return list(self._regions)

    def region_at(self, address: int) -> Region | None:
        i = bisect.bisect(self._bases, address) - 1
        if i >= 0 and address < self._regions[i].end:
            return self._regions[i]
        return None

    # ---- virtual ----

    def _spans(self, address: int, size: int):
        """(address, length) pieces of the mapped prefix of [address, address+size)."""
        end = address + size
        while address < end:
            region = self.region_at(address)
            if region is None:
                return
            n = min(end, region.end) - address
            yield address, n
            address += n

    def read_virtual(self, address: int, size: int) -> bytes:
        if size <= 0 or address < 0 or address > 0xFFFFFFFFFFFFFFFF:
            return b""
        if PTE_BASE <= address < PTE_END:
            return self._read_self_map(address, min(size, PTE_END - address))
        if self.before_read is not None:
            self.before_read(address, size)
        data = bytearray()
        for start, n in self._spans(address, size):
            data += self._uc.mem_read(start, n)
        if self.breakpoint_bytes:
            end = address + len(data)
            for bp, original in self.breakpoint_bytes.items():
                if address <= bp < end:
                    data[bp - address] = original
        return bytes(data)

    def _read_self_map(self, address: int, size: int) -> bytes:
        """The page tables as the self-map shows them: each page of the window
        translated through the tables (the PML4's slot 0x1ED points at itself), up to
        the first page no table backs. Writes there are refused (write_virtual finds
        no region): the tables describe the mappings and do not drive the CPU, so an
        edit could only make them disagree with it."""
        data = bytearray()
        while len(data) < size:
            at = address + len(data)
            found = self.page_tables.translate(at)
            if found is None:
                break
            n = min(size - len(data), PAGE_SIZE - at % PAGE_SIZE)
            data += self.read_physical(found[0], n)
        return bytes(data)

    def write_virtual(self, address: int, data: bytes) -> int:
        written = 0
        for start, n in self._spans(address, len(data)):
            chunk = bytearray(data[written:written + n])
            for bp in self.breakpoint_bytes:
                if start <= bp < start + n:
                    self.breakpoint_bytes[bp] = chunk[bp - start]
                    chunk[bp - start] = 0xCC
            self.poke(start, bytes(chunk))
            written += n
        return written

    def poke(self, address: int, data: bytes) -> int:
        """Put ``data`` in the RAM behind [address, address + len(data)) whatever the
        pages' protection, as the debugger's copy does, and drop any code translated
        from it; armed breakpoints are not looked at.  The mapped prefix's length.

        Straight into the host buffer: unicorn's ``mem_write`` would make a read-only
        region writable and back around each write, flushing its TLB every time (a
        breakpoint stepped over in code costs two such writes)."""
        written = 0
        for start, n in self._spans(address, len(data)):
            region = self.region_at(start)
            offset = start - region.base
            region.run.buffer[offset: offset + n] = data[written: written + n]
            self._uc.ctl_remove_cache(start, start + n)
            written += n
        return written

    def is_mapped(self, address: int) -> bool:
        return self.region_at(address) is not None

    # ---- physical ----

    def physical_to_virtual(self, physical: int) -> int | None:
        i = bisect.bisect(self._phys_bases, physical) - 1
        if i >= 0 and physical < self._phys[i].physical + self._phys[i].size:
            region = self._phys[i]
            return region.base + (physical - region.physical)
        return None

    def virtual_to_physical(self, address: int) -> int | None:
        region = self.region_at(address)
        return None if region is None else region.physical + (address - region.base)

    # RAM a region maps is read and written through its virtual address: the same bytes,
    # with the breakpoint and saved-state rules of virtual accesses.  RAM no address maps
    # (the page tables) is read and written directly.

    def read_physical(self, physical: int, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            at = physical + len(data)
            va = self.physical_to_virtual(at)
            if va is not None:
                n = min(size - len(data), self.region_at(va).end - va)
                data += self.read_virtual(va, n)
                continue
            run = self.physical.run_at(at)
            if run is None:
                break
            data += self.physical.read(at, min(size - len(data), run.end - at))
        return bytes(data)

    def write_physical(self, physical: int, data: bytes) -> int:
        written = 0
        while written < len(data):
            at = physical + written
            va = self.physical_to_virtual(at)
            if va is not None:
                n = min(len(data) - written, self.region_at(va).end - va)
                written += self.write_virtual(va, data[written:written + n])
                continue
            run = self.physical.run_at(at)
            if run is None:
                break
            written += self.physical.write(at, data[written:written + min(len(data) - written, run.end - at)])
        return written

    # ---- queries ----

    def query(self, address: int) -> MemoryInfo | None:
        region = self.region_at(address)
        if region is None:
            return None
        return MemoryInfo(address, region.base, region.size, True, True, True, region.name)

    def search(self, address: int, length: int, pattern: bytes) -> int | None:
        """First address in [address, address+length) where ``pattern`` starts, or None.

        Unmapped gaps are skipped; a match never spans a gap."""
        if not pattern or length <= 0:
            return None
        end = address + length
        for region in self._regions:
            if region.end <= address or region.base >= end:
                continue
            start = max(address, region.base)
            stop = min(end, region.end)
            data = self.read_virtual(start, stop - start + len(pattern) - 1)
            found = data.find(pattern)
            if found >= 0 and start + found < stop:
                return start + found
        return None
