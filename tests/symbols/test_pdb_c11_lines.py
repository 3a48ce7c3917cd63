"""C11 (CV4 sstSrcModule) line numbers of PDB 2.0 module streams.

Writer-built VC6 and VC4 PDBs with several files and segments are read back
through ``line_for``/``lines``; the C11 block alone is fed whole, cut at every
byte and with trailing bytes; damaged tables end in ``SymbolFileError``; and
winedump, which decodes C11 lines of the VC6 and V50-DBI layouts (it dumps no
modules of the oldest DBI header), must list the same lines.
"""

from __future__ import annotations

import re
import struct
import subprocess

import pytest

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import SectionHeader
from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pdb.lines_c11 import read_c11_lines
from kdcon.symbols.pdb.structs import TPI_VER_V50
from kdcon.symbols.pdb.writer import build_pdb
from tests.oracles import require_tool
from tests.symbols.fixtures_pdb import sample_spec

LINES = [
    ("c:\\src\\drv.c", 1, 0x10, [(0, 10), (8, 11), (0x20, 14)]),
    ("c:\\src\\helper.c", 1, 0x80, [(0, 3), (0x10, 4), (0x14, 9)]),
    ("c:\\src\\drv.c", 2, 0x10, [(0, 30), (4, 31)]),
    ("c:\\src\\caf\u00e9.c", 1, 0x100, [(0, 7), (6, 8)]),
]
CASES = {
    "vc6": ("vc6", {}),
    "vc4": ("vc4", {}),
    "vc4-v50": ("vc4", dict(dbi_form="v50", tpi_version=TPI_VER_V50)),
}


def _spec(case: str, **overrides):
    profile, extra = CASES[case]
    return sample_spec(profile, lines=LINES, **{**extra, **overrides})


def _expected(spec, bases) -> list[tuple[int, int, str, int]]:
    """(rva, length, file, line) of every pair: to the next pair, the last one 1 byte."""
    out = []
    for file, segment, offset, entries in spec.lines:
        for i, (delta, line) in enumerate(entries):
            following = entries[i + 1][0] if i + 1 < len(entries) else delta + 1
            out.append((bases[segment] + offset + delta, following - delta, file, line))
    return sorted(out)


def _bases(spec) -> dict[int, int]:
    return {i + 1: s.virtual_address for i, s in enumerate(spec.sections)}


def _c11_block(data: bytes, spec) -> bytes:
    with open_pdb(data, image_sections=spec.sections) as pdb:
        module = pdb.dbi.modules[0]
        stream = pdb.msf.stream(module.stream)
        return bytes(stream[module.sym_bytes:module.sym_bytes + module.c11_bytes])


def _decode(block: bytes, bases) -> list[tuple[int, int, str, int]]:
    def rva_of(segment: int, offset: int) -> int | None:
        return bases[segment] + offset if segment in bases else None

    entries = read_c11_lines(block, 0, len(block), rva_of)
    return sorted((e.rva, e.length, e.file, e.line) for e in entries)


@pytest.mark.parametrize("case", sorted(CASES))
def test_c11_lines_read_back_at_each_start_and_inside_each_range(case):
    spec = _spec(case)
    with open_pdb(build_pdb(spec), image_sections=spec.sections) as pdb:
        got = [(e.rva, e.length, e.file, e.line) for e in pdb.lines()]
        expected = _expected(spec, _bases(spec))
        assert got == expected
        assert {f for *_, f, _ in got} == {"c:\\src\\drv.c", "c:\\src\\helper.c",
                                           "c:\\src\\caf\u00e9.c"}
        for rva, length, file, line in expected:
            assert pdb.line_for(rva) == (file, line)
            assert pdb.line_for(rva + length - 1) == (file, line)
        assert pdb.line_for(0x1010 + 0x21) is None          # past the last line's byte
        assert pdb.line_for(0x100F) is None


@pytest.mark.parametrize("case", sorted(CASES))
def test_c11_block_whole_cut_at_every_byte_and_with_trailing_bytes(case):
    spec = _spec(case)
    block = _c11_block(build_pdb(spec), spec)
    bases = _bases(spec)
    whole = _decode(block, bases)
    assert whole == _expected(spec, bases)
    assert _decode(block + b"\xcc" * 13, bases) == whole
    # The last line block (two pairs) ends the block unpadded: every cut loses data.
    for cut in range(len(block)):
        with pytest.raises(SymbolFileError):
            _decode(block[:cut], bases)


def test_pdb_with_trailing_bytes_reads_the_same_lines():
    spec = _spec("vc6")
    data = build_pdb(spec)
    with open_pdb(data, image_sections=spec.sections) as pdb:
        whole = pdb.lines()
    with open_pdb(data + b"\x00\xff" * 700, image_sections=spec.sections) as pdb:
        assert pdb.lines() == whole


def test_c11_lines_go_through_omap():
    original = [SectionHeader(".text", 0x1000, 0x200), SectionHeader(".data", 0x2000, 0x100)]
    final = [SectionHeader(".text", 0x4000, 0x200), SectionHeader(".data", 0x8000, 0x100)]
    # .text moves by 0x3000 except 0x1088..0x108f, which has no image.
    omap = [(0x1000, 0x4000), (0x1088, 0), (0x1090, 0x4090), (0x2000, 0x8000), (0x2100, 0)]
    spec = _spec("vc6", sections=final, original_sections=original, omap_from_src=omap)
    with open_pdb(build_pdb(spec)) as pdb:
        assert pdb.line_for(0x4018) == ("c:\\src\\drv.c", 11)
        assert pdb.line_for(0x8014) == ("c:\\src\\drv.c", 31)
        assert pdb.line_for(0x4090) == ("c:\\src\\helper.c", 4)
        assert pdb.line_for(0x1018) is None
        assert all(e.rva >= 0x4000 for e in pdb.lines())


