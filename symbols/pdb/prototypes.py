"""A function's argument types from its PDB, for ``x`` and ``ln`` to print its prototype.

What it does: ``Prototypes(pdb).arguments(rva)`` finds the S_GPROC32/S_LPROC32
record that starts at ``rva`` in the module tables whose section contributions hold
that address (every module's when the PDB has no usable contributions) and returns
the ``TypeInfo`` of each argument of its LF_PROCEDURE type, in order (an empty list
for ``(void)``). What it does not do: name the arguments (that is ``locals.py``,
from the S_LOCAL records), render C text (the console does), or follow the ``_ID``
forms' IPI function ids (a linker turns them into S_*PROC32 with a TPI type), so
those, publics and procedures whose type is no LF_PROCEDURE get None. Spec:
symbols.md 2.4 (section contributions); cvinfo.h ``PROCSYM32``, ``lfProc``,
``lfArgList``.
"""

from __future__ import annotations

import logging
from bisect import bisect_left

from kdcon.symbols import codeview as cv
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb.guard import guarded
from kdcon.symbols.pdb.typeinfo import TypeInfo

__all__ = ["Prototypes", "procedure_arguments"]

log = logging.getLogger(__name__)

# Forms whose type index is a TPI index (the _ID forms name an IPI function id).
_TYPED_PROCS = cv.PROC_KINDS - {cv.S_GPROC32_ID, cv.S_LPROC32_ID}


class Prototypes:
    """Argument types by procedure address for one open PDB, from the module tables
    the symbol index reads anyway (``PdbFile.module_table``: a row's record gives its
    type index without a scan)."""

    def __init__(self, pdb) -> None:
        self.pdb = pdb

    def arguments(self, rva: int) -> list[TypeInfo] | None:
        """Argument types of the procedure starting at ``rva`` (``[]`` for ``(void)``);
        None without one or without a procedure type. Raises ``SymbolFileError`` for
        a damaged file."""
        ti = self.type_index(rva)
        types = self.pdb.types if ti is not None else None
        return types.arguments(ti) if types is not None else None

    @guarded
    def type_index(self, rva: int) -> int | None:
        """The TPI type index of the S_GPROC32/S_LPROC32 record starting at ``rva``."""
        count = len(self.pdb.dbi.modules) if self.pdb.dbi is not None else 0
        for index in _candidates(self.pdb, rva, count):
            table = self.pdb.module_table(index)
            if table is None:
                continue
            row = bisect_left(table.rvas, rva)
            while row < len(table) and table.rvas[row] == rva:
                found = table.type_index(row, _TYPED_PROCS)
                if found is not None:
                    return found
                row += 1
        return None


def procedure_arguments(pdb, rva: int) -> list[TypeInfo] | None:
    """``Prototypes(pdb).arguments(rva)`` for a single question."""
    return Prototypes(pdb).arguments(rva)


def _candidates(pdb, rva: int, count: int) -> list[int]:
    try:
        contributions = pdb.contribution_map()
    except SymbolFileError as exc:
        log.debug("%s: section contributions unreadable: %s", pdb.identity.name, exc)
        contributions = None
    if contributions is None or not len(contributions):
        return list(range(count))
    return sorted(m for m in contributions.between(rva, rva)[0] if 0 <= m < count)
