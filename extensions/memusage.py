"""!memusage: where the physical memory is, from the kernel's PFN database.

    !memusage [Flags]      0 summary and use by mapping, 8 summary only,
                           1 and 2 the modified no-write pages

Reads one MMPFN per page of RAM (``nt!MmPfnDatabase``, for the runs
``nt!MmPhysicalMemoryBlock`` lists), says first what that costs on a 115200-baud cable
(about 0.2 MB for the simulated kernel's 4,500 pages; a 4 GB machine's million pages are
48 MB, hours), reports progress and stops when cancelled. The summary counts pages by
their ``u3.e1.PageLocation`` (zeroed, free, standby, modified, modified no-write,
active and valid, transition, bad) as WinDbg's does, and checks the counts against the
kernel's page lists (``nt!MmZeroedPageListHead``, ...). The use by mapping puts each
active page under what maps it: a module, the nonpaged pool, the PFN database itself,
page tables, or other kernel memory, found from the page's ``PteAddress`` (the PTE's
address in Windows 7 x64's self-map at 0xFFFFF680'00000000).
Layouts: ``nt!_MMPFN`` and ``nt!_PHYSICAL_MEMORY_DESCRIPTOR`` from the PDB, else
Windows 7 SP1 x64's.
"""

from __future__ import annotations

from collections import Counter

from kdcon.api import ExtensionFailed, Target, bang, require

from ._kdata import Layout, cost_line, global_value, kernel_global, note_builtin
from ._paging import PTE_BASE, SELF_MAP_SIZE

require("1.0")

_PAGE = 0x1000
_CHUNK = 0x10000
# MMLISTS: the summary's line for each PageLocation, and the list head that counts it.
_LOCATIONS = [("Zeroed", "MmZeroedPageListHead"), ("Free", "MmFreePageListHead"),
              ("Standby", "MmStandbyPageListHead"), ("Modified", "MmModifiedPageListHead"),
              ("ModifiedNoWrite", "MmModifiedNoWritePageListHead"), ("Bad", None),
              ("Active/Valid", None), ("Transition", None)]
_SUMMARY_ORDER = [0, 1, 2, 3, 4, 6, 7, 5]
_ACTIVE, _MODIFIED_NO_WRITE = 6, 4

# Windows 7 x64's self-map (_paging.py): the PTE of an address va is at
# PTE_BASE + (va >> 12) * 8 within the window; the entries that map the self-map itself
# (PDEs, PDPTEs, PML4Es) lie inside it too.


def _runs(target: Target) -> list[tuple[int, int]]:
    """(base page, page count) of each run of physical RAM."""
    descriptor = target.pointer(kernel_global(target, "MmPhysicalMemoryBlock"))
    layout = Layout.load(target, "nt", "_PHYSICAL_MEMORY_DESCRIPTOR", ["NumberOfRuns", "Run"])
    run = Layout.load(target, "nt", "_PHYSICAL_MEMORY_RUN", ["BasePage", "PageCount"])
    count = target.u32(descriptor + layout["NumberOfRuns"].offset)
    if not 0 < count <= 1024:
        raise ExtensionFailed(f"nt!MmPhysicalMemoryBlock says {count} runs of RAM: not a "
                              f"memory descriptor")
    data = target.read_exact(descriptor + layout["Run"].offset, count * run.size)
    return [(run.get("BasePage", data, i * run.size), run.get("PageCount", data, i * run.size))
            for i in range(count)]


def _mapped_by(pte: int) -> int | None:
    """The address whose PTE is at ``pte`` in the self-map, None outside it."""
    if not PTE_BASE <= pte < PTE_BASE + SELF_MAP_SIZE:
        return None
    va = ((pte - PTE_BASE) >> 3) << 12
    return va | 0xFFFF_0000_0000_0000 if va & (1 << 47) else va


class _Owners:
    """Names for the addresses active pages are mapped at."""

    def __init__(self, target: Target, pfn_end: int) -> None:
        self.spans = [(m.base, m.base + m.size, m.name) for m in target.modules()
                      if getattr(m, "size", 0)]
        pool = (global_value(target, "MmNonPagedPoolStart"),
                global_value(target, "MmNonPagedPoolEnd"))
        self.spans.append((pool[0], pool[1], "Nonpaged pool"))
        database = global_value(target, "MmPfnDatabase")
        self.spans.append((database, pfn_end, "PFN database"))

    def name(self, pte: int, used_entries: int) -> str:
        va = _mapped_by(pte)
        if va is not None and PTE_BASE <= va < PTE_BASE + SELF_MAP_SIZE:
            # The entry maps part of the self-map: a page table, or else a 2 MB page,
            # whose every PFN names its PDE (so the region's start is one step further).
            if used_entries:
                return "Page tables"
            va = _mapped_by(va)
        if va is not None:
            for start, end, name in self.spans:
                if start <= va < end:
                    return name
        return "Other kernel memory"


