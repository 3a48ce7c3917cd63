"""Source lines: .lines, [file @ line] at stops, in k, ln and u, `file:line` expressions,
.srcpath, lsa and ls, against the simulated kernel and trackdemo's PDB (C13 lines)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from kdcon.expr import ExprError, evaluate, evaluate_prefix
from kdcon.symbols.session import _same_file

from ..oracles import require_tool
from .transcripts import REPO, batch, check_golden

PDB = Path(REPO) / "tools" / "simtarget" / "images" / "checked" / "trackdemo.pdb"
SOURCES = Path(REPO) / "tools" / "simtarget" / "src"
TRACKDEMO_C = "C:\\src\\trackdemo\\trackdemo.c"


class _Lines:
    """An evaluation context whose only source line is a.c:12 at 0x1000."""

    pointer_size = 8

    def symbol(self, name):
        return None

    def register(self, name):
        return None

    def source_line(self, spec):
        return 0x1000 if spec == "a.c:12" else None


def test_a_grave_accented_file_line_is_a_source_line_operand():
    assert evaluate("`a.c:12`+4", _Lines()) == 0x1004
    assert evaluate_prefix("`a.c:12` L4", _Lines()) == (0x1000, 8)


def test_a_grave_accent_inside_a_number_still_joins_its_halves():
    assert evaluate("fffff800`01000000", _Lines()) == 0xFFFFF80001000000


def test_an_unknown_source_line_is_one_couldnt_resolve_line():
    with pytest.raises(ExprError) as caught:
        evaluate("`b.c:1`+1", _Lines())
    assert str(caught.value) == "Couldn't resolve error at '`b.c:1`+1'"


def test_a_file_name_matches_the_recorded_path_at_a_directory_boundary():
    assert _same_file("c:\\src\\trackdemo\\trackdemo.c", "trackdemo.c")
    assert _same_file("c:\\src\\trackdemo\\trackdemo.c", "trackdemo\\trackdemo.c")
    assert not _same_file("c:\\src\\xtrackdemo.c", "trackdemo.c")


@pytest.fixture(scope="module")
def session_text() -> str:
    text, status = batch(
        ".lines", "? `trackdemo.c:155`", "ln `trackdemo.c:155`", "bp `trackdemo.c:197`",
        "g", "g", "k", "kn 2", "kL 2", "u . L3", "ln .", "lm m trackdemo",
        f".srcpath {SOURCES}", "lsa .", "ls", ".srcpath+ /nonexistent", ".srcpath /nonexistent",
        "lsa .", ".lines -d", "k 1", "? `trackdemo.c:197`", ".lines -t", ".lines -x", "q")
    assert status == 1           # the lines that fail on purpose (lsa, ?, .lines -x)
    return text


def test_source_lines_transcript(session_text):
    check_golden("source_lines", session_text)


def test_lines_is_off_until_turned_on_as_in_kd():
    text, _ = batch("bp trackdemo!TrackDemoTick", "g", "g", "k 2", "q")
    assert " @ " not in text.split("kd> bp trackdemo!TrackDemoTick", 1)[1]


def test_a_line_without_code_resolves_to_the_next_line_with_code(session_text):
    # trackdemo.c has no code on line 155: DriverEntry's line 156 answers.
    assert "[C:\\src\\trackdemo\\trackdemo.c @ 156] (" in session_text


def _pdbutil_line(pdb: Path, rva: int) -> tuple[str, int]:
    """(file, line) covering ``rva``, read from llvm-pdbutil's dump of the line table."""
    pdbutil = require_tool("llvm-pdbutil")
    sections = subprocess.run([pdbutil, "dump", "--section-headers", str(pdb)],
                              capture_output=True, text=True, check=True).stdout
    bases = [int(m, 16) for m in re.findall(r"^\s*([0-9A-F]+) virtual address", sections, re.M)]
    dump = subprocess.run([pdbutil, "dump", "-l", str(pdb)],
                          capture_output=True, text=True, check=True).stdout
    best: tuple[int, str, int] | None = None
    file = ""
    for raw in dump.splitlines():
        header = re.match(r"^(\S.*?) \(MD5", raw)
        if header:
            file = header.group(1)
            continue
        block = re.match(r"^\s+([0-9A-F]{4}):([0-9A-F]+)-([0-9A-F]+),", raw)
        if block:
            section, start, end = (int(x, 16) for x in block.groups())
            inside = bases[section - 1] + start <= rva <= bases[section - 1] + end
            continue
        for line, offset in re.findall(r"(\d+) ([0-9A-F]{8}) !", raw):
            address = bases[section - 1] + int(offset, 16)
            if inside and address <= rva and (best is None or address >= best[0]):
                best = (address, file, int(line))
    assert best is not None
    return best[1], best[2]


def test_the_stop_line_agrees_with_llvm_pdbutils_line_table(session_text):
    stop = re.search(r"Breakpoint 0 hit\n(\S+) \[(.+) @ (\d+)\]:\n([0-9a-f`]+) ", session_text)
    assert stop is not None
    base = re.search(r"\n([0-9a-f`]+) [0-9a-f`]+\s+trackdemo ", session_text)
    rva = int(stop.group(4).replace("`", ""), 16) - int(base.group(1).replace("`", ""), 16)
    assert (stop.group(2), int(stop.group(3))) == _pdbutil_line(PDB, rva)
    assert stop.group(2) == TRACKDEMO_C and stop.group(3) == "197"


def test_lsa_marks_the_current_line_from_the_local_source(session_text):
    listing = session_text.split("kd> lsa .\n", 1)[1].split("0: kd>", 1)[0]
    source = (SOURCES / "trackdemo" / "trackdemo.c").read_text().splitlines()
    marked = [row for row in listing.splitlines() if row.startswith(">")]
    assert marked == [f">  197: {source[196]}"]


def test_lsa_without_the_file_on_the_source_path_says_so_in_one_line(session_text):
    after = session_text.split(".srcpath /nonexistent\n", 1)[1]
    listing = after.split("kd> lsa .\n", 1)[1].split("0: kd>", 1)[0]
    assert listing.splitlines() == [
        f"Couldn't find source file '{TRACKDEMO_C}' on the source path (.srcpath)"]


class _Console:
    """A console whose symbols answer one line, with a hostile file name."""

    def __init__(self, found):
        symbols = type("Symbols", (), {"line_for": lambda self, address: found})()
        self.session = type("Session", (), {"symbols": symbols})()


def test_a_recorded_file_name_is_escaped_like_all_pdb_text():
    from kdcon.commands.source import source_suffix

    assert source_suffix(_Console(("c:\\a\x1b[2J.c", 7)), 0x1000) == " [c:\\a\\x1b[2J.c @ 7]"
    assert source_suffix(_Console(None), 0x1000) == ""
