"""Fixed-layout PDB streams: info, DBI (old and new headers), section headers, OMAP.

Each function takes a stream's bytes and returns a plain record; malformed
input raises ``SymbolFileError``. Symbol records, types and lines are not read
here. Spec: symbols.md 2.3 (info stream, named-stream map), 2.4 (DBI headers,
MODI50/MODI60, section contributions, optional debug header), 1.4 (OMAP);
microsoft-pdb ``PDB/dbi/pdb.cpp``, ``dbi.h``, ``dbicommon.h``.
"""

from __future__ import annotations

import bisect
import logging
import struct
import uuid
from dataclasses import dataclass, field

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb.structs import (
    DBI_HEADER,
    DBI_HEADER_OLD,
    DBI_VER_V60,
    MODI50,
    MODI60,
    PDB_IMPV_VC70_DEP,
    PDB_INFO_HEADER,
    SC40,
    SC60,
    SC_VER60,
    SC_VER_V2,
    parse_at,
)

__all__ = [
    "PdbInfo", "DbiModule", "SectionContribution", "DbiInfo", "Omap",
    "parse_info", "parse_dbi", "parse_contributions", "parse_omap",
    "decode_pdb_name",
]

log = logging.getLogger(__name__)

NO_STREAM = 0xFFFF


@dataclass(frozen=True, slots=True)
class PdbInfo:
    version: int
    signature: int
    age: int
    guid: uuid.UUID | None
    named_streams: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DbiModule:
    name: str
    object_name: str
    stream: int          # NO_STREAM when the module has no symbols
    sym_bytes: int       # includes the 4-byte signature
    c11_bytes: int
    c13_bytes: int


@dataclass(frozen=True, slots=True)
class SectionContribution:
    section: int
    offset: int
    size: int
    module: int


@dataclass(frozen=True, slots=True)
class DbiInfo:
    is_new: bool
    version: int
    age: int
    global_stream: int
    public_stream: int
    symrec_stream: int
    machine: int
    modules: tuple[DbiModule, ...]
    contribution_bytes: bytes          # decoded on demand by contributions()
    debug_streams: tuple[int, ...]     # optional debug header, NO_STREAM = absent

    def contributions(self) -> list[SectionContribution]:
        """Section contributions (which module owns which code); tens of thousands
        in a big PDB, so they are decoded only when asked for."""
        return parse_contributions(self.contribution_bytes)

    def debug_stream(self, index: int) -> int:
        """Stream number of optional-debug-header entry ``index`` or NO_STREAM."""
        if index < len(self.debug_streams):
            return self.debug_streams[index]
        return NO_STREAM


def decode_pdb_name(raw: bytes, small: bool) -> str:
    """A name in a PDB: Windows-1252 in PDB 2.0 (``small``), UTF-8 in PDB 7.0."""
    return raw.decode("cp1252" if small else "utf-8", errors="replace")


def parse_info(data: bytes) -> PdbInfo:
    """Decode the PDB info stream (stream 1)."""
    head = parse_at(PDB_INFO_HEADER, data, 0, "PDB info stream")
    at = PDB_INFO_HEADER.size
    guid = None
    if head.version > PDB_IMPV_VC70_DEP:
        if len(data) < at + 16:
            raise SymbolFileError("PDB info stream ends before its GUID")
        guid = uuid.UUID(bytes_le=bytes(data[at:at + 16]))
        at += 16
    try:
        named = _parse_named_streams(data, at)
    except (struct.error, SymbolFileError) as exc:
        # The name map only finds /names (line numbers); identity stands without it.
        log.debug("PDB named-stream map unreadable: %s", exc)
        named = {}
    return PdbInfo(head.version, head.signature, head.age, guid, named)


def _parse_named_streams(data: bytes, at: int) -> dict[str, int]:
    if at + 4 > len(data):
        return {}
    (names_size,) = struct.unpack_from("<I", data, at)
    at += 4
    if names_size > len(data) - at:
        raise SymbolFileError("named-stream map names run past the stream")
    names = data[at:at + names_size]
    at += names_size
    size, capacity = struct.unpack_from("<II", data, at)
    at += 8
    for _ in range(2):       # present and deleted bit vectors
        (words,) = struct.unpack_from("<I", data, at)
        if words > (len(data) - at) // 4:
            raise SymbolFileError("named-stream map bit vector runs past the stream")
        at += 4 + 4 * words
    if size > capacity or size > (len(data) - at) // 8:
        raise SymbolFileError("named-stream map has more entries than room")
    result: dict[str, int] = {}
    for offset, stream in struct.iter_unpack("<II", data[at:at + 8 * size]):
        if offset >= len(names):
            continue
        end = names.find(b"\0", offset)
        name = names[offset:end if end >= 0 else len(names)]
        result[name.decode("utf-8", errors="replace")] = stream
    return result


