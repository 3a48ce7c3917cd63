"""Globals and procedures of clang/lld-built drivers against llvm-pdbutil."""

from __future__ import annotations

from kdcon.symbols.model import SymbolKind
from kdcon.symbols.pdb import open_pdb
from tests.symbols.fixtures_pdb import (
    built_driver,
    driver,
    pdbutil_lines,
    resolve_forward,
    section_rva,
)


def test_every_global_matches_pdbutil_name_rva_and_type(driver):
    path, dump = driver
    with open_pdb(path) as pdb:
        got = pdb.globals()
        types = pdb.types
        expected = sorted((section_rva(dump, seg, off), name,
                           types.type_name(resolve_forward(dump, ti)))
                          for name, ti, seg, off, _ in dump.globals)
    assert sorted((g.rva, g.name, g.type_name) for g in got) == expected
    assert all(g.kind is SymbolKind.DATA for g in got)
    names = {g.name: g.type_name for g in got}
    assert names["DemoStaticCounter"] == "Uint4B"
    assert names["DemoUnions"] == "[3] _DEMO_UNION"
    assert names["DemoObjectPointer"] in ("Ptr64 _DEMO_OBJECT", "Ptr32 _DEMO_OBJECT")


def test_every_procedure_matches_pdbutil_name_rva_and_length(driver):
    path, dump = driver
    with open_pdb(path) as pdb:
        got = pdb.procedures()
        private = pdb.has_private_symbols
    expected = sorted((section_rva(dump, seg, off), name, length)
                      for name, seg, off, length, _ in dump.procedures)
    assert sorted((p.rva, p.name, p.size) for p in got) == expected
    assert {"DemoCallback", "DemoInsert", "DemoExported", "DriverEntry"} <= {p.name for p in got}
    assert all(p.kind is SymbolKind.FUNCTION for p in got)
    assert private is True


def test_procedure_ranges_cover_their_publics():
    with open_pdb(built_driver("x64")) as pdb:
        ranges = {p.name: (p.rva, p.rva + p.size) for p in pdb.procedures()}
        for public in pdb.publics():
            if public.name in ranges:
                start, end = ranges[public.name]
                assert start == public.rva < end


def test_every_line_entry_matches_pdbutil(driver):
    path, dump = driver
    expected = sorted((section_rva(dump, seg, off), file, line)
                      for file, seg, off, line in pdbutil_lines(path))
    assert len(expected) > 10
    with open_pdb(path) as pdb:
        assert sorted((e.rva, e.file, e.line) for e in pdb.lines()) == expected
        for rva, file, line in expected:
            found = pdb.line_for(rva)
            assert found is not None and found[0] == file
        entry_rvas = {rva for rva, _, _ in expected}
        procedures = pdb.procedures()
        assert all(p.rva in entry_rvas for p in procedures)
