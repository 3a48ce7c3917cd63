"""DBG files: builder round trip, COFF/FPO/OMAP/NB09, bad input, and winedump as the oracle."""

from __future__ import annotations

import re
import subprocess

import pytest

from kdcon.symbols.cvinline import build_nb09_publics
from kdcon.symbols.dbg import read_dbg
from kdcon.symbols.dbgwriter import CoffSymbol, DbgSpec, build_dbg, example_sections
from kdcon.symbols.debugdir import FpoData
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import FileKind, SymbolKind
from kdcon.symbols.pe import read_image
from kdcon.symbols.pewriter import ImageSpec, build_image
from tests.oracles import require_tool

COFF = [CoffSymbol("_DriverEntry@8", 1, 0x70), CoffSymbol("_DemoCounter", 3, 0, function=False),
        CoffSymbol("_AVeryLongRoutineName@12", 1, 0x10), CoffSymbol("_StaticHelper", 1, 0x40, storage=3)]
FPO = [FpoData(0x1070, 0x20, 1, 2, 3, 1, False, True, 0), FpoData(0x1010, 0x30, 0, 3, 0, 0, True, False, 3)]


def _spec(**changes) -> DbgSpec:
    spec = DbgSpec(sections=example_sections(), exported_names=["_DriverEntry@8", "_DemoExported@4"],
                   nb10=("drv32s.pdb", 0x3B7D8410, 2), coff_symbols=COFF, fpo=FPO)
    for key, value in changes.items():
        setattr(spec, key, value)
    return spec


def _summary(dbg):
    return (dbg.identity, dbg.sections, dbg.exported_names, dbg.misc_name, dbg.codeview,
            dbg.coff_symbols(), dbg.fpo())


def test_round_trip_gives_identity_sections_names_and_records():
    dbg = read_dbg(build_dbg(_spec()), "drv32s.dbg")
    assert dbg.identity.kind is FileKind.DBG
    assert (dbg.identity.timestamp, dbg.identity.size_of_image, dbg.identity.checksum) == (0xED2A90E4, 0x5000, 0)
    assert (dbg.identity.signature, dbg.identity.age, dbg.identity.pdb_name) == (0x3B7D8410, 2, "drv32s.pdb")
    assert [s.name for s in dbg.sections] == [".text", ".rdata", ".data", "INIT"]
    assert dbg.exported_names == ["_DriverEntry@8", "_DemoExported@4"]
    assert dbg.misc_name == "drv32s.sys" and dbg.machine == 0x14C
    by_name = {r.name: r for r in dbg.coff_symbols()}
    assert by_name["_DriverEntry@8"].rva == 0x1070 and by_name["_DriverEntry@8"].size == 0x20
    assert by_name["_AVeryLongRoutineName@12"].rva == 0x1010 and by_name["_AVeryLongRoutineName@12"].size == 0x30
    assert by_name["_DemoCounter"].rva == 0x3000 and by_name["_StaticHelper"].rva == 0x1040
    assert all(r.kind is SymbolKind.COFF for r in by_name.values())
    assert dbg.fpo() == FPO


def test_whole_trailing_and_byte_by_byte_prefixes():
    data = build_dbg(_spec())
    whole = _summary(read_dbg(data, "drv32s.dbg"))
    assert _summary(read_dbg(data + b"\xAB" * 37, "drv32s.dbg")) == whole
    for cut in range(len(data)):
        try:
            dbg = read_dbg(data[:cut], "drv32s.dbg")
            dbg.coff_symbols()
            dbg.fpo()
        except SymbolFileError:
            continue
    assert _summary(read_dbg(bytearray(data), "drv32s.dbg")) == whole


def test_omap_from_src_moves_symbols_and_drops_unmapped_ones():
    spec = _spec(omap_from_src=[(0x1000, 0x5000), (0x1050, 0), (0x1060, 0x6000)])
    dbg = read_dbg(build_dbg(spec), "x.dbg")
    rvas = {r.name: r.rva for r in dbg.coff_symbols()}
    assert rvas["_AVeryLongRoutineName@12"] == 0x5010
    assert rvas["_StaticHelper"] == 0x5040
    assert rvas["_DriverEntry@8"] == 0x6010
    assert "_DemoCounter" in rvas  # 0x3000 maps through the last entry
    assert read_dbg(build_dbg(_spec(omap_from_src=[(0x1000, 0)])), "x.dbg").coff_symbols() == []


