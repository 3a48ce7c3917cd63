"""construct declarations of every fixed PDB header, used to parse and to build.

Each is compiled (construct's code generator) and carries its byte size in
``.size``. The reader parses headers with these; the writer (``writer.py``) builds test
files with the same definitions, so a field read wrongly would be written
wrongly too and the oracles (llvm-pdbutil, winedump) catch it. Record streams
(symbols, types, line entries) are not declared here: they are scanned with
``struct`` in the hot loops. Spec: symbols.md 2.1 (MSF), 2.3 (info), 2.4 (DBI,
MODI, SC), 2.5 (PSGSIHDR, GSIHashHdr), 2.6 (C11, C13), 2.8 (TPI headers); names as
in microsoft-pdb ``msf.cpp``, ``dbi.h``, ``gsi.h``, ``tpi.h``, ``cvinfo.h``.
"""

from __future__ import annotations

import struct

from construct import (
    ConstructError,
    Compiled,
    Bytes,
    Const,
    Int16ul,
    Int32sl,
    Int32ul,
    Struct,
)

from kdcon.symbols.errors import SymbolFileError

__all__ = [
    "parse_at",
    "MSF_JG_MAGIC", "MSF_DS_MAGIC", "MSF_JG_HEADER", "MSF_DS_HEADER",
    "PDB_INFO_HEADER", "DBI_HEADER", "DBI_HEADER_OLD", "SC60", "SC40", "MODI60", "MODI50",
    "PSGSIHDR", "GSI_HASH_HDR", "TPI_HEADER", "TPI_HEADER_16t", "IMAGE_SECTION_HEADER",
    "OMAP_ENTRY", "C13_SUBSECTION", "C13_LINES_HEADER", "C13_FILE_BLOCK",
    "C11_MODULE_HEADER", "C11_FILE_HEADER", "C11_LINE_BLOCK",
    "PDB_IMPV_VC4", "PDB_IMPV_VC50", "PDB_IMPV_VC98", "PDB_IMPV_VC70_DEP", "PDB_IMPV_VC70",
    "DBI_VER_V41", "DBI_VER_V50", "DBI_VER_V60", "DBI_VER_V70",
    "SC_VER60", "SC_VER_V2", "GSI_HASH_SC_IMPV_V70", "GSI_HASH_HDR_SIGNATURE",
    "TPI_VER_V40", "TPI_VER_V41", "TPI_VER_V50", "TPI_VER_V70", "TPI_VER_V80",
    "DBG_OMAP_TO_SRC", "DBG_OMAP_FROM_SRC", "DBG_SECTION_HDR", "DBG_SECTION_HDR_ORIG",
]

def _fixed(con: Struct) -> Compiled:
    """Compile ``con`` (about 6x faster to parse) and remember its byte size in ``.size``."""
    compiled = con.compile()
    compiled.size = con.sizeof()
    return compiled


def parse_at(con: Compiled, data: bytes | memoryview, at: int, what: str):
    """Parse the fixed header ``con`` at ``data[at:]``; ``SymbolFileError`` if it is cut short."""
    if at < 0 or len(data) - at < con.size:
        raise SymbolFileError(f"truncated {what}")
    try:
        return con.parse(bytes(data[at:at + con.size]))
    except (ConstructError, struct.error) as exc:
        raise SymbolFileError(f"malformed {what}: {exc}") from None


MSF_JG_MAGIC = b"Microsoft C/C++ program database 2.00\r\n\x1aJG\x00\x00"
MSF_DS_MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\x00\x00\x00"

# Small MSF ("JG"): the directory's u16 page numbers follow this header.
MSF_JG_HEADER = _fixed(Struct(
    "magic" / Const(MSF_JG_MAGIC),
    "page_size" / Int32ul,
    "fpm_page" / Int16ul,
    "page_count" / Int16ul,
    "directory_size" / Int32ul,
    "reserved" / Int32ul,
))

