"""Inline CodeView NB09/NB11 (VC2-VC5 era DBG files): the global publics.

Container (symbols.md §1.5)::

    CV base:   'NB09' | 'NB11', i32 lfoDirectory (from the CV base)
    directory: OMFDirHeader {u16 cbDirHeader=16, u16 cbDirEntry=12, u32 cDir,
               i32 lfoNextDir, u32 flags}, then cDir OMFDirEntry {u16 SubSection,
               u16 iMod, i32 lfo, u32 cb}
    sstGlobalPub (0x12A): OMFSymHash {u16 symhash, u16 addrhash, u32 cbSymbol,
               u32 cbHSym, u32 cbHAddr}, then cbSymbol bytes of symbol records

Reads S_PUB32_16t, S_PUB32_ST and S_PUB32 records (and the S_GDATA32/S_LDATA32
forms of sstGlobalSym) into ``SymbolRecord``s; segment:offset becomes an RVA
through the DBG's section headers. Type records and module symbols are not read.
``build_nb09_publics`` makes fixtures.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from . import codeview as cv
from .debugdir import decode_name
from .errors import SymbolFileError
from .model import SectionHeader, SymbolKind, SymbolRecord

__all__ = ["sstGlobalPub", "sstGlobalSym", "read_inline_publics", "build_nb09_publics"]

sstGlobalSym = 0x129
sstGlobalPub = 0x12A
MAX_DIRECTORY = 4096

# kind -> (offset of u32 offset, offset of u16 segment, offset of the name, ST name?)
_LAYOUTS = {
    cv.S_PUB32_16t: (0, 4, 8, True),
    cv.S_GDATA32_16t: (0, 4, 8, True),
    cv.S_LDATA32_16t: (0, 4, 8, True),
    cv.S_PUB32_ST: (4, 8, 10, True),
    cv.S_GDATA32_ST: (4, 8, 10, True),
    cv.S_LDATA32_ST: (4, 8, 10, True),
    cv.S_PUB32: (4, 8, 10, False),
    cv.S_GDATA32: (4, 8, 10, False),
    cv.S_LDATA32: (4, 8, 10, False),
}
_PUBLIC = {cv.S_PUB32_16t, cv.S_PUB32_ST, cv.S_PUB32}


def _records(data: bytes, sections: Sequence[SectionHeader]) -> list[SymbolRecord]:
    out: list[SymbolRecord] = []
    position = 0
    while position + 4 <= len(data):
        length, kind = struct.unpack_from("<HH", data, position)
        end = position + 2 + length
        if length < 2 or end > len(data):
            raise SymbolFileError(f"CodeView record at {position:#x} runs past its subsection")
        layout = _LAYOUTS.get(kind)
        if layout is not None:
            body = data[position + 4:end]
            off_at, seg_at, name_at, short = layout
            if name_at + 1 > len(body):
                raise SymbolFileError(f"CodeView record at {position:#x} truncated")
            (offset,) = struct.unpack_from("<I", body, off_at)
            (segment,) = struct.unpack_from("<H", body, seg_at)
            if short:
                size = body[name_at]
                name = decode_name(body[name_at + 1:name_at + 1 + size])
            else:
                name = decode_name(body[name_at:])
            if name and 1 <= segment <= len(sections):
                kind_out = SymbolKind.PUBLIC if kind in _PUBLIC else SymbolKind.DATA
                out.append(SymbolRecord(name, sections[segment - 1].virtual_address + offset, kind_out))
        position = end
    return out


def read_inline_publics(blob: bytes, sections: Sequence[SectionHeader]) -> list[SymbolRecord]:
    """Publics (and global data) of an inline NB09/NB11 CodeView blob."""
    if len(blob) < 8 or blob[:4] not in (b"NB09", b"NB11"):
        raise SymbolFileError("not an inline CodeView blob")
    (directory,) = struct.unpack_from("<i", blob, 4)
    if directory < 8 or directory + 16 > len(blob):
        raise SymbolFileError("CodeView directory outside its blob")
    header_size, entry_size, count = struct.unpack_from("<HHI", blob, directory)
    if header_size < 16 or entry_size < 12 or count > MAX_DIRECTORY:
        raise SymbolFileError("CodeView directory header is corrupt")
    first = directory + header_size
    if first + entry_size * count > len(blob):
        raise SymbolFileError("CodeView directory truncated")
    records: list[SymbolRecord] = []
    for i in range(count):
        sub, _, lfo, size = struct.unpack_from("<HHiI", blob, first + i * entry_size)
        if sub not in (sstGlobalPub, sstGlobalSym):
            continue
        if lfo < 0 or lfo + 16 > len(blob) or lfo + size > len(blob):
            raise SymbolFileError(f"CodeView subsection {sub:#x} outside its blob")
        (symbols_size,) = struct.unpack_from("<I", blob, lfo + 4)
        if 16 + symbols_size > size:
            raise SymbolFileError(f"CodeView subsection {sub:#x}: symbol bytes exceed it")
        records += _records(blob[lfo + 16:lfo + 16 + symbols_size], sections)
    return records


def build_nb09_publics(publics: Sequence[tuple[str, int, int]]) -> bytes:
    """An NB09 blob with one sstGlobalPub of S_PUB32_16t (name, segment, offset)."""
    symbols = b""
    for name, segment, offset in publics:
        encoded = name.encode("cp1252")
        body = struct.pack("<HIHH", cv.S_PUB32_16t, offset, segment, 0) + bytes([len(encoded)]) + encoded
        body += b"\x00" * (-(2 + len(body)) % 4)
        symbols += struct.pack("<H", len(body)) + body
    subsection = struct.pack("<HHIII", 0, 0, len(symbols), 0, 0) + symbols
    lfo = 8
    directory = lfo + len(subsection)
    header = struct.pack("<HHIiI", 16, 12, 1, 0, 0)
    entry = struct.pack("<HHiI", sstGlobalPub, 0xFFFF, lfo, len(subsection))
    return b"NB09" + struct.pack("<i", directory) + subsection + header + entry
