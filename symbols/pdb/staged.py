"""A PDB's symbols for an index, read as addresses need them.

``PdbSymbols`` gives an index the publics at once and keeps the rest back:
the globals (every S_GDATA32/S_LDATA32 of the symbol-record stream) and each
module stream's procedures and labels. When the index asks about an RVA range
it reads only what can hold a symbol there, found through the DBI section
contributions (symbols.md 2.4, ``Contributions``): the module streams whose
contributions overlap the range, and the globals when one of those
contributions is data, or code from anything but the C or C++ compiler (an
assembler's data labels lie in code). A first ``ln`` in a big private PDB so
reads the publics and one module stream instead of every stream; a name query
takes everything (``rest``).

The answers are a full load's as long as every procedure and label lies in a
contribution of its own module (its end included: MSVC puts a ``$LN`` label
on the byte after a function) and every global of a C or C++ module in a data
contribution: how MSVC and clang-cl with lld lay images out, checked over
every symbol and contribution edge of the test PDBs. Without usable
contributions (no DBI, no rows, OMAP between the two address spaces) the
first question reads everything. A module or globals stream that turns out
corrupt is reported once and left out; the publics are read at construction
and their failure is the caller's ``SymbolFileError``.
"""

from __future__ import annotations

import logging
from bisect import bisect_right

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import SectionHeader
from kdcon.symbols.pdb.records import CV_CFL_C, CV_CFL_CXX
from kdcon.symbols.pdb.streams import SC_VER60, SC_VER_V2
from kdcon.symbols.pdb.structs import SC40, SC60
from kdcon.symbols.pdb.symtab import PdbTable

__all__ = ["Contributions", "PdbSymbols"]

log = logging.getLogger(__name__)

_CODE = 0x20 | 0x20000000       # IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE


class Contributions:
    """DBI section contributions, read in place: which modules own the code and
    data at an RVA range, and whether any of it is not code.

    The table is sorted by section and offset (microsoft-pdb ``dbi.cpp`` keeps
    it so, and DIA bisects it the same way), and contributions within a section
    do not overlap; both are taken as given, so opening costs nothing and a
    question costs a bisection a section.
    """

    __slots__ = ("_count", "_halves", "_words", "_half_step", "_word_step", "_sections", "_key")

    def __init__(self, raw: bytes, sections: list[SectionHeader]) -> None:
        view = memoryview(raw).cast("B")
        version = view[:4].cast("I")[0] if len(view) >= 4 else 0
        if version == SC_VER60:
            at, step = 4, SC60.size
        elif version == SC_VER_V2:
            at, step = 4, SC60.size + 4
        else:
            at, step = 0, SC40.size
        self._count = max(0, (len(view) - at) // step)
        body = view[at:at + self._count * step]
        self._halves = body.cast("H")
        self._words = body.cast("i")
        self._half_step = step // 2
        self._word_step = step // 4
        self._sections = [(s.virtual_address, s.virtual_size) for s in sections]
        halves, words, half_step, word_step = self._halves, self._words, self._half_step, self._word_step
        self._key = lambda row: (halves[row * half_step], words[row * word_step + 1])

    def __len__(self) -> int:
        return self._count

    def between(self, low: int, high: int) -> tuple[set[int], bool]:
        """Modules with a contribution overlapping RVAs ``low..high``, and whether
        any overlapping contribution is not code. A contribution counts up to
        and including its end: a label may mark the byte after a function."""
        modules: set[int] = set()
        data = False
        halves, words, half_step, word_step = self._halves, self._words, self._half_step, self._word_step
        rows = range(self._count)
        for number, (base, size) in enumerate(self._sections, 1):
            if base > high or (size and base + size < low):
                continue
            first, last = low - base, high - base
            row = bisect_right(rows, (number, last), key=self._key) - 1
            while row >= 0 and halves[row * half_step] == number:
                at = row * word_step
                if words[at + 1] + max(words[at + 2], 0) < first:
                    break
                modules.add(halves[row * half_step + 8])
                data = data or not words[at + 3] & _CODE
                row -= 1
        return modules, data


class PdbSymbols:
    """The ``SymbolSource`` (``index``) of one PDB: publics first, the rest by address."""

    def __init__(self, pdb) -> None:
        self._pdb = pdb
        self.publics: PdbTable = pdb.public_table()
        self._globals_pending = True
        self._languages: dict[int, bool] = {}
        self._pending = set(range(len(pdb.dbi.modules))) if pdb.dbi is not None else set()
        try:
            self._map = pdb.contribution_map()
        except SymbolFileError as exc:
            log.warning("%s: section contributions unreadable (%s); reading all symbols at once",
                        pdb.identity.name, exc)
            self._map = None

    @property
    def complete(self) -> bool:
        return not self._pending and not self._globals_pending

    def tables_for(self, low: int, high: int) -> list[PdbTable]:
        if self.complete:
            return []
        if self._map is None:
            return self.rest()
        modules, data = self._map.between(low, high)
        tables = []
        for module in sorted(modules & self._pending):
            tables += self._module(module)
        if self._globals_pending and (data or not all(map(self._compiled, modules))):
            tables += self._globals()
        return tables

    def _compiled(self, module: int) -> bool:
        """True when module ``module`` came from the C or C++ compiler, whose
        globals never lie in code (an assembler's data labels may)."""
        known = self._languages.get(module)
        if known is None:
            try:
                language = self._pdb.module_language(module)
            except SymbolFileError:
                language = None
            known = self._languages[module] = language in (CV_CFL_C, CV_CFL_CXX)
        return known

    def rest(self) -> list[PdbTable]:
        tables = self._globals() if self._globals_pending else []
        for module in sorted(self._pending):
            tables += self._module(module)
        return tables

    def merge(self, tables: list[PdbTable]) -> list[PdbTable]:
        """The tables as fewer: all in one once everything is read, else the
        publics apart (so that folding in a few more modules stays cheap) and
        the rest in one.

        Tables that do not share addresses (globals and module streams, as a
        rule) are laid end to end by address; the publics, which interleave
        with all of them, are merged in by one sort of two runs.
        """
        rest = [t for t in tables if t is not self.publics]
        if not rest:
            return tables
        by_address = sorted(rest, key=lambda t: t.rvas[0])
        if all(a.rvas[-1] < b.rvas[0] for a, b in zip(by_address, by_address[1:])):
            rest = by_address
        private = PdbTable.merged(rest) if len(rest) > 1 else rest[0]
        if self.publics not in tables:
            return [private]
        if not self.complete:
            return [self.publics, private]
        return [PdbTable.merged([self.publics, private])]

    def _globals(self) -> list[PdbTable]:
        self._globals_pending = False
        try:
            table = self._pdb.global_table()
        except SymbolFileError as exc:
            log.warning("%s: globals unreadable (%s); left out", self._pdb.identity.name, exc)
            return []
        return [table] if len(table) else []

    def _module(self, module: int) -> list[PdbTable]:
        self._pending.discard(module)
        try:
            table = self._pdb.module_table(module)
        except SymbolFileError as exc:
            name = self._pdb.dbi.modules[module].name
            log.warning("%s: module %s unreadable (%s); its symbols left out",
                        self._pdb.identity.name, name, exc)
            return []
        return [table] if table is not None and len(table) else []