def parse_dbi(data: bytes, *, small: bool) -> DbiInfo | None:
    """Decode the DBI stream (stream 3); ``None`` when it is empty (a type-only PDB)."""
    if len(data) == 0:
        return None
    if len(data) >= 4 and struct.unpack_from("<i", data, 0)[0] == -1:
        hdr = parse_at(DBI_HEADER, data, 0, "DBI header")
        at = DBI_HEADER.size
        is_new, version, age, machine = True, hdr.version_header, hdr.age, hdr.machine
        sizes = [hdr.modinfo_size, hdr.section_contribution_size, hdr.section_map_size,
                 hdr.source_info_size, hdr.type_server_map_size, hdr.ec_substream_size,
                 hdr.optional_dbg_header_size]
    else:
        hdr = parse_at(DBI_HEADER_OLD, data, 0, "DBI header")
        at = DBI_HEADER_OLD.size
        is_new, version, age, machine = False, 0, 0, 0
        sizes = [hdr.modinfo_size, hdr.section_contribution_size, hdr.section_map_size,
                 hdr.source_info_size, 0, 0, 0]
    if any(size < 0 for size in sizes) or at + sum(sizes) > len(data):
        raise SymbolFileError("DBI substream sizes exceed the DBI stream")
    offsets = []
    for size in sizes:
        offsets.append(at)
        at += size
    modinfo = data[offsets[0]:offsets[0] + sizes[0]]
    contrib = data[offsets[1]:offsets[1] + sizes[1]]
    dbg = data[offsets[6]:offsets[6] + sizes[6]]
    modern = is_new and version >= DBI_VER_V60
    modules = _parse_modules(modinfo, modern=modern, small=small)
    debug_streams = tuple(struct.unpack_from(f"<{len(dbg) // 2}H", dbg, 0))
    return DbiInfo(is_new, version, age, hdr.global_stream, hdr.public_stream,
                   hdr.symrec_stream, machine, tuple(modules), bytes(contrib),
                   debug_streams)


def _parse_modules(data: bytes, *, modern: bool, small: bool) -> list[DbiModule]:
    con = MODI60 if modern else MODI50
    fixed = con.size
    modules = []
    at = 0
    while at + fixed <= len(data):
        modi = parse_at(con, data, at, "DBI module record")
        at += fixed
        names = []
        for _ in range(2):
            end = data.find(b"\0", at)
            if end < 0:
                raise SymbolFileError("DBI module name is not terminated")
            names.append(decode_pdb_name(data[at:end], small))
            at = end + 1
        at = (at + 3) & ~3
        c13 = modi.c13_bytes if modern else 0
        modules.append(DbiModule(names[0], names[1], modi.stream, modi.sym_bytes,
                                 modi.c11_bytes, c13))
    return modules


# Array entries are read with struct: a big PDB has tens of thousands of them.
# Field order as SC60 / SC40 in structs.py.
_SC60_ROW = struct.Struct("<HxxiiIHxxII")
_SC40_ROW = struct.Struct("<HxxiiIHxx")


def parse_contributions(data: bytes) -> list[SectionContribution]:
    if len(data) < 4:
        return []
    (version,) = struct.unpack_from("<I", data, 0)
    if version == SC_VER60:
        row, at, step = _SC60_ROW, 4, SC60.size
    elif version == SC_VER_V2:
        row, at, step = _SC60_ROW, 4, SC60.size + 4
    else:
        row, at, step = _SC40_ROW, 0, SC40.size
    unpack = row.unpack_from
    return [SectionContribution(*unpack(data, pos)[:3], unpack(data, pos)[4])
            for pos in range(at, len(data) - step + 1, step)]


class Omap:
    """An OMAP table: RVA in one address space to RVA in the other (symbols.md 1.4)."""

    def __init__(self, data: bytes) -> None:
        count = len(data) // 8
        pairs = struct.unpack_from(f"<{2 * count}I", data, 0)
        self._from = list(pairs[0::2])
        self._to = list(pairs[1::2])
        if any(a > b for a, b in zip(self._from, self._from[1:])):
            raise SymbolFileError("OMAP table is not sorted")

    def __len__(self) -> int:
        return len(self._from)

    def map(self, rva: int) -> int | None:
        """Translated RVA, or None when ``rva`` has no image in the other space."""
        i = bisect.bisect_right(self._from, rva) - 1
        if i < 0:
            return None
        target = self._to[i]
        if target == 0:
            return None
        return target + (rva - self._from[i])


def parse_omap(data: bytes) -> Omap:
    return Omap(data)
