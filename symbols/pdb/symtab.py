"""A PDB's symbols as columns: publics, globals and each module's procedures and labels.

A ``PdbTable`` keeps a few numbers a symbol in arrays, its RVA (rows sorted
by it), where its record starts in the stream buffer and its CodeView kind
(and, once tables are merged, which buffer and which table it came from), and
makes the ``SymbolRecord`` of a row only when asked: under 30 bytes a symbol
instead of a Python object and a string each. Records come out equal to
what the list API (``PdbFile.publics()`` and friends) returns, because that API
is built from these tables too.

The readers are ``struct`` loops over the streams in place
(``MsfFile.stream_span``); every record a table keeps has been checked
(length, truncation, name length) so making its record later cannot fail.
What is not here: type records (``tpi``), line tables (``lines``), choosing
which module to read (``staged``). Spec: symbols.md 2.5 (PSI address map),
2.6 (module streams), 2.7 (records).
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from array import array
from collections import deque
from collections.abc import Callable
from itertools import count, repeat
from operator import add as add_, and_, le, lshift, or_
from types import MemberDescriptorType

from kdcon.symbols import codeview as cv
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.index import kind_rank
from kdcon.symbols.model import SymbolKind, SymbolRecord
from kdcon.symbols.pdb.records import (
    ADDRESS_LAYOUTS,
    LENGTH_FIELDS,
    TYPE_FIELDS,
    address_fields,
    iter_records,
    name_at,
)

__all__ = ["PdbTable", "Reader", "make_records", "PUBLICS_ORDER", "GLOBALS_ORDER", "module_order"]

log = logging.getLogger(__name__)

# Table order: on a tie between two records of one kind at one address the
# lower order wins, as the first of them did in the list the index once took.
PUBLICS_ORDER = 0
GLOBALS_ORDER = 1


def module_order(module: int) -> int:
    return 2 + module


_U16 = struct.Struct("<H").unpack_from
_HEAD = struct.Struct("<HH").unpack_from
_PUB_HEAD = struct.Struct("<HHIIH").unpack_from

_SYMBOL_KINDS: dict[int, SymbolKind] = {}
for _kinds, _kind in ((cv.PUBLIC_KINDS, SymbolKind.PUBLIC), (cv.DATA_KINDS, SymbolKind.DATA),
                      (cv.PROC_KINDS, SymbolKind.FUNCTION), (cv.LABEL_KINDS, SymbolKind.LABEL),
                      (cv.THUNK_KINDS, SymbolKind.FUNCTION)):
    for _k in _kinds:
        _SYMBOL_KINDS[_k] = _kind
_NAMES = {kind: name_at(kind) for kind in _SYMBOL_KINDS}
_RANKS = {kind: kind_rank(symbol_kind) for kind, symbol_kind in _SYMBOL_KINDS.items()}
# kind -> (name offset from the record start, length-prefixed name, SymbolKind,
#          unpack of the length or None, unpack of the type index or None (data only))
_MAKE = {kind: (4 + _NAMES[kind][0], _NAMES[kind][1], symbol_kind, LENGTH_FIELDS[kind],
                TYPE_FIELDS[kind] if symbol_kind is SymbolKind.DATA else None)
         for kind, symbol_kind in _SYMBOL_KINDS.items()}


class Reader:
    """What the readers need of a PDB: its address mapping and name encoding."""

    __slots__ = ("bases", "omap", "encoding", "_type_name", "_type_names")

    def __init__(self, bases: list[int], omap, small: bool,
                 type_name: Callable[[int], str | None]) -> None:
        self.bases = bases
        self.omap = omap
        self.encoding = "cp1252" if small else "utf-8"
        self._type_name = type_name
        self._type_names: dict[int, str | None] = {}

    def type_name(self, type_index: int) -> str | None:
        """A global's type name, rendered once per type index."""
        try:
            return self._type_names[type_index]
        except KeyError:
            name = self._type_names[type_index] = self._type_name(type_index)
            return name

    def rva(self, segment: int, offset: int) -> int | None:
        if not 0 < segment <= len(self.bases):
            return None
        rva = (self.bases[segment - 1] + offset) & 0xFFFFFFFF
        return self.omap.map(rva) if self.omap is not None else rva

    # -- the three readers --------------------------------------------------------

    def publics(self, buf, start: int, stop: int, offsets: array | list[int] | None) -> PdbTable:
        """S_PUB32 in every form, from the PSI address map ``offsets`` (stream
        offsets) or, without one, from a scan of the records."""
        if offsets is None:
            offsets = [at - 4 - start for kind, at, _ in iter_records(buf, start, stop)
                       if kind in cv.PUBLIC_KINDS]
        if offsets and max(offsets) + 14 > stop - start:
            bad = next(off for off in offsets if off + 14 > stop - start)
            raise SymbolFileError(f"public symbol offset 0x{bad:x} is outside the records")
        table = self._plain_publics(buf, start, stop, offsets)
        if table is not None:
            return table
        size = stop - start
        rvas, recs, kinds = array("Q"), array("Q"), array("H")
        for off in offsets:
            rec = start + off
            reclen, kind, _flags, offset, segment = _PUB_HEAD(buf, rec)
            if off + 2 + reclen > size:
                raise SymbolFileError(f"public symbol at 0x{off:x} overruns the records")
            if kind != cv.S_PUB32:
                if kind not in cv.PUBLIC_KINDS:
                    continue
                segment, offset = address_fields(buf, kind, rec + 4, rec + 2 + reclen)
            rva = self.rva(segment, offset)
            if rva is not None:
                rvas.append(rva)
                recs.append(rec)
                kinds.append(kind)
        return PdbTable(self, rvas, recs, kinds, [buf], PUBLICS_ORDER)

    def _plain_publics(self, buf, start: int, stop: int, offsets) -> PdbTable | None:
        """The common case in one tight loop: every record an S_PUB32 that fits,
        in a section, no OMAP. None as soon as one is not."""
        if self.omap is not None:
            return None
        size = stop - start
        by_segment = [-1, *self.bases]
        rvas = array("Q")
        add = rvas.append
        pub32 = cv.S_PUB32
        try:
            for off in offsets:
                reclen, kind, _flags, offset, segment = _PUB_HEAD(buf, start + off)
                base = by_segment[segment]
                if kind != pub32 or off + 2 + reclen > size or base < 0:
                    return None
                add((base + offset) & 0xFFFFFFFF)
        except IndexError:          # a segment past the last section
            return None
        recs = array("Q", map(add_, offsets, repeat(start)))
        kinds = array("H", [pub32]) * len(rvas)
        return PdbTable(self, rvas, recs, kinds, [buf], PUBLICS_ORDER)

    def scan(self, buf, start: int, stop: int, wanted: frozenset[int], order: int) -> PdbTable:
        """Every record of a ``wanted`` kind in ``buf[start:stop]`` (a record stream)."""
        rvas, recs, kinds = array("Q"), array("Q"), array("H")
        by_segment = [-1, *self.bases]
        nbases, omap = len(self.bases), self.omap
        layouts = {kind: ADDRESS_LAYOUTS[kind] for kind in wanted}
        pos = start
        while pos + 4 <= stop:
            reclen, kind = _HEAD(buf, pos)
            end = pos + 2 + reclen
            if reclen < 2 or end > stop:
                raise SymbolFileError(f"symbol record at 0x{pos - start:x} overruns its stream")
            layout = layouts.get(kind)
            if layout is not None:
                unpack, fixed, prefixed = layout
                name = pos + 4 + fixed
                if name > end or (prefixed and (name >= end or name + 1 + buf[name] > end)):
                    raise SymbolFileError(f"symbol record 0x{kind:04x} at 0x{pos - start:x} is truncated")
                offset, segment = unpack(buf, pos + 4)
                if 0 < segment <= nbases:
                    rva = (by_segment[segment] + offset) & 0xFFFFFFFF
                    if omap is not None:
                        rva = omap.map(rva)
                    if rva is not None:
                        rvas.append(rva)
                        recs.append(pos)
                        kinds.append(kind)
            pos = end
        return PdbTable(self, rvas, recs, kinds, [buf], order)

    # -- making records -----------------------------------------------------------------

    def raw_name(self, buf, rec: int, kind: int) -> bytes:
        end = rec + 2 + _U16(buf, rec)[0]
        fixed, prefixed = _NAMES[kind]
        at = rec + 4 + fixed
        if prefixed:
            return bytes(buf[at + 1:at + 1 + buf[at]])
        nul = buf.find(b"\0", at, end)
        return bytes(buf[at:nul if nul >= 0 else end])

    def record(self, buf, rec: int, kind: int, rva: int) -> SymbolRecord:
        at, prefixed, sym_kind, length, type_index = _MAKE[kind]
        at += rec
        if prefixed:
            raw = buf[at + 1:at + 1 + buf[at]]
        else:
            end = rec + 2 + _U16(buf, rec)[0]
            nul = buf.find(b"\0", at, end)
            raw = buf[at:nul if nul >= 0 else end]
        if _RECORD_SLOTS:
            record = _new(SymbolRecord)
            _set_name(record, raw.decode(self.encoding, "replace"))
            _set_rva(record, rva)
            _set_kind(record, sym_kind)
            _set_size(record, length(buf, rec + 4)[0] if length is not None else 0)
            _set_type(record, self.type_name(type_index(buf, rec + 4)[0]) if type_index is not None else None)
            return record
        return SymbolRecord(raw.decode(self.encoding, "replace"), rva, sym_kind,
                            length(buf, rec + 4)[0] if length is not None else 0,
                            self.type_name(type_index(buf, rec + 4)[0]) if type_index is not None else None)


