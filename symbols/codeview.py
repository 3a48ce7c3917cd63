"""CodeView symbol kinds, type leaves and the numeric-leaf decoder.

Shared by the PDB reader (``kdcon.symbols.pdb``) and by inline CodeView
(NB09/NB11) in DBG files. Constants keep the names of ``cvinfo.h``
(``SYM_ENUM_e``, ``LEAF_ENUM_e``) so they can be grepped against it; ``_16t`` is
the VC4 form with 16-bit type indices, ``_ST`` the VC5/6 form with
length-prefixed names. No record decoding lives here beyond numeric leaves and
name fields. Spec: symbols.md 2.7 (symbol records), 2.8 (type leaves, numeric
leaf).
"""

from __future__ import annotations

import struct

from kdcon.symbols.errors import SymbolFileError

__all__ = [
    "S_END", "S_OBJNAME", "S_THUNK32", "S_THUNK32_ST", "S_LABEL32", "S_LABEL32_ST",
    "S_UDT", "S_UDT_ST", "S_UDT_16t", "S_CONSTANT", "S_CONSTANT_ST", "S_CONSTANT_16t",
    "S_PUB32", "S_PUB32_ST", "S_PUB32_16t",
    "S_GDATA32", "S_GDATA32_ST", "S_GDATA32_16t", "S_LDATA32", "S_LDATA32_ST", "S_LDATA32_16t",
    "S_GPROC32", "S_GPROC32_ST", "S_GPROC32_16t", "S_LPROC32", "S_LPROC32_ST", "S_LPROC32_16t",
    "S_GPROC32_ID", "S_LPROC32_ID",
    "S_PROCREF", "S_LPROCREF", "S_DATAREF", "S_PROCREF_ST", "S_LPROCREF_ST", "S_DATAREF_ST",
    "PUBLIC_KINDS", "DATA_KINDS", "PROC_KINDS", "LABEL_KINDS", "THUNK_KINDS",
    "LF_MODIFIER", "LF_MODIFIER_16t", "LF_POINTER", "LF_POINTER_16t",
    "LF_ARRAY", "LF_ARRAY_ST", "LF_ARRAY_16t", "LF_CLASS", "LF_CLASS_ST", "LF_CLASS_16t",
    "LF_STRUCTURE", "LF_STRUCTURE_ST", "LF_STRUCTURE_16t", "LF_UNION", "LF_UNION_ST",
    "LF_UNION_16t", "LF_ENUM", "LF_ENUM_ST", "LF_ENUM_16t", "LF_PROCEDURE",
    "LF_PROCEDURE_16t", "LF_ARGLIST", "LF_ARGLIST_16t", "LF_FIELDLIST", "LF_FIELDLIST_16t",
    "LF_BITFIELD", "LF_BITFIELD_16t", "LF_MEMBER", "LF_MEMBER_ST", "LF_MEMBER_16t",
    "LF_ENUMERATE", "LF_ENUMERATE_ST", "LF_INDEX", "LF_INDEX_16t",
    "LF_NESTTYPE", "LF_NESTTYPE_ST", "LF_NESTTYPE_16t", "LF_STMEMBER", "LF_STMEMBER_ST",
    "LF_STMEMBER_16t", "LF_BCLASS", "LF_BCLASS_16t", "LF_VBCLASS", "LF_IVBCLASS",
    "LF_VFUNCTAB", "LF_VFUNCTAB_16t", "LF_ONEMETHOD", "LF_ONEMETHOD_ST", "LF_METHOD",
    "LF_METHOD_ST", "LF_NUMERIC", "LF_CHAR", "LF_SHORT", "LF_USHORT", "LF_LONG", "LF_ULONG",
    "LF_REAL32", "LF_REAL64", "LF_REAL80", "LF_QUADWORD", "LF_UQUADWORD", "LF_VARSTRING",
    "LF_OCTWORD", "LF_UOCTWORD", "CV_PROP_FWDREF",
    "read_numeric", "numeric_bytes",
]

