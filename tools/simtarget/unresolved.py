"""Refuse a driver that calls a routine its linker never found.

``lld-link /FORCE:UNRESOLVED`` (and MSVC's ``link /FORCE``) link an image past a
missing routine: the import is dropped from the import table, so the kernel's import
check sees nothing wrong, and the call is left aiming at address 0 plus whatever the
linker made of it (``call [rip+disp]`` through a slot outside the image, or a direct
``call`` outside it).  Run, it ends in an unexplained page fault bug check (0x50).
``check_unresolved_calls`` finds those call sites before the image runs and raises
``UnresolvedCallError`` with one line naming each routine.

The linker keeps no trace of the missing name in the image or its PDB, so the name is
recovered from the source: the PDB beside the image gives the call's file and line, and
the routine is the first identifier on that line that is called (``Name(``) and is not
a C keyword.  Without a PDB or the source, the line names the call site (image+offset)
and says how to make the linker name it.

What it does not do: check the import table (loader.check_imports does) or follow
calls through registers or data (only ``call``/``jmp`` with a direct or RIP-relative
target are checked: what a compiler emits for a call to a routine by name).
Spec: Intel SDM vol. 2 (CALL, JMP, RIP-relative addressing); PE/COFF specification
(section table, IMAGE_SCN_MEM_EXECUTE); lld-link's /FORCE:UNRESOLVED.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import iced_x86

from .errors import ImageLoadError
from .loader import PeImage

__all__ = ["UnresolvedCallError", "UnresolvedCall", "find_unresolved_calls", "check_unresolved_calls"]

log = logging.getLogger(__name__)

IMAGE_SCN_MEM_EXECUTE = 0x20000000
_CALLS = frozenset({iced_x86.FlowControl.CALL, iced_x86.FlowControl.INDIRECT_CALL,
                    iced_x86.FlowControl.UNCONDITIONAL_BRANCH, iced_x86.FlowControl.INDIRECT_BRANCH})
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_KEYWORDS = frozenset({"if", "while", "for", "switch", "return", "sizeof", "__try", "__except", "_Alignof",
                       "__finally", "defined", "do", "case"})


class UnresolvedCall:
    """One call or jump whose target the linker left outside the image."""

    def __init__(self, rva: int, routine: str | None, where: str | None) -> None:
        self.rva = rva
        self.routine = routine      # recovered from the source, or None
        self.where = where          # "file.c:line", or None without a PDB

    def describe(self, image: str) -> str:
        site = f"{image}+{self.rva:#x}"
        if self.where:
            site = f"{Path(self.where.rsplit(':', 1)[0]).name}:{self.where.rsplit(':', 1)[1]}, {site}"
        return f"{self.routine} ({site})" if self.routine else f"a routine called at {site}"


class UnresolvedCallError(ImageLoadError):
    """A driver calls routines its linker could not find; ``calls`` lists each site."""

    def __init__(self, image: str, calls: list[UnresolvedCall]) -> None:
        self.image = image
        self.calls = list(calls)
        sites = ", ".join(dict.fromkeys(c.describe(image) for c in calls))
        hint = "; link it without /FORCE:UNRESOLVED and the linker names it" \
            if any(c.routine is None for c in calls) else ""
        super().__init__(f"{image} calls what its linker could not find (linked with /FORCE:UNRESOLVED, "
                         f"the import was dropped): {sites}{hint}")


def _code_ranges(image: PeImage) -> list[tuple[int, bytes]]:
    ranges = []
    for section in image.pe.sections:
        if section.Characteristics & IMAGE_SCN_MEM_EXECUTE and section.SizeOfRawData:
            size = min(section.SizeOfRawData, section.Misc_VirtualSize or section.SizeOfRawData)
            start = section.PointerToRawData
            ranges.append((section.VirtualAddress, image.data[start:start + size]))
    return ranges


def _call_site_rvas(image: PeImage) -> list[int]:
    """RVAs of call/jmp instructions whose direct or RIP-relative target is outside the image."""
    base = image.pe.OPTIONAL_HEADER.ImageBase
    end = base + image.size_of_image
    sites = []
    for rva, code in _code_ranges(image):
        decoder = iced_x86.Decoder(64, code, ip=base + rva)
        for instr in decoder:
            if instr.flow_control not in _CALLS:
                continue
            if instr.flow_control in (iced_x86.FlowControl.CALL, iced_x86.FlowControl.UNCONDITIONAL_BRANCH):
                target = instr.near_branch_target
            elif instr.is_ip_rel_memory_operand:
                target = instr.ip_rel_memory_address
            else:
                continue
            if not base <= target < end:
                sites.append(instr.ip - base)
    return sites


def _source_lines(image: PeImage, rvas: list[int]) -> dict[int, tuple[str, int]]:
    pdb_path = image.path.with_suffix(".pdb")
    if not pdb_path.is_file():
        return {}
    from kdcon.symbols.errors import SymbolError
    from kdcon.symbols.pdb.pdbfile import open_pdb
    try:
        pdb = open_pdb(pdb_path)
        return {rva: hit for rva in rvas if (hit := pdb.line_for(rva)) is not None}
    except SymbolError as exc:
        log.debug("%s: no lines for unresolved calls: %s", pdb_path, exc)
        return {}


def _routine_on(path: str, line: int) -> str | None:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    if not 0 < line <= len(text):
        return None
    for name in _CALLED.findall(text[line - 1]):
        if name not in _KEYWORDS:
            return name
    return None


def find_unresolved_calls(image: PeImage) -> list[UnresolvedCall]:
    """Every call site in ``image`` that the linker left aiming outside the image."""
    rvas = _call_site_rvas(image)
    if not rvas:
        return []
    lines = _source_lines(image, rvas)
    calls = []
    for rva in rvas:
        hit = lines.get(rva)
        routine = _routine_on(*hit) if hit else None
        calls.append(UnresolvedCall(rva, routine, f"{hit[0]}:{hit[1]}" if hit else None))
    return calls


def check_unresolved_calls(image: PeImage) -> None:
    """UnresolvedCallError when ``image`` calls a routine its linker could not find."""
    calls = find_unresolved_calls(image)
    if calls:
        raise UnresolvedCallError(image.name, calls)
