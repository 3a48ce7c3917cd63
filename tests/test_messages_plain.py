"""The installed tools say plainly what is wrong with a path, name it once, and print
GUIDs one way (WinDbg's); the docs say which tools take which link options."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from kdcon.symbols.match import format_guid
from kdcon.symbols.pdb.writer import build_pdb
from kdcon.tools.linetest import analyse_probe
from tests.programs import assert_one_line_error, run_program
from tests.symbols.fixtures_pdb import sample_spec

PROTOCOL_DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


@pytest.fixture
def paths(tmp_path):
    directory = tmp_path / "adir"
    directory.mkdir()
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"not a device")
    return {"missing": str(tmp_path / "missing.pdb"), "directory": str(directory), "plain": str(plain)}


@pytest.mark.parametrize("argv", [["dump"], ["add", "--store", "STORE"], ["lookup", "-y", "SYM"],
                                  ["check", "-y", "SYM"]])
@pytest.mark.parametrize("what, said", [("missing", "no such file"), ("directory", "is a directory, not a file")])
def test_symbols_names_a_missing_file_or_a_directory_once(paths, tmp_path, argv, what, said):
    argv = [str(tmp_path / "x") if a in ("STORE", "SYM") else a for a in argv]
    extra = ["1000"] if argv[0] == "lookup" else []
    result = run_program("kdcon-symbols", *argv, paths[what], *extra)
    line = assert_one_line_error(result, "kdcon-symbols")
    assert line == f"kdcon-symbols: {paths[what]}: {said}"


@pytest.mark.parametrize("what, said", [("missing", "no such file"), ("directory", "is a directory, not a file")])
def test_kdtrace_names_a_missing_file_or_a_directory_once(paths, what, said):
    line = assert_one_line_error(run_program("kdcon-kdtrace", paths[what]), "kdcon-kdtrace", status=2)
    assert line == f"kdcon-kdtrace: {paths[what]}: {said}"


@pytest.mark.parametrize("argv", [["--port", "{}", "--probe"], ["-k", "com:port={},baud=57600", "--probe"],
                                  ["--port", "loop://", "--peer", "{}"]])
@pytest.mark.parametrize("what, said", [("directory", "it is a directory, not a terminal device"),
                                        ("plain", "not a terminal device")])
def test_linetest_says_a_path_is_no_terminal_without_errno_text(paths, argv, what, said):
    result = run_program("kdcon-linetest", *[a.format(paths[what]) for a in argv])
    line = assert_one_line_error(result, "kdcon-linetest", status=2)
    assert line.startswith(f"kdcon-linetest: error: cannot open {paths[what]}: {said}")
    assert "Errno" not in line and "ioctl" not in line and line.count(paths[what]) == 1


def test_probe_says_what_came_before_the_packet():
    report = analyse_probe(b"\x13\x37\xee" + b"iiii" + b"\x06\x00", 115200, waited=0.25, sent=1)
    assert report.lines[0] == ("KD target answering: control packet type 6 (RESET), after 3 bytes that were "
                               "not KD (noise or a boot message); 9 bytes received in 0.2 s")


def test_a_guid_is_printed_as_windbg_prints_it():
    assert format_guid(uuid.UUID("684da42a-30cc-450f-81c5-35b4d18944b1")) == "{684DA42A-30CC-450F-81C5-35B4D18944B1}"


def test_dump_and_check_print_the_guid_the_same_way(tmp_path):
    import json

    from kdcon.symbols.debugdir import build_rsds
    from kdcon.symbols.pewriter import ImageSpec, build_image

    sym = tmp_path / "sym"
    sym.mkdir()
    pdb = sym / "drv.pdb"
    pdb.write_bytes(build_pdb(sample_spec("pdb7", page_size=512)))
    shown = "{094C7FA9-A34C-FB3D-4C4C-44205044422E}"
    assert f"  guid: {shown}\n" in run_program("kdcon-symbols", "dump", str(pdb)).stdout
    dumped = json.loads(run_program("kdcon-symbols", "dump", "--json", str(pdb)).stdout)
    assert dumped["identity"]["guid"] == shown
    for name, guid, said in (("same.sys", "094c7fa9-a34c-fb3d-4c4c-44205044422e", f"matches (GUID {shown} age 1)"),
                             ("other.sys", "11111111-2222-3333-4444-555555555555",
                              f"# GUID {shown} != {{11111111-2222-3333-4444-555555555555}}")):
        image = tmp_path / name
        image.write_bytes(build_image(ImageSpec(name=name, text_size=0x200, exports={"DriverEntry": 0x1010},
                                                debug=[(2, build_rsds("drv.pdb", uuid.UUID(guid), 1))])))
        assert said in run_program("kdcon-symbols", "check", "-y", str(sym), str(image)).stdout


LINK_OPTIONS = ("--port", "-k", "--baud", "--pace", "--faults")


def test_the_docs_say_which_tools_take_the_link_options():
    text = " ".join(PROTOCOL_DOC.read_text(encoding="utf-8").split())
    assert ("`kdcon` and `kdcon-linetest`, take `--port URL` or `-k KDSTRING`, `--baud`, `--pace BAUD` and "
            "`--faults SPEC`; `kdcon-sim` takes `--listen URL` with `--pace` and `--faults`; `kdcon-kdtrace` "
            "and `kdcon-symbols` read files and take none of them") in text
    for program, takes in (("kdcon", LINK_OPTIONS), ("kdcon-linetest", LINK_OPTIONS),
                           ("kdcon-sim", ("--listen", "--pace", "--faults"))):
        usage = run_program(program, "--help").stdout
        assert all(re.search(rf"(^|\s|\[){re.escape(o)}\b", usage) for o in takes), (program, usage)
    for program in ("kdcon-kdtrace", "kdcon-symbols"):
        usage = run_program(program, "--help").stdout
        assert not any(re.search(rf"\s{re.escape(o)}\b", usage) for o in LINK_OPTIONS), (program, usage)
