"""A procedure's parameters and locals from a PDB module stream, as data for ``dv``.

What it does: ``procedure_locals(pdb, rva)`` finds the S_*PROC32 record whose code
covers ``rva`` in the module streams and returns its frame facts (S_FRAMEPROC: frame
size, callee-saved bytes, which register the locals are relative to) and every
variable under it: S_LOCAL with its location (S_DEFRANGE_FRAMEPOINTER_REL[_FULL_SCOPE],
S_DEFRANGE_REGISTER_REL, S_DEFRANGE_REGISTER, the first range that covers ``rva``,
else the first one), and the older S_REGREL32, S_BPREL32 and S_REGISTER records.
Locations name registers as the console does (``rsp``, ``rbp``, ``ecx``).
A variable none of whose ranges covers ``rva`` keeps its first location, marked not
live. What it does not do: read target memory, evaluate values, honour the gaps
inside a def-range, or follow pieces of spilled structures
(S_DEFRANGE_SUBFIELD_REGISTER); nested S_BLOCK32 scopes are flattened into the
procedure's list.
Spec: symbols.md §2 (module streams); cvinfo.h ``PROCSYM32``, ``FRAMEPROCSYM``,
``LOCALSYM``, ``DEFRANGESYMFRAMEPOINTERREL``, ``DEFRANGESYMREGISTERREL``,
``DEFRANGESYMREGISTER``, ``REGREL32``, ``BPRELSYM32``, ``REGSYM``, ``CV_HREG_e``.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field

from kdcon.symbols import codeview as cv
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb.records import decode_located, iter_records, read_name

__all__ = ["Local", "ProcedureLocals", "procedure_locals", "REGISTER_NAMES"]

log = logging.getLogger(__name__)

S_BPREL32 = 0x110B
S_REGREL32 = 0x1111
S_REGISTER = 0x1106
S_FRAMEPROC = 0x1012
S_LOCAL = 0x113E
S_DEFRANGE_REGISTER = 0x1141
S_DEFRANGE_FRAMEPOINTER_REL = 0x1142
S_DEFRANGE_FRAMEPOINTER_REL_FULL_SCOPE = 0x1144
S_DEFRANGE_REGISTER_REL = 0x1145
S_INLINESITE = 0x114D
S_INLINESITE_END = 0x114E

_LOCAL_IS_PARAM = 0x0001

# CV_HREG_e: x86 and AMD64 integer registers.
REGISTER_NAMES = {
    17: "eax", 18: "ecx", 19: "edx", 20: "ebx", 21: "esp", 22: "ebp", 23: "esi", 24: "edi",
    328: "rax", 329: "rbx", 330: "rcx", 331: "rdx", 332: "rsi", 333: "rdi", 334: "rbp",
    335: "rsp", 336: "r8", 337: "r9", 338: "r10", 339: "r11", 340: "r12", 341: "r13",
    342: "r14", 343: "r15",
}
# S_FRAMEPROC flags bits 14-15 (locals) and 16-17 (parameters): the base register.
_FRAME_BASE_X64 = {1: "rsp", 2: "rbp", 3: "r13"}
_FRAME_BASE_X86 = {1: "esp", 2: "ebp", 3: "ebx"}

_U32 = struct.Struct("<I")

# The fixed part of each record read here (CV_LVAR_ADDR_RANGE is 8 bytes).
_MIN_PAYLOAD = {S_FRAMEPROC: 26, S_LOCAL: 6, S_DEFRANGE_FRAMEPOINTER_REL: 12,
                S_DEFRANGE_FRAMEPOINTER_REL_FULL_SCOPE: 4, S_DEFRANGE_REGISTER_REL: 16,
                S_DEFRANGE_REGISTER: 12, S_REGREL32: 10, S_BPREL32: 8, S_REGISTER: 6}


@dataclass(frozen=True)
class Local:
    """One variable: ``register`` and ``offset`` say where it is (``offset`` is None
    for a variable held in the register itself; ``register`` None when no location
    record says); ``live`` is False when none of its ranges covers the address asked
    about (the location given is then its first one)."""

    name: str
    type_index: int
    is_param: bool
    register: str | None
    offset: int | None
    live: bool = True


@dataclass
class ProcedureLocals:
    name: str
    rva: int
    length: int
    frame_size: int = 0
    callee_saved: int = 0
    frame_register: str | None = None
    variables: list[Local] = field(default_factory=list)


def procedure_locals(pdb, rva: int) -> ProcedureLocals | None:
    """The variables of the procedure covering ``rva`` (None if no module stream has
    one). Raises ``SymbolFileError`` for records that run past their stream."""
    x64 = getattr(pdb, "machine", 0x8664) in (0x8664, 0)
    for data, sym_end in pdb.module_streams():
        found = _scan(pdb, data, sym_end, rva, x64)
        if found is not None:
            return found
    return None


def _scan(pdb, data: bytes, sym_end: int, rva: int, x64: bool) -> ProcedureLocals | None:
    records = iter_records(data, 4, sym_end)
    for kind, at, end in records:
        if kind not in cv.PROC_KINDS or kind in (cv.S_GPROC32_16t, cv.S_LPROC32_16t):
            continue
        located = decode_located(data, kind, at, end)
        start = pdb.rva(located.segment, located.offset)
        if start is None or not start <= rva < start + max(located.length, 1):
            continue
        proc_end = _U32.unpack_from(data, at + 4)[0]
        scope = ProcedureLocals(pdb.decode_name(located.name), start, located.length)
        _children(pdb, data, end, min(proc_end, sym_end), rva, scope, x64)
        return scope
    return None


def _children(pdb, data: bytes, start: int, stop: int, rva: int, scope: ProcedureLocals,
              x64: bool) -> None:
    pending: tuple[str, int, bool] | None = None     # an S_LOCAL waiting for its range
    located: tuple[str | None, int | None, bool] | None = None
    bases = _FRAME_BASE_X64 if x64 else _FRAME_BASE_X86

    def settle() -> None:
        nonlocal pending, located
        if pending is not None:
            register, offset, live = located if located is not None else (None, None, False)
            scope.variables.append(Local(*pending, register, offset, live))
        pending, located = None, None

    def place(register: str | None, offset: int | None, covers: bool) -> None:
        nonlocal located
        if pending is not None and (located is None or (covers and not located[2])):
            located = (register, offset, covers)

    inlined = 0
    for kind, at, end in iter_records(data, start, stop):
        if at + _MIN_PAYLOAD.get(kind, 0) > end:
            raise SymbolFileError(f"symbol record 0x{kind:04x} is truncated")
        if kind == S_INLINESITE:
            settle()
            inlined += 1
        elif kind == S_INLINESITE_END:
            inlined = max(0, inlined - 1)
        elif inlined:
            continue        # an inlined callee's variables are not this frame's
        elif kind == S_FRAMEPROC:
            size, _pad, _pad_at, saved, _eh, _eh_sect, flags = struct.unpack_from(
                "<IIIIIHI", data, at)
            scope.frame_size, scope.callee_saved = size, saved
            scope.frame_register = bases.get((flags >> 14) & 3)
        elif kind == S_LOCAL:
            settle()
            type_index, flags = struct.unpack_from("<IH", data, at)
            name = pdb.decode_name(read_name(data, at + 6, end, False))
            pending = (name, type_index, bool(flags & _LOCAL_IS_PARAM))
        elif kind in (S_DEFRANGE_FRAMEPOINTER_REL, S_DEFRANGE_FRAMEPOINTER_REL_FULL_SCOPE):
            offset = struct.unpack_from("<i", data, at)[0]
            covers = kind == S_DEFRANGE_FRAMEPOINTER_REL_FULL_SCOPE or \
                _covers(pdb, data, at + 4, rva)
            place(scope.frame_register or ("rsp" if x64 else "ebp"), offset, covers)
        elif kind == S_DEFRANGE_REGISTER_REL:
            register, flags, offset = struct.unpack_from("<HHi", data, at)
            if flags >> 4:
                continue    # a piece of a spilled structure, not where the variable starts
            place(REGISTER_NAMES.get(register), offset, _covers(pdb, data, at + 8, rva))
        elif kind == S_DEFRANGE_REGISTER:
            register = struct.unpack_from("<H", data, at)[0]
            place(REGISTER_NAMES.get(register), None, _covers(pdb, data, at + 4, rva))
        elif kind in (S_REGREL32, S_BPREL32, S_REGISTER):
            settle()
            scope.variables.append(_old_style(pdb, data, kind, at, end, x64))
    settle()


def _covers(pdb, data: bytes, at: int, rva: int) -> bool:
    """Whether a CV_LVAR_ADDR_RANGE (offset, section, length) at ``at`` covers ``rva``."""
    offset, section, length = struct.unpack_from("<IHH", data, at)
    start = pdb.rva(section, offset)
    return start is not None and start <= rva < start + length


def _old_style(pdb, data: bytes, kind: int, at: int, end: int, x64: bool) -> Local:
    if kind == S_REGREL32:
        offset, type_index, register = struct.unpack_from("<iIH", data, at)
        name = read_name(data, at + 10, end, False)
        return Local(pdb.decode_name(name), type_index, False, REGISTER_NAMES.get(register),
                     offset)
    if kind == S_BPREL32:
        offset, type_index = struct.unpack_from("<iI", data, at)
        name = read_name(data, at + 8, end, False)
        return Local(pdb.decode_name(name), type_index, False, "rbp" if x64 else "ebp", offset)
    type_index, register = struct.unpack_from("<IH", data, at)
    name = read_name(data, at + 6, end, False)
    return Local(pdb.decode_name(name), type_index, False, REGISTER_NAMES.get(register), None)
