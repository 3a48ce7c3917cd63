"""x64 4-level page tables for the simulated machine, kept in its physical memory.

What it does: builds the PML4 at CR3 and the PDPT, PD and PT pages below it so that they
describe every virtual mapping of the machine, as a Windows x64 kernel's tables would:
a present leaf for each mapped page, naming the physical page that backs it, writable
and no-execute exactly as the page's protection says, supervisor-only (no user pages
exist), global.  A 2 MB stretch mapped 2 MB-aligned both virtually and physically gets
one large-page PDE.  Unmapping clears the leaves.  What it does not do: drive the CPU's
translation (unicorn runs with a virtual TLB; the tables are what a debugger reads).
PML4 entry 0x1ED points at the PML4 itself, as on Windows x64 (before the Windows 10
1607 randomisation), so the tables appear at ``PTE_BASE`` (0xFFFFF680'00000000): the
PTE mapping a page at ``PTE_BASE + (va >> 9 & 0x7FFFFFFFF8)``, the PML4 at
0xFFFFF6FB'7DBED000. GuestMemory serves those addresses to the debugger by walking
these tables; the CPU never uses them.

Layout of one entry (Intel SDM vol. 3 §4.5, AMD APM vol. 2 §5.3)::

    bit 0 P  1 R/W  2 U/S  5 A  6 D  7 PS (PDPTE/PDE: large page)  8 G
    bits 12..51 the physical page (a table, or the mapped page)   bit 63 XD/NX

Spec: Intel SDM vol. 3A ch. 4.5 (4-level paging); docs/simulated-target.md §3.
"""

from __future__ import annotations

import struct

from .physical import PhysicalMemory

__all__ = [
    "PageTables", "SELF_MAP_INDEX", "PTE_BASE", "PTE_END", "PTE_PRESENT", "PTE_WRITE", "PTE_USER", "PTE_ACCESSED", "PTE_DIRTY", "PTE_LARGE",
    "PTE_GLOBAL", "PTE_NX", "PFN_MASK", "PROT_READ", "PROT_WRITE", "PROT_EXEC",
]

PTE_PRESENT = 1 << 0
PTE_WRITE = 1 << 1
PTE_USER = 1 << 2
PTE_ACCESSED = 1 << 5
PTE_DIRTY = 1 << 6
PTE_LARGE = 1 << 7
PTE_GLOBAL = 1 << 8
PTE_NX = 1 << 63
PFN_MASK = 0x000F_FFFF_FFFF_F000
# Protections, the same bits as unicorn's UC_PROT_*.
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4

# The PML4 slot that maps the tables themselves, and the 512 GB window it opens.
SELF_MAP_INDEX = 0x1ED
PTE_BASE = 0xFFFF_0000_0000_0000 | SELF_MAP_INDEX << 39
PTE_END = PTE_BASE + (1 << 39)

_PAGE = 0x1000
_LARGE = 0x200000
_ENTRY = struct.Struct("<Q")
_TABLE_LINK = PTE_PRESENT | PTE_WRITE | PTE_ACCESSED   # upper levels never restrict


def _leaf_bits(prot: int) -> int:
    bits = PTE_PRESENT | PTE_ACCESSED | PTE_GLOBAL
    if prot & PROT_WRITE:
        bits |= PTE_WRITE | PTE_DIRTY
    if not prot & PROT_EXEC:
        bits |= PTE_NX
    return bits


def _index(va: int, level: int) -> int:
    """Entry index of ``va`` in a level-``level`` table (4 = PML4 ... 1 = PT)."""
    return (va >> (12 + 9 * (level - 1))) & 0x1FF


