"""DBG files (separate debug files of NT 3.x/4.0/2000): identity, sections, symbols.

Layout (symbols.md §1.2-§1.5)::

    0x00                     IMAGE_SEPARATE_DEBUG_HEADER (0x30)
    0x30                     IMAGE_SECTION_HEADER[NumberOfSections] (copied from the image)
    +40*n                    exported names (ExportedNamesSize bytes, NUL-separated)
    +ExportedNamesSize       IMAGE_DEBUG_DIRECTORY[DebugDirectorySize / 28]
    ...                      blobs at PointerToRawData (offsets inside the .dbg):
                             MISC, CODEVIEW (NB10 -> PDB 2.0, or inline NB09/NB11),
                             COFF symbols, FPO, OMAP_TO_SRC / OMAP_FROM_SRC

Gives a ``SymbolId`` (kind DBG; NB10 signature/age/PDB name when present), the
section headers, exported names, COFF symbols as ``SymbolRecord`` (through
OMAP_FROM_SRC when present, lengths from FPO), FPO records and OMAP tables.
Inline CodeView NB09/NB11 publics are decoded by ``cvinline.py``. Every size
and offset is checked; bad input raises ``SymbolFileError`` only. The matching
builder is ``dbgwriter.py``.
"""

from __future__ import annotations

import bisect
import logging
import struct
from dataclasses import dataclass, field

from construct import Bytes, Const, Int8ul, Int16sl, Int16ul, Int32ul, Struct

from .debugdir import (IMAGE_DEBUG_TYPE_CODEVIEW, IMAGE_DEBUG_TYPE_COFF, IMAGE_DEBUG_TYPE_FPO,
                       IMAGE_DEBUG_TYPE_MISC, IMAGE_DEBUG_TYPE_OMAP_FROM_SRC,
                       IMAGE_DEBUG_TYPE_OMAP_TO_SRC, CodeViewRef, DebugEntry, FpoData, decode_name,
                       parse_codeview_ref, parse_debug_directory, parse_fpo, parse_misc_name,
                       parse_section_headers, parse_struct, read_source)
from .cvinline import read_inline_publics
from .errors import SymbolFileError
from .model import FileKind, SectionHeader, SymbolId, SymbolKind, SymbolRecord

__all__ = ["IMAGE_SEPARATE_DEBUG_HEADER", "IMAGE_COFF_SYMBOLS_HEADER", "IMAGE_SYMBOL",
           "IMAGE_SEPARATE_DEBUG_SIGNATURE", "DbgFile", "read_dbg", "omap_map"]

log = logging.getLogger(__name__)

IMAGE_SEPARATE_DEBUG_SIGNATURE = 0x4944
IMAGE_SEPARATE_DEBUG_MISMATCH = 0x8000

IMAGE_SEPARATE_DEBUG_HEADER = Struct(
    "Signature" / Const(IMAGE_SEPARATE_DEBUG_SIGNATURE, Int16ul), "Flags" / Int16ul,
    "Machine" / Int16ul, "Characteristics" / Int16ul, "TimeDateStamp" / Int32ul,
    "CheckSum" / Int32ul, "ImageBase" / Int32ul, "SizeOfImage" / Int32ul,
    "NumberOfSections" / Int32ul, "ExportedNamesSize" / Int32ul, "DebugDirectorySize" / Int32ul,
    "SectionAlignment" / Int32ul, "Reserved" / Bytes(8),
)
IMAGE_COFF_SYMBOLS_HEADER = Struct(
    "NumberOfSymbols" / Int32ul, "LvaToFirstSymbol" / Int32ul, "NumberOfLinenumbers" / Int32ul,
    "LvaToFirstLinenumber" / Int32ul, "RvaToFirstByteOfCode" / Int32ul,
    "RvaToLastByteOfCode" / Int32ul, "RvaToFirstByteOfData" / Int32ul,
    "RvaToLastByteOfData" / Int32ul,
)
IMAGE_SYMBOL = Struct(
    "Name" / Bytes(8), "Value" / Int32ul, "SectionNumber" / Int16sl, "Type" / Int16ul,
    "StorageClass" / Int8ul, "NumberOfAuxSymbols" / Int8ul,
)

