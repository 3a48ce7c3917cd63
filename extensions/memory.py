"""!pte and !vtop: an x64 virtual address through the page tables, as kd shows it.

    !pte VirtualAddress          the PXE, PPE, PDE and PTE that map the address
    !vtop DirBase VirtualAddress the translation from one directory base (a PFN, or a
                                 page-aligned physical address), step by step
    !vtop 0 VirtualAddress       the same from the current CR3

The tables are read in physical memory from CR3 (``KSPECIAL_REGISTERS.Cr3`` that the
kernel saved in the KPRCB when it stopped; the current process's DirBase when the
layout has no such field), one 8-byte read per level; the walk ends at an entry that is
not present and at a 1 GB or 2 MB page (PS), as the processor's does. ``!pte`` shows
where Windows 7 x64 keeps each entry in its self-map (PML4 slot 0x1ED, PTEs from
FFFFF680`00000000), what it contains and its page frame with kd's letters
(``---DA--KWEV``). A target whose PML4 has no self-map slot (a randomised self-map,
Windows 10 1607 on) gets the entries' physical addresses instead, marked ``!`` as kd's physical-memory
commands take them (``!dq``), and a line saying so.

Not done: ``!pte`` of a PTE address or a range, decoding entries that are not present
(transition, prototype, paged-out), 5-level or 32-bit paging.
"""

from __future__ import annotations

from kdcon.api import ExtensionFailed, Target, bang, require

from ._args import argument
from ._ntobjects import current_process, read_prcb, read_process, special_register
from ._paging import PAGE, Walk, flag_text, self_map, self_map_present, walk

require("1.0")

_COLUMN = 27
_VA_INDENT = " " * 43
_TRANSLATION_FAILS = 0xD0000147      # the error kd reports for a walk that fails


def current_dirbase(target: Target) -> int:
    """CR3 as the kernel saved it at this stop; else the current process's DirBase."""
    try:
        cr3 = special_register(read_prcb(target), "Cr3")
    except ExtensionFailed:
        cr3 = None
    if cr3:
        return cr3
    dirbase = read_process(target, current_process(target)).dirbase
    if not dirbase:
        raise ExtensionFailed("Neither the KPRCB's Cr3 nor the current process's DirBase "
                              "is known: are the kernel's symbols loaded (.reload /f nt)?")
    return dirbase


def _row(cells: list[str]) -> str:
    return "".join(cell.ljust(_COLUMN) for cell in cells).rstrip()


def _pte_lines(result: Walk, mapped: bool) -> list[str]:
    where = self_map(result.va)
    if mapped:
        at = [f"{entry} at {address:016X}"
              for entry, address in zip(("PXE", "PPE", "PDE", "PTE"), where)]
    else:
        at = [f"{entry.name} at !{entry.address:X}" for entry in result.entries]
    contains = [f"contains {entry.value:016X}" for entry in result.entries]
    frames = []
    for entry in result.entries:
        if not entry.present:
            frames.append("not valid")
        else:
            frames.append(f"pfn {entry.pfn:<10x}{flag_text(entry)}")
    if result.large and result.physical is not None:
        frames.append(f"LARGE PAGE pfn {result.physical >> 12:x}")
    lines = [f"{_VA_INDENT}VA {result.va:016x}", _row(at), _row(contains), _row(frames)]
    if not mapped:
        lines.append("(this target's page tables are not mapped at FFFFF680`00000000: "
                     "'!' marks the entries' physical addresses)")
    return lines


@bang("pte", usage="!pte VirtualAddress")
def pte(target: Target, args: str) -> None:
    """Show the page-table entries (PXE, PPE, PDE, PTE) that map a virtual address."""
    words = args.split()
    if len(words) != 1:
        raise ExtensionFailed("Usage: !pte VirtualAddress")
    va = argument(target, words[0], "address")
    dirbase = current_dirbase(target)
    result = walk(target, dirbase, va)
    mapped = self_map_present(target, dirbase)
    target.write("\n".join(_pte_lines(result, mapped)) + "\n")
    where = dict(zip(("pxe_at", "ppe_at", "pde_at", "pte_at"), self_map(result.va)))
    target.row(kind="pte", va=result.va, dirbase=dirbase, self_map=mapped, **where,
               entries=[{"level": e.name, "physical": e.address, "value": e.value,
                         "valid": e.present} for e in result.entries],
               physical=result.physical, page_size=result.page_size)


def _dirbase_argument(target: Target, text: str) -> int:
    """``!vtop``'s first argument: 0 for the current CR3, a PFN, or a directory base
    (a page-aligned physical address, which kd also takes)."""
    value = argument(target, text, "directory base")
    if value == 0:
        return current_dirbase(target)
    return value if value % PAGE == 0 else value << 12


@bang("vtop", usage="!vtop DirBase VirtualAddress | !vtop 0 VirtualAddress")
def vtop(target: Target, args: str) -> None:
    """Translate a virtual address to a physical one through a directory base's tables."""
    words = args.split()
    if len(words) != 2:
        raise ExtensionFailed("Usage: !vtop DirBase VirtualAddress (0 for the current CR3)")
    dirbase = _dirbase_argument(target, words[0])
    va = argument(target, words[1], "address")
    result = walk(target, dirbase, va)
    lines = [f"Amd64VtoP: Virt {result.va:016x}, pagedir {dirbase:016x}"]
    for entry in result.entries:
        lines.append(f"Amd64VtoP: {entry.vtop_name} {entry.address:016x}")
    last = result.entries[-1]
    target.row(kind="vtop", va=result.va, dirbase=dirbase, physical=result.physical,
               page_size=result.page_size)
    if result.physical is None:
        lines.append(f"Amd64VtoP: {'zero' if last.value == 0 else 'invalid'} "
                     f"{last.vtop_name}")
        target.write("\n".join(lines) + "\n")
        raise ExtensionFailed(f"Virtual address {result.va:x} translation fails, error "
                              f"0x{_TRANSLATION_FAILS:X}.")
    kind = "Large page mapped" if result.large else "Mapped"
    lines.append(f"Amd64VtoP: {kind} phys {result.physical:016x}")
    lines.append(f"Virtual address {result.va:x} translates to physical address "
                 f"{result.physical:x}.")
    target.write("\n".join(lines) + "\n")
