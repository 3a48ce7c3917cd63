"""Builds DBG files from the construct declarations in ``dbg.py``: test fixtures.

Writes the layout of symbols.md §1.2: header, section headers, exported names,
debug directory, then the blobs (MISC, CodeView NB10 or an inline blob, COFF
symbol table with its string table, FPO, OMAP). Names longer than eight bytes
go to the COFF string table. It builds what a 1990s ``splitsym`` produced; it is
not a splitter and reads no image.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from .dbg import IMAGE_COFF_SYMBOLS_HEADER, IMAGE_SEPARATE_DEBUG_HEADER, IMAGE_SYMBOL
from .debugdir import (IMAGE_DEBUG_TYPE_CODEVIEW, IMAGE_DEBUG_TYPE_COFF, IMAGE_DEBUG_TYPE_FPO,
                       IMAGE_DEBUG_TYPE_MISC, IMAGE_DEBUG_TYPE_OMAP_FROM_SRC,
                       IMAGE_DEBUG_TYPE_OMAP_TO_SRC, FpoData, build_debug_entry, build_fpo,
                       build_misc, build_nb10, build_section_header)
from .model import SectionHeader

__all__ = ["CoffSymbol", "DbgSpec", "build_dbg", "example_sections"]


@dataclass(frozen=True, slots=True)
class CoffSymbol:
    """One COFF symbol: ``value`` is the offset in 1-based section ``section``."""

    name: str
    section: int
    value: int
    function: bool = True
    storage: int = 2            # IMAGE_SYM_CLASS_EXTERNAL


@dataclass(slots=True)
class DbgSpec:
    image_name: str = "drv32s.sys"
    machine: int = 0x014C
    characteristics: int = 0x0102
    timestamp: int = 0xED2A90E4
    checksum: int = 0
    image_base: int = 0x00400000
    size_of_image: int = 0x5000
    section_alignment: int = 0x1000
    sections: Sequence[SectionHeader] = ()
    exported_names: Sequence[str] = ()
    misc: bool = True
    nb10: tuple[str, int, int] | None = None          # (pdb name, signature, age)
    codeview_blob: bytes | None = None                # inline NB09/NB11, or an RSDS record
    coff_symbols: Sequence[CoffSymbol] = ()
    fpo: Sequence[FpoData] = ()
    omap_from_src: Sequence[tuple[int, int]] = ()
    omap_to_src: Sequence[tuple[int, int]] = ()
    extra: list[tuple[int, bytes]] = field(default_factory=list)


def _coff_blob(symbols: Sequence[CoffSymbol]) -> bytes:
    strings = bytearray()
    records = b""
    for symbol in symbols:
        encoded = symbol.name.encode("cp1252")
        if len(encoded) <= 8:
            name = encoded.ljust(8, b"\x00")
        else:
            name = struct.pack("<II", 0, 4 + len(strings))
            strings += encoded + b"\x00"
        records += IMAGE_SYMBOL.build({"Name": name, "Value": symbol.value,
                                       "SectionNumber": symbol.section,
                                       "Type": 0x20 if symbol.function else 0,
                                       "StorageClass": symbol.storage, "NumberOfAuxSymbols": 0})
    header = IMAGE_COFF_SYMBOLS_HEADER.build({
        "NumberOfSymbols": len(symbols), "LvaToFirstSymbol": 32, "NumberOfLinenumbers": 0,
        "LvaToFirstLinenumber": 0, "RvaToFirstByteOfCode": 0, "RvaToLastByteOfCode": 0,
        "RvaToFirstByteOfData": 0, "RvaToLastByteOfData": 0})
    return header + records + struct.pack("<I", 4 + len(strings)) + bytes(strings)


def build_dbg(spec: DbgSpec) -> bytes:
    """The bytes of a DBG file described by ``spec``."""
    blobs: list[tuple[int, bytes]] = []
    if spec.misc:
        blobs.append((IMAGE_DEBUG_TYPE_MISC, build_misc(spec.image_name)))
    if spec.nb10 is not None:
        blobs.append((IMAGE_DEBUG_TYPE_CODEVIEW, build_nb10(*spec.nb10)))
    elif spec.codeview_blob is not None:
        blobs.append((IMAGE_DEBUG_TYPE_CODEVIEW, spec.codeview_blob))
    if spec.coff_symbols:
        blobs.append((IMAGE_DEBUG_TYPE_COFF, _coff_blob(spec.coff_symbols)))
    if spec.fpo:
        blobs.append((IMAGE_DEBUG_TYPE_FPO, b"".join(build_fpo(f) for f in spec.fpo)))
    for kind, table in ((IMAGE_DEBUG_TYPE_OMAP_TO_SRC, spec.omap_to_src),
                        (IMAGE_DEBUG_TYPE_OMAP_FROM_SRC, spec.omap_from_src)):
        if table:
            blobs.append((kind, b"".join(struct.pack("<II", a, b) for a, b in table)))
    blobs.extend(spec.extra)

    names = b"".join(n.encode("cp1252") + b"\x00" for n in spec.exported_names)
    names += b"\x00" * (-len(names) % 4)
    sections = b"".join(build_section_header(s) for s in spec.sections)
    header_size = IMAGE_SEPARATE_DEBUG_HEADER.sizeof()
    position = header_size + len(sections) + len(names) + 28 * len(blobs)
    directory = b""
    payload = b""
    for kind, blob in blobs:
        directory += build_debug_entry(kind, len(blob), position + len(payload), 0, spec.timestamp)
        payload += blob + b"\x00" * (-len(blob) % 4)
    header = IMAGE_SEPARATE_DEBUG_HEADER.build({
        "Flags": 0, "Machine": spec.machine, "Characteristics": spec.characteristics,
        "TimeDateStamp": spec.timestamp, "CheckSum": spec.checksum, "ImageBase": spec.image_base,
        "SizeOfImage": spec.size_of_image, "NumberOfSections": len(spec.sections),
        "ExportedNamesSize": len(names), "DebugDirectorySize": len(directory),
        "SectionAlignment": spec.section_alignment, "Reserved": bytes(8)})
    return header + sections + names + directory + payload


def example_sections() -> list[SectionHeader]:
    """The four sections of a small x86 driver: what fixtures use by default."""
    return [SectionHeader(".text", 0x1000, 0x800, 0x60000020),
            SectionHeader(".rdata", 0x2000, 0x200, 0x40000040),
            SectionHeader(".data", 0x3000, 0x100, 0xC0000040),
            SectionHeader("INIT", 0x4000, 0x300, 0xE2000020)]
