"""x64 RUNTIME_FUNCTION entries and the UNWIND_INFO they point to, decoded from bytes.

Spec: Microsoft's "x64 exception handling" (RUNTIME_FUNCTION, UNWIND_INFO, UNWIND_CODE
and how many slots each operation takes, chained info, the handler RVA after the code
array) and the PE format (the exception directory is entry 3 of a PE32+ image's data
directories).

This is the one decoder of UNWIND_INFO: ``pe.PeImage.unwind_info`` (an image file or an
image in target memory, RVAs) and the console's function tables (absolute addresses,
``base`` added) both use it. It reads nothing itself, walks no stack and applies no
code; the stack walker does that. Every failure is ``UnwindDataError``.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from .errors import SymbolFileError

__all__ = [
    "GPRS", "MAX_CHAIN", "RUNTIME_FUNCTION_INDIRECT", "RuntimeFunction", "UnwindCode",
    "UnwindDataError", "UnwindInfo", "parse_unwind_info", "unwind_info_size",
    "UNW_FLAG_EHANDLER", "UNW_FLAG_UHANDLER", "UNW_FLAG_CHAININFO",
    "UWOP_PUSH_NONVOL", "UWOP_ALLOC_LARGE", "UWOP_ALLOC_SMALL", "UWOP_SET_FPREG",
    "UWOP_SAVE_NONVOL", "UWOP_SAVE_NONVOL_FAR", "UWOP_EPILOG", "UWOP_SPARE_CODE",
    "UWOP_SAVE_XMM128", "UWOP_SAVE_XMM128_FAR", "UWOP_PUSH_MACHFRAME",
]

log = logging.getLogger(__name__)

UNW_FLAG_EHANDLER = 0x1
UNW_FLAG_UHANDLER = 0x2
UNW_FLAG_CHAININFO = 0x4

UWOP_PUSH_NONVOL = 0
UWOP_ALLOC_LARGE = 1
UWOP_ALLOC_SMALL = 2
UWOP_SET_FPREG = 3
UWOP_SAVE_NONVOL = 4
UWOP_SAVE_NONVOL_FAR = 5
UWOP_EPILOG = 6               # version 2 epilog descriptors; a walker scans the code instead
UWOP_SPARE_CODE = 7
UWOP_SAVE_XMM128 = 8
UWOP_SAVE_XMM128_FAR = 9
UWOP_PUSH_MACHFRAME = 10

# RtlLookupFunctionEntry's RUNTIME_FUNCTION_INDIRECT: UnwindData names another entry.
RUNTIME_FUNCTION_INDIRECT = 0x1
MAX_CHAIN = 32

GPRS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_NODES = {UWOP_PUSH_NONVOL: 1, UWOP_ALLOC_SMALL: 1, UWOP_SET_FPREG: 1, UWOP_SAVE_NONVOL: 2,
          UWOP_SAVE_NONVOL_FAR: 3, UWOP_EPILOG: 2, UWOP_SPARE_CODE: 3, UWOP_SAVE_XMM128: 2,
          UWOP_SAVE_XMM128_FAR: 3, UWOP_PUSH_MACHFRAME: 1}


class UnwindDataError(SymbolFileError):
    """UNWIND_INFO that cannot be decoded."""


@dataclass(frozen=True, slots=True)
class RuntimeFunction:
    """A RUNTIME_FUNCTION: [begin, end) and where its UNWIND_INFO is, as RVAs or as
    absolute addresses (whichever base its reader added)."""

    begin: int
    end: int
    unwind_info: int

    def __contains__(self, address: int) -> bool:
        return self.begin <= address < self.end


@dataclass(frozen=True, slots=True)
class UnwindCode:
    """One decoded UNWIND_CODE: prolog offset, operation, op info and its operand
    (the allocation size or the unscaled stack offset, where the operation has one)."""

    offset: int
    op: int
    info: int
    value: int = 0


@dataclass(frozen=True, slots=True)
class UnwindInfo:
    version: int
    flags: int
    prolog_size: int
    frame_register: int
    frame_offset: int
    codes: tuple[UnwindCode, ...]
    chained: RuntimeFunction | None
    handler: int | None = None          # RVA of the language handler (EHANDLER/UHANDLER)


def _u16(data: bytes, offset: int) -> int:
    return data[offset] | data[offset + 1] << 8


def unwind_info_size(header: bytes, *, handler: bool = False) -> int:
    """Bytes the UNWIND_INFO whose first four bytes are ``header`` takes: the code
    array (an even number of slots) and the chained entry; with ``handler``, also the
    handler RVA (a stack walk does not need it)."""
    count, flags = header[2], header[0] >> 3
    size = 4 + 2 * ((count + 1) & ~1)
    if flags & UNW_FLAG_CHAININFO:
        return size + 12
    if handler and flags & (UNW_FLAG_EHANDLER | UNW_FLAG_UHANDLER):
        return size + 4
    return size


def _operand(data: bytes, slot: int, op: int, info: int) -> int:
    if op == UWOP_ALLOC_LARGE:
        return _u16(data, slot + 2) * 8 if info == 0 else _u16(data, slot + 2) | _u16(data, slot + 4) << 16
    if op == UWOP_ALLOC_SMALL:
        return info * 8 + 8
    if op == UWOP_SAVE_NONVOL:
        return _u16(data, slot + 2) * 8
    if op == UWOP_SAVE_XMM128:
        return _u16(data, slot + 2) * 16
    if op in (UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128_FAR):
        return _u16(data, slot + 2) | _u16(data, slot + 4) << 16
    return 0


def parse_unwind_info(data: bytes, base: int = 0) -> UnwindInfo:
    """Decode an UNWIND_INFO; ``base`` is added to the chained entry's RVAs (0 keeps RVAs).

    A handler RVA is decoded when its four bytes are in ``data``; its handler data
    (language specific) is not."""
    data = bytes(data)
    if len(data) < 4:
        raise UnwindDataError(f"UNWIND_INFO is cut short ({len(data)} bytes)")
    version, flags, count = data[0] & 7, data[0] >> 3, data[2]
    codes_end = 4 + 2 * ((count + 1) & ~1)
    if len(data) < codes_end + (12 if flags & UNW_FLAG_CHAININFO else 0):
        raise UnwindDataError(f"UNWIND_INFO is cut short ({len(data)} bytes)")
    if version not in (1, 2):
        raise UnwindDataError(f"UNWIND_INFO version {version} is not known")
    codes = []
    index = 0
    while index < count:
        slot = 4 + 2 * index
        offset, op, info = data[slot], data[slot + 1] & 15, data[slot + 1] >> 4
        if op == UWOP_ALLOC_LARGE:
            nodes = 2 if info == 0 else 3
        elif op in _NODES:
            nodes = _NODES[op]
        else:
            raise UnwindDataError(f"unknown unwind operation {op}")
        if index + nodes > count:
            raise UnwindDataError(f"unwind operation {op} runs past the code array")
        codes.append(UnwindCode(offset, op, info, _operand(data, slot, op, info)))
        index += nodes
    chained = handler = None
    if flags & UNW_FLAG_CHAININFO:
        begin, end, info_rva = struct.unpack_from("<3I", data, codes_end)
        chained = RuntimeFunction(base + begin, base + end, base + info_rva)
    elif flags & (UNW_FLAG_EHANDLER | UNW_FLAG_UHANDLER) and len(data) >= codes_end + 4:
        (handler,) = struct.unpack_from("<I", data, codes_end)
    return UnwindInfo(version, flags, data[1], data[3] & 15, data[3] >> 4, tuple(codes), chained,
                      handler)
