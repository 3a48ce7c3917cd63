"""Per-module address and name indexes over tables of symbols.

A table is a sorted column of RVAs plus a way to make the ``SymbolRecord`` of
each row on demand: ``RecordTable`` wraps ready-made records (DBG, COFF,
exports), the PDB reader's tables keep only offsets into the file
(``pdb.symtab``). An index may also have a *source* that hands it more tables
when an address range needs them (a PDB's globals and module streams, see
``pdb.staged``); name questions take every table first. Answers never depend
on what has been loaded: a record is looked up the same way whether its table
came first or last.

Address -> name (symbols.md §6.9): ``bisect`` on each table's RVAs. Records at
one address form a group; within it one record per undecorated, case-folded
name survives, the richest (function over data over label over public, then
the larger size; the earlier table and row on a tie), ordered by kind rank and
name. ``lookup`` gives the group's first record, its displacement and the
first record of the next group; ``past_end`` tells when the address lies past a
known length.

Name -> records (§6.10): the name indexes of ``names`` (raw and undecorated
forms, case-insensitive, wildcards), built on the first name query from every
table; the records they point at go through the same folding.
"""

from __future__ import annotations

import bisect
import heapq
import logging
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from operator import itemgetter
from typing import Protocol

from .model import SymbolKind, SymbolRecord
from .names import NameHashes, NameLines, has_wildcard, name_forms, undecorate, wildcard_regex

__all__ = [
    "AddressHit", "SymbolIndex", "SymbolTable", "SymbolSource", "RecordTable",
    "kind_rank", "undecorate", "wildcard_regex", "has_wildcard",
]

log = logging.getLogger(__name__)

_bisect_left = bisect.bisect_left
_bisect_right = bisect.bisect_right
_RANK = {SymbolKind.FUNCTION: 0, SymbolKind.DATA: 1, SymbolKind.LABEL: 2, SymbolKind.PUBLIC: 3,
         SymbolKind.COFF: 4, SymbolKind.EXPORT: 5}
_TOP = 0xFFFFFFFFFFFFFFFF
_GROUP_CACHE = 4096
_NAME_SLICE = 8192
_MAX_TABLES = 8
_LOSES, _WINS, _BOTH = 1, 2, 3         # verdicts on a two-row group (0: not judged yet)


def kind_rank(kind: SymbolKind) -> int:
    """Which of two records for one symbol is kept: the lower rank (function first)."""
    return _RANK.get(kind, 9)


class SymbolTable(Protocol):
    """Rows sorted by RVA; ``order`` ranks tables when records of two tie."""

    rvas: Sequence[int]
    order: int

    def __len__(self) -> int: ...

    def record(self, row: int) -> SymbolRecord: ...

    def names(self, start: int, stop: int) -> list[str]: ...

    def raw_name(self, row: int) -> object:
        """The name as stored: equal for two rows of one table type iff the names are."""

    def rank(self, row: int) -> int:
        """``kind_rank`` of the row's kind."""

    def origin(self, row: int) -> int:
        """The ``order`` that breaks a tie for this row (a merged table's rows keep theirs)."""


class SymbolSource(Protocol):
    """Tables an index gets on demand (see ``pdb.staged.PdbSymbols``)."""

    complete: bool

    def tables_for(self, low: int, high: int) -> list[SymbolTable]:
        """Tables not handed out yet that may hold symbols at RVAs ``low..high``."""

    def rest(self) -> list[SymbolTable]:
        """Every table not handed out yet."""

    def merge(self, tables: list[SymbolTable]) -> list[SymbolTable]:
        """``tables`` (all of them, by order) as fewer tables, for faster lookups."""


class RecordTable:
    """A table over ready-made records, kept in the order given within an address."""

    __slots__ = ("rvas", "_records", "order")

    def __init__(self, records: Iterable[SymbolRecord], order: int = 0) -> None:
        self._records = sorted(records, key=_rva_of)
        self.rvas = array("Q", [r.rva for r in self._records])
        self.order = order

    def __len__(self) -> int:
        return len(self._records)

    def record(self, row: int) -> SymbolRecord:
        return self._records[row]

    def names(self, start: int, stop: int) -> list[str]:
        return [r.name for r in self._records[start:stop]]

    def raw_name(self, row: int) -> str:
        return self._records[row].name

    def rank(self, row: int) -> int:
        return kind_rank(self._records[row].kind)

    def origin(self, row: int) -> int:
        return self.order