# Big MSF ("DS"): the block-map page numbers (u32) follow this header.
MSF_DS_HEADER = _fixed(Struct(
    "magic" / Const(MSF_DS_MAGIC),
    "block_size" / Int32ul,
    "fpm_block" / Int32ul,
    "block_count" / Int32ul,
    "directory_size" / Int32ul,
    "reserved" / Int32ul,
))

PDB_IMPV_VC4 = 19950623
PDB_IMPV_VC50 = 19960307
PDB_IMPV_VC98 = 19970604
PDB_IMPV_VC70_DEP = 19990604
PDB_IMPV_VC70 = 20000404

# PDB info stream head; a GUID follows when version > PDB_IMPV_VC70_DEP.
PDB_INFO_HEADER = _fixed(Struct(
    "version" / Int32ul,
    "signature" / Int32ul,
    "age" / Int32ul,
))

DBI_VER_V41 = 930803
DBI_VER_V50 = 19960307
DBI_VER_V60 = 19970606
DBI_VER_V70 = 19990903

DBI_HEADER = _fixed(Struct(
    "version_signature" / Int32sl,
    "version_header" / Int32ul,
    "age" / Int32ul,
    "global_stream" / Int16ul,
    "build_number" / Int16ul,
    "public_stream" / Int16ul,
    "pdb_dll_version" / Int16ul,
    "symrec_stream" / Int16ul,
    "pdb_dll_rbld" / Int16ul,
    "modinfo_size" / Int32sl,
    "section_contribution_size" / Int32sl,
    "section_map_size" / Int32sl,
    "source_info_size" / Int32sl,
    "type_server_map_size" / Int32sl,
    "mfc_type_server_index" / Int32ul,
    "optional_dbg_header_size" / Int32sl,
    "ec_substream_size" / Int32sl,
    "flags" / Int16ul,
    "machine" / Int16ul,
    "reserved" / Int32ul,
))

# VC4 DBIHdr: no version words, no age.
DBI_HEADER_OLD = _fixed(Struct(
    "global_stream" / Int16ul,
    "public_stream" / Int16ul,
    "symrec_stream" / Int16ul,
    "pad" / Int16ul,
    "modinfo_size" / Int32sl,
    "section_contribution_size" / Int32sl,
    "section_map_size" / Int32sl,
    "source_info_size" / Int32sl,
))

SC_VER60 = 0xEFFE0000 + 19970605
SC_VER_V2 = 0xEFFE0000 + 20140516

SC60 = _fixed(Struct(
    "section" / Int16ul,
    "pad1" / Int16ul,
    "offset" / Int32sl,
    "size" / Int32sl,
    "characteristics" / Int32ul,
    "module" / Int16ul,
    "pad2" / Int16ul,
    "data_crc" / Int32ul,
    "reloc_crc" / Int32ul,
))

SC40 = _fixed(Struct(
    "section" / Int16ul,
    "pad1" / Int16ul,
    "offset" / Int32sl,
    "size" / Int32sl,
    "characteristics" / Int32ul,
    "module" / Int16ul,
    "pad2" / Int16ul,
))

# MODI_60_Persist without the two trailing names.
MODI60 = _fixed(Struct(
    "unused" / Int32ul,
    "sc" / SC60,
    "flags" / Int16ul,
    "stream" / Int16ul,
    "sym_bytes" / Int32ul,
    "c11_bytes" / Int32ul,
    "c13_bytes" / Int32ul,
    "file_count" / Int16ul,
    "pad" / Int16ul,
    "unused2" / Int32ul,
    "src_name_index" / Int32ul,
    "pdb_path_index" / Int32ul,
))

# MODI50 (VC4..VC6) without the two trailing names.
MODI50 = _fixed(Struct(
    "pmod" / Int32ul,
    "sc" / SC40,
    "flags" / Int16ul,
    "stream" / Int16ul,
    "sym_bytes" / Int32ul,
    "c11_bytes" / Int32ul,
    "fpo_bytes" / Int32ul,
    "file_count" / Int16ul,
    "pad" / Int16ul,
    "file_names" / Int32ul,
))

