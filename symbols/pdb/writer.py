"""A PDB writer for tests and fuzzing: PDB 7.0 and both PDB 2.0 generations.

``build_pdb(spec)`` turns a ``PdbSpec`` into file bytes: the MSF container
(big "DS" or small "JG", any page size), the info stream, a DBI stream with
one module, section headers (and OMAP plus original sections when asked),
the symbol-record stream with publics, globals and typedefs, the publics
stream (PSGSIHDR, hash, address map), the globals hash, one module stream
(procedures, labels, optional lines: C13 for 7.0, C11 for 2.0) and a TPI stream from a
``TypeWriter``. Headers are built with the construct declarations the reader
parses with (``structs.py``). Profiles: ``"pdb7"`` (VC7+ records, DBI V70,
TPI V80), ``"vc6"`` (small MSF, VC98 info, DBI V60, ``_ST`` records, TPI V50)
and ``"vc4"`` (small MSF, VC4 info, old DBI header, MODI50, SC40, ``_16t``
records, TPI V41). Not a linker: no incremental-link data, no IPI stream.
Spec: symbols.md 2.1-2.9; hash function and table layout as llvm-pdbutil
and winedump read them (LLVM ``docs/PDB/HashTable.rst``, ``GlobalStream.rst``).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

from kdcon.symbols.model import SectionHeader
from kdcon.symbols.pdb.lines import DEBUG_S_FILECHKSMS, DEBUG_S_LINES
from kdcon.symbols.pdb.structs import (
    C11_FILE_HEADER,
    C11_LINE_BLOCK,
    C11_MODULE_HEADER,
    C13_FILE_BLOCK,
    C13_LINES_HEADER,
    C13_SUBSECTION,
    DBI_HEADER,
    DBI_HEADER_OLD,
    DBI_VER_V50,
    DBI_VER_V60,
    DBI_VER_V70,
    GSI_HASH_HDR,
    GSI_HASH_HDR_SIGNATURE,
    GSI_HASH_SC_IMPV_V70,
    IMAGE_SECTION_HEADER,
    MODI50,
    MODI60,
    MSF_DS_HEADER,
    MSF_JG_HEADER,
    OMAP_ENTRY,
    PDB_IMPV_VC4,
    PDB_IMPV_VC70,
    PDB_IMPV_VC98,
    PDB_INFO_HEADER,
    PSGSIHDR,
    SC40,
    SC60,
    SC_VER60,
    TPI_HEADER,
    TPI_HEADER_16t,
    TPI_VER_V41,
    TPI_VER_V50,
    TPI_VER_V80,
)
from kdcon.symbols.pdb.writer_records import SymbolWriter, TypeWriter

__all__ = ["PdbSpec", "build_pdb", "PROFILES", "hash_string_v1"]

PROFILES = {
    # profile: (small MSF, info version, DBI form, record form, TPI version)
    "pdb7": (False, PDB_IMPV_VC70, "v70", "sz", TPI_VER_V80),
    "vc6": (True, PDB_IMPV_VC98, "v60", "st", TPI_VER_V50),
    "vc4": (True, PDB_IMPV_VC4, "old", "16t", TPI_VER_V41),
}

_DBI_VERSIONS = {"v70": DBI_VER_V70, "v60": DBI_VER_V60, "v50": DBI_VER_V50}
_NO_STREAM = 0xFFFF
_IPHR_HASH = 4096


@dataclass
class PdbSpec:
    """What to put in the file. Addresses are (segment, offset), segments 1-based."""

    profile: str = "pdb7"
    page_size: int = 4096
    signature: int = 0x3B7D8410
    age: int = 1
    dbi_age: int | None = None
    guid: uuid.UUID = uuid.UUID("094c7fa9-a34c-fb3d-4c4c-44205044422e")
    machine: int = 0x8664
    sections: list[SectionHeader] = field(default_factory=list)
    original_sections: list[SectionHeader] | None = None
    omap_from_src: list[tuple[int, int]] | None = None
    omap_to_src: list[tuple[int, int]] | None = None
    publics: list[tuple[str, int, int, int]] = field(default_factory=list)         # name, seg, off, flags
    globals: list[tuple[str, int, int, int, bool]] = field(default_factory=list)   # name, seg, off, ti, local
    procedures: list[tuple[str, int, int, int, int, bool]] = field(default_factory=list)  # name, seg, off, len, ti, local
    labels: list[tuple[str, int, int]] = field(default_factory=list)               # name, seg, off
    typedefs: list[tuple[str, int]] = field(default_factory=list)                  # name, ti
    lines: list[tuple[str, int, int, list[tuple[int, int]]]] = field(default_factory=list)  # file, seg, off, [(delta, line)]
    types: TypeWriter | None = None
    module_name: str = r"C:\src\drv.obj"
    dbi_form: str | None = None        # override the profile's: "v70", "v60", "v50", "old"
    tpi_version: int | None = None     # override the profile's TPI header version

    @property
    def form(self) -> str:
        return PROFILES[self.profile][3]

    @property
    def dbi(self) -> str:
        return self.dbi_form or PROFILES[self.profile][2]

    @property
    def tpi(self) -> int:
        return self.tpi_version or PROFILES[self.profile][4]


def hash_string_v1(name: bytes) -> int:
    """The PDB name hash (microsoft-pdb ``LHashPbCb``; LLVM ``hashStringV1``)."""
    result = 0
    whole = len(name) // 4
    for (value,) in struct.iter_unpack("<I", name[:whole * 4]):
        result ^= value
    rest = name[whole * 4:]
    if len(rest) >= 2:
        result ^= struct.unpack_from("<H", rest)[0]
        rest = rest[2:]
    if rest:
        result ^= rest[0]
    result |= 0x20202020
    result ^= result >> 11
    return (result ^ (result >> 16)) & 0xFFFFFFFF


# -- MSF container -------------------------------------------------------------------------


def _pages(data: bytes, page_size: int) -> list[bytes]:
    return [data[i:i + page_size].ljust(page_size, b"\0") for i in range(0, len(data), page_size)]


def build_msf(streams: list[bytes | None], *, small: bool, page_size: int = 4096) -> bytes:
    """An MSF file holding ``streams`` (None = nil stream) in the chosen generation."""
    ps = page_size
    file_pages: list[bytes] = [b""]          # page 0: header, filled in last
    width = "H" if small else "I"

    def place(data: bytes) -> list[int]:
        numbers = []
        for page in _pages(data, ps):
            # Skip the two free-page-map pages of every interval (symbols.md 2.1).
            while len(file_pages) % ps in (1, 2):
                file_pages.append(b"\xff" * ps)
            numbers.append(len(file_pages))
            file_pages.append(page)
        return numbers

    stream_pages = [place(s) if s else [] for s in streams]
    if small:
        directory = struct.pack("<HH", len(streams), 0)
        directory += b"".join(struct.pack("<II", 0xFFFFFFFF if s is None else len(s), 0)
                              for s in streams)
    else:
        directory = struct.pack("<I", len(streams))
        directory += b"".join(struct.pack("<I", 0xFFFFFFFF if s is None else len(s))
                              for s in streams)
    for pages in stream_pages:
        directory += struct.pack(f"<{len(pages)}{width}", *pages)
    dir_pages = place(directory)
    if small:
        page_count = len(file_pages)
        header = MSF_JG_HEADER.build(dict(page_size=ps, fpm_page=1, page_count=page_count,
                                          directory_size=len(directory), reserved=0))
        header += struct.pack(f"<{len(dir_pages)}H", *dir_pages)
    else:
        block_map = place(struct.pack(f"<{len(dir_pages)}I", *dir_pages))
        page_count = len(file_pages)
        header = MSF_DS_HEADER.build(dict(block_size=ps, fpm_block=1, block_count=page_count,
                                          directory_size=len(directory), reserved=0))
        header += struct.pack(f"<{len(block_map)}I", *block_map)
    if len(header) > ps:
        raise ValueError("MSF header does not fit in one page")
    file_pages[0] = header.ljust(ps, b"\0")
    return b"".join(file_pages)


# -- streams -------------------------------------------------------------------------------


def _named_stream_map(names: dict[str, int]) -> bytes:
    strings = b""
    offsets = {}
    for name in names:
        offsets[name] = len(strings)
        strings += name.encode() + b"\0"
    capacity = max(1, len(names) * 2)
    buckets: list[tuple[int, int] | None] = [None] * capacity
    for name, stream in names.items():
        slot = (hash_string_v1(name.encode()) & 0xFFFF) % capacity
        while buckets[slot] is not None:
            slot = (slot + 1) % capacity
        buckets[slot] = (offsets[name], stream)
    present = 0
    for i, entry in enumerate(buckets):
        if entry is not None:
            present |= 1 << i
    words = (capacity + 31) // 32
    out = struct.pack("<I", len(strings)) + strings
    out += struct.pack("<II", len(names), capacity)
    out += struct.pack("<I", words) + present.to_bytes(4 * words, "little")
    out += struct.pack("<I", 0)
    out += b"".join(struct.pack("<II", *e) for e in buckets if e is not None)
    return out + struct.pack("<I", 0)


def _info_stream(spec: PdbSpec, named: dict[str, int]) -> bytes:
    version = PROFILES[spec.profile][1]
    out = PDB_INFO_HEADER.build(dict(version=version, signature=spec.signature, age=spec.age))
    if version == PDB_IMPV_VC70:
        out += spec.guid.bytes_le
    return out + _named_stream_map(named)


def _gsi_hash(records: list[tuple[bytes, int]], *, small: bool) -> bytes:
    """GSI hash over (name, symbol-record offset) pairs, in the layout of the profile."""
    buckets: list[list[int]] = [[] for _ in range(_IPHR_HASH)]
    for name, offset in records:
        buckets[hash_string_v1(name) % _IPHR_HASH].append(offset)
    ordered = [off for bucket in buckets for off in bucket]
    hr = b"".join(struct.pack("<iI", off + 1, 1) for off in ordered)
    if small:
        starts, at = [], 0
        for bucket in buckets:
            starts.append(at * 8)
            at += len(bucket)
        starts.append(at * 8)
        return hr + struct.pack(f"<{len(starts)}I", *starts)
    bitmap = 0
    values, at = [], 0
    for i, bucket in enumerate(buckets):
        if bucket:
            bitmap |= 1 << i
            values.append(at * 12)
        at += len(bucket)
    bucket_bytes = bitmap.to_bytes(4 * ((_IPHR_HASH + 32) // 32), "little")
    bucket_bytes += struct.pack(f"<{len(values)}I", *values)
    head = GSI_HASH_HDR.build(dict(signature=GSI_HASH_HDR_SIGNATURE, version=GSI_HASH_SC_IMPV_V70,
                                   hr_size=len(hr), bucket_size=len(bucket_bytes)))
    return head + hr + bucket_bytes


def _section_headers(sections: list[SectionHeader]) -> bytes:
    out = b""
    for s in sections:
        out += IMAGE_SECTION_HEADER.build(dict(
            name=s.name.encode()[:8].ljust(8, b"\0"), virtual_size=s.virtual_size,
            virtual_address=s.virtual_address, raw_size=0, raw_pointer=0, relocations_pointer=0,
            linenumbers_pointer=0, relocation_count=0, linenumber_count=0,
            characteristics=s.characteristics))
    return out


def _tpi_stream(spec: PdbSpec) -> bytes:
    types = spec.types or TypeWriter(spec.form)
    records = types.records()
    version = spec.tpi
    if version == TPI_VER_V41:
        return TPI_HEADER_16t.build(dict(version=version, ti_begin=0x1000,
                                         ti_end=0x1000 + types.count(),
                                         record_bytes=len(records), hash_stream=_NO_STREAM,
                                         pad=0)) + records
    return TPI_HEADER.build(dict(
        version=version, header_size=TPI_HEADER.size, ti_begin=0x1000,
        ti_end=0x1000 + types.count(), record_bytes=len(records), hash_stream=_NO_STREAM,
        hash_aux_stream=_NO_STREAM, hash_key_size=4, hash_buckets=0x3FFFF,
        hash_values_offset=0, hash_values_length=0, index_offsets_offset=0,
        index_offsets_length=0, hash_adj_offset=0, hash_adj_length=0)) + records


def _names_stream(strings: list[str]) -> tuple[bytes, dict[str, int]]:
    """A ``/names`` string table and each string's offset in it."""
    buf = b"\0"
    offsets = {}
    for text in strings:
        if text not in offsets:
            offsets[text] = len(buf)
            buf += text.encode() + b"\0"
    count = max(1, len(offsets) * 2)
    buckets = [0] * count
    for text, offset in offsets.items():
        slot = hash_string_v1(text.encode()) % count
        while buckets[slot]:
            slot = (slot + 1) % count
        buckets[slot] = offset
    out = struct.pack("<III", 0xEFFEEFFE, 1, len(buf)) + buf
    out += struct.pack(f"<I{count}I", count, *buckets)
    return out + struct.pack("<I", len(offsets)), offsets