class AddressHit(tuple):
    """The symbol at or before an RVA: ``(record, displacement, next)``.

    ``past_end`` is True when the symbol's length is known and the RVA lies beyond
    it; ``next`` is the first symbol after the RVA, if any.
    """

    __slots__ = ()
    record: SymbolRecord = property(itemgetter(0))          # type: ignore[assignment]
    displacement: int = property(itemgetter(1))             # type: ignore[assignment]
    next: SymbolRecord | None = property(itemgetter(2))     # type: ignore[assignment]

    @property
    def past_end(self) -> bool:
        return 0 < self[0].size <= self[1]

    def __repr__(self) -> str:
        return f"AddressHit({self[0].name!r}+{self[1]:#x}, past_end={self.past_end})"


_new_hit = tuple.__new__


class SymbolIndex:
    """Address index and lazily built name indexes of one module's symbols.

    ``SymbolIndex(records)`` indexes ready-made records; ``SymbolIndex(tables=...,
    source=...)`` starts from some tables and asks ``source`` for more when an
    address range or a name query needs them.
    """

    __slots__ = ("_tables", "_source", "_groups", "_verdicts", "_starts", "_hashes", "_lines", "_count")

    def __init__(self, records: Iterable[SymbolRecord] = (), *,
                 tables: Sequence[SymbolTable] | None = None,
                 source: SymbolSource | None = None) -> None:
        self._tables: list[SymbolTable] = list(tables) if tables is not None else [RecordTable(records)]
        self._source = source
        self._groups: dict[int, list[tuple[SymbolRecord, int, int]]] = {}
        # Single table: per row, how its two-row group folds (see _survivor).
        self._verdicts: bytearray | None = None
        self._starts: list[int] = []
        self._hashes: NameHashes | None = None
        self._lines: NameLines | None = None
        self._count: int | None = None
        if source is None or source.complete:
            self._finish()

    @property
    def complete(self) -> bool:
        """True once every table is in (no source left to ask)."""
        return self._source is None

    def load_all(self) -> SymbolIndex:
        """Take every table the source still has (what a name query does)."""
        if self._source is not None:
            self._tables += self._source.rest()
            self._finish()
        return self

    def _finish(self) -> None:
        source, self._source = self._source, None
        tables = sorted((t for t in self._tables if len(t)), key=lambda t: t.order)
        if source is not None and len(tables) > 1:
            tables = source.merge(tables)
        self._tables = tables or self._tables[:1]
        self._verdicts = bytearray(len(self._tables[0])) if len(self._tables) == 1 else None
        self._groups.clear()
        self._starts = list(accumulate((len(t) for t in self._tables), initial=0))

    # Loading what an address needs ----------------------------------------------

    def _cover(self, rva: int) -> None:
        """Take the tables that may hold the symbols at, before and after ``rva``."""
        source = self._source
        assert source is not None
        while True:
            below = self._below(rva)
            more = source.tables_for(below if below is not None else 0, rva)
            if not more:
                break
            self._add(more)
        while True:
            above = self._above(rva)
            more = source.tables_for(rva + 1, above if above is not None else _TOP)
            if not more:
                break
            self._add(more)
        if source.complete:
            self._finish()

    def _add(self, tables: list[SymbolTable]) -> None:
        self._tables += tables
        if len(self._tables) > _MAX_TABLES and self._source is not None:
            # Many modules read one by one: fold them together so a lookup
            # does not bisect each of them.
            self._tables = self._source.merge(sorted(self._tables, key=lambda t: t.order))
        self._groups.clear()

    def _below(self, rva: int) -> int | None:
        """RVA of the last symbol at or below ``rva``."""
        best = None
        for t in self._tables:
            position = _bisect_right(t.rvas, rva) - 1
            if position >= 0 and (best is None or t.rvas[position] > best):
                best = t.rvas[position]
        return best

    def _above(self, rva: int) -> int | None:
        """RVA of the first symbol above ``rva``."""
        best = None
        for t in self._tables:
            position = _bisect_right(t.rvas, rva)
            if position < len(t.rvas) and (best is None or t.rvas[position] < best):
                best = t.rvas[position]
        return best

    # Groups of records at one address ------------------------------------------------

    def _group(self, rva: int) -> list[tuple[SymbolRecord, int, int]]:
        """The surviving records at ``rva`` in their final order, each with (table order, row)."""
        cached = self._groups.get(rva)
        if cached is not None:
            return cached
        found = []
        verdicts = self._verdicts
        for t in self._tables:
            rvas = t.rvas
            low = _bisect_left(rvas, rva)
            for row in range(low, _bisect_right(rvas, rva, low)):
                if verdicts is None or verdicts[row] != _LOSES:
                    found.append((t.origin(row), row, t))
        if len(found) == 1:
            _, row, t = found[0]
            group = [(t.record(row), t.order, row)]
        else:
            found.sort(key=itemgetter(0, 1))
            group = _pair(found) or _fold([(t.record(row), t.order, row) for _, row, t in found])
        if len(self._groups) >= _GROUP_CACHE:
            self._groups.clear()
        self._groups[rva] = group
        return group

    # Address -> name ---------------------------------------------------------

    def lookup(self, rva: int) -> AddressHit | None:
        """The nearest symbol at or before ``rva``; None below the first symbol."""
        if self._source is not None:
            self._cover(rva)
        if len(self._tables) == 1:
            table = self._tables[0]
            rvas = table.rvas
            position = _bisect_right(rvas, rva) - 1
            if position < 0:
                return None
            start = rvas[position]
            if position and rvas[position - 1] == start:
                row = self._survivor(position - 1, position, rvas)
                record = table.record(row) if row is not None else self._group(start)[0][0]
            else:
                record = table.record(position)
            following = None
            position += 1
            if position < len(rvas):
                after = rvas[position]
                if position + 1 < len(rvas) and rvas[position + 1] == after:
                    row = self._survivor(position, position + 1, rvas)
                    following = table.record(row) if row is not None else self._group(after)[0][0]
                else:
                    following = table.record(position)
            return _new_hit(AddressHit, (record, rva - start, following))
        below = self._below(rva)
        if below is None:
            return None
        above = self._above(rva)
        following = self._group(above)[0][0] if above is not None else None
        return _new_hit(AddressHit, (self._group(below)[0][0], rva - below, following))

    def _survivor(self, first: int, second: int, rvas: Sequence[int]) -> int | None:
        """The one row left of the two-row group ``first``, ``second`` when the
        pair rule (``_pair``) decides it, without making the loser's record;
        None otherwise. The verdict is kept for the next lookup."""
        verdicts = self._verdicts
        if verdicts is None or (first and rvas[first - 1] == rvas[first]) \
                or (second + 1 < len(rvas) and rvas[second + 1] == rvas[second]):
            return None
        if not verdicts[first]:
            table = self._tables[0]
            rank_a, rank_b = table.rank(first), table.rank(second)
            if rank_a == rank_b or table.raw_name(first) != table.raw_name(second):
                verdicts[first] = verdicts[second] = _BOTH
            elif rank_a < rank_b:
                verdicts[first], verdicts[second] = _WINS, _LOSES
            else:
                verdicts[first], verdicts[second] = _LOSES, _WINS
        if verdicts[first] == _LOSES:
            return second
        if verdicts[second] == _LOSES:
            return first
        return None

    def at(self, rva: int) -> list[SymbolRecord]:
        """Every symbol that starts exactly at ``rva``."""
        if self._source is not None:
            self._cover(rva)
        return [record for record, _, _ in self._group(rva)] if self._has(rva) else []

    def _has(self, rva: int) -> bool:
        for t in self._tables:
            position = _bisect_left(t.rvas, rva)
            if position < len(t.rvas) and t.rvas[position] == rva:
                return True
        return False

    def next_after(self, rva: int) -> SymbolRecord | None:
        """The first symbol above ``rva``."""
        if self._source is not None:
            self._cover(rva)
        above = self._above(rva)
        return self._group(above)[0][0] if above is not None else None

    # Whole-index questions -------------------------------------------------------

    def _addresses(self) -> Iterable[int]:
        """Every distinct symbol address, ascending (every table loaded)."""
        self.load_all()
        merged = self._tables[0].rvas if len(self._tables) == 1 else heapq.merge(
            *(t.rvas for t in self._tables))
        last = None
        for rva in merged:
            if rva != last:
                last = rva
                yield rva

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(len(self._group(rva)) for rva in self._addresses())
        return self._count

    @property
    def records(self) -> list[SymbolRecord]:
        """All records in address order (every table loaded)."""
        return [record for rva in self._addresses() for record, _, _ in self._group(rva)]

    def _kept(self, positions: Iterable[int], made: dict[int, SymbolRecord] | None = None
              ) -> list[SymbolRecord]:
        """Records at ``positions`` (rows counted across the tables) that survive
        folding, in final order; ``made`` holds records already made for some."""
        kept = []
        alone = len(self._tables) == 1
        for position in sorted(set(positions)):
            index = _bisect_right(self._starts, position) - 1
            table, row = self._tables[index], position - self._starts[index]
            rvas = table.rvas
            rva = rvas[row]
            if alone and (row == 0 or rvas[row - 1] != rva) and (row + 1 == len(rvas) or rvas[row + 1] != rva):
                kept.append(made[position] if made and position in made else table.record(row))
                continue
            for record, order, at in self._group(rva):
                if order == table.order and at == row:
                    kept.append(record)
        kept.sort(key=_address_order)
        return kept

    def _names(self) -> Iterator[tuple[int, list[str]]]:
        """(first position, names) a slice of rows at a time, over all tables."""
        self.load_all()
        for start, table in zip(self._starts, self._tables):
            for first in range(0, len(table), _NAME_SLICE):
                yield start + first, table.names(first, min(first + _NAME_SLICE, len(table)))

    # Name -> records ---------------------------------------------------------

    def find(self, name: str) -> list[SymbolRecord]:
        """Records named ``name`` (case-insensitive; raw or undecorated form)."""
        if self._hashes is None:
            hashes = NameHashes()
            for first, names in self._names():
                hashes.add(first, names)
            self._hashes = hashes.finish()
        key = name.casefold()
        made: dict[int, SymbolRecord] = {}
        for position in self._hashes.candidates(key):
            record = self._record_at(position)
            if key in name_forms(record.name):
                made[position] = record
        kept = self._kept(made, made)
        if len(kept) > 1:
            exact = [r for r in kept if r.name == name]
            return exact or kept
        return kept

    def _record_at(self, position: int) -> SymbolRecord:
        index = _bisect_right(self._starts, position) - 1
        return self._tables[index].record(position - self._starts[index])

    def match(self, pattern: str) -> list[SymbolRecord]:
        """Records whose raw or undecorated name matches ``pattern``, by address."""
        if not has_wildcard(pattern):
            return self.find(pattern)
        if pattern.strip("*") == "":
            return self.records
        if self._lines is None:
            lines = NameLines()
            for first, names in self._names():
                lines.add(first, names)
            self._lines = lines.finish()
        return self._kept(self._lines.positions(pattern))