# Symbol kinds (SYM_ENUM_e).
S_END = 0x0006
S_UDT_16t = 0x0004
S_CONSTANT_16t = 0x0003
S_LDATA32_16t = 0x0201
S_GDATA32_16t = 0x0202
S_PUB32_16t = 0x0203
S_LPROC32_16t = 0x0204
S_GPROC32_16t = 0x0205
S_THUNK32_ST = 0x0206
S_LABEL32_ST = 0x0209
S_PROCREF_ST = 0x0400
S_DATAREF_ST = 0x0401
S_LPROCREF_ST = 0x0403
S_CONSTANT_ST = 0x1002
S_UDT_ST = 0x1003
S_LDATA32_ST = 0x1007
S_GDATA32_ST = 0x1008
S_PUB32_ST = 0x1009
S_LPROC32_ST = 0x100A
S_GPROC32_ST = 0x100B
S_OBJNAME = 0x1101
S_THUNK32 = 0x1102
S_LABEL32 = 0x1105
S_CONSTANT = 0x1107
S_UDT = 0x1108
S_LDATA32 = 0x110C
S_GDATA32 = 0x110D
S_PUB32 = 0x110E
S_LPROC32 = 0x110F
S_GPROC32 = 0x1110
S_PROCREF = 0x1125
S_DATAREF = 0x1126
S_LPROCREF = 0x1127
S_LPROC32_ID = 0x1146
S_GPROC32_ID = 0x1147

PUBLIC_KINDS = frozenset({S_PUB32, S_PUB32_ST, S_PUB32_16t})
DATA_KINDS = frozenset({S_GDATA32, S_LDATA32, S_GDATA32_ST, S_LDATA32_ST,
                        S_GDATA32_16t, S_LDATA32_16t})
PROC_KINDS = frozenset({S_GPROC32, S_LPROC32, S_GPROC32_ID, S_LPROC32_ID,
                        S_GPROC32_ST, S_LPROC32_ST, S_GPROC32_16t, S_LPROC32_16t})
LABEL_KINDS = frozenset({S_LABEL32, S_LABEL32_ST})
THUNK_KINDS = frozenset({S_THUNK32, S_THUNK32_ST})

# Type leaves (LEAF_ENUM_e).
LF_MODIFIER_16t = 0x0001
LF_POINTER_16t = 0x0002
LF_ARRAY_16t = 0x0003
LF_CLASS_16t = 0x0004
LF_STRUCTURE_16t = 0x0005
LF_UNION_16t = 0x0006
LF_ENUM_16t = 0x0007
LF_PROCEDURE_16t = 0x0008
LF_ARGLIST_16t = 0x0201
LF_FIELDLIST_16t = 0x0204
LF_BITFIELD_16t = 0x0206
LF_BCLASS_16t = 0x0400
LF_ENUMERATE_ST = 0x0403
LF_INDEX_16t = 0x0405
LF_MEMBER_16t = 0x0406
LF_STMEMBER_16t = 0x0407
LF_NESTTYPE_16t = 0x040B
LF_VFUNCTAB_16t = 0x040C
LF_MODIFIER = 0x1001
LF_POINTER = 0x1002
LF_ARRAY_ST = 0x1003
LF_CLASS_ST = 0x1004
LF_STRUCTURE_ST = 0x1005
LF_UNION_ST = 0x1006
LF_ENUM_ST = 0x1007
LF_PROCEDURE = 0x1008
LF_ARGLIST = 0x1201
LF_FIELDLIST = 0x1203
LF_BITFIELD = 0x1205
LF_BCLASS = 0x1400
LF_VBCLASS = 0x1401
LF_IVBCLASS = 0x1402
LF_INDEX = 0x1404
LF_MEMBER_ST = 0x1405
LF_STMEMBER_ST = 0x1406
LF_METHOD_ST = 0x1407
LF_NESTTYPE_ST = 0x1408
LF_VFUNCTAB = 0x1409
LF_ONEMETHOD_ST = 0x140B
LF_ENUMERATE = 0x1502
LF_ARRAY = 0x1503
LF_CLASS = 0x1504
LF_STRUCTURE = 0x1505
LF_UNION = 0x1506
LF_ENUM = 0x1507
LF_MEMBER = 0x150D
LF_STMEMBER = 0x150E
LF_METHOD = 0x150F
LF_NESTTYPE = 0x1510
LF_ONEMETHOD = 0x1511

