"""Plain records every parser in the symbols layer reduces its file to.

An image, a DBG file and a PDB each give one ``SymbolId`` (who the file is) and
lists of ``SymbolRecord`` (what it names, by RVA). Matching and store keys are
derived from ``SymbolId`` alone; indexes are built from ``SymbolRecord`` lists.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

__all__ = ["FileKind", "SymbolKind", "SymbolId", "SymbolRecord", "SectionHeader"]


class FileKind(enum.Enum):
    PE = "pe"
    DBG = "dbg"
    PDB2 = "pdb2"
    PDB7 = "pdb7"


class SymbolKind(enum.Enum):
    PUBLIC = "public"        # S_PUB32 and friends, COFF/NB09 publics
    FUNCTION = "function"    # S_GPROC32/S_LPROC32: has a length
    DATA = "data"            # S_GDATA32/S_LDATA32
    LABEL = "label"          # S_LABEL32
    EXPORT = "export"        # PE export table (the "export symbols" fallback)
    COFF = "coff"            # COFF symbol table in a DBG file


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolId:
    """Identity of an image, DBG or PDB: everything matching looks at.

    ``timestamp``, ``size_of_image`` and ``checksum`` come from images and DBG
    files; ``signature`` (NB10 / PDB 2.0) or ``guid`` (RSDS / PDB 7.0) and ``age``
    from PDBs and the CodeView records that point at them. 0 or None means the
    file does not carry the field.
    """

    kind: FileKind
    name: str                       # base name as recorded, e.g. "ntoskrnl.exe", "trackdemo.pdb"
    timestamp: int = 0
    size_of_image: int = 0
    checksum: int = 0
    signature: int | None = None
    guid: uuid.UUID | None = None
    age: int = 0
    pdb_name: str | None = None     # for images and DBGs: the PDB their CodeView record names


@dataclass(frozen=True, slots=True)
class SectionHeader:
    name: str
    virtual_address: int            # RVA
    virtual_size: int
    characteristics: int = 0


@dataclass(frozen=True, slots=True)
class SymbolRecord:
    """One named address in an image, relative to the image base."""

    name: str
    rva: int
    kind: SymbolKind
    size: int = 0                   # function or data length when known, else 0
    type_name: str | None = None    # for globals with a type record
