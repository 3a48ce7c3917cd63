"""The committed images are exactly what the build script makes from the sources."""

from __future__ import annotations

import hashlib

import pytest

from kdcon.tools.simtarget import build
from tests.oracles import require_tool


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    for tool in (build.CLANG_CL, build.LLD_LINK, build.DLLTOOL):
        require_tool(tool)
    out = tmp_path_factory.mktemp("images")
    written = build.build_all(out)
    return out, written


def test_rebuild_writes_kernel_hal_kdcom_and_test_drivers(rebuilt):
    _, written = rebuilt
    names = {p.as_posix() for p in written}
    assert {"ntoskrnl.exe", "ntoskrnl.pdb", "hal.dll", "hal.pdb", "kdcom.dll", "kdcom.pdb", "ntoskrnl.lib",
            "test/testdrv.sys", "test/testdrv.pdb", "test/missingimports.sys"} <= names


def test_every_rebuilt_file_is_byte_identical_to_the_committed_one(rebuilt):
    out, written = rebuilt
    different = []
    for rel in written:
        committed = build.IMAGES_DIR / rel
        fresh = (out / rel).read_bytes()
        if not committed.exists() or hashlib.sha256(committed.read_bytes()).digest() != hashlib.sha256(fresh).digest():
            different.append(rel.as_posix())
    assert different == []


def test_build_reports_a_missing_compiler_as_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "CLANG_CL", "clang-cl-does-not-exist")
    with pytest.raises(build.BuildError, match="clang-cl-does-not-exist is not installed"):
        build.build_all(tmp_path)
