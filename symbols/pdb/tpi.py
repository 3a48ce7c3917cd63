"""TPI stream: an index of type records and one normalising decoder for ``dt``.

One pass over the records stores each record's offset (type index ->
offset) and the names of complete structures, unions, classes and enums;
records are decoded on demand into ``TypeInfo`` and memoised. The 7.0 leaves
(32-bit type indices), the VC5/6 ``_ST`` leaves (length-prefixed names) and
the VC4 ``_16t`` leaves (16-bit type indices, other field order) go through
one table keyed by leaf, so everything above sees a single shape. Forward
references are resolved by name; field lists follow LF_INDEX continuations
with a cap, so cycles end. Not decoded: methods, base classes and other C++
members beyond skipping them. Spec: symbols.md 2.8; cvinfo.h ``lfStructure``,
``lfUnion``, ``lfEnum``, ``lfPointer``, ``lfArray``, ``lfBitfield``,
``lfModifier``, ``lfProc``, ``lfFieldList``, ``lfMember``, ``lfEnumerate``,
``lfIndex``; microsoft-pdb ``PDB/dbi/tpi.h``.
"""

from __future__ import annotations

import fnmatch
import logging
import struct
from array import array

from kdcon.symbols import codeview as cv
from kdcon.symbols.codeview import read_numeric
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb.guard import guarded
from kdcon.symbols.pdb.records import read_name
from kdcon.symbols.pdb.structs import (
    TPI_HEADER,
    TPI_HEADER_16t,
    TPI_VER_V40,
    TPI_VER_V41,
    parse_at,
)
from kdcon.symbols.pdb.typeinfo import Field, TypeInfo, builtin_info

__all__ = ["TypeTable"]

log = logging.getLogger(__name__)

TI_BEGIN = 0x1000
_MAX_FIELD_LISTS = 4096        # LF_INDEX continuations followed for one aggregate
_MAX_DEPTH = 64                # nested decoding (arrays of arrays, pointer chains)

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
# lfProc: return type, calling convention, attributes, parameter count, argument list.
_PROC = struct.Struct("<IBBHI")
_PROC_16t = struct.Struct("<HBBHH")

_STRUCT_LEAVES = {
    cv.LF_STRUCTURE: "struct", cv.LF_STRUCTURE_ST: "struct", cv.LF_STRUCTURE_16t: "struct",
    cv.LF_CLASS: "class", cv.LF_CLASS_ST: "class", cv.LF_CLASS_16t: "class",
}
_UNION_LEAVES = {cv.LF_UNION, cv.LF_UNION_ST, cv.LF_UNION_16t}
_ENUM_LEAVES = {cv.LF_ENUM, cv.LF_ENUM_ST, cv.LF_ENUM_16t}
_UDT_LEAVES = set(_STRUCT_LEAVES) | _UNION_LEAVES | _ENUM_LEAVES
_ST_LEAVES = {cv.LF_STRUCTURE_ST, cv.LF_CLASS_ST, cv.LF_UNION_ST, cv.LF_ENUM_ST, cv.LF_ARRAY_ST,
              cv.LF_STRUCTURE_16t, cv.LF_CLASS_16t, cv.LF_UNION_16t, cv.LF_ENUM_16t,
              cv.LF_ARRAY_16t}