_HEADER_SIZE = IMAGE_SEPARATE_DEBUG_HEADER.sizeof()
_SYMBOL = struct.Struct("<8sIhHBB")
IMAGE_SYM_CLASS_EXTERNAL, IMAGE_SYM_CLASS_STATIC, IMAGE_SYM_CLASS_FUNCTION = 2, 3, 0x65
MAX_COFF_SYMBOLS = 1 << 21
MAX_EXPORTED_NAMES = 1 << 24


def omap_map(table: list[tuple[int, int]], rva: int) -> int | None:
    """Map ``rva`` through an OMAP table (sorted by source RVA); None when unmapped."""
    position = bisect.bisect_right(table, rva, key=lambda e: e[0]) - 1
    if position < 0:
        return None
    source, target = table[position]
    return None if target == 0 else target + (rva - source)


@dataclass(slots=True)
class DbgFile:
    """A parsed DBG file."""

    identity: SymbolId
    machine: int
    characteristics: int
    image_base: int
    flags: int
    section_alignment: int
    sections: list[SectionHeader]
    exported_names: list[str]
    debug_entries: list[DebugEntry]
    misc_name: str | None
    codeview: CodeViewRef | None
    _data: bytes = field(repr=False)
    _coff: list[SymbolRecord] | None = field(repr=False, default=None)
    _codeview_symbols: list[SymbolRecord] | None = field(repr=False, default=None)

    def _blob(self, kind: int) -> bytes | None:
        for entry in self.debug_entries:
            if entry.type == kind:
                if entry.pointer + entry.size > len(self._data):
                    raise SymbolFileError(f"debug data of type {kind} lies past the end of the file")
                return self._data[entry.pointer:entry.pointer + entry.size]
        return None

    @property
    def has_coff(self) -> bool:
        return any(e.type == IMAGE_DEBUG_TYPE_COFF for e in self.debug_entries)

    @property
    def has_inline_codeview(self) -> bool:
        return self.codeview is not None and self.codeview.format in ("NB09", "NB11")

    def fpo(self) -> list[FpoData]:
        blob = self._blob(IMAGE_DEBUG_TYPE_FPO)
        return parse_fpo(blob) if blob else []

    def omap(self, kind: int) -> list[tuple[int, int]]:
        blob = self._blob(kind)
        if not blob:
            return []
        count = len(blob) // 8
        pairs = [struct.unpack_from("<II", blob, 8 * i) for i in range(count)]
        return sorted(pairs)

    def omap_from_src(self) -> list[tuple[int, int]]:
        return self.omap(IMAGE_DEBUG_TYPE_OMAP_FROM_SRC)

    def omap_to_src(self) -> list[tuple[int, int]]:
        return self.omap(IMAGE_DEBUG_TYPE_OMAP_TO_SRC)

    def coff_symbols(self) -> list[SymbolRecord]:
        """COFF publics and statics by image RVA, lengths from FPO when known."""
        if self._coff is None:
            blob = self._blob(IMAGE_DEBUG_TYPE_COFF)
            records = _coff_records(blob, self.sections) if blob else []
            self._coff = _finish(records, self.omap_from_src(), self.fpo())
        return self._coff

    def codeview_symbols(self) -> list[SymbolRecord]:
        """Publics of inline NB09/NB11 CodeView (``cvinline.py``)."""
        if self._codeview_symbols is None:
            self._codeview_symbols = []
            blob = self._blob(IMAGE_DEBUG_TYPE_CODEVIEW) if self.has_inline_codeview else None
            if blob:
                records = read_inline_publics(blob, self.sections)
                self._codeview_symbols = _finish(records, self.omap_from_src(), self.fpo())
        return self._codeview_symbols

    def symbols(self) -> list[SymbolRecord]:
        """The best symbols the file carries: inline CodeView, else COFF."""
        return self.codeview_symbols() or self.coff_symbols()


def _finish(records: list[SymbolRecord], omap: list[tuple[int, int]],
            fpo: list[FpoData]) -> list[SymbolRecord]:
    if omap:
        mapped = []
        for record in records:
            rva = omap_map(omap, record.rva)
            if rva is not None:
                mapped.append(SymbolRecord(record.name, rva, record.kind, record.size))
        records = mapped
    if fpo:
        lengths = {f.start: f.proc_size for f in fpo}
        records = [SymbolRecord(r.name, r.rva, r.kind, lengths[r.rva]) if r.rva in lengths and not r.size
                   else r for r in records]
    records.sort(key=lambda r: (r.rva, r.name))
    return records


