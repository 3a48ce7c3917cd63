"""PDB files: one MSF reader for both generations (2.0 "JG" and 7.0 "DS"), and the streams in them.

Public API (everything else in the package is internal):

- ``open_pdb(path_or_bytes, *, name=None, image_sections=None) -> PdbFile``:
  raises ``SymbolFileError`` for a missing, corrupt or unsupported file and
  never any other exception.
- ``PdbFile.identity -> SymbolId``: ``FileKind.PDB7`` with ``guid`` and ``age``
  (DBI age first, info-stream age second) or ``FileKind.PDB2`` with
  ``signature`` and ``age``.
- ``PdbFile.sections -> list[SectionHeader]``: the original sections when the
  PDB has OMAP, else the image's.
- ``PdbFile.publics()``, ``.globals()``, ``.procedures()``, ``.labels()``,
  ``.thunks()`` -> ``list[SymbolRecord]`` sorted by RVA (after OMAP).
- ``PdbFile.public_table()``, ``.global_table()``, ``.module_table(i)`` ->
  ``PdbTable`` (``symtab``): the same symbols as columns of RVAs and record
  offsets, records made on demand; ``.contribution_map()`` (``staged``) and
  ``.module_language(i)`` say which module owns an address and what compiled it.
- ``staged.PdbSymbols(pdb)``: the publics at once and the rest by address, the
  source a module's ``SymbolIndex`` reads from.
- ``PdbFile.has_private_symbols -> bool``.
- ``PdbFile.rva(segment, offset) -> int | None`` (after OMAP_FROM_SRC) and
  ``PdbFile.symbol_space_rva(image_rva) -> int | None`` (through OMAP_TO_SRC).
- ``PdbFile.line_for(rva) -> (file, line) | None``; ``PdbFile.lines() ->
  list[LineEntry(rva, length, file, line)]`` from C13 line tables.
- ``PdbFile.types -> TypeTable``: ``find(name)`` (complete UDT, exact then
  case-insensitive then typedef), ``by_index(ti)``, ``names(pattern)``,
  ``type_name(ti)``. ``TypeInfo`` has ``kind`` (struct, union, class, enum,
  pointer, array, bitfield, modifier, procedure, base, unknown), ``name``,
  ``size``, ``fields`` (``Field(name, offset, type_name, type, bit_position,
  bit_width)``), ``enumerators`` ([(name, value)]), ``type`` (what it refers
  to) and ``type_name`` as ``dt`` prints it.
- ``PdbFile.close()``; ``PdbFile`` is a context manager.

Loading is staged: opening reads only the MSF directory, the info stream and
the DBI header; ``publics()`` reads the public address map and the symbol
records; nothing reads types or module streams until asked. Record streams
on consecutive pages are read in place from the mmap, never copied.
"""

from __future__ import annotations

from kdcon.symbols.pdb.lines import LineEntry
from kdcon.symbols.pdb.pdbfile import PdbFile, open_pdb
from kdcon.symbols.pdb.tpi import TypeTable
from kdcon.symbols.pdb.typeinfo import Field, TypeInfo

__all__ = ["PdbFile", "open_pdb", "TypeTable", "TypeInfo", "Field", "LineEntry"]