class PdbTable:
    """Rows of PDB symbol records: ``rvas`` sorted, records made on demand.

    A merged table remembers, per row, the ``order`` of the table it came from
    (``origin``), so ties are broken the same way before and after merging.
    """

    __slots__ = ("rvas", "order", "_reader", "_recs", "_kinds", "_buffers", "_bufs", "_origins")

    def __init__(self, reader: Reader, rvas: array, recs: array, kinds: array, buffers: list,
                 order: int, bufs: array | None = None, origins: array | None = None) -> None:
        if not all(map(le, rvas, rvas[1:])):
            # Stable: rows at one address keep their order in the stream.
            keys = sorted(map(or_, map(lshift, rvas, repeat(32)), count()))
            rows = array("L", map(and_, keys, repeat(0xFFFFFFFF)))
            del keys
            rvas, recs, kinds = (array(c.typecode, map(c.__getitem__, rows)) for c in (rvas, recs, kinds))
            if bufs is not None:
                bufs = array(bufs.typecode, map(bufs.__getitem__, rows))
            if origins is not None:
                origins = array(origins.typecode, map(origins.__getitem__, rows))
        self.rvas = rvas
        self.order = order
        self._reader = reader
        self._recs = recs
        self._kinds = kinds
        self._buffers = buffers
        self._bufs = bufs
        self._origins = origins

    def __len__(self) -> int:
        return len(self.rvas)

    def record(self, row: int) -> SymbolRecord:
        buf = self._buffers[self._bufs[row]] if self._bufs is not None else self._buffers[0]
        return self._reader.record(buf, self._recs[row], self._kinds[row], self.rvas[row])

    def raw_name(self, row: int) -> bytes:
        buf = self._buffers[self._bufs[row]] if self._bufs is not None else self._buffers[0]
        return self._reader.raw_name(buf, self._recs[row], self._kinds[row])

    def rank(self, row: int) -> int:
        return _RANKS[self._kinds[row]]

    def type_index(self, row: int, kinds: frozenset[int]) -> int | None:
        """The type index row ``row``'s record carries when its kind is one of ``kinds``
        (data and procedure kinds have one), else None."""
        kind = self._kinds[row]
        unpack = TYPE_FIELDS.get(kind) if kind in kinds else None
        if unpack is None:
            return None
        buf = self._buffers[self._bufs[row]] if self._bufs is not None else self._buffers[0]
        return unpack(buf, self._recs[row] + 4)[0]

    def origin(self, row: int) -> int:
        return self._origins[row] if self._origins is not None else self.order

    def names(self, start: int, stop: int) -> list[str]:
        """The names of rows ``start..stop-1``, decoded in one call."""
        recs, kinds = self._recs[start:stop], self._kinds[start:stop]
        if self._bufs is None:
            buffers = repeat(self._buffers[0])
        else:
            buffers = map(self._buffers.__getitem__, self._bufs[start:stop])
        raws = []
        add = raws.append
        for rec, kind, buf in zip(recs, kinds, buffers):
            fixed, prefixed = _NAMES[kind]
            at = rec + 4 + fixed
            if prefixed:
                add(bytes(buf[at + 1:at + 1 + buf[at]]))
            else:
                end = rec + 2 + _U16(buf, rec)[0]
                nul = buf.find(b"\0", at, end)
                add(buf[at:nul if nul >= 0 else end])
        return _decode_all(raws, self._reader.encoding)

    def records(self, kinds: frozenset[int] | None = None) -> list[SymbolRecord]:
        """The records of every row (of ``kinds`` only, when given), in row order."""
        rows = range(len(self)) if kinds is None else [r for r, k in enumerate(self._kinds) if k in kinds]
        if all(self._kinds[r] == cv.S_PUB32 for r in rows) and self._bufs is None:
            buf, raw_name = self._buffers[0], self._reader.raw_name
            names = _decode_all([raw_name(buf, self._recs[r], cv.S_PUB32) for r in rows],
                                self._reader.encoding)
            return make_records(names, [self.rvas[r] for r in rows], SymbolKind.PUBLIC)
        return [self.record(r) for r in rows]

    @classmethod
    def merged(cls, tables: list[PdbTable]) -> PdbTable:
        """One table of all rows, rows of the earlier table first on a tie (a
        plain concatenation when the tables' address ranges follow each other)."""
        buffers: list = []
        rvas, recs, kinds, bufs, origins = array("Q"), array("Q"), array("H"), array("H"), array("H")
        for table in tables:
            first = len(buffers)
            buffers += table._buffers
            rvas += table.rvas
            recs += table._recs
            kinds += table._kinds
            if table._bufs is None:
                bufs.extend(repeat(first, len(table)))
            else:
                bufs.extend(map(add_, table._bufs, repeat(first)))
            if table._origins is None:
                origins.extend(repeat(table.order, len(table)))
            else:
                origins += table._origins
        return cls(tables[0]._reader, rvas, recs, kinds, buffers, min(t.order for t in tables), bufs,
                   origins)


