"""The PFN database the loader hands the simulated kernel: one MMPFN per page of RAM.

What it does: once boot has mapped every region, ``build_pfn_database`` maps the PFN
database at ``layout.PFN_DATABASE`` (``MMPFN[pfn]`` at ``+ pfn * 0x30``), backed only
where it describes RAM that exists, as Windows backs its own, and fills every entry
from the page tables at CR3, as Windows' boot-time memory manager does:

- a page a present leaf maps is ActiveAndValid (share and reference count 1, cached)
  with ``PteAddress`` the address its PTE has in Windows 7 x64's self-map
  (MiGetPteAddress: 0xFFFFF680'00000000 + (va >> 12) * 8) and ``u4.PteFrame`` the page
  of the table that holds that PTE; the 512 pages under a 2 MB PDE name the PDE;
- every table page (PML4, PDPT, PD, PT) is ActiveAndValid the same way, naming the
  entry that points at it and its parent table, with ``UsedPageTableEntries`` its count
  of present entries (the PML4 names its own self-map entry, as on Windows);
- the pages of the page-table area no table uses yet are zeroed pages (PageLocation 0);
  any other page nothing maps is a free page.

It returns what the loader block carries: the database's address and the RAM runs
(sorted, adjacent runs merged).  The kernel (``src/ntoskrnl/mm.c``) links the zeroed
and free pages into its page lists and keeps the database from then on.
What it does not do: map a self-map (the tables have no virtual address on this
machine, so ``PteAddress`` names where Windows would see the PTE), or follow mappings
made after boot.

Layouts: ki.h's MMPFN and MMPFNENTRY (Windows 7 SP1 x64).
"""

from __future__ import annotations

import struct

from . import layout
from .memory import GuestMemory
from .paging import PFN_MASK, PTE_BASE, PTE_LARGE, PTE_PRESENT, SELF_MAP_INDEX

__all__ = ["MMPFN_SIZE", "ACTIVE_AND_VALID", "ZEROED_PAGE_LIST", "FREE_PAGE_LIST",
           "pte_address", "build_pfn_database"]

MMPFN_SIZE = 0x30
ZEROED_PAGE_LIST, FREE_PAGE_LIST, ACTIVE_AND_VALID = 0, 1, 6
_MI_CACHED = 1                     # MMPFNENTRY.CacheAttribute (bits 6-7 of its first byte)

# MMPFN fields (ki.h): u2.ShareCount, PteAddress, u3.ReferenceCount, u3.e1 (first byte),
# UsedPageTableEntries, u4 (PteFrame in bits 0-51).
_SHARE_COUNT, _PTE_ADDRESS, _REFERENCE_COUNT = 0x08, 0x10, 0x18
_E1, _USED_ENTRIES, _U4 = 0x1A, 0x1C, 0x28

_PAGE = 0x1000
_TABLE = struct.Struct("<512Q")


def pte_address(va: int, level: int = 1) -> int:
    """Where Windows 7 x64 sees the level-``level`` entry that maps ``va`` (1 PTE, 2 PDE,
    3 PDPTE, 4 PML4E)."""
    base = PTE_BASE
    for _ in range(level - 1):
        base = PTE_BASE | (base >> 9) & ((1 << 39) - 1)
    bits = 48 - 12 - 9 * (level - 1)
    return base + ((va >> (12 + 9 * (level - 1))) & ((1 << bits) - 1)) * 8


def _canonical(va: int) -> int:
    return va | 0xFFFF_0000_0000_0000 if va & (1 << 47) else va


