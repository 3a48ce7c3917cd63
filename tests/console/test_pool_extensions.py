"""The pool and memory extensions in one console: a pooltag.txt describes tags, the
kernel's built-in layouts serve when its PDB is missing, !poolfind never reads a page
twice while the target is halted and stops when cancelled."""

from __future__ import annotations

import io
import re
import shutil

import pytest

from kdcon.app import App
from kdcon.extensions._pool import TagFile
from kdcon.output import Output
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.loopback import SimTarget

from .test_golden_pool import RUN_TO_FIRST_TICK, TAG, WORK_RECORD, output_of
from .transcripts import batch

POOLTAG = """rem kdcon test tags
// a comment
Demo - trackdemo.sys - Track demo work blocks
Trck - trackdemo.sys - Track records
Irp  - <unknown>     - Io, IRP packets
"""


@pytest.fixture(autouse=True)
def no_chosen_tag_file(monkeypatch):
    monkeypatch.setattr(TagFile, "chosen", None)
    monkeypatch.delenv("KDCON_POOLTAG", raising=False)


class Console:
    """A console on a fresh simulated target, its text in ``stream``."""

    def __init__(self, symbol_path: str) -> None:
        self.sim = SimTarget(seed=0, break_on_connect=True)
        self.stream = io.StringIO()
        self.app = App(self.sim.connect(), link_name="kdsim", symbol_path=symbol_path,
                       output=Output(stream=self.stream), timeout=60)
        self.app.connect()

    def run(self, *lines: str) -> str:
        start = len(self.stream.getvalue())
        for line in lines:
            self.app.run_line(line)
        return self.stream.getvalue()[start:]

    def close(self) -> None:
        self.app.close()
        self.sim.close()


@pytest.fixture
def console():
    made = Console(f"{IMAGES_DIR};{IMAGES_DIR / 'checked'}")
    yield made
    made.close()


def test_tags_are_described_from_the_file_the_environment_names(tmp_path, monkeypatch):
    tags = tmp_path / "pooltag.txt"
    tags.write_text(POOLTAG, encoding="latin-1")
    monkeypatch.setenv("KDCON_POOLTAG", str(tags))
    pool = f"!pool poi({WORK_RECORD}+10)"
    text, status = batch(*RUN_TO_FIRST_TICK, pool, "!poolused", "!pooltag Demo", "!pooltag Irp*",
                         "!pooltag Zzzz")
    assert status == 1
    shown = output_of(text, pool).splitlines()
    marked = next(i for i, line in enumerate(shown) if line.startswith("*"))
    assert shown[marked + 1] == "\t\tPooltag Demo : Track demo work blocks, Binary : trackdemo.sys"
    used = output_of(text, "!poolused")
    assert re.search(r"^ Demo +1 +\d+ +0 +0Track demo work blocks , Binary: trackdemo.sys$",
                     used, re.M)
    assert re.search(r"^ Proc +\d+ +\d+ +\d+ +\d+UNKNOWN pooltag 'Proc', please update "
                     r"pooltag\.txt$", used, re.M)
    assert output_of(text, "!pooltag Demo") == \
        "Pooltag Demo : Track demo work blocks, Binary : trackdemo.sys"
    assert output_of(text, "!pooltag Irp*") == "Pooltag Irp : Io, IRP packets, Binary : <unknown>"
    assert output_of(text, "!pooltag Zzzz") == f"Pooltag Zzzz: not in {tags}"


def test_pooltag_f_chooses_the_file_and_a_missing_one_is_one_line(tmp_path, console):
    tags = tmp_path / "tags.txt"
    tags.write_text(POOLTAG, encoding="latin-1")
    missing = tmp_path / "none.txt"
    out = console.run(f"!pooltag -f {missing}", "!pooltag Demo", f"!pooltag -f {tags}",
                      "!pooltag Trck")
    assert f"Cannot read the pool tag file {missing}: No such file or directory" in out
    assert "No pooltag.txt: set KDCON_POOLTAG or use !pooltag -f File" in out
    assert f"Pool tags are described from {tags}" in out
    assert out.endswith("Pooltag Trck : Track records, Binary : trackdemo.sys\n")


