"""Identity, sections and publics of clang/lld-built drivers against llvm-pdbutil."""

from __future__ import annotations

import uuid

import pytest

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import FileKind, SymbolKind
from kdcon.symbols.pdb import open_pdb
from tests.symbols.fixtures_pdb import built_driver, driver, section_rva


def test_identity_matches_pdbutil_guid_and_age(driver):
    path, dump = driver
    with open_pdb(path) as pdb:
        ident = pdb.identity
    assert ident.kind is FileKind.PDB7
    assert ident.guid == uuid.UUID(dump.guid)
    assert ident.age == dump.age
    assert ident.signature == dump.signature
    assert ident.name == "drv.pdb"


def test_sections_match_pdbutil_section_headers(driver):
    path, dump = driver
    with open_pdb(path) as pdb:
        got = [(s.name, s.virtual_address, s.virtual_size) for s in pdb.sections]
    assert got == dump.sections
    assert len(got) >= 3


def test_every_public_matches_pdbutil_name_andsection_rva(driver):
    path, dump = driver
    with open_pdb(path) as pdb:
        publics = pdb.publics()
    expected = sorted((section_rva(dump, seg, off), name) for name, seg, off in dump.publics)
    assert sorted((p.rva, p.name) for p in publics) == expected
    assert [p.rva for p in publics] == sorted(p.rva for p in publics)
    assert all(p.kind is SymbolKind.PUBLIC for p in publics)
    assert len(publics) >= 8


def test_x86_stdcall_publics_keep_their_decoration():
    with open_pdb(built_driver("x86gz")) as pdb:
        names = {p.name for p in pdb.publics()}
    assert {"_DriverEntry@8", "_DemoExported@4", "_DemoCounter", "_DemoGlobal"} <= names


def _streams_read(pdb) -> set[int]:
    """Streams assembled (``stream``) or read in place (``stream_span``) so far."""
    return set(pdb.msf._cache) | set(pdb.msf._spans)


def test_identity_and_sections_read_no_symbol_records(driver):
    path, _ = driver
    with open_pdb(path) as pdb:
        pdb.identity
        pdb.sections
        symrec = pdb.dbi.symrec_stream
        assert symrec not in _streams_read(pdb)
        assert 2 not in _streams_read(pdb)          # TPI


def test_publics_read_no_types_or_module_streams(driver):
    path, _ = driver
    with open_pdb(path) as pdb:
        pdb.publics()
        module_streams = {m.stream for m in pdb.dbi.modules}
        assert pdb.dbi.symrec_stream in _streams_read(pdb)
        assert not (module_streams | {2}) & _streams_read(pdb)


def test_open_from_bytes_whole_and_with_trailing_bytes(driver):
    path, dump = driver
    data = path.read_bytes()
    for blob in (data, data + b"\0" * 1000, data + bytes(range(256)) * 7):
        with open_pdb(blob, name="drv.pdb") as pdb:
            assert pdb.identity.guid == uuid.UUID(dump.guid)
            assert len(pdb.publics()) == len(dump.publics)


def test_open_truncated_prefixes_raise_symbol_file_error():
    data = built_driver("x64").read_bytes()
    # Every prefix of the header page, then a stride through the rest:
    # byte-at-a-time feeding for a whole-file format.
    cuts = list(range(0, 4096, 7)) + list(range(4096, len(data), 509))
    for cut in cuts:
        with pytest.raises(SymbolFileError):
            with open_pdb(data[:cut]) as pdb:
                pdb.publics()


def test_missing_file_raises_symbol_file_error(tmp_path):
    with pytest.raises(SymbolFileError):
        open_pdb(tmp_path / "absent.pdb")
    (tmp_path / "empty.pdb").write_bytes(b"")
    with pytest.raises(SymbolFileError):
        open_pdb(tmp_path / "empty.pdb")