def _merged_runs(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(base page, page count) runs sorted, adjacent ones joined."""
    merged: list[tuple[int, int]] = []
    for base, count in sorted(runs):
        if merged and merged[-1][0] + merged[-1][1] == base:
            merged[-1] = (merged[-1][0], merged[-1][1] + count)
        else:
            merged.append((base, count))
    return merged


def _database_pages(runs: list[tuple[int, int]]) -> list[int]:
    """The virtual pages of the database that describe ``runs``, in order."""
    pages: set[int] = set()
    for base, count in runs:
        first = (layout.PFN_DATABASE + base * MMPFN_SIZE) // _PAGE
        last = (layout.PFN_DATABASE + (base + count) * MMPFN_SIZE - 1) // _PAGE
        pages.update(range(first, last + 1))
    return sorted(page * _PAGE for page in pages)


class _Entries:
    """The entries being built, keyed by page frame number."""

    def __init__(self) -> None:
        self.active: dict[int, tuple[int, int, int]] = {}   # pfn -> (PteAddress, PteFrame, used)

    def add(self, pfn: int, pte: int, frame: int, used: int = 0) -> None:
        self.active[pfn] = (pte, frame, used)


def _walk(memory: GuestMemory, entries: _Entries, table: int, level: int, va: int,
          own_entry: int, parent: int) -> None:
    values = _TABLE.unpack(memory.physical.read(table, _PAGE))
    present = [i for i, value in enumerate(values) if value & PTE_PRESENT]
    me = table // _PAGE
    entries.add(me, own_entry, parent, len(present))
    for index in present:
        value = values[index]
        at = _canonical(va | index << (12 + 9 * (level - 1)))
        if level == 4 and index == SELF_MAP_INDEX:
            continue
        entry = pte_address(at, level)
        if level == 1:
            entries.add((value & PFN_MASK) // _PAGE, entry, me)
        elif level == 2 and value & PTE_LARGE:
            first = (value & PFN_MASK & ~(0x200000 - 1)) // _PAGE
            for pfn in range(first, first + 512):
                entries.add(pfn, entry, me)
        else:
            _walk(memory, entries, value & PFN_MASK, level - 1, at, entry, me)


def build_pfn_database(memory: GuestMemory) -> tuple[int, list[tuple[int, int]]]:
    """Map and fill the PFN database; (its address, the merged RAM runs)."""
    ram = [(run.base // _PAGE, run.size // _PAGE) for run in memory.physical.runs]
    own = 0
    while True:
        runs = _merged_runs(ram + ([(layout.PHYS_PFN // _PAGE, own)] if own else []))
        pages = _database_pages(runs)
        if len(pages) == own:
            break
        own = len(pages)
    if len(runs) > layout.MAX_MEMORY_RUNS:
        raise MemoryError(f"{len(runs)} runs of RAM: the loader block has room for "
                          f"{layout.MAX_MEMORY_RUNS}")

    physical = layout.PHYS_PFN
    start = 0
    for i in range(1, len(pages) + 1):
        if i == len(pages) or pages[i] != pages[i - 1] + _PAGE:
            size = pages[i - 1] + _PAGE - pages[start]
            memory.map(pages[start], size, physical, "PFN database")
            physical += size
            start = i

    entries = _Entries()
    root = memory.page_tables.root
    _walk(memory, entries, root, 4, 0, pte_address(PTE_BASE | SELF_MAP_INDEX << 30
                                                   | SELF_MAP_INDEX << 21
                                                   | SELF_MAP_INDEX << 12, 1), root // _PAGE)
    table_area = range(root // _PAGE, (root + 0x100000) // _PAGE)
    for base, count in runs:
        data = bytearray(count * MMPFN_SIZE)
        for pfn in range(base, base + count):
            at = (pfn - base) * MMPFN_SIZE
            found = entries.active.get(pfn)
            if found is None:
                if pfn not in table_area:
                    data[at + _E1] = FREE_PAGE_LIST
                continue
            pte, frame, used = found
            struct.pack_into("<Q", data, at + _SHARE_COUNT, 1)
            struct.pack_into("<Q", data, at + _PTE_ADDRESS, pte)
            struct.pack_into("<H", data, at + _REFERENCE_COUNT, 1)
            data[at + _E1] = ACTIVE_AND_VALID | _MI_CACHED << 6
            struct.pack_into("<H", data, at + _USED_ENTRIES, used)
            struct.pack_into("<Q", data, at + _U4, frame)
        memory.write_virtual(layout.PFN_DATABASE + base * MMPFN_SIZE, bytes(data))
    return layout.PFN_DATABASE, runs