def _coff_records(blob: bytes, sections: list[SectionHeader]) -> list[SymbolRecord]:
    header = parse_struct(IMAGE_COFF_SYMBOLS_HEADER, blob[:32], "COFF symbols header")
    count, first = header.NumberOfSymbols, header.LvaToFirstSymbol
    if count > MAX_COFF_SYMBOLS:
        raise SymbolFileError(f"{count} COFF symbols")
    end = first + 18 * count
    if first > len(blob) or end > len(blob):
        raise SymbolFileError("COFF symbol table outside its debug data")
    strings_size = struct.unpack_from("<I", blob, end)[0] if end + 4 <= len(blob) else 0
    strings = blob[end:end + strings_size] if strings_size >= 4 else b""
    records: list[SymbolRecord] = []
    index = 0
    while index < count:
        raw, value, section, kind, storage, aux = _SYMBOL.unpack_from(blob, first + 18 * index)
        index += 1 + aux
        if storage not in (IMAGE_SYM_CLASS_EXTERNAL, IMAGE_SYM_CLASS_STATIC) or not 1 <= section <= len(sections):
            continue
        if raw[:4] == b"\x00\x00\x00\x00":
            (offset,) = struct.unpack_from("<I", raw, 4)
            if offset < 4 or offset >= len(strings):
                raise SymbolFileError(f"COFF name offset {offset} outside the string table")
            name = decode_name(strings[offset:offset + 1024])
        else:
            name = decode_name(raw)
        if not name or name.startswith("."):
            continue           # section symbols, .bf/.ef/.lf
        if storage == IMAGE_SYM_CLASS_STATIC and value == 0 and aux:
            continue           # section definition records
        rva = sections[section - 1].virtual_address + value
        records.append(SymbolRecord(name, rva, SymbolKind.COFF))
    return records


def read_dbg(source: str | bytes, name: str | None = None) -> DbgFile:
    """Parse a DBG file from a path or bytes."""
    data, given = read_source(source, name, "")
    name = given or None
    if len(data) < _HEADER_SIZE:
        raise SymbolFileError("file shorter than a DBG header")
    if data[:2] != b"DI":
        raise SymbolFileError("not a DBG file (no 'DI' signature)")
    header = parse_struct(IMAGE_SEPARATE_DEBUG_HEADER, data[:_HEADER_SIZE], "DBG header")
    n_sections, names_size, debug_size = header.NumberOfSections, header.ExportedNamesSize, header.DebugDirectorySize
    sections_at = _HEADER_SIZE
    names_at = sections_at + 40 * n_sections
    if n_sections > 96 or names_size > MAX_EXPORTED_NAMES or names_at + names_size + debug_size > len(data):
        raise SymbolFileError("DBG header counts exceed the file")
    sections = parse_section_headers(data[sections_at:names_at], n_sections)
    exported = [decode_name(n) for n in data[names_at:names_at + names_size].split(b"\x00") if n]
    debug_at = names_at + names_size
    debug = parse_debug_directory(data[debug_at:debug_at + debug_size])
    misc = codeview = None
    for entry in debug:
        if entry.pointer + entry.size > len(data):
            raise SymbolFileError(f"debug entry of type {entry.type} lies past the end of the file")
        blob = data[entry.pointer:entry.pointer + entry.size]
        if entry.type == IMAGE_DEBUG_TYPE_MISC and misc is None:
            misc = parse_misc_name(blob)
        elif entry.type == IMAGE_DEBUG_TYPE_CODEVIEW and codeview is None:
            codeview = parse_codeview_ref(blob)
    identity = SymbolId(
        kind=FileKind.DBG, name=name or (misc.rsplit(".", 1)[0] + ".dbg" if misc else "unknown.dbg"),
        timestamp=header.TimeDateStamp, size_of_image=header.SizeOfImage, checksum=header.CheckSum,
        signature=codeview.signature if codeview and codeview.format == "NB10" else None,
        age=codeview.age if codeview and codeview.format == "NB10" else 0,
        pdb_name=codeview.pdb_name if codeview and codeview.format == "NB10" else None,
    )
    return DbgFile(identity, header.Machine, header.Characteristics, header.ImageBase, header.Flags,
                   header.SectionAlignment, sections, exported, debug, misc, codeview, data)