# Numeric leaf type codes: a leading u16 >= LF_NUMERIC names the encoding of
# the value that follows (symbols.md 2.8 "Numeric leaf").
LF_NUMERIC = 0x8000
LF_CHAR = 0x8000
LF_SHORT = 0x8001
LF_USHORT = 0x8002
LF_LONG = 0x8003
LF_ULONG = 0x8004
LF_REAL32 = 0x8005
LF_REAL64 = 0x8006
LF_REAL80 = 0x8007
LF_QUADWORD = 0x8009
LF_UQUADWORD = 0x800A
LF_VARSTRING = 0x8010
LF_OCTWORD = 0x8017
LF_UOCTWORD = 0x8018

CV_PROP_FWDREF = 0x80

# code -> (struct format or None, byte length of the value)
_NUMERIC_FORMATS: dict[int, tuple[str | None, int]] = {
    LF_CHAR: ("<b", 1),
    LF_SHORT: ("<h", 2),
    LF_USHORT: ("<H", 2),
    LF_LONG: ("<i", 4),
    LF_ULONG: ("<I", 4),
    LF_REAL32: ("<f", 4),
    LF_REAL64: ("<d", 8),
    LF_REAL80: (None, 10),
    LF_QUADWORD: ("<q", 8),
    LF_UQUADWORD: ("<Q", 8),
    LF_OCTWORD: (None, 16),
    LF_UOCTWORD: (None, 16),
}


def read_numeric(buf: bytes | memoryview, pos: int, end: int | None = None) -> tuple[int, int]:
    """Decode the numeric leaf at ``pos``: ``(value, position after it)``.

    Integers come back as ``int`` (octwords too, in two's complement for the
    signed form); reals are truncated to ``int`` since sizes and offsets are
    the only numerics we display; a varstring yields its length. Raises
    ``SymbolFileError`` when the leaf runs past ``end`` (default: buffer end)
    or has an unknown code.
    """
    if end is None:
        end = len(buf)
    if pos + 2 > end:
        raise SymbolFileError("numeric leaf runs past its record")
    code = buf[pos] | (buf[pos + 1] << 8)
    pos += 2
    if code < LF_NUMERIC:
        return code, pos
    if code == LF_VARSTRING:
        if pos + 2 > end:
            raise SymbolFileError("numeric varstring runs past its record")
        length = buf[pos] | (buf[pos + 1] << 8)
        if pos + 2 + length > end:
            raise SymbolFileError("numeric varstring runs past its record")
        return length, pos + 2 + length
    spec = _NUMERIC_FORMATS.get(code)
    if spec is None:
        raise SymbolFileError(f"unknown numeric leaf 0x{code:04x}")
    fmt, length = spec
    if pos + length > end:
        raise SymbolFileError("numeric leaf runs past its record")
    if fmt is None:
        raw = bytes(buf[pos:pos + length])
        if code == LF_REAL80:
            return 0, pos + length
        return int.from_bytes(raw, "little", signed=(code == LF_OCTWORD)), pos + length
    value = struct.unpack_from(fmt, buf, pos)[0]
    if isinstance(value, float):
        value = int(value) if value == value and abs(value) < 2**63 else 0
    return value, pos + length


def numeric_bytes(value: int) -> bytes:
    """Encode ``value`` as the shortest numeric leaf (the writer's inverse of ``read_numeric``)."""
    if 0 <= value < LF_NUMERIC:
        return struct.pack("<H", value)
    for code, fmt, low, high in (
        (LF_CHAR, "<b", -0x80, 0x7F),
        (LF_SHORT, "<h", -0x8000, 0x7FFF),
        (LF_USHORT, "<H", 0, 0xFFFF),
        (LF_LONG, "<i", -0x8000_0000, 0x7FFF_FFFF),
        (LF_ULONG, "<I", 0, 0xFFFF_FFFF),
        (LF_QUADWORD, "<q", -2**63, 2**63 - 1),
        (LF_UQUADWORD, "<Q", 0, 2**64 - 1),
    ):
        if low <= value <= high:
            return struct.pack("<H", code) + struct.pack(fmt, value)
    raise ValueError(f"numeric leaf value out of range: {value}")