def _rva_of(record: SymbolRecord) -> int:
    return record.rva


def _pair(found: list[tuple[int, int, SymbolTable]]) -> list[tuple[SymbolRecord, int, int]] | None:
    """The common group, a public and the function (or data) it names: the same
    name in two kinds. The richer survives, made without making the other."""
    if len(found) != 2:
        return None
    (_, row_a, a), (_, row_b, b) = found
    if type(a) is not type(b) or a.raw_name(row_a) != b.raw_name(row_b):
        return None
    rank_a, rank_b = a.rank(row_a), b.rank(row_b)
    if rank_a == rank_b:
        return None
    return [(a.record(row_a), a.order, row_a)] if rank_a < rank_b else [(b.record(row_b), b.order, row_b)]


def _fold(group: list[tuple[SymbolRecord, int, int]]) -> list[tuple[SymbolRecord, int, int]]:
    """Within one address keep one record per (undecorated) name, richest first."""
    best: dict[str, tuple[SymbolRecord, int, int]] = {}
    for entry in group:
        record = entry[0]
        key = undecorate(record.name).casefold()
        held = best.get(key)
        if held is None or _better(record, held[0]):
            best[key] = entry
    if len(best) == 1:
        return list(best.values())
    return sorted(best.values(), key=_entry_order)


def _entry_order(entry: tuple[SymbolRecord, int, int]) -> tuple[int, int, str]:
    return _address_order(entry[0])


def _better(candidate: SymbolRecord, held: SymbolRecord) -> bool:
    """Of two records for one symbol keep the richer one (private over public)."""
    return (_RANK.get(candidate.kind, 9), -candidate.size) < (_RANK.get(held.kind, 9), -held.size)


def _address_order(record: SymbolRecord) -> tuple[int, int, str]:
    return (record.rva, _RANK.get(record.kind, 9), record.name)
