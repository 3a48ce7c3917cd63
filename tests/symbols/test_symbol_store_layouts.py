"""Classic SYMBOLS trees and symsrv stores: finding files, case, index2.txt, file.ptr."""

from __future__ import annotations

import os

from kdcon.symbols.store import (copy_atomic, symsrv_destination, symsrv_files, symsrv_versions,
                                 tree_destination, tree_files)


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_tree_search_order_symbols_ext_then_ext_then_root(tmp_path):
    a = _touch(tmp_path / "symbols" / "exe" / "ntoskrnl.dbg")
    b = _touch(tmp_path / "exe" / "ntoskrnl.dbg")
    c = _touch(tmp_path / "ntoskrnl.dbg")
    hits = [h.path for h in tree_files(str(tmp_path), "ntoskrnl.dbg", "exe")]
    assert hits == [str(a), str(b), str(c)]


def test_tree_entries_match_case_insensitively(tmp_path):
    found = _touch(tmp_path / "Symbols" / "SYS" / "ACPI.DBG")
    assert [h.path for h in tree_files(str(tmp_path), "acpi.dbg", "sys")] == [str(found)]


def test_tree_refuses_names_that_climb_out(tmp_path):
    _touch(tmp_path / "secret.dbg")
    inner = tmp_path / "tree"
    inner.mkdir()
    assert list(tree_files(str(inner), "../secret.dbg", "exe")) == []
    assert list(tree_files(str(inner), "..", "exe")) == []


def test_symsrv_lookup_by_key_ignores_case(tmp_path):
    found = _touch(tmp_path / "acpi.dbg" / "37cdb03962040" / "acpi.dbg")
    hits = list(symsrv_files(str(tmp_path), "ACPI.DBG", "37CDB03962040"))
    assert [h.path for h in hits] == [str(found)]
    assert list(symsrv_files(str(tmp_path), "acpi.dbg", "37CDB03962041")) == []


def test_two_tier_store_with_index2(tmp_path):
    _touch(tmp_path / "index2.txt")
    found = _touch(tmp_path / "nt" / "ntdll.pdb" / "ABC1" / "ntdll.pdb")
    assert [h.path for h in symsrv_files(str(tmp_path), "ntdll.pdb", "abc1")] == [str(found)]
    assert symsrv_destination(str(tmp_path), "ntdll.pdb", "ABC1") == str(found)


def test_file_ptr_inside_roots_is_followed_outside_is_not(tmp_path):
    store = tmp_path / "store"
    real = _touch(tmp_path / "builds" / "hal.dbg")
    _touch(store / "hal.dbg" / "K1" / "file.ptr", str(real).encode())
    assert list(symsrv_files(str(store), "hal.dbg", "K1")) == []
    hits = list(symsrv_files(str(store), "hal.dbg", "K1", roots=[str(tmp_path / "builds")]))
    assert [(h.path, h.how) for h in hits] == [(str(real), "file.ptr")]
    _touch(store / "hal.dbg" / "K2" / "file.ptr", b"PATH:../../../builds/hal.dbg")
    assert list(symsrv_files(str(store), "hal.dbg", "K2")) == []
    _touch(store / "hal.dbg" / "K3" / "file.ptr", b"\\\\server\\share\\hal.dbg")
    assert list(symsrv_files(str(store), "hal.dbg", "K3", roots=[str(tmp_path)])) == []


def test_symlinked_key_folder_out_of_the_store_is_refused(tmp_path):
    store = tmp_path / "store"
    outside = _touch(tmp_path / "elsewhere" / "K" / "x.pdb")
    (store / "x.pdb").mkdir(parents=True)
    os.symlink(outside.parent, store / "x.pdb" / "K")
    assert list(symsrv_files(str(store), "x.pdb", "K")) == []


def test_versions_lists_every_key(tmp_path):
    _touch(tmp_path / "a.pdb" / "K1" / "a.pdb")
    _touch(tmp_path / "a.pdb" / "K2" / "a.pdb")
    assert [k for k, _ in symsrv_versions(str(tmp_path), "a.pdb")] == ["K1", "K2"]


def test_destinations_and_atomic_copy(tmp_path):
    src = _touch(tmp_path / "in" / "drv.sys", b"image")
    dest = tree_destination(str(tmp_path / "out"), "SYS", "drv.sys")
    assert dest == str(tmp_path / "out" / "symbols" / "sys" / "drv.sys")
    copy_atomic(str(src), dest)
    assert open(dest, "rb").read() == b"image"
    assert [n for n in os.listdir(os.path.dirname(dest))] == ["drv.sys"]
