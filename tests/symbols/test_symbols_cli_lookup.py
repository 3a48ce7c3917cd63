"""kdcon-symbols lookup and add as installed: load addresses, symbol+offset, what was
not found, and images cut short refused before filing."""

from __future__ import annotations

import uuid

import pytest

from kdcon.symbols.debugdir import build_rsds
from kdcon.symbols.pdb.writer import build_pdb
from kdcon.symbols.pewriter import ImageSpec, build_image
from kdcon.tools.symbols_cli import incomplete_image, module_base

from ..programs import assert_one_line_error, run_program
from .fixtures_pdb import sample_spec
from .store_fixtures import put

PROG = "kdcon-symbols"
GUID = uuid.UUID("094c7fa9-a34c-fb3d-4c4c-44205044422e")   # the PDB writer's default


def _image(**overrides) -> bytes:
    spec = dict(name="drv.sys", text_size=0x200, exports={"DriverEntry": 0x1010},
                debug=[(2, build_rsds("drv.pdb", GUID, 1))])
    return build_image(ImageSpec(**{**spec, **overrides}))


@pytest.fixture
def drv(tmp_path):
    """drv.sys (preferred base 00000001`40000000) and a directory with its PDB."""
    image = put(str(tmp_path / "drv.sys"), _image())
    put(str(tmp_path / "sym" / "drv.pdb"), build_pdb(sample_spec("pdb7", page_size=512)))
    return image, str(tmp_path / "sym")


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{PROG}: warning: ")]


def test_lookup_at_a_load_address_given_with_base(drv):
    image, sym = drv
    result = run_program(PROG, "lookup", "-y", sym, "--base", "drv=fffff803`1a200000", image,
                         "fffff803`1a201014")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == \
        "(fffff803`1a201010)   drv!DriverEntry+0x4   |  (fffff803`1a201030)   drv!Retry"


def test_base_names_the_module_or_its_image_and_is_repeatable(drv, tmp_path):
    image, sym = drv
    other = put(str(tmp_path / "other.sys"), _image(name="other.sys", exports={"OtherEntry": 0x1020}, debug=[]))
    result = run_program(PROG, "lookup", "-y", sym, "--base", "drv.sys=0x10000000",
                         "--base", "other=20000000", image, other, "other!OtherEntry+8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("(00000000`20001020)   other!OtherEntry+0x8   |")


def test_two_images_at_one_base_are_refused(drv, tmp_path):
    image, sym = drv
    other = put(str(tmp_path / "other.sys"), _image(name="other.sys"))
    line = assert_one_line_error(run_program(PROG, "lookup", "-y", sym, image, other, "1"), PROG)
    assert "overlaps" in line and "--base" in line


@pytest.mark.parametrize("base, status", [("drv", 2), ("drv=xyz", 2), ("=1000", 2), ("nosuch=1000", 1)])
def test_a_bad_base_is_one_line(drv, base, status):
    image, sym = drv
    result = run_program(PROG, "lookup", "-y", sym, "--base", base, image, "1000")
    assert "Traceback" not in result.stderr and result.returncode == status
    assert result.stderr.splitlines()[-1].startswith(f"{PROG}")


def test_module_base_takes_what_reload_takes():
    assert module_base("nt=fffff803`1a200000") == ("nt", 0xFFFFF8031A200000, None)
    assert module_base("drv.sys=0x140000000,0x5000") == ("drv.sys", 0x140000000, 0x5000)
    assert module_base("hal=0n4096") == ("hal", 4096, None)


@pytest.mark.parametrize("query", ["DriverEntry+4", "drv!DriverEntry+0x4", "!DriverEntry+4",
                                   "Retry-0x1c", "140001014", "0x1`40001014"])
def test_symbol_plus_offset_is_what_ln_prints_for_that_address(drv, query):
    image, sym = drv
    result = run_program(PROG, "lookup", "-y", sym, image, query)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("(00000001`40001010)   drv!DriverEntry+0x4   |")


def test_unknown_symbol_plus_offset_is_one_line(drv):
    image, sym = drv
    line = assert_one_line_error(run_program(PROG, "lookup", "-y", sym, image, "NoSuch+4"), PROG)
    assert "NoSuch" in line


def test_each_missing_path_element_warns_once(drv, tmp_path):
    image, sym = drv
    missing, store = str(tmp_path / "missing"), str(tmp_path / "nostore")
    path = f"{missing};{sym};{missing};srv*{tmp_path / 'cache'}*{store}"
    result = run_program(PROG, "lookup", "-y", path, image, "DriverEntry")
    assert result.returncode == 0, result.stderr
    warned = _warnings(result.stderr)
    assert [w for w in warned if missing in w] == [f"{PROG}: warning: {missing}: no such directory on the symbol path"]
    assert len([w for w in warned if store in w]) == 1
    assert not [w for w in warned if "cache" in w.split(":")[2]]


def test_falling_back_to_exports_says_so(drv, tmp_path):
    image, _ = drv
    result = run_program(PROG, "lookup", "-y", str(tmp_path / "empty"), image, "140001014")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("(00000001`40001010)   drv!DriverEntry+0x4")
    assert any("only exports were found" in w for w in _warnings(result.stderr))


def test_full_symbols_say_nothing_about_exports(drv):
    image, sym = drv
    result = run_program(PROG, "lookup", "-y", sym, image, "140001014")
    assert result.returncode == 0 and result.stderr == ""


def test_add_refuses_an_image_cut_short_and_files_nothing(drv, tmp_path):
    image, _ = drv
    data = open(image, "rb").read()
    cut = put(str(tmp_path / "cut" / "drv.sys"), data[:len(data) - 0x100])
    store = tmp_path / "store"
    line = assert_one_line_error(run_program(PROG, "add", "--store", str(store), image, cut), PROG)
    assert line.startswith(f"{PROG}: {cut}: incomplete image, not filed: section ")
    assert not store.exists()
    assert run_program(PROG, "add", "--store", str(store), image).returncode == 0


def test_incomplete_image_names_what_is_missing():
    data = _image()
    assert incomplete_image(data) is None
    assert "DOS header" in incomplete_image(data[:0x20])
    assert "section table" in incomplete_image(data[:0x100])
    assert incomplete_image(data[:-1]).startswith("section ")
    signed = bytearray(data)
    pe_at = int.from_bytes(data[0x3C:0x40], "little")
    security = pe_at + 24 + 112 + 8 * 4
    signed[security:security + 8] = len(data).to_bytes(4, "little") + (0x200).to_bytes(4, "little")
    assert "certificate table" in incomplete_image(bytes(signed))


def test_x_shows_typed_globals_as_windbg_does(drv):
    image, sym = drv
    result = run_program(PROG, "lookup", "-y", sym, image, "*")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "00000001`40001010 drv!DriverEntry (<no parameter info>)" in lines
    assert "00000001`40002020 drv!Global = struct _OBJ" in lines
    assert "00000001`40002060 drv!Either = union _U" in lines
    assert "00000001`40002050 drv!Counter = 0x0" in lines


def test_exact_matches_of_ln_are_described_like_x(drv):
    image, sym = drv
    result = run_program(PROG, "lookup", "-y", sym, image, "drv!Global")
    assert result.stdout == "00000001`40002020 drv!Global = struct _OBJ\n"
    result = run_program(PROG, "lookup", "-y", sym, image, "Global+0")
    assert result.stdout.splitlines()[1:] == ["Exact matches:", "    drv!Global = struct _OBJ"]