def _decode_all(raws: list[bytes], encoding: str) -> list[str]:
    """Decode many names with one decoder call (a tenth of the per-name cost)."""
    names = b"\0".join(raws).decode(encoding, "replace").split("\0")
    if len(names) != len(raws):         # a length-prefixed name held a NUL byte
        names = [raw.decode(encoding, "replace") for raw in raws]
    return names


_RECORD_FIELDS = dataclasses.fields(SymbolRecord)


def _plain_slots_record() -> bool:
    """True when every field is a slot and all but name, rva and kind have defaults."""
    for f in _RECORD_FIELDS:
        if not isinstance(getattr(SymbolRecord, f.name, None), MemberDescriptorType):
            return False
        if f.name not in ("name", "rva", "kind") and f.default is dataclasses.MISSING:
            return False
    return not hasattr(SymbolRecord, "__post_init__") and [f.name for f in _RECORD_FIELDS] == [
        "name", "rva", "kind", "size", "type_name"]


_RECORD_SLOTS = _plain_slots_record()
_new = object.__new__
if _RECORD_SLOTS:
    _SET = tuple(getattr(SymbolRecord, f.name).__set__ for f in _RECORD_FIELDS)
    _set_name, _set_rva, _set_kind, _set_size, _set_type = _SET


def make_records(names: list[str], rvas: list[int], kind: SymbolKind) -> list[SymbolRecord]:
    """``SymbolRecord(name, rva, kind)`` for every pair, fast.

    A big PDB has 100,000 publics, and the frozen dataclass's ``__init__``
    costs a Python call and five ``object.__setattr__`` calls each. When the
    record is a plain slots dataclass (it is), the objects are made bare and
    each slot is filled by its descriptor in one C-level ``map`` per field:
    exactly what ``__init__`` stores, at a third of the cost. Anything else
    falls back to the constructor.
    """
    if not _RECORD_SLOTS:
        return [SymbolRecord(n, r, kind) for n, r in zip(names, rvas)]
    records = list(map(_new, repeat(SymbolRecord, len(names))))
    columns = {"name": names, "rva": rvas, "kind": repeat(kind)}
    for f in _RECORD_FIELDS:
        column = columns.get(f.name, repeat(f.default))
        deque(map(getattr(SymbolRecord, f.name).__set__, records, column), maxlen=0)
    return records