def test_inline_nb09_publics_are_preferred_over_coff():
    blob = build_nb09_publics([("_KeBugCheck@4", 1, 0x123), ("_KiData", 3, 0x8)])
    dbg = read_dbg(build_dbg(_spec(nb10=None, codeview_blob=blob)), "nt.dbg")
    assert dbg.has_inline_codeview and dbg.codeview.format == "NB09"
    assert [(r.name, r.rva) for r in dbg.symbols()] == [("_KeBugCheck@4", 0x1123), ("_KiData", 0x3008)]


@pytest.mark.parametrize("damage", [
    lambda d: b"XX" + d[2:],
    lambda d: d[:0x18] + (200).to_bytes(4, "little") + d[0x1C:],
    lambda d: d[:0x20] + (0xFFFFFF).to_bytes(4, "little") + d[0x24:],
    lambda d: d[:40],
])
def test_damaged_headers_raise_symbol_file_error(damage):
    with pytest.raises(SymbolFileError):
        read_dbg(damage(build_dbg(_spec())), "bad.dbg")


def test_coff_name_offset_outside_string_table_is_an_error():
    data = bytearray(build_dbg(_spec(fpo=())))
    dbg = read_dbg(bytes(data), "x.dbg")
    entry = next(e for e in dbg.debug_entries if e.type == 1)
    long_name = entry.pointer + 32 + 18 * 2   # third symbol has a string-table name
    data[long_name + 4:long_name + 8] = (0x7FFF).to_bytes(4, "little")
    with pytest.raises(SymbolFileError):
        read_dbg(bytes(data), "x.dbg").coff_symbols()


def _winedump(path, *options):
    winedump = require_tool("winedump")
    done = subprocess.run([winedump, "dump", *options, str(path)], capture_output=True, text=True, timeout=60)
    return done.stdout


def test_winedump_reads_the_same_header_sections_misc_and_nb10(tmp_path):
    path = tmp_path / "drv32s.dbg"
    path.write_bytes(build_dbg(_spec(coff_symbols=(), fpo=())))
    text = _winedump(path)
    dbg = read_dbg(str(path))
    field = lambda name: int(re.search(rf"{name}:\s+0x([0-9A-Fa-f]+)", text).group(1), 16)  # noqa: E731
    assert field("TimeDateStamp") == dbg.identity.timestamp
    assert field("SizeOfImage") == dbg.identity.size_of_image
    assert field("CheckSum") == dbg.identity.checksum
    assert field("NumberOfSections") == len(dbg.sections)
    dumped = re.findall(r"^  (\S+)\s+VirtSize: 0x([0-9a-f]+)\s+VirtAddr:\s+0x([0-9a-f]+)", text, re.M)
    assert [(n, int(s, 16), int(a, 16)) for n, s, a in dumped] == \
        [(s.name, s.virtual_size, s.virtual_address) for s in dbg.sections]
    assert re.search(r"^\s+Data:\s+(\S+)", text, re.M).group(1) == dbg.misc_name
    assert re.search(r"TimeStamp:\s+([0-9A-F]{8})", text).group(1) == f"{dbg.identity.signature:08X}"
    assert int(re.search(r"Age:\s+([0-9A-F]+)", text).group(1), 16) == dbg.identity.age
    assert re.search(r"Filename:\s+(\S+)", text).group(1) == dbg.identity.pdb_name


def test_winedump_lists_the_same_coff_symbols(tmp_path):
    # winedump's DBG dump takes COFF section headers from PE headers a DBG does not
    # have (it crashes), so the same COFF blob is checked inside an image whose
    # first two sections sit where the DBG's do.
    dbg = read_dbg(build_dbg(_spec(coff_symbols=COFF[:1] + COFF[2:], fpo=())), "drv32s.dbg")
    entry = next(e for e in dbg.debug_entries if e.type == 1)
    blob = dbg._data[entry.pointer:entry.pointer + entry.size]
    image = build_image(ImageSpec(name="drv32s.sys", machine=0x14C, image_base=0x400000,
                                  debug=[(1, blob)], map_debug_data=False))
    assert [s.virtual_address for s in read_image(image).sections][:1] == [0x1000]
    path = tmp_path / "drv32s.sys"
    path.write_bytes(image)
    text = _winedump(path, "-j", "debug")
    dumped = re.findall(r"^\d{5} \| \d\d:[0-9a-f]{8} \[([0-9a-f]{8})\] \| \S+ \| (\S+)$", text, re.M)
    # winedump shows names without one leading underscore.
    ours = [(r.rva, r.name[1:] if r.name.startswith("_") else r.name) for r in dbg.coff_symbols()]
    assert sorted((int(a, 16), n) for a, n in dumped) == sorted(ours)
    assert len(ours) == 3