def _c13_lines(spec: PdbSpec, name_offsets: dict[str, int]) -> bytes:
    if not spec.lines:
        return b""
    files = list(dict.fromkeys(f for f, *_ in spec.lines))
    checksums = b"".join(struct.pack("<IBBxx", name_offsets[f], 0, 0) for f in files)
    out = C13_SUBSECTION.build(dict(type=DEBUG_S_FILECHKSMS, length=len(checksums))) + checksums
    for file, segment, offset, entries in spec.lines:
        code_size = max(delta for delta, _ in entries) + 1
        body = C13_LINES_HEADER.build(dict(offset=offset, segment=segment, flags=0,
                                           code_size=code_size))
        body += C13_FILE_BLOCK.build(dict(file_offset=files.index(file) * 8,
                                          line_count=len(entries),
                                          block_size=C13_FILE_BLOCK.size + 8 * len(entries)))
        body += b"".join(struct.pack("<II", delta, line | 0x80000000) for delta, line in entries)
        out += C13_SUBSECTION.build(dict(type=DEBUG_S_LINES, length=len(body))) + body
    return out


def _pad4(data: bytes) -> bytes:
    return data.ljust((len(data) + 3) & ~3, b"\0")


def _c11_lines(spec: PdbSpec) -> bytes:
    """The same ``spec.lines`` as a CV4 sstSrcModule block (lines_c11.py has the layout).

    One line block per ``spec.lines`` entry, grouped by file; ranges end at
    the last line's offset (inclusive), as the C13 form gives it one byte.
    """
    if not spec.lines:
        return b""
    files: dict[str, list[tuple[int, int, list[tuple[int, int]]]]] = {}
    for file, segment, offset, entries in spec.lines:
        files.setdefault(file, []).append((segment, offset, entries))
    segments: dict[int, tuple[int, int]] = {}
    for blocks in files.values():
        for segment, offset, entries in blocks:
            end = offset + max(delta for delta, _ in entries)
            low, high = segments.get(segment, (offset, end))
            segments[segment] = (min(low, offset), max(high, end))
    names = {f: f.encode("cp1252", errors="replace")[:255] for f in files}
    at = len(_pad4(bytes(C11_MODULE_HEADER.size + 4 * len(files) + 10 * len(segments))))
    file_bases = []
    for file, blocks in files.items():
        file_bases.append(at)
        at += len(_pad4(bytes(C11_FILE_HEADER.size + 12 * len(blocks) + 1 + len(names[file]))))
    records = b""
    line_blocks = b""
    for file, blocks in files.items():
        bases, ranges = [], []
        for segment, offset, entries in blocks:
            bases.append(at + len(line_blocks))
            ranges += [offset, offset + max(delta for delta, _ in entries)]
            line_blocks += _pad4(
                C11_LINE_BLOCK.build(dict(segment=segment, pair_count=len(entries)))
                + struct.pack(f"<{len(entries)}I", *(offset + delta for delta, _ in entries))
                + struct.pack(f"<{len(entries)}H", *(line for _, line in entries)))
        records += _pad4(C11_FILE_HEADER.build(dict(segment_count=len(blocks), pad=0))
                         + struct.pack(f"<{len(bases)}I{len(ranges)}I", *bases, *ranges)
                         + bytes([len(names[file])]) + names[file])
    head = C11_MODULE_HEADER.build(dict(file_count=len(files), segment_count=len(segments)))
    head += struct.pack(f"<{len(file_bases)}I", *file_bases)
    head += b"".join(struct.pack("<II", *segments[s]) for s in segments)
    head += struct.pack(f"<{len(segments)}H", *segments)
    return _pad4(head) + records + line_blocks