class PageTables:
    """The tables under one CR3, their pages taken from ``[root, root + area)``."""

    def __init__(self, physical: PhysicalMemory, root: int, area: int = 0x100000) -> None:
        self._physical = physical
        self.root = root
        self._limit = root + area
        physical.add(root, area)
        self._next = root + _PAGE
        # Data, never code: no-execute; not global, as every process's self-map differs.
        self._write(root, SELF_MAP_INDEX,
                    root | PTE_PRESENT | PTE_WRITE | PTE_ACCESSED | PTE_DIRTY | PTE_NX)

    # ---- entries ----

    def _read(self, table: int, index: int) -> int:
        return _ENTRY.unpack(self._physical.read(table + 8 * index, 8))[0]

    def _write(self, table: int, index: int, value: int) -> None:
        self._physical.write(table + 8 * index, _ENTRY.pack(value))

    def _new_table(self) -> int:
        if self._next >= self._limit:
            raise MemoryError("the page-table area is full")
        page, self._next = self._next, self._next + _PAGE
        return page

    def _table_below(self, table: int, index: int, create: bool) -> int | None:
        """The physical page of the table an entry points at (made if ``create``)."""
        entry = self._read(table, index)
        if entry & PTE_PRESENT:
            if entry & PTE_LARGE:
                if not create:
                    return None
                return self._split(table, index, entry)
            return entry & PFN_MASK
        if not create:
            return None
        below = self._new_table()
        self._write(table, index, below | _TABLE_LINK)
        return below

    def _split(self, pd: int, index: int, entry: int) -> int:
        """Replace a 2 MB PDE by a PT of 512 small pages with the same bits."""
        pt = self._new_table()
        bits = entry & ~PFN_MASK & ~PTE_LARGE
        base = entry & PFN_MASK
        self._physical.write(pt, b"".join(_ENTRY.pack(base + i * _PAGE | bits) for i in range(512)))
        self._write(pd, index, pt | _TABLE_LINK)
        return pt

    def _pd(self, va: int, create: bool) -> int | None:
        pdpt = self._table_below(self.root, _index(va, 4), create)
        return None if pdpt is None else self._table_below(pdpt, _index(va, 3), create)

    # ---- mappings ----

    def map(self, va: int, size: int, pa: int, prot: int) -> None:
        """Describe [va, va + size) as mapped onto [pa, pa + size) with ``prot``."""
        end = va + size
        while va < end:
            if va % _LARGE == 0 and pa % _LARGE == 0 and end - va >= _LARGE:
                pd = self._pd(va, create=True)
                self._write(pd, _index(va, 2), pa | _leaf_bits(prot) | PTE_LARGE)
                va, pa = va + _LARGE, pa + _LARGE
                continue
            pt = self._table_below(self._pd(va, create=True), _index(va, 2), create=True)
            count = min(512 - _index(va, 1), (end - va) // _PAGE)
            bits = _leaf_bits(prot)
            self._physical.write(pt + 8 * _index(va, 1),
                                 b"".join(_ENTRY.pack(pa + i * _PAGE | bits) for i in range(count)))
            va, pa = va + count * _PAGE, pa + count * _PAGE

    def protect(self, va: int, size: int, prot: int) -> None:
        """Set the writable and no-execute bits of the mapped pages in [va, va + size)."""
        for page in range(va & ~(_PAGE - 1), va + size, _PAGE):
            found = self._leaf(page, split=True)
            if found is not None:
                table, index, entry = found
                self._write(table, index, entry & PFN_MASK | _leaf_bits(prot))

    def unmap(self, va: int, size: int) -> None:
        """Clear the leaves of [va, va + size); tables stay, as a kernel keeps them."""
        for page in range(va & ~(_PAGE - 1), va + size, _PAGE):
            found = self._leaf(page, split=page % _LARGE != 0 or va + size - page < _LARGE)
            if found is not None:
                table, index, _ = found
                self._write(table, index, 0)

    def _leaf(self, va: int, split: bool) -> tuple[int, int, int] | None:
        """(table, index, entry) of the present leaf mapping ``va``."""
        pd = self._pd(va, create=False)
        if pd is None:
            return None
        pde = self._read(pd, _index(va, 2))
        if not pde & PTE_PRESENT:
            return None
        if pde & PTE_LARGE and not split:
            return pd, _index(va, 2), pde
        pt = self._table_below(pd, _index(va, 2), create=split) if pde & PTE_LARGE else pde & PFN_MASK
        entry = self._read(pt, _index(va, 1))
        return (pt, _index(va, 1), entry) if entry & PTE_PRESENT else None

    def translate(self, va: int) -> tuple[int, int] | None:
        """(physical address, leaf entry) for ``va``, or None when no present leaf maps it."""
        table = self.root
        for level in (4, 3, 2, 1):
            entry = self._read(table, _index(va, level))
            if not entry & PTE_PRESENT:
                return None
            if level == 1 or (level in (2, 3) and entry & PTE_LARGE):
                span = _PAGE << (9 * (level - 1))
                return (entry & PFN_MASK & ~(span - 1)) + (va & (span - 1)), entry
            table = entry & PFN_MASK
        return None
