"""kdcon-symbols: dump, lookup, add and check, with one-line errors and exit codes."""

from __future__ import annotations

import json
import os

import pytest

from kdcon.symbols.match import format_guid
from kdcon.symbols.pe import read_image
from kdcon.tools.symbols_cli import main

from .store_fixtures import build_lld_driver, nt4_pair, put


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build_lld_driver(str(tmp_path_factory.mktemp("cli")))


def test_dump_pdb_json_has_identity_publics_globals_procedures_and_types(driver, capsys):
    _, pdb = driver
    assert main(["dump", pdb, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    identity = read_image(driver[0]).identity
    assert result["kind"] == "pdb7" and result["identity"]["guid"] == format_guid(identity.guid)
    assert result["identity"]["age"] == identity.age
    assert {"name": "DriverEntry", "section": 1, "offset": 0x30, "rva": 0x1030} in result["publics"]
    assert {"name": "DemoGlobal", "rva": 0x3008, "type": "_DEMO"} in result["globals"]
    assert {"name": "DemoCallback", "rva": 0x1020, "length": 0x10} in result["procedures"]
    demo = next(t for t in result["types"] if t["name"] == "_DEMO")
    assert demo["size"] == 32 and demo["kind"] == "struct"
    assert {"name": "Bits", "offset": 24, "type": "Pos 0, 3 Bits", "bit_position": 0, "bit_width": 3} in demo["fields"]


def test_dump_dbg_and_image_text(tmp_path, driver, capsys):
    pair = nt4_pair()
    dbg = put(str(tmp_path / "ntoskrnl.dbg"), pair.dbg)
    assert main(["dump", dbg]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kind: dbg\n") and "public    00001100 _KeBugCheckEx@20" in out
    assert main(["dump", driver[0]]) == 0
    assert "export    00001000 DemoExported" in capsys.readouterr().out


def test_add_symsrv_and_tree_then_lookup_and_check(tmp_path, driver, capsys):
    sys_path, pdb_path = driver
    store, tree = str(tmp_path / "store"), str(tmp_path / "tree")
    assert main(["add", "--store", store, sys_path, pdb_path]) == 0
    assert main(["add", "--store", tree, "--layout", "tree", sys_path, pdb_path]) == 0
    assert os.path.isfile(os.path.join(tree, "symbols", "sys", "drv.pdb"))
    capsys.readouterr()
    assert main(["lookup", "-y", f"srv*{store}", sys_path, "140001005"]) == 0
    assert capsys.readouterr().out == \
        "(00000001`40001000)   drv!DemoExported+0x5   |  (00000001`40001020)   drv!DemoCallback\n"
    assert main(["lookup", "-y", tree, sys_path, "Driver*"]) == 0
    assert capsys.readouterr().out == "00000001`40001030 drv!DriverEntry (void *, void *)\n"
    assert main(["check", "-y", f"{tree};srv*{store};srv*https://sym.invalid", sys_path]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{sys_path}: PASSED ") and "unreachable" in out


def test_check_reports_why_a_file_does_not_match(tmp_path, driver, capsys):
    sys_path, _ = driver
    other_sys, other_pdb = build_lld_driver(str(tmp_path / "other"), variant=7)
    put(str(tmp_path / "sym" / "drv.pdb"), open(other_pdb, "rb").read())
    assert main(["check", "-y", str(tmp_path / "sym"), sys_path]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "# GUID" in out


@pytest.mark.parametrize("argv, status, message", [
    (["dump", "/nonexistent/file.pdb"], 1, "/nonexistent/file.pdb: no such file"),
    (["lookup", "-y", "x"], 2, "required"),
    (["frobnicate"], 2, "invalid choice"),
    (["lookup", "-y", "foo*bar", "/nonexistent.sys", "1000"], 1, "kdcon-symbols:"),
])
def test_errors_are_one_line_with_exit_status(argv, status, message, capsys):
    assert main(argv) == status
    err = capsys.readouterr().err
    assert message in err
    if status == 1:
        assert err.count("\n") == 1


def test_lookup_with_nothing_found_is_status_1(tmp_path, driver, capsys):
    assert main(["lookup", "-y", str(tmp_path), driver[0], "NoSuch*"]) == 1
    assert "no symbol found" in capsys.readouterr().err


def test_lookup_and_check_an_nt4_kernel_against_a_symbols_tree(tmp_path, capsys):
    pair = nt4_pair()
    image = put(str(tmp_path / "ntoskrnl.exe"), pair.image)
    dbg = put(str(tmp_path / "in" / "ntoskrnl.dbg"), pair.dbg)
    assert main(["add", "--store", str(tmp_path / "sym"), "--layout", "tree", dbg]) == 0
    assert os.path.isfile(tmp_path / "sym" / "symbols" / "exe" / "ntoskrnl.dbg")
    capsys.readouterr()
    assert main(["lookup", "-y", str(tmp_path / "sym"), image, "80401104"]) == 0
    assert capsys.readouterr().out == "(80401100)   nt!_KeBugCheckEx@20+0x4   |  (80401200)   nt!@KfAcquireSpinLock@4\n"
    assert main(["check", "-y", str(tmp_path / "sym"), image]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "ntoskrnl.dbg: matches (timestamp 37CDB039 size 5000)" in out
    assert "ntkrnlmp" not in out
    assert main(["check", "-y", str(tmp_path / "nothing"), image]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "ntkrnlmp.dbg: not on the symbol path" in out