@bang("memusage", usage="!memusage [Flags]")
def memusage(target: Target, args: str) -> None:
    """Summarize physical memory use from the PFN database: pages by state and by mapping."""
    words = args.split()
    if len(words) > 1:
        raise ExtensionFailed("Usage: !memusage [Flags]")
    try:
        flags = target.evaluate(words[0]) if words else 0
    except Exception as exc:  # the evaluator's own one-line message
        raise ExtensionFailed(f"Bad flags '{words[0]}': {exc}") from None
    if flags not in (0, 1, 2, 8):
        raise ExtensionFailed(f"!memusage flags are 0, 1, 2 or 8, not {flags:#x}")
    note_builtin(target)
    pfn = Layout.load(target, "nt", "_MMPFN", ["u3.e1.PageLocation", "PteAddress",
                                               "UsedPageTableEntries"])
    database = global_value(target, "MmPfnDatabase")
    runs = _runs(target)
    total_pages = sum(count for _, count in runs)
    target.out("loading PFN database")
    target.out(cost_line("PFN database", total_pages * pfn.size))
    states: Counter[int] = Counter()
    owners = _Owners(target, database + (max(b + c for b, c in runs)) * pfn.size)
    by_owner: Counter[str] = Counter()
    no_write: list[int] = []
    done = 0
    for base, count in runs:
        at, end = database + base * pfn.size, database + (base + count) * pfn.size
        while at < end:
            target.progress(done, total_pages, "PFN entries")
            data = target.read_exact(at, min(_CHUNK // pfn.size * pfn.size, end - at))
            for offset in range(0, len(data), pfn.size):
                location = pfn.get("u3.e1.PageLocation", data, offset)
                states[location] += 1
                if location == _ACTIVE:
                    by_owner[owners.name(pfn.get("PteAddress", data, offset),
                                         pfn.get("UsedPageTableEntries", data, offset))] += 1
                elif location == _MODIFIED_NO_WRITE:
                    no_write.append(base + (at - database - base * pfn.size + offset)
                                    // pfn.size)
            done += len(data) // pfn.size
            at += len(data)
    target.progress(total_pages, total_pages, "PFN entries")
    if flags in (1, 2):
        _modified_no_write(target, no_write, flags)
        return
    lines = []
    for location in _SUMMARY_ORDER:
        name = _LOCATIONS[location][0]
        lines.append(_count_line(name, states[location]))
        target.row(state=name, pages=states[location], kb=states[location] * _PAGE // 1024)
    lines.append(_count_line("Unknown", total_pages - sum(states.values())))
    lines.append(_count_line("TOTAL", total_pages))
    target.write("\n".join(lines) + "\n")
    _check_lists(target, states)
    if flags == 8:
        return
    target.out("")
    target.out("  Usage Summary (in Kb):")
    target.out("   Valid    Pages  name")
    for name, pages in sorted(by_owner.items(), key=lambda item: (-item[1], item[0])):
        target.out(f"{pages * _PAGE // 1024:8d} {pages:8d}  {name}")
        target.row(owner=name, pages=pages, kb=pages * _PAGE // 1024)


def _count_line(name: str, pages: int) -> str:
    return f"{name:>19}: {pages:8d} ({pages * _PAGE // 1024:8d} kb)"


def _check_lists(target: Target, states: Counter[int]) -> None:
    """Each page list's Total against the pages whose entries say they are on it."""
    for location, (name, head) in enumerate(_LOCATIONS):
        if head is None:
            continue
        try:
            total = target.u64(kernel_global(target, head))
        except ExtensionFailed:
            continue
        if total != states[location]:
            target.warn(f"nt!{head} counts {total} pages, but {states[location]} PFN "
                        f"entries say {name}: the lists and the database disagree")


def _modified_no_write(target: Target, pages: list[int], flags: int) -> None:
    target.out(_count_line("ModifiedNoWrite", len(pages)))
    if flags == 2:
        for page in pages:
            target.out(f"    page {page:x}")
            target.row(page=page)