def _module_symbols(spec: PdbSpec, writer: SymbolWriter) -> bytes:
    out = bytearray(struct.pack("<I", 4 if spec.form == "sz" else 1))
    for name, segment, offset, length, ti, local in spec.procedures:
        size = len(writer.procedure(name, segment, offset, length, ti, end_offset=0, local=local))
        out += writer.procedure(name, segment, offset, length, ti,
                                end_offset=len(out) + size, local=local)
        out += writer.end()
    for name, segment, offset in spec.labels:
        out += writer.label(name, segment, offset)
    return bytes(out)


def _dbi_stream(spec: PdbSpec, *, gsi: int, psi: int, symrec: int, module_stream: int,
                module_sym_bytes: int, c11_bytes: int, c13_bytes: int,
                debug_streams: list[int]) -> bytes:
    dbi_form = spec.dbi
    first = spec.sections[0] if spec.sections else SectionHeader(".text", 0x1000, 0)
    name = spec.module_name.encode("cp1252" if dbi_form != "v70" else "utf-8")
    if dbi_form in ("old", "v50"):
        sc = dict(section=1, pad1=0, offset=0, size=first.virtual_size,
                  characteristics=first.characteristics, module=0, pad2=0)
        modi = MODI50.build(dict(pmod=0, sc=sc, flags=0, stream=module_stream,
                                 sym_bytes=module_sym_bytes, c11_bytes=c11_bytes, fpo_bytes=0,
                                 file_count=0, pad=0, file_names=0))
        contributions = b"".join(SC40.build(dict(sc, section=i + 1, size=s.virtual_size,
                                                 characteristics=s.characteristics))
                                 for i, s in enumerate(spec.sections))
    else:
        sc = dict(section=1, pad1=0, offset=0, size=first.virtual_size,
                  characteristics=first.characteristics, module=0, pad2=0, data_crc=0,
                  reloc_crc=0)
        modi = MODI60.build(dict(unused=0, sc=sc, flags=0, stream=module_stream,
                                 sym_bytes=module_sym_bytes, c11_bytes=c11_bytes,
                                 c13_bytes=c13_bytes,
                                 file_count=0, pad=0, unused2=0, src_name_index=0,
                                 pdb_path_index=0))
        contributions = struct.pack("<I", SC_VER60) + b"".join(
            SC60.build(dict(sc, section=i + 1, size=s.virtual_size,
                            characteristics=s.characteristics))
            for i, s in enumerate(spec.sections))
    modi += name + b"\0" + name + b"\0"
    modi = modi.ljust((len(modi) + 3) & ~3, b"\0")
    section_map = struct.pack("<HH", len(spec.sections), len(spec.sections)) + b"".join(
        struct.pack("<HHHHHHII", 0x10D, 0, 0, i + 1, 0xFFFF, 0xFFFF, 0, s.virtual_size)
        for i, s in enumerate(spec.sections))
    file_info = struct.pack("<HHHH", 1, 0, 0, 0)
    if dbi_form == "old":
        head = DBI_HEADER_OLD.build(dict(
            global_stream=gsi, public_stream=psi, symrec_stream=symrec, pad=0,
            modinfo_size=len(modi), section_contribution_size=len(contributions),
            section_map_size=len(section_map), source_info_size=len(file_info)))
        return head + modi + contributions + section_map + file_info
    debug = struct.pack(f"<{len(debug_streams)}H", *debug_streams)
    head = DBI_HEADER.build(dict(
        version_signature=-1, version_header=_DBI_VERSIONS[dbi_form],
        age=spec.age if spec.dbi_age is None else spec.dbi_age, global_stream=gsi,
        build_number=0x8E00, public_stream=psi, pdb_dll_version=0, symrec_stream=symrec,
        pdb_dll_rbld=0, modinfo_size=len(modi), section_contribution_size=len(contributions),
        section_map_size=len(section_map), source_info_size=len(file_info),
        type_server_map_size=0, mfc_type_server_index=0, optional_dbg_header_size=len(debug),
        ec_substream_size=0, flags=0, machine=spec.machine, reserved=0))
    return head + modi + contributions + section_map + file_info + debug


