"""Per-module address and name indexes over ``SymbolRecord`` lists.

Address -> name (symbols.md §6.9): one sorted ``array('Q')`` of RVAs and a
parallel list of records; ``bisect`` gives ``name+0xdisp``. Function lengths
(S_GPROC32 ``len``, FPO ``cbProcSize``, data sizes) are kept, so ``ln`` can say
that an address lies past the end of the nearest symbol.

Name -> records (§6.10): a dict from the case-folded raw name and its undecorated
form (leading ``_``/``@`` and trailing ``@N`` of x86 C names removed; C++ ``?``
names kept), built on the first name query. Wildcards (``*`` any run, ``?`` one
character, case-insensitive, as ``x`` takes them) run one compiled regular
expression over all names joined into a single string, so one query over every
name costs one C-level scan.

Records are never modified; the index holds the caller's objects.
"""

from __future__ import annotations

import bisect
import logging
import re
from array import array
from collections.abc import Iterable
from operator import itemgetter

from .model import SymbolKind, SymbolRecord

_new_hit = tuple.__new__
_bisect_right = bisect.bisect_right

__all__ = ["AddressHit", "SymbolIndex", "undecorate", "wildcard_regex", "has_wildcard"]

log = logging.getLogger(__name__)

_DECORATION = re.compile(r"^[_@]?(?P<core>[^@]+?)(?:@\d+)?$")
_RANK = {SymbolKind.FUNCTION: 0, SymbolKind.DATA: 1, SymbolKind.LABEL: 2, SymbolKind.PUBLIC: 3,
         SymbolKind.COFF: 4, SymbolKind.EXPORT: 5}


def undecorate(name: str) -> str:
    """x86 C decoration removed: ``_KeBugCheck@4`` -> ``KeBugCheck``; C++ names as-is."""
    if not name or name[0] == "?" or (name[0] not in "_@" and "@" not in name):
        return name
    found = _DECORATION.match(name)
    return found.group("core") if found else name


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def wildcard_regex(pattern: str) -> str:
    """Regular-expression text for an ``x``-style pattern over one name per line."""
    out = []
    for char in pattern:
        if char == "*":
            out.append("[^\n]*")
        elif char == "?":
            out.append("[^\n]")
        else:
            out.append(re.escape(char))
    return "".join(out)


