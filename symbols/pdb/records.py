"""CodeView symbol records: the struct-based scanner and per-kind decoders.

Records are ``{u16 reclen, u16 kind, payload}``, ``reclen`` counting from the
kind. The scanner walks a buffer range and yields ``(kind, payload_at,
record_end)``; decoders take that triple and return the fields the symbol
tables need. Every decoder handles the 7.0 form, the VC5/6 ``_ST`` form
(length-prefixed names) and the VC4 ``_16t`` form (16-bit type index, fields
in another order) through one table keyed by kind. Names come back as bytes;
callers decode them (UTF-8 for 7.0, cp1252 for 2.0). Truncated records raise
``SymbolFileError``. Spec: symbols.md 2.7; cvinfo.h ``PUBSYM32``,
``DATASYM32(_16t)``, ``PROCSYM32(_16t)``, ``LABELSYM32``, ``THUNKSYM32``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from kdcon.symbols import codeview as cv
from kdcon.symbols.errors import SymbolFileError

__all__ = [
    "Located", "iter_records", "read_name", "decode_located", "address_fields", "name_at",
    "ADDRESS_LAYOUTS", "LENGTH_FIELDS", "TYPE_FIELDS", "ST_NAME_KINDS", "compile_language",
    "CV_CFL_C", "CV_CFL_CXX",
]

_HEAD = struct.Struct("<HH")

# Kinds whose name is a length-prefixed (ST) string rather than NUL-terminated.
ST_NAME_KINDS = frozenset({
    cv.S_PUB32_ST, cv.S_PUB32_16t, cv.S_GDATA32_ST, cv.S_LDATA32_ST, cv.S_GDATA32_16t,
    cv.S_LDATA32_16t, cv.S_GPROC32_ST, cv.S_LPROC32_ST, cv.S_GPROC32_16t, cv.S_LPROC32_16t,
    cv.S_LABEL32_ST, cv.S_THUNK32_ST, cv.S_UDT_ST, cv.S_UDT_16t, cv.S_CONSTANT_ST,
    cv.S_CONSTANT_16t,
})


class Located(NamedTuple):
    """Address-bearing fields of one record: segment:offset plus what comes with it."""

    segment: int
    offset: int
    name: bytes
    length: int = 0        # procedure or thunk code size
    type_index: int = 0
    flags: int = 0


def iter_records(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield ``(kind, payload_at, record_end)`` for each record in ``buf[start:end]``.

    Stops at the first record whose length would run past ``end`` (raising
    ``SymbolFileError``), so a hostile length can never loop or overread.
    """
    end = min(end, len(buf))
    pos = start
    unpack = _HEAD.unpack_from
    while pos + 4 <= end:
        reclen, kind = unpack(buf, pos)
        rec_end = pos + 2 + reclen
        if reclen < 2 or rec_end > end:
            raise SymbolFileError(f"symbol record at 0x{pos:x} overruns its stream")
        yield kind, pos + 4, rec_end
        pos = rec_end


def read_name(buf: bytes, at: int, end: int, length_prefixed: bool) -> bytes:
    """Name field at ``at``: NUL-terminated (7.0) or u8-length-prefixed (_ST/_16t)."""
    if at > end:
        raise SymbolFileError("symbol record ends before its name")
    if length_prefixed:
        if at >= end:
            raise SymbolFileError("symbol record ends before its name")
        n = buf[at]
        if at + 1 + n > end:
            raise SymbolFileError("length-prefixed name overruns its record")
        return bytes(buf[at + 1:at + 1 + n])
    nul = buf.find(b"\0", at, end)
    return bytes(buf[at:nul if nul >= 0 else end])


def _fixed(fmt: str) -> struct.Struct:
    return struct.Struct("<" + fmt)


# kind -> (struct of the fixed part, index of (segment, offset, length, type, flags) in it)
_PUB = _fixed("IIH")            # flags, offset, segment
_PUB16 = _fixed("IHH")          # offset, segment, typind
_DATA = _fixed("IIH")           # typind, offset, segment
_DATA16 = _fixed("IHH")         # offset, segment, typind
_PROC = _fixed("IIIIIIIIHB")    # parent, end, next, len, dbgstart, dbgend, typind, offset, segment, flags
_PROC16 = _fixed("IIIIIIIHHB")  # parent, end, next, len, dbgstart, dbgend, offset, segment, typind, flags
_LABEL = _fixed("IHB")          # offset, segment, flags
_THUNK = _fixed("IIIIHHB")      # parent, end, next, offset, segment, len, ordinal

_LAYOUTS: dict[int, tuple[struct.Struct, int, int, int | None, int | None, int | None]] = {}


def _layout(kinds, st, seg, off, length, typ, flags) -> None:
    for kind in kinds:
        _LAYOUTS[kind] = (st, seg, off, length, typ, flags)