def _omap(pairs: list[tuple[int, int]]) -> bytes:
    return b"".join(OMAP_ENTRY.build(dict(rva=a, rva_to=b)) for a, b in sorted(pairs))


def build_pdb(spec: PdbSpec) -> bytes:
    """The bytes of a PDB file described by ``spec``."""
    small, _, _, form, _ = PROFILES[spec.profile]
    writer = SymbolWriter(form)
    symrec = bytearray()
    public_refs: list[tuple[int, int, int]] = []          # (segment, offset, record offset)
    public_names: list[tuple[bytes, int]] = []
    global_names: list[tuple[bytes, int]] = []
    for name, segment, offset, flags in spec.publics:
        public_refs.append((segment, offset, len(symrec)))
        public_names.append((name.encode(), len(symrec)))
        symrec += writer.public(name, segment, offset, flags)
    for name, segment, offset, ti, local in spec.globals:
        global_names.append((name.encode(), len(symrec)))
        symrec += writer.data(name, segment, offset, ti, local=local)
    for name, ti in spec.typedefs:
        global_names.append((name.encode(), len(symrec)))
        symrec += writer.udt(name, ti)
    address_map = [ref for _, _, ref in sorted(public_refs)]
    hash_bytes = _gsi_hash(public_names, small=small)
    psi = PSGSIHDR.build(dict(sym_hash_size=len(hash_bytes), addr_map_size=4 * len(address_map),
                              thunk_count=0, thunk_size=0, thunk_section=0, pad=0,
                              thunk_offset=0, section_count=0))
    psi += hash_bytes + struct.pack(f"<{len(address_map)}I", *address_map)

    streams: list[bytes | None] = [b"", b"", b"", b"", None]   # 0 old dir, 1 info, 2 TPI, 3 DBI, 4 IPI
    gsi_index = len(streams)
    streams.append(_gsi_hash(global_names, small=small))
    psi_index = len(streams)
    streams.append(psi)
    symrec_index = len(streams)
    streams.append(bytes(symrec))
    debug = [_NO_STREAM] * 11
    debug[5] = len(streams)
    streams.append(_section_headers(spec.sections))
    if spec.omap_from_src is not None:
        debug[4] = len(streams)
        streams.append(_omap(spec.omap_from_src))
    if spec.omap_to_src is not None:
        debug[3] = len(streams)
        streams.append(_omap(spec.omap_to_src))
    if spec.original_sections is not None:
        debug[10] = len(streams)
        streams.append(_section_headers(spec.original_sections))
    named: dict[str, int] = {}
    name_offsets: dict[str, int] = {}
    c11 = c13 = b""
    if small:
        c11 = _c11_lines(spec)
    elif spec.lines:
        names, name_offsets = _names_stream([f for f, *_ in spec.lines])
        named["/names"] = len(streams)
        streams.append(names)
        c13 = _c13_lines(spec, name_offsets)
    module_symbols = _module_symbols(spec, writer)
    module_index = len(streams)
    streams.append(module_symbols + c11 + c13 + struct.pack("<I", 0))
    streams[1] = _info_stream(spec, named)
    streams[2] = _tpi_stream(spec)
    streams[3] = _dbi_stream(spec, gsi=gsi_index, psi=psi_index, symrec=symrec_index,
                             module_stream=module_index, module_sym_bytes=len(module_symbols),
                             c11_bytes=len(c11), c13_bytes=len(c13), debug_streams=debug)
    return build_msf(streams, small=small, page_size=spec.page_size)
