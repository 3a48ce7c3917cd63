"""The installed kdcon-symbols given damaged files: one line, never a traceback.

Each format (PDB 7.0, PDB 2.0, DBG, image) is cut short and handed to ``dump``,
``add``, and, as the symbol file an image asks for, to ``lookup`` and ``check``.
"""

from __future__ import annotations

import uuid

import pytest

from kdcon.symbols.debugdir import build_rsds
from kdcon.symbols.pdb.writer import build_pdb
from kdcon.symbols.pewriter import ImageSpec, build_image

from ..programs import assert_one_line_error, run_program
from .fixtures_pdb import sample_spec
from .store_fixtures import nt4_pair, put

PROG = "kdcon-symbols"
GUID = uuid.UUID("094c7fa9-a34c-fb3d-4c4c-44205044422e")   # the PDB writer's default


def _whole(fmt: str) -> bytes:
    if fmt == "pdb7":
        return build_pdb(sample_spec("pdb7", page_size=512))
    if fmt == "pdb2":
        return build_pdb(sample_spec("vc6", page_size=512))
    return nt4_pair().dbg


@pytest.fixture
def drv(tmp_path):
    """An x64 image whose CodeView record asks for the writer's drv.pdb, and a
    symbol directory holding that PDB cut in half."""
    image = put(str(tmp_path / "drv.sys"), build_image(ImageSpec(
        name="drv.sys", text_size=0x200, exports={"DriverEntry": 0x1010},
        debug=[(2, build_rsds("drv.pdb", GUID, 1))])))
    pdb = build_pdb(sample_spec("pdb7", page_size=512))
    bad = put(str(tmp_path / "sym" / "drv.pdb"), pdb[:len(pdb) // 2])
    return image, str(tmp_path / "sym"), bad


@pytest.mark.parametrize("fmt", ["pdb7", "pdb2", "dbg"])
def test_dump_of_a_truncated_file_is_one_line_naming_it(fmt, tmp_path):
    data = _whole(fmt)
    path = put(str(tmp_path / f"cut.{fmt}"), data[:len(data) // 2])
    line = assert_one_line_error(run_program(PROG, "dump", path), PROG)
    assert path in line


def test_add_of_a_truncated_pdb_is_one_line_and_files_nothing(drv, tmp_path):
    _, _, bad = drv
    result = run_program(PROG, "add", "--store", str(tmp_path / "store"), bad)
    assert bad in assert_one_line_error(result, PROG)
    assert not (tmp_path / "store").exists()


def test_lookup_with_a_truncated_pdb_on_the_path_answers_from_exports(drv):
    image, sym, _ = drv
    result = run_program(PROG, "lookup", "-y", sym, image, "140001014")
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("(00000001`40001010)   drv!DriverEntry+0x4")


def test_check_with_a_truncated_pdb_on_the_path_says_it_is_unreadable(drv):
    image, sym, bad = drv
    result = run_program(PROG, "check", "-y", sym, image)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert f"{bad}: unreadable: " in result.stdout
