"""Names from images and the target never lead outside a store root."""

from __future__ import annotations

import os

import pytest

from kdcon.symbols.errors import UnsafeNameError
from kdcon.symbols.safepath import find_entry, join_inside, safe_basename, safe_component


@pytest.mark.parametrize("name", ["", ".", "..", "a\x00b", "a\x01b", "a/b", "a\\b", "C:x",
                                  "x" * 256, " . ", "a|b", "a*b"])
def test_unsafe_components_are_refused(name):
    with pytest.raises(UnsafeNameError):
        safe_component(name)


@pytest.mark.parametrize("path, expected", [
    (r"C:\build\obj\ntkrnlmp.pdb", "ntkrnlmp.pdb"),
    ("/home/build/drv.pdb", "drv.pdb"),
    (r"\\server\share\hal.dbg", "hal.dbg"),
    ("C:ntoskrnl.exe", "ntoskrnl.exe"),
    ("mixed/path\\name.sys", "name.sys"),
])
def test_basename_takes_the_last_component(path, expected):
    assert safe_basename(path) == expected


@pytest.mark.parametrize("path", [r"C:\build\..", "dir/", "a\x00.pdb", "\\\\server\\share\\", "..\\..\\.."])
def test_basename_refuses_empty_or_dotted_last_parts(path):
    with pytest.raises(UnsafeNameError):
        safe_basename(path)


def test_join_inside_refuses_symlink_out_of_root(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.pdb").write_bytes(b"x")
    os.symlink(outside, root / "link")
    with pytest.raises(UnsafeNameError):
        join_inside(str(root), "link", "secret.pdb")
    assert join_inside(str(root), "ok.pdb") == str(root / "ok.pdb")


def test_find_entry_ignores_case_and_prefers_exact(tmp_path):
    (tmp_path / "EXE").mkdir()
    assert find_entry(str(tmp_path), "exe") == str(tmp_path / "EXE")
    (tmp_path / "exe").mkdir()
    assert find_entry(str(tmp_path), "exe") == str(tmp_path / "exe")
    assert find_entry(str(tmp_path), "..") is None
    assert find_entry(str(tmp_path), "missing") is None
