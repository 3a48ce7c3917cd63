"""PDB 7.0 files from the writer, read by llvm-pdbutil and by us, must agree."""

from __future__ import annotations

import pytest

from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pdb.writer import build_pdb
from tests.symbols.fixtures_pdb import pdbutil_dump, pdbutil_lines, sample_spec, section_rva


@pytest.fixture(scope="module", params=[512, 4096])
def written(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("pdb7") / "drv.pdb"
    path.write_bytes(build_pdb(sample_spec("pdb7", page_size=request.param)))
    return path, pdbutil_dump(path)


def test_writer_output_agrees_with_pdbutil_symbols(written):
    path, dump = written
    with open_pdb(path) as pdb:
        assert str(pdb.identity.guid).upper() == dump.guid
        assert pdb.identity.age == dump.age
        assert [(s.name, s.virtual_address, s.virtual_size) for s in pdb.sections] == dump.sections
        assert sorted((p.name, p.rva) for p in pdb.publics()) == sorted(
            (n, section_rva(dump, s, o)) for n, s, o in dump.publics)
        assert sorted((g.name, g.rva) for g in pdb.globals()) == sorted(
            (n, section_rva(dump, s, o)) for n, _, s, o, _ in dump.globals)
        assert sorted((p.name, p.rva, p.size) for p in pdb.procedures()) == sorted(
            (n, section_rva(dump, s, o), length) for n, s, o, length, _ in dump.procedures)
    assert len(dump.publics) == 4 and len(dump.globals) == 3 and len(dump.procedures) == 2


def test_writer_output_agrees_with_pdbutil_types(written):
    path, dump = written
    aggregates = [t for t in dump.types.values()
                  if t.leaf in ("LF_STRUCTURE", "LF_UNION") and not t.forward]
    assert len(aggregates) == 3
    with open_pdb(path) as pdb:
        for record in aggregates:
            info = pdb.types.by_index(record.index)
            assert (info.name, info.size) == (record.name, record.size)
            assert [(f.name, f.offset) for f in info.fields] == [
                (n, o) for n, _, o in dump.types[record.field_list].members]


def test_writer_lines_agree_with_pdbutil(written):
    path, dump = written
    expected = sorted((section_rva(dump, seg, off), file, line)
                      for file, seg, off, line in pdbutil_lines(path))
    with open_pdb(path) as pdb:
        assert sorted((e.rva, e.file, e.line) for e in pdb.lines()) == expected
    assert len(expected) == 5