_layout((cv.S_PUB32, cv.S_PUB32_ST), _PUB, 2, 1, None, None, 0)
_layout((cv.S_PUB32_16t,), _PUB16, 1, 0, None, 2, None)
_layout((cv.S_GDATA32, cv.S_LDATA32, cv.S_GDATA32_ST, cv.S_LDATA32_ST), _DATA, 2, 1, None, 0, None)
_layout((cv.S_GDATA32_16t, cv.S_LDATA32_16t), _DATA16, 1, 0, None, 2, None)
_layout((cv.S_GPROC32, cv.S_LPROC32, cv.S_GPROC32_ID, cv.S_LPROC32_ID, cv.S_GPROC32_ST,
         cv.S_LPROC32_ST), _PROC, 8, 7, 3, 6, 9)
_layout((cv.S_GPROC32_16t, cv.S_LPROC32_16t), _PROC16, 7, 6, 3, 8, 9)
_layout((cv.S_LABEL32, cv.S_LABEL32_ST), _LABEL, 1, 0, None, None, 2)
_layout((cv.S_THUNK32, cv.S_THUNK32_ST), _THUNK, 4, 3, 5, None, None)


def decode_located(buf: bytes, kind: int, at: int, end: int) -> Located:
    """Decode any public, data, procedure, label or thunk record (every form).

    ``flags`` holds the public flags (1 code, 2 function) or the procedure and
    label flags; ``length`` the procedure or thunk code size; ``type_index``
    the data or procedure type.
    """
    layout = _LAYOUTS.get(kind)
    if layout is None:
        raise SymbolFileError(f"symbol kind 0x{kind:04x} carries no address")
    st, seg, off, length, typ, flags = layout
    if at + st.size > end:
        raise SymbolFileError(f"symbol record 0x{kind:04x} is truncated")
    fields = st.unpack_from(buf, at)
    name = read_name(buf, at + st.size, end, kind in ST_NAME_KINDS)
    return Located(
        fields[seg], fields[off], name,
        fields[length] if length is not None else 0,
        fields[typ] if typ is not None else 0,
        fields[flags] if flags is not None else 0,
    )


def _address_layout(st: struct.Struct, seg: int, off: int) -> struct.Struct:
    """A struct that reads just ``(offset, segment)`` of a layout (adjacent u32, u16)."""
    codes = st.format.lstrip("<")
    at = struct.calcsize("<" + codes[:off])
    if struct.calcsize("<" + codes[:seg]) != at + 4:
        raise AssertionError("segment does not follow offset")
    return struct.Struct(f"<{at}xIH")


# kind -> (unpack of (offset, segment), fixed size, length-prefixed name)
ADDRESS_LAYOUTS = {kind: (_address_layout(st, seg, off).unpack_from, st.size, kind in ST_NAME_KINDS)
            for kind, (st, seg, off, *_rest) in _LAYOUTS.items()}


def _field_reader(st: struct.Struct, index: int | None):
    if index is None:
        return None
    codes = st.format.lstrip("<")
    return struct.Struct(f"<{struct.calcsize('<' + codes[:index])}x{codes[index]}").unpack_from


# kind -> unpack of the length (procedures, thunks) / the type index (data, procedures)
LENGTH_FIELDS = {kind: _field_reader(layout[0], layout[3]) for kind, layout in _LAYOUTS.items()}
TYPE_FIELDS = {kind: _field_reader(layout[0], layout[4]) for kind, layout in _LAYOUTS.items()}


def address_fields(buf, kind: int, at: int, end: int) -> tuple[int, int]:
    """``(segment, offset)`` of a record ``decode_located`` accepts, checked the same
    way (truncation, a length-prefixed name overrunning), without making its name."""
    layout = ADDRESS_LAYOUTS.get(kind)
    if layout is None:
        raise SymbolFileError(f"symbol kind 0x{kind:04x} carries no address")
    unpack, fixed, prefixed = layout
    name = at + fixed
    if name > end:
        raise SymbolFileError(f"symbol record 0x{kind:04x} is truncated")
    if prefixed and (name >= end or name + 1 + buf[name] > end):
        raise SymbolFileError("length-prefixed name overruns its record")
    offset, segment = unpack(buf, at)
    return segment, offset


def name_at(kind: int) -> tuple[int, bool]:
    """Where the name of a ``kind`` record starts, from its payload, and whether it
    is length-prefixed; ``(-1, False)`` for kinds that carry no address."""
    layout = _LAYOUTS.get(kind)
    if layout is None:
        return -1, False
    return layout[0].size, kind in ST_NAME_KINDS


# Compile records (cvinfo.h COMPILESYM, COMPILESYM3): the module's source language.
S_COMPILE = 0x0001
S_COMPILE2_ST = 0x1013
S_COMPILE2 = 0x1116
S_COMPILE3 = 0x113C
CV_CFL_C = 0x00
CV_CFL_CXX = 0x01
_COMPILE_SCAN = 8        # compile records come first in a module stream, after S_OBJNAME


def compile_language(buf, start: int, end: int) -> int | None:
    """CV_CFL_* language of the compile record among the first records of a
    module stream's symbols ``buf[start:end]``; None when there is none."""
    for number, (kind, at, rec_end) in enumerate(iter_records(buf, start, end)):
        if number >= _COMPILE_SCAN:
            break
        if kind in (S_COMPILE2, S_COMPILE3, S_COMPILE2_ST) and at + 4 <= rec_end:
            return buf[at]
        if kind == S_COMPILE and at + 2 <= rec_end:
            return buf[at + 1]
    return None
