"""Debug-directory records: MISC, NB10, RSDS, FPO, section headers, fed three ways."""

from __future__ import annotations

import uuid

import pytest

from kdcon.symbols.debugdir import (FpoData, build_debug_entry, build_fpo, build_misc, build_nb10, build_rsds,
                                    build_section_header, parse_codeview_ref, parse_debug_directory,
                                    parse_fpo, parse_misc_name, parse_section_headers)
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import SectionHeader

GUID = uuid.UUID("8994979d-169b-b90b-3d71-598837151c2d")


def _three_ways(data: bytes, parse, *, trailing: bytes = b"\x00\xAA\x55"):
    """Whole, every shorter prefix (one byte at a time: same answer or SymbolFileError), trailing bytes."""
    whole = parse(data)
    for cut in range(len(data)):
        try:
            parse(data[:cut])
        except SymbolFileError:
            pass
    assert parse(data + trailing) == whole
    return whole


def test_misc_exename():
    assert _three_ways(build_misc("ntkrnlmp.exe"), parse_misc_name) == "ntkrnlmp.exe"


def test_nb10_reference():
    ref = _three_ways(build_nb10(r"d:\nt\ntoskrnl.pdb", 0x3B7D8410, 2), parse_codeview_ref)
    assert (ref.format, ref.pdb_name, ref.signature, ref.age) == ("NB10", r"d:\nt\ntoskrnl.pdb", 0x3B7D8410, 2)


def test_rsds_reference():
    ref = _three_ways(build_rsds("ntkrnlmp.pdb", GUID, 1), parse_codeview_ref)
    assert (ref.format, ref.pdb_name, ref.guid, ref.age) == ("RSDS", "ntkrnlmp.pdb", GUID, 1)


def test_fpo_records_bit_fields():
    records = [FpoData(0x1000, 0x40, 3, 2, 0x12, 5, True, False, 3), FpoData(0x1040, 8, 0, 0, 0, 0, False, True, 1)]
    data = b"".join(build_fpo(r) for r in records)
    assert _three_ways(data, parse_fpo, trailing=b"\x01\x02") == records


def test_debug_directory_and_section_headers():
    entries = build_debug_entry(4, 24, 0x200) + build_debug_entry(2, 40, 0x218, rva=0x3018, timestamp=7)
    parsed = _three_ways(entries, parse_debug_directory, trailing=b"\x00" * 5)
    assert [(e.type, e.size, e.rva, e.pointer, e.timestamp) for e in parsed] == \
        [(4, 24, 0, 0x200, 0), (2, 40, 0x3018, 0x218, 7)]
    sections = [SectionHeader(".text", 0x1000, 0x800, 0x60000020), SectionHeader("PAGELK", 0x2000, 0x10, 0)]
    data = b"".join(build_section_header(s) for s in sections)
    assert _three_ways(data, lambda d: parse_section_headers(d, 2)) == sections


@pytest.mark.parametrize("blob", [b"RSDS" + b"\x00" * 10, b"NB10\x00\x00", b"XXXX" + b"\x00" * 30, b"NB"])
def test_bad_codeview_records(blob):
    with pytest.raises(SymbolFileError):
        parse_codeview_ref(blob)


def test_misc_length_beyond_its_data_is_refused():
    blob = bytearray(build_misc("a.exe"))
    blob[4:8] = (999).to_bytes(4, "little")
    with pytest.raises(SymbolFileError):
        parse_misc_name(bytes(blob))


def test_section_header_stream_reads_every_whole_row_without_a_limit():
    # A PDB's section-header stream has no count: every whole 40-byte row is a section.
    sections = [SectionHeader(f".s{i}", 0x1000 * (i + 1), 0x10, i) for i in range(100)]
    data = b"".join(build_section_header(s) for s in sections)
    assert _three_ways(data, lambda d: parse_section_headers(d, limit=None),
                       trailing=b"\x01" * 39) == sections
    with pytest.raises(SymbolFileError, match="100 section headers"):
        parse_section_headers(data)


def test_section_names_that_are_not_utf8_read_as_windows_1252():
    header = build_section_header(SectionHeader("x", 0x1000, 0x10, 0))
    raw = b".t\xe9xt\x00\x00\x00" + header[8:]
    assert parse_section_headers(raw, limit=None)[0].name == ".t\u00e9xt"