class TypeTable:
    """Types of one PDB: ``find(name)``, ``by_index(ti)``, ``names(pattern)``."""

    def __init__(self, data: bytes, *, small: bool) -> None:
        self._data = data
        self._encoding = "cp1252" if small else "utf-8"
        self._memo: dict[int, TypeInfo] = {}
        self._complete: dict[str, int] = {}
        self._folded: dict[str, int] = {}
        self._aliases: dict[str, int] = {}
        self._depth = 0
        self._index_records()

    # -- indexing --------------------------------------------------------------------

    def _index_records(self) -> None:
        data = self._data
        self._offsets = array("I")
        if not data:
            self.ti_begin = self.ti_end = TI_BEGIN
            return
        if len(data) < 4:
            raise SymbolFileError("truncated TPI header")
        version = _U32.unpack_from(data, 0)[0]
        if version in (TPI_VER_V40, TPI_VER_V41):
            hdr = parse_at(TPI_HEADER_16t, data, 0, "TPI header")
            start = TPI_HEADER_16t.size
        else:
            hdr = parse_at(TPI_HEADER, data, 0, "TPI header")
            start = hdr.header_size
        end = start + hdr.record_bytes
        if start < 8 or end > len(data) or hdr.ti_end < hdr.ti_begin:
            raise SymbolFileError("TPI header sizes exceed the stream")
        count = hdr.ti_end - hdr.ti_begin
        if count > hdr.record_bytes // 4:
            raise SymbolFileError("TPI claims more types than its records can hold")
        self.ti_begin = hdr.ti_begin
        offsets = self._offsets
        pos = start
        while pos + 4 <= end and len(offsets) < count:
            length = _U16.unpack_from(data, pos)[0]
            if length < 2 or pos + 2 + length > end:
                raise SymbolFileError(f"type record at 0x{pos:x} overruns the TPI stream")
            offsets.append(pos)
            leaf = _U16.unpack_from(data, pos + 2)[0]
            if leaf in _UDT_LEAVES:
                self._note_udt(len(offsets) - 1 + hdr.ti_begin, leaf, pos + 4, pos + 2 + length)
            pos += 2 + length
        self.ti_end = hdr.ti_begin + len(offsets)

    def _note_udt(self, ti: int, leaf: int, at: int, end: int) -> None:
        try:
            fields = self._udt_fields(leaf, at, end)
        except SymbolFileError:
            return
        prop, name = fields[1], fields[4]
        if prop & cv.CV_PROP_FWDREF or not name:
            return
        self._complete.setdefault(name, ti)
        self._folded.setdefault(name.lower(), ti)

    def add_aliases(self, aliases: dict[str, int]) -> None:
        """Typedef names (S_UDT) that ``find`` accepts after the UDT names."""
        for name, ti in aliases.items():
            self._aliases.setdefault(name, ti)
            self._aliases.setdefault(name.lower(), ti)

    # -- lookups ---------------------------------------------------------------------

    @guarded
    def find(self, name: str) -> TypeInfo | None:
        """Complete UDT named ``name`` (exact, then case-insensitive, then typedefs)."""
        ti = self._complete.get(name)
        if ti is None:
            ti = self._folded.get(name.lower())
        if ti is None:
            ti = self._aliases.get(name, self._aliases.get(name.lower()))
        return self.by_index(ti) if ti is not None else None

    @guarded
    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names of complete UDTs matching a ``*``/``?`` pattern (case-insensitive)."""
        folded = pattern.lower()
        return sorted(n for n in self._complete if fnmatch.fnmatchcase(n.lower(), folded))

    @guarded
    def type_name(self, ti: int) -> str | None:
        info = self.by_index(ti)
        return info.type_name if info is not None else None

    @guarded
    def by_index(self, ti: int) -> TypeInfo | None:
        """TypeInfo of type index ``ti`` (forward references resolved), None if unknown."""
        info = self._memo.get(ti)
        if info is not None:
            return info
        if ti < TI_BEGIN:
            info = builtin_info(ti)
        elif ti >= self.ti_end:
            return None
        else:
            if self._depth > _MAX_DEPTH:
                return TypeInfo(ti, "unknown")
            self._depth += 1
            try:
                info = self._decode(ti)
            finally:
                self._depth -= 1
        self._memo[ti] = info
        return info

    @guarded
    def arguments(self, ti: int) -> list[TypeInfo] | None:
        """The argument types of procedure type ``ti`` in order (its LF_ARGLIST), None
        when ``ti`` is no LF_PROCEDURE. A T_NOTYPE last argument is a C ``...``."""
        if not self.ti_begin <= ti < self.ti_end:
            return None
        leaf, at, end = self._record(ti)
        if leaf not in (cv.LF_PROCEDURE, cv.LF_PROCEDURE_16t):
            return None
        small = leaf == cv.LF_PROCEDURE_16t
        layout = _PROC_16t if small else _PROC
        if at + layout.size > end:
            raise SymbolFileError(f"procedure type 0x{ti:x} is truncated")
        count, arglist = layout.unpack_from(self._data, at)[3:5]
        if not count:
            return []
        if not self.ti_begin <= arglist < self.ti_end:
            return None
        leaf, at, end = self._record(arglist)
        if leaf not in (cv.LF_ARGLIST, cv.LF_ARGLIST_16t):
            return None
        item = _U16 if leaf == cv.LF_ARGLIST_16t else _U32
        listed = item.unpack_from(self._data, at)[0]
        if at + item.size * (listed + 1) > end:
            raise SymbolFileError(f"argument list 0x{arglist:x} overruns its record")
        found = (self.by_index(item.unpack_from(self._data, at + item.size * (n + 1))[0])
                 for n in range(listed))
        return [info if info is not None else TypeInfo(0, "unknown") for info in found]

    # -- record decoding -------------------------------------------------------------

    def _record(self, ti: int) -> tuple[int, int, int]:
        pos = self._offsets[ti - self.ti_begin]
        length, leaf = struct.unpack_from("<HH", self._data, pos)
        return leaf, pos + 4, pos + 2 + length

    def _name(self, at: int, end: int, prefixed: bool) -> str:
        return read_name(self._data, at, end, prefixed).decode(self._encoding, "replace")

    def _udt_fields(self, leaf: int, at: int, end: int) -> tuple[int, int, int, int, str, int]:
        """(count, property, field list, size, name, underlying) of any UDT leaf form."""
        d = self._data
        prefixed = leaf in _ST_LEAVES
        if at + 4 > end:
            raise SymbolFileError("UDT type record is truncated")
        if leaf in _STRUCT_LEAVES:
            if leaf in (cv.LF_STRUCTURE_16t, cv.LF_CLASS_16t):
                count, field, prop = struct.unpack_from("<HHH", d, at)
                at += 10
            else:
                count, prop, field = struct.unpack_from("<HHI", d, at)
                at += 16
            size, at = read_numeric(d, at, end)
            return count, prop, field, size, self._name(at, end, prefixed), 0
        if leaf in _UNION_LEAVES:
            if leaf == cv.LF_UNION_16t:
                count, field, prop = struct.unpack_from("<HHH", d, at)
                at += 6
            else:
                count, prop, field = struct.unpack_from("<HHI", d, at)
                at += 8
            size, at = read_numeric(d, at, end)
            return count, prop, field, size, self._name(at, end, prefixed), 0
        if leaf == cv.LF_ENUM_16t:
            count, utype, field, prop = struct.unpack_from("<HHHH", d, at)
            at += 8
        else:
            count, prop, utype, field = struct.unpack_from("<HHII", d, at)
            at += 12
        return count, prop, field, 0, self._name(at, end, prefixed), utype

    def _decode(self, ti: int) -> TypeInfo:
        leaf, at, end = self._record(ti)
        d = self._data
        if leaf in _UDT_LEAVES:
            count, prop, field, size, name, utype = self._udt_fields(leaf, at, end)
            if prop & cv.CV_PROP_FWDREF:
                target = self._complete.get(name)
                if target is not None and target != ti:
                    resolved = self.by_index(target)
                    if resolved is not None:
                        return resolved
            if leaf in _ENUM_LEAVES:
                base = self.by_index(utype)
                return TypeInfo(ti, "enum", name, base.size if base else 4, table=self,
                                ref=utype, field_list=field, forward=bool(prop & cv.CV_PROP_FWDREF))
            kind = _STRUCT_LEAVES.get(leaf, "union")
            return TypeInfo(ti, kind, name, size, table=self, field_list=field,
                            forward=bool(prop & cv.CV_PROP_FWDREF))
        handler = _DECODERS.get(leaf)
        if handler is None:
            return TypeInfo(ti, "unknown")
        return handler(self, ti, d, at, end)

    def _pointer(self, ti: int, d: bytes, at: int, end: int, small: bool) -> TypeInfo:
        if small:
            attr, utype = struct.unpack_from("<HH", d, at)
        else:
            utype, attr = struct.unpack_from("<II", d, at)
        ptrtype = attr & 0x1F
        size = (attr >> 13) & 0x3F if not small else 0
        if not size:
            size = 8 if ptrtype == 0x0C else 4 if ptrtype in (0x0A, 0x0B) else 2
        return TypeInfo(ti, "pointer", size=size, pointer_size=size, table=self, ref=utype)

    def _modifier(self, ti: int, d: bytes, at: int, end: int, small: bool) -> TypeInfo:
        if small:
            _attr, utype = struct.unpack_from("<HH", d, at)
        else:
            utype, _attr = struct.unpack_from("<IH", d, at)
        inner = self.by_index(utype)
        return TypeInfo(ti, "modifier", inner.name if inner else "", inner.size if inner else 0,
                        table=self, ref=utype)

    def _array(self, ti: int, d: bytes, at: int, end: int, small: bool) -> TypeInfo:
        if small:
            elem, _idx = struct.unpack_from("<HH", d, at)
            at += 4
        else:
            elem, _idx = struct.unpack_from("<II", d, at)
            at += 8
        size, _ = read_numeric(d, at, end)
        info = TypeInfo(ti, "array", size=size, table=self, ref=elem)
        inner = self.by_index(elem)
        info.count = size // inner.size if inner is not None and inner.size else 0
        return info

    def _bitfield(self, ti: int, d: bytes, at: int, end: int, small: bool) -> TypeInfo:
        if small:
            width, position, base = struct.unpack_from("<BBH", d, at)
        else:
            base, width, position = struct.unpack_from("<IBB", d, at)
        inner = self.by_index(base)
        return TypeInfo(ti, "bitfield", size=inner.size if inner else 0, table=self, ref=base,
                        bit_position=position, bit_width=width)

    def _procedure(self, ti: int, d: bytes, at: int, end: int, small: bool) -> TypeInfo:
        rvtype = struct.unpack_from("<H" if small else "<I", d, at)[0]
        return TypeInfo(ti, "procedure", table=self, ref=rvtype)

    # -- field lists -----------------------------------------------------------------

    def _field_list_records(self, first: int):
        """Yield (sub-leaf, payload_at, record_end) over a field list and its continuations."""
        seen = set()
        ti = first
        while ti and TI_BEGIN <= ti < self.ti_end and ti not in seen and len(seen) < _MAX_FIELD_LISTS:
            seen.add(ti)
            leaf, at, end = self._record(ti)
            if leaf not in (cv.LF_FIELDLIST, cv.LF_FIELDLIST_16t):
                return
            ti = 0
            while at + 2 <= end:
                sub = _U16.unpack_from(self._data, at)[0]
                if sub in (cv.LF_INDEX, cv.LF_INDEX_16t):
                    ti = struct.unpack_from("<H" if sub == cv.LF_INDEX_16t else "<xxI",
                                            self._data, at + 2)[0]
                    break
                yield sub, at + 2, end
                nxt = self._skip_member(sub, at + 2, end)
                if nxt is None:
                    return
                at = nxt
                while at < end and self._data[at] >= 0xF0:
                    at += self._data[at] & 0x0F or 1

    def _skip_member(self, sub: int, at: int, end: int) -> int | None:
        """Position after the sub-record ``sub`` at ``at`` (None if it cannot be sized)."""
        d = self._data
        layout = _MEMBER_LAYOUTS.get(sub)
        if layout is None:
            return None
        fixed, numerics, name_kind = layout
        at += fixed
        if sub in (cv.LF_ONEMETHOD, cv.LF_ONEMETHOD_ST):
            attr = _U16.unpack_from(d, at - fixed)[0]
            if (attr >> 2) & 7 in (4, 6):      # introducing virtual: vbaseoff follows
                at += 4
        for _ in range(numerics):
            _, at = read_numeric(d, at, end)
        if name_kind == "sz":
            nul = d.find(b"\0", at, end)
            at = nul + 1 if nul >= 0 else end
        elif name_kind == "st":
            if at >= end:
                raise SymbolFileError("field-list name runs past its record")
            at += 1 + d[at]
        if at > end:
            raise SymbolFileError("field-list member runs past its record")
        return at

    @guarded
    def members_of(self, field_list: int) -> list[Field]:
        d = self._data
        result = []
        for sub, at, end in self._field_list_records(field_list):
            if sub == cv.LF_MEMBER_16t:
                mtype, _attr = struct.unpack_from("<HH", d, at)
                at += 4
            elif sub in (cv.LF_MEMBER, cv.LF_MEMBER_ST):
                _attr, mtype = struct.unpack_from("<HI", d, at)
                at += 6
            else:
                continue
            offset, at = read_numeric(d, at, end)
            name = self._name(at, end, sub != cv.LF_MEMBER)
            info = self.by_index(mtype) or TypeInfo(mtype, "unknown")
            if info.kind == "bitfield":
                result.append(Field(name, offset, info.type_name, info, info.bit_position,
                                    info.bit_width))
            else:
                result.append(Field(name, offset, info.type_name, info))
        return result

    @guarded
    def enumerators_of(self, field_list: int) -> list[tuple[str, int]]:
        d = self._data
        result = []
        for sub, at, end in self._field_list_records(field_list):
            if sub in (cv.LF_ENUMERATE, cv.LF_ENUMERATE_ST):
                value, at = read_numeric(d, at + 2, end)
                result.append((self._name(at, end, sub == cv.LF_ENUMERATE_ST), value))
        return result


def _small(method):
    return lambda table, ti, d, at, end: method(table, ti, d, at, end, True)


def _wide(method):
    return lambda table, ti, d, at, end: method(table, ti, d, at, end, False)


_DECODERS = {
    cv.LF_POINTER: _wide(TypeTable._pointer), cv.LF_POINTER_16t: _small(TypeTable._pointer),
    cv.LF_MODIFIER: _wide(TypeTable._modifier), cv.LF_MODIFIER_16t: _small(TypeTable._modifier),
    cv.LF_ARRAY: _wide(TypeTable._array), cv.LF_ARRAY_ST: _wide(TypeTable._array),
    cv.LF_ARRAY_16t: _small(TypeTable._array),
    cv.LF_BITFIELD: _wide(TypeTable._bitfield), cv.LF_BITFIELD_16t: _small(TypeTable._bitfield),
    cv.LF_PROCEDURE: _wide(TypeTable._procedure), cv.LF_PROCEDURE_16t: _small(TypeTable._procedure),
}

# sub-leaf -> (fixed bytes after the leaf, numeric leaves, name form)
_MEMBER_LAYOUTS = {
    cv.LF_MEMBER: (6, 1, "sz"), cv.LF_MEMBER_ST: (6, 1, "st"), cv.LF_MEMBER_16t: (4, 1, "st"),
    cv.LF_ENUMERATE: (2, 1, "sz"), cv.LF_ENUMERATE_ST: (2, 1, "st"),
    cv.LF_NESTTYPE: (6, 0, "sz"), cv.LF_NESTTYPE_ST: (6, 0, "st"), cv.LF_NESTTYPE_16t: (2, 0, "st"),
    cv.LF_STMEMBER: (6, 0, "sz"), cv.LF_STMEMBER_ST: (6, 0, "st"), cv.LF_STMEMBER_16t: (4, 0, "st"),
    cv.LF_BCLASS: (6, 1, None), cv.LF_BCLASS_16t: (4, 1, None),
    cv.LF_VBCLASS: (10, 2, None), cv.LF_IVBCLASS: (10, 2, None),
    cv.LF_VFUNCTAB: (6, 0, None), cv.LF_VFUNCTAB_16t: (2, 0, None),
    cv.LF_ONEMETHOD: (6, 0, "sz"), cv.LF_ONEMETHOD_ST: (6, 0, "st"),
    cv.LF_METHOD: (6, 0, "sz"), cv.LF_METHOD_ST: (6, 0, "st"),
}