class AddressHit(tuple):
    """The symbol at or before an RVA: ``(record, displacement, next)``.

    ``past_end`` is True when the symbol's length is known and the RVA lies beyond
    it; ``next`` is the first symbol after the RVA, if any. A tuple so that the
    hot lookup path builds it in C.
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


class SymbolIndex:
    """Sorted address index and lazily built name index of one module's symbols."""

    __slots__ = ("_rvas", "_records", "_best", "_following", "_names", "_joined", "_offsets", "_order")

    def __init__(self, records: Iterable[SymbolRecord]) -> None:
        ordered = sorted(records, key=_rva_of)
        if any(ordered[i].rva == ordered[i + 1].rva for i in range(len(ordered) - 1)):
            ordered = _fold_duplicates(ordered)
        self._records: list[SymbolRecord] = ordered
        self._rvas = array("Q", [r.rva for r in ordered])
        # For each position the best record of its address group (the group's first):
        # a lookup lands on the last record at or below the address.
        best = list(ordered)
        for position in range(1, len(ordered)):
            if ordered[position].rva == ordered[position - 1].rva:
                best[position] = best[position - 1]
        self._best = best
        self._following: list[SymbolRecord | None] = ordered[1:] + [None]
        self._names: dict[str, list[int]] | None = None
        self._joined: str | None = None
        self._offsets: array | None = None
        self._order: list[int] | None = None

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> list[SymbolRecord]:
        """All records in address order."""
        return self._records

    # Address -> name ---------------------------------------------------------

    def lookup(self, rva: int) -> AddressHit | None:
        """The nearest symbol at or before ``rva``; None below the first symbol."""
        position = _bisect_right(self._rvas, rva) - 1
        if position < 0:
            return None
        record = self._best[position]
        return _new_hit(AddressHit, (record, rva - record.rva, self._following[position]))

    def at(self, rva: int) -> list[SymbolRecord]:
        """Every symbol that starts exactly at ``rva``."""
        low = bisect.bisect_left(self._rvas, rva)
        high = bisect.bisect_right(self._rvas, rva)
        return self._records[low:high]

    def next_after(self, rva: int) -> SymbolRecord | None:
        position = bisect.bisect_right(self._rvas, rva)
        return self._records[position] if position < len(self._records) else None

    # Name -> records ---------------------------------------------------------

    def _name_map(self) -> dict[str, int | list[int]]:
        """Case-folded raw and undecorated names -> a position, or a list when shared."""
        if self._names is None:
            records = self._records
            folded = [r.name.casefold() for r in records]
            names: dict[str, int | list[int]] = dict(zip(folded, range(len(folded))))
            extra = [(folded[p], p) for p in range(len(folded)) if names[folded[p]] != p]
            extra += [(undecorate(r.name).casefold(), p) for p, r in enumerate(records)
                      if r.name[:1] in ("_", "@") or "@" in r.name]
            for key, position in extra:
                held = names.get(key)
                if held is None:
                    names[key] = position
                elif isinstance(held, int):
                    if held != position:
                        names[key] = sorted({held, position})
                elif position not in held:
                    held.append(position)
                    held.sort()
            self._names = names
        return self._names

    def find(self, name: str) -> list[SymbolRecord]:
        """Records named ``name`` (case-insensitive; raw or undecorated form)."""
        positions = self._name_map().get(name.casefold())
        if positions is None:
            return []
        if isinstance(positions, int):
            return [self._records[positions]]
        exact = [p for p in positions if self._records[p].name == name]
        chosen = exact or positions
        return [self._records[p] for p in chosen]

    def _wildcard_text(self) -> tuple[str, array, list[int]]:
        if self._joined is None:
            parts: list[str] = []
            owners: list[int] = []
            for position, record in enumerate(self._records):
                raw = record.name.casefold()
                parts.append(raw)
                owners.append(position)
                plain = undecorate(record.name).casefold()
                if plain != raw:
                    parts.append(plain)
                    owners.append(position)
            offsets = array("Q")
            total = 0
            for part in parts:
                offsets.append(total)
                total += len(part) + 1
            self._joined = "\n".join(parts)
            self._offsets = offsets
            self._order = owners
        assert self._offsets is not None and self._order is not None
        return self._joined, self._offsets, self._order

    def match(self, pattern: str) -> list[SymbolRecord]:
        """Records whose raw or undecorated name matches ``pattern``, by address."""
        if not has_wildcard(pattern):
            return sorted(self.find(pattern), key=_address_order)
        if pattern.strip("*") == "":
            return list(self._records)
        text, offsets, owners = self._wildcard_text()
        regex = re.compile(r"(?m)^" + wildcard_regex(pattern.casefold()) + r"$")
        hits: set[int] = set()
        for found in regex.finditer(text):
            line = bisect.bisect_right(offsets, found.start()) - 1
            hits.add(owners[line])
        return [self._records[p] for p in sorted(hits)]


def _rva_of(record: SymbolRecord) -> int:
    return record.rva


def _fold_duplicates(ordered: list[SymbolRecord]) -> list[SymbolRecord]:
    """Within each address keep one record per (undecorated) name, richest first."""
    out: list[SymbolRecord] = []
    start = 0
    while start < len(ordered):
        end = start + 1
        while end < len(ordered) and ordered[end].rva == ordered[start].rva:
            end += 1
        if end - start == 1:
            out.append(ordered[start])
        else:
            best: dict[str, SymbolRecord] = {}
            for record in ordered[start:end]:
                key = undecorate(record.name).casefold()
                held = best.get(key)
                if held is None or _better(record, held):
                    best[key] = record
            out.extend(sorted(best.values(), key=_address_order))
        start = end
    return out


def _better(candidate: SymbolRecord, held: SymbolRecord) -> bool:
    """Of two records for one symbol keep the richer one (private over public)."""
    return (_RANK.get(candidate.kind, 9), -candidate.size) < (_RANK.get(held.kind, 9), -held.size)


def _address_order(record: SymbolRecord) -> tuple[int, int, str]:
    return (record.rva, _RANK.get(record.kind, 9), record.name)
