"""x64 4-level page walks for !pte and !vtop, read from the page tables in physical memory.

What it does: ``walk(target, dirbase, va)`` follows a virtual address from a directory
base (CR3) through the PML4, PDPT, PD and PT, one 8-byte physical read per level (the
console's per-stop cache answers a second walk through the same entries); it ends
at a non-present entry, or at a 1 GB PDPTE or 2 MB PDE with PS set, as the processor
does. ``self_map`` gives the virtual addresses Windows 7 x64 shows those entries at
(its recursive PML4 slot 0x1ED: PTEs from 0xFFFFF680'00000000, PDEs from
0xFFFFF6FB'40000000, PDPTEs from 0xFFFFF6FB'7DA00000, PML4Es from
0xFFFFF6FB'7DBED000); ``self_map_present`` reads whether this target really maps them
there (the PML4's slot 0x1ED pointing back at the PML4). ``flag_text`` is kd's eleven
letters for an entry's bits.
What it does not do: decode non-present entries (transition, prototype, paged-out
PTEs), 5-level paging, PAE or 32-bit tables, or print anything.
Spec: Intel SDM vol. 3A §4.5 (4-level paging, entry formats, PS, XD); the debugger
documentation's !pte page for the letters.

Not an extension itself (the leading underscore keeps the loader away).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kdcon.api import ExtensionFailed, Target

__all__ = ["Entry", "Walk", "walk", "self_map", "self_map_present", "flag_text",
           "PFN_MASK", "PAGE", "PTE_BASE", "SELF_MAP_SIZE"]

log = logging.getLogger(__name__)

PAGE = 0x1000
PFN_MASK = 0x000F_FFFF_FFFF_F000
_PRESENT, _WRITE, _USER, _PWT, _PCD, _ACCESSED, _DIRTY, _LARGE, _GLOBAL = (
    1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80, 0x100)
_COPY_ON_WRITE = 0x200          # a software bit Windows uses for copy-on-write
_NO_EXECUTE = 1 << 63

# Windows 7 x64's self-map: PML4 slot 0x1ED opens the 512 GB window from PTE_BASE where
# every table appears; the base of each level's part of it, and the VA bits that index it.
_SELF_MAP_SLOT = 0x1ED
PTE_BASE = 0xFFFFF680_00000000
SELF_MAP_SIZE = 1 << 39
_WINDOWS = ((0xFFFFF6FB_7DBED000, 36, 0xFF8), (0xFFFFF6FB_7DA00000, 27, 0x1F_FFF8),
            (0xFFFFF6FB_40000000, 18, 0x3FFF_FFF8), (PTE_BASE, 9, 0x7F_FFFF_FFF8))
# (kd's !pte name, !vtop's name, the VA bits that index the level's table)
_LEVELS = (("PXE", "PML4E", 39), ("PPE", "PDPE", 30), ("PDE", "PDE", 21), ("PTE", "PTE", 12))


@dataclass
class Entry:
    """One paging-structure entry the walk read."""

    name: str           # PXE, PPE, PDE, PTE (kd's !pte names)
    vtop_name: str      # PML4E, PDPE, PDE, PTE (!vtop's)
    address: int        # its physical address
    value: int

    @property
    def present(self) -> bool:
        return bool(self.value & _PRESENT)

    @property
    def large(self) -> bool:
        return self.name in ("PPE", "PDE") and bool(self.value & _LARGE)

    @property
    def pfn(self) -> int:
        return (self.value & PFN_MASK) >> 12


@dataclass
class Walk:
    """A walk's entries, and where it ended: ``physical`` is None when an entry on the
    way was not present (the last entry read)."""

    va: int
    dirbase: int
    entries: list[Entry] = field(default_factory=list)
    physical: int | None = None
    page_size: int = PAGE

    @property
    def large(self) -> bool:
        return bool(self.entries) and self.entries[-1].large


def canonical(va: int) -> bool:
    """Bits 63..47 all equal, as every x64 address the processor accepts."""
    top = va >> 47
    return top == 0 or top == (1 << 17) - 1


def self_map(va: int) -> tuple[int, int, int, int]:
    """Where Windows 7 x64 shows the PXE, PPE, PDE and PTE of ``va``."""
    return tuple(base + ((va >> shift) & mask)       # type: ignore[return-value]
                 for base, shift, mask in _WINDOWS)


def _read_entry(target: Target, address: int, what: str) -> int:
    data = target.read_physical(address, 8)
    if len(data) < 8:
        raise ExtensionFailed(f"Cannot read the {what} at physical address {address:x}")
    return int.from_bytes(data, "little")


def walk(target: Target, dirbase: int, va: int) -> Walk:
    """Follow ``va`` from the PML4 at ``dirbase``; one line for an address no x64
    processor translates or a table that cannot be read."""
    va &= (1 << 64) - 1
    if not canonical(va):
        raise ExtensionFailed(f"{va:016x} is not a canonical x64 address (bits 63-47 differ)")
    result = Walk(va=va, dirbase=dirbase)
    table = dirbase & PFN_MASK
    for name, vtop_name, shift in _LEVELS:
        address = table + ((va >> shift) & 0x1FF) * 8
        entry = Entry(name, vtop_name, address, _read_entry(target, address, name))
        result.entries.append(entry)
        if not entry.present:
            return result
        if entry.large or name == "PTE":
            span = 1 << shift
            result.page_size = span
            result.physical = (entry.value & PFN_MASK & ~(span - 1)) + (va & (span - 1))
            return result
        table = entry.value & PFN_MASK
    return result


def self_map_present(target: Target, dirbase: int) -> bool:
    """Whether the PML4's slot 0x1ED maps the PML4 itself (Windows' self-map)."""
    table = dirbase & PFN_MASK
    try:
        slot = _read_entry(target, table + _SELF_MAP_SLOT * 8, "PML4 entry 0x1ED")
    except ExtensionFailed:
        return False
    return bool(slot & _PRESENT) and slot & PFN_MASK == table


def flag_text(entry: Entry) -> str:
    """kd's letters: copy-on-write, Global, Large, Dirty, Accessed, No cache,
    write-Through, User/Kernel, Write/Read, Executable, Valid; '-' for a clear bit."""
    value = entry.value
    letters = [
        "C" if value & _COPY_ON_WRITE else "-",
        "G" if value & _GLOBAL else "-",
        "L" if entry.large else "-",
        "D" if value & _DIRTY else "-",
        "A" if value & _ACCESSED else "-",
        "N" if value & _PCD else "-",
        "T" if value & _PWT else "-",
        "U" if value & _USER else "K",
        "W" if value & _WRITE else "R",
        "-" if value & _NO_EXECUTE else "E",
        "V" if value & _PRESENT else "-",
    ]
    return "".join(letters)