def test_without_the_kernels_pdb_the_built_in_layouts_give_the_same_answers(tmp_path, console):
    symbols = tmp_path / "symbols"
    symbols.mkdir()
    shutil.copy(IMAGES_DIR / "checked" / "trackdemo.pdb", symbols)
    bare = Console(str(symbols))
    try:
        commands = [*RUN_TO_FIRST_TICK, "!poolused", f"!pool poi({WORK_RECORD}+10)",
                    "!memusage 8", "!dbgprint"]
        with_pdb = console.run(*commands)
        without = bare.run(*commands)
    finally:
        bare.close()
    assert "nt has no PDB types" not in with_pdb
    warning = "WARNING: nt has no PDB types: using the built-in Windows 7 SP1 x64 layouts\n"
    assert without.count(warning) == 3
    assert without.replace(warning, "") == with_pdb


def test_poolfind_reads_each_page_once_and_a_second_search_reads_nothing(console, monkeypatch):
    console.run(*RUN_TO_FIRST_TICK)
    host = console.app.session.host
    reads: list[tuple[int, int]] = []
    real = host.read_virtual

    def counted(address: int, size: int) -> bytes:
        reads.append((address, size))
        return real(address, size)

    monkeypatch.setattr(host, "read_virtual", counted)
    first = console.run(f"!poolfind {TAG[:3]}?")        # a pattern: the whole pool is read
    pool = [(a, s) for a, s in reads if 0xFFFFFA80_00000000 <= a < 0xFFFFFA80_01000000]
    covered = sorted(pool)
    assert sum(s for _, s in covered) == 0x1000000
    for (address, size), (following, _) in zip(covered, covered[1:]):
        assert address + size <= following
    reads.clear()
    second = console.run(f"!poolfind {TAG[:3]}?")
    assert not [r for r in reads if 0xFFFFFA80_00000000 <= r[0] < 0xFFFFFA80_01000000]
    assert second.split("\n", 1)[1] == first.split("\n", 1)[1]


def test_poolfind_of_an_exact_tag_lets_the_target_search_and_reads_only_hit_pages(console):
    console.run(*RUN_TO_FIRST_TICK)
    session = console.app.session
    scanned = console.run(f"!poolfind {TAG[:3]}?")
    before = session.wire()
    searched = console.run(f"!poolfind {TAG}")
    cost = session.wire().total - before.total
    blocks = [line for line in searched.splitlines() if " size: " in line]
    assert blocks and blocks == [line for line in scanned.splitlines() if " size: " in line]
    assert "bytes to read" not in searched        # no 25-minute warning: nothing to read
    assert cost < 32 * 1024                        # against 17.5 MB for the scan


def test_a_cancelled_poolfind_says_how_far_it_got_and_the_console_goes_on(console):
    console.run(*RUN_TO_FIRST_TICK)
    target = console.app.console.target
    seen = []

    def cancel_after_a_megabyte(event) -> None:
        seen.append(event.fields["done"])
        if event.fields["done"] >= 0x100000:
            target.cancel_event.set()

    subscription = console.app.console.events.subscribe("progress", cancel_after_a_megabyte)
    try:
        out = console.run(f"!poolfind {TAG[:3]}?")
    finally:
        subscription.remove()
        target.cancel_event.clear()
    assert "fffffa8000001000 size:  130" in out
    stop = re.search(r"\.\.\.terminating - searched pool to ([0-9a-f]{16})\n", out)
    assert stop and int(stop.group(1), 16) == 0xFFFFFA80_00000000 + seen[-1]
    assert out.endswith("The command was cancelled (Ctrl+C).\n")
    assert "Evaluate expression: 3 =" in console.run("? 3")