def test_c11_file_names_decode_as_cp1252_with_replacement():
    block = bytearray(_c11_block(build_pdb(_spec("vc6")), _spec("vc6")))
    at = block.index(b"caf\xe9.c")
    block[at] = 0x81                       # undefined in cp1252
    names = {file for *_, file, _ in _decode(bytes(block), {1: 0x1000, 2: 0x2000})}
    assert "c:\\src\\\ufffdaf\u00e9.c" in names


def _patched(block: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(block)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def test_c11_counts_and_offsets_out_of_range_raise_symbol_file_error():
    block = _c11_block(build_pdb(_spec("vc6")), _spec("vc6"))
    bases = {1: 0x1000, 2: 0x2000}
    file_count, segment_count = struct.unpack_from("<HH", block)
    first_file = struct.unpack_from("<I", block, 4)[0]
    first_lines = struct.unpack_from("<I", block, first_file + 4)[0]
    damaged = [
        _patched(block, 0, "<H", 0xFFFF),                        # cFile
        _patched(block, 2, "<H", 0xFFFF),                        # cSeg
        _patched(block, 4, "<I", 0xFFFFFFFF),                    # baseSrcFile[0]
        _patched(block, first_file, "<H", 0xFFFF),               # file cSeg
        _patched(block, first_file + 4, "<I", len(block) - 2),   # baseSrcLn[0]
        _patched(block, first_lines + 2, "<H", 0xFFFF),          # cPair
    ]
    for data in damaged:
        with pytest.raises(SymbolFileError):
            _decode(data, bases)
    with pytest.raises(SymbolFileError):
        read_c11_lines(block, 8, len(block) + 1, lambda s, o: o)
    assert (file_count, segment_count) == (3, 2)


def test_c11_tables_pointing_at_one_file_many_times_are_refused_quickly():
    # 0xFFFF files that are all the same file, whose blocks are all one block:
    # decoding it naively would emit billions of entries.
    block = _c11_block(build_pdb(_spec("vc6")), _spec("vc6"))
    first_file = struct.unpack_from("<I", block, 4)[0]
    shift = 4 + 4 * 0xFFFF
    body = bytearray(block[first_file:])
    count = struct.unpack_from("<H", body, 0)[0]
    for j in range(count):
        base = struct.unpack_from("<I", body, 4 + 4 * j)[0]
        struct.pack_into("<I", body, 4 + 4 * j, base - first_file + shift)
    head = struct.pack("<HH", 0xFFFF, 0) + struct.pack("<I", shift) * 0xFFFF
    with pytest.raises(SymbolFileError, match="more data than the block holds"):
        _decode(head + bytes(body), {1: 0x1000, 2: 0x2000})


def test_damaged_c11_size_in_the_pdb_raises_symbol_file_error():
    spec = _spec("vc6")
    data = build_pdb(spec)
    with open_pdb(data, image_sections=spec.sections) as pdb:
        stream = pdb.msf.stream(pdb.dbi.modules[0].stream)
        c11 = pdb.dbi.modules[0].c11_bytes
    # The MODI's C11 size is the u32 after sym_bytes; find it in the DBI by value.
    raw = bytearray(data)
    needle = struct.pack("<II", len(stream) - c11 - 4, c11)
    at = raw.index(needle)
    struct.pack_into("<I", raw, at + 4, 0x7FFFFFFF)
    with open_pdb(bytes(raw), image_sections=spec.sections) as pdb:
        with pytest.raises(SymbolFileError):
            pdb.lines()
        with pytest.raises(SymbolFileError):
            pdb.line_for(0x1010)


def _winedump_lines(path) -> list[tuple[str, int, int, int]]:
    tool = require_tool("winedump")
    text = subprocess.run([tool, "dump", str(path)], capture_output=True,
                          check=True).stdout.decode("cp1252", errors="replace")
    found = []
    file = segment = None
    for row in text.splitlines():
        if m := re.match(r"\s+lines for file #\d+/\d+ (.*) \d+$", row):
            file = m.group(1)
        elif m := re.match(r"\s+([0-9a-f]{4}):[0-9a-f]{8}-[0-9a-f]{8} #\d+$", row):
            segment = int(m.group(1), 16)
        elif (m := re.match(r"\s+([0-9a-f]+) (\d+)$", row)) and file is not None:
            found.append((file, segment, int(m.group(1), 16), int(m.group(2))))
        elif not row.startswith(" "):
            file = None
    return sorted(found)


@pytest.mark.parametrize("case", ["vc6", "vc4-v50"])
def test_c11_lines_agree_with_winedump(case, tmp_path):
    spec = _spec(case)
    path = tmp_path / "drv.pdb"
    path.write_bytes(build_pdb(spec))
    dumped = _winedump_lines(path)
    bases = _bases(spec)
    segment_of = {base: seg for seg, base in bases.items()}
    with open_pdb(path, image_sections=spec.sections) as pdb:
        ours = sorted((e.file, segment_of[e.rva & ~0xFFF], e.rva - (e.rva & ~0xFFF), e.line)
                      for e in pdb.lines())
    assert len(dumped) == sum(len(entries) for *_, entries in LINES)
    assert ours == dumped