PSGSIHDR = _fixed(Struct(
    "sym_hash_size" / Int32sl,
    "addr_map_size" / Int32sl,
    "thunk_count" / Int32ul,
    "thunk_size" / Int32sl,
    "thunk_section" / Int16ul,
    "pad" / Int16ul,
    "thunk_offset" / Int32ul,
    "section_count" / Int32ul,
))

GSI_HASH_HDR_SIGNATURE = 0xFFFFFFFF
GSI_HASH_SC_IMPV_V70 = 0xEFFE0000 + 19990810

GSI_HASH_HDR = _fixed(Struct(
    "signature" / Int32ul,
    "version" / Int32ul,
    "hr_size" / Int32ul,
    "bucket_size" / Int32ul,
))

TPI_VER_V40 = 19950410
TPI_VER_V41 = 19951122
TPI_VER_V50 = 19961031
TPI_VER_V70 = 19990903
TPI_VER_V80 = 20040203

TPI_HEADER = _fixed(Struct(
    "version" / Int32ul,
    "header_size" / Int32ul,
    "ti_begin" / Int32ul,
    "ti_end" / Int32ul,
    "record_bytes" / Int32ul,
    "hash_stream" / Int16ul,
    "hash_aux_stream" / Int16ul,
    "hash_key_size" / Int32ul,
    "hash_buckets" / Int32ul,
    "hash_values_offset" / Int32sl,
    "hash_values_length" / Int32ul,
    "index_offsets_offset" / Int32sl,
    "index_offsets_length" / Int32ul,
    "hash_adj_offset" / Int32sl,
    "hash_adj_length" / Int32ul,
))

# HDR_16t (TPI V40/V41): 16-bit type indices.
TPI_HEADER_16t = _fixed(Struct(
    "version" / Int32ul,
    "ti_begin" / Int16ul,
    "ti_end" / Int16ul,
    "record_bytes" / Int32ul,
    "hash_stream" / Int16ul,
    "pad" / Int16ul,
))

IMAGE_SECTION_HEADER = _fixed(Struct(
    "name" / Bytes(8),
    "virtual_size" / Int32ul,
    "virtual_address" / Int32ul,
    "raw_size" / Int32ul,
    "raw_pointer" / Int32ul,
    "relocations_pointer" / Int32ul,
    "linenumbers_pointer" / Int32ul,
    "relocation_count" / Int16ul,
    "linenumber_count" / Int16ul,
    "characteristics" / Int32ul,
))

OMAP_ENTRY = _fixed(Struct("rva" / Int32ul, "rva_to" / Int32ul))

C13_SUBSECTION = _fixed(Struct("type" / Int32ul, "length" / Int32ul))
C13_LINES_HEADER = _fixed(Struct(
    "offset" / Int32ul,
    "segment" / Int16ul,
    "flags" / Int16ul,
    "code_size" / Int32ul,
))
C13_FILE_BLOCK = _fixed(Struct(
    "file_offset" / Int32ul,
    "line_count" / Int32ul,
    "block_size" / Int32ul,
))

# C11 (CV4 sstSrcModule) line tables of VC5/6-era module streams; the arrays
# after each header are read with struct (symbols.md 2.6).
C11_MODULE_HEADER = _fixed(Struct("file_count" / Int16ul, "segment_count" / Int16ul))
C11_FILE_HEADER = _fixed(Struct("segment_count" / Int16ul, "pad" / Int16ul))
C11_LINE_BLOCK = _fixed(Struct("segment" / Int16ul, "pair_count" / Int16ul))

# Indexes into the DBI optional debug header (symbols.md 2.4).
DBG_OMAP_TO_SRC = 3
DBG_OMAP_FROM_SRC = 4
DBG_SECTION_HDR = 5
DBG_SECTION_HDR_ORIG = 10
