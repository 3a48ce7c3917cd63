"""The pool, memory and DbgPrint extensions end to end on the simulated target.

Golden transcripts of !pool on a Track allocation (found through trackdemo's Track
records), !poolfind of the demo driver's tag, !poolused, !memusage before and after the
drivers unload, !pool on the block trackdemo overwrites (KiSimRequest 2) and on a
header damaged by hand, a big-page allocation (KiSimRequest 9), and !dbgprint after
boot. What each must show is checked against what the debugger reads by other means
(dt, dq, !trackdump), not written here.
"""

from __future__ import annotations

import re

import pytest

from kdcon.extensions._pool import TagFile

from .transcripts import batch, check_golden

RUN_TO_FIRST_TICK = ("bp trackdemo!TrackDemoDispatch", "g", "g")
# The second-newest Track record at the first tick: the 256-byte work buffer from
# ExAllocatePoolWithTag (TRACK_RECORD.Value is at 0x10, its PDB says; dt shows it).
WORK_RECORD = "poi(poi(trackdemo!TrackRecordList))"
TAG = "Demo"                        # trackdemo's pool tag (trackdemo.c: 'Demo' in memory)


@pytest.fixture(autouse=True)
def no_pool_tag_file(monkeypatch):
    """Tags are shown without descriptions, whatever the environment says."""
    monkeypatch.setattr(TagFile, "chosen", None)
    monkeypatch.delenv("KDCON_POOLTAG", raising=False)


def output_of(text: str, command: str) -> str:
    """What ``command`` printed (its first run), without the final line break."""
    return text.split(f"kd> {command}\n", 1)[1].split("\n0: kd> ", 1)[0].rstrip("\n")


def _blocks(listing: str) -> list[tuple[bool, int, int, int, str, str]]:
    """(marked, address, size, previous, state, tag) of each !pool/!poolfind block line."""
    found = []
    for line in listing.splitlines():
        hit = re.match(r"([ *]?)([0-9a-f]{16}) size: +([0-9a-f]+) previous size: +([0-9a-f]+)"
                       r"  \((Allocated|Free)\) +\*?(.{4})$", line)
        if hit:
            found.append((hit.group(1) == "*", int(hit.group(2), 16), int(hit.group(3), 16),
                          int(hit.group(4), 16), hit.group(5), hit.group(6)))
    return found


def _value(dt_output: str) -> int:
    return int(re.search(r"\+0x010 Value +: (0x[0-9a-f`]+)", dt_output).group(1)
               .replace("`", ""), 16)


def test_pool_on_a_track_allocation_marks_the_block_and_poolfind_finds_it():
    text, status = batch(*RUN_TO_FIRST_TICK, f"dt trackdemo!_TRACK_RECORD {WORK_RECORD}",
                         f"!pool poi({WORK_RECORD}+10)", f"!pool poi({WORK_RECORD}+10) 2",
                         f"!pool poi({WORK_RECORD}+10) 3",
                         f"!poolfind {TAG}", "!poolfind D?m* 1", "!poolused", "!poolused 2",
                         f"!poolused 1 {TAG}")
    assert status == 0, text[-2000:]
    record = output_of(text, f"dt trackdemo!_TRACK_RECORD {WORK_RECORD}")
    value = _value(record)
    assert "Size             : 0x100" in record
    blocks = _blocks(output_of(text, f"!pool poi({WORK_RECORD}+10)"))
    marked = [b for b in blocks if b[0]]
    assert len(marked) == 1
    _, header, size, _, state, tag = marked[0]
    # Track asked for 256 bytes and 32 of guards; Value is 16 bytes into what it got.
    assert header < value < header + size and state == "Allocated" and tag == TAG
    assert [b[1] for b in blocks] == sorted(b[1] for b in blocks)
    for before, after in zip(blocks, blocks[1:]):
        assert before[1] + before[2] == after[1] and after[3] == before[2]
    only = _blocks(output_of(text, f"!pool poi({WORK_RECORD}+10) 2"))
    assert only == marked
    # Flags 1: the block's first bytes after its header; Track's guard (0xFD) comes first.
    contents = output_of(text, f"!pool poi({WORK_RECORD}+10) 3").splitlines()
    assert contents[2] == f" {header + 0x10:016x}  fdfdfdfd fdfdfdfd fdfdfdfd fdfdfdfd"
    found = _blocks(output_of(text, f"!poolfind {TAG}"))
    assert (header, size) in [(b[1], b[2]) for b in found]
    assert all(b[5] == TAG for b in found)
    # An exact tag is searched by the target: no 25-minute warning; a pattern reads it all.
    assert "bytes to read" not in output_of(text, f"!poolfind {TAG}")
    assert _blocks(output_of(text, "!poolfind D?m* 1")) == []
    assert "Searching Paged pool: 16777216 bytes to read" in output_of(text, "!poolfind D?m* 1")
    used = output_of(text, "!poolused")
    demo = re.search(rf"^ {TAG} +(\d+) +(\d+) +(\d+) +(\d+)$", used, re.M)
    allocated = [b for b in found if b[4] == "Allocated"]
    assert int(demo.group(1)) == len(allocated)
    assert int(demo.group(2)) == sum(b[2] for b in allocated)
    by_nonpaged = [int(m) for m in
                   re.findall(r"^ \S{4} +\d+ +(\d+) ", output_of(text, "!poolused 2"), re.M)]
    assert by_nonpaged == sorted(by_nonpaged, reverse=True)
    check_golden("pool_track_allocation", text)


def test_pool_names_the_block_trackdemo_overwrites_and_a_damaged_header():
    newest = "poi(trackdemo!TrackRecordList)"
    text, status = batch(*RUN_TO_FIRST_TICK, "bc *", "ed nt!KiSimRequest 2", "g",
                         "!trackvalidate", f"dt trackdemo!_TRACK_RECORD {newest}",
                         f"!pool poi({newest}+10)",
                         extra=["--prompt-answer", "b"])
    assert status == 1, text[-2000:]
    value = _value(output_of(text, f"dt trackdemo!_TRACK_RECORD {newest}"))
    validate = output_of(text, "!trackvalidate")
    assert f"Corrupt block {value >> 32:08x}`{value & 0xFFFFFFFF:08x}, 24 bytes" in validate
    shown = output_of(text, f"!pool poi({newest}+10)")
    header = next(b for b in _blocks(shown) if b[0])[1]
    assert (f"Track (trackdemo): the block at {header:016x} holds {value >> 32:08x}`"
            f"{value & 0xFFFFFFFF:08x}, 24 bytes from ExAllocatePoolWithTag") in shown
    assert "4 of the 16 guard bytes after it changed" in shown
    assert shown.endswith(f"Pool corruption in page {header & ~0xFFF:016x}: the block at "
                          f"{header:016x} ({TAG})")
    check_golden("pool_overwritten_block", text)


def test_a_damaged_pool_header_is_reported_and_the_block_before_it_named():
    # Make the block after the work buffer's claim a previous size one unit too large:
    # byte 0 of a POOL_HEADER is PreviousSize (its PDB: bits 0-7 of the first ULONG).
    pool = f"!pool poi({WORK_RECORD}+10)"
    text, status = batch(*RUN_TO_FIRST_TICK, pool)
    assert status == 0
    blocks = _blocks(output_of(text, pool))
    index = next(i for i, b in enumerate(blocks) if b[0])
    work, after = blocks[index], blocks[index + 1]
    damaged, status = batch(*RUN_TO_FIRST_TICK, f"eb {after[1]:x} {after[3] // 16 + 1:x}", pool)
    assert status == 1
    shown = output_of(damaged, pool)
    assert (f"Bad previous allocation size @{after[1]:016x}, last size was "
            f"{work[2] // 16:x}") in shown
    assert (f"Previous size of {after[3] + 16:x} at {after[1]:016x} doesn't match the size "
            f"{work[2]:x} of the block before it ({work[1]:016x}, tag {TAG})") in shown
    check_golden("pool_damaged_header", damaged)


def test_a_big_page_allocation_is_shown_found_and_counted():
    text, status = batch("bp nt!IopTickDrivers", "g", "g", "ed nt!KiSimRequest 9", "g",
                         "dq nt!KiSimBigPoolBlock L1", "!pool poi(nt!KiSimBigPoolBlock)+1234",
                         "!poolfind Ksim", "!poolused 0 Ks*")
    assert status == 0, text[-2000:]
    block = int(output_of(text, "dq nt!KiSimBigPoolBlock L1").split()[1].replace("`", ""), 16)
    assert block % 0x1000 == 0
    shown = output_of(text, "!pool poi(nt!KiSimBigPoolBlock)+1234")
    assert f"*{block:016x} : large page allocation, tag is Ksim, size is 0x1800 bytes" in shown
    assert f"{block:016x} : large page allocation, tag is Ksim" in output_of(text, "!poolfind Ksim")
    assert re.search(r"^ Ksim +1 +6144 +0 +0$", output_of(text, "!poolused 0 Ks*"), re.M)
    check_golden("pool_big_allocation", text)


def test_memusage_counts_pages_by_state_before_and_after_the_drivers_unload():
    text, status = batch("bp nt!IopTickDrivers", "g", "g", "!memusage", "ed nt!KiSimRequest 6",
                         "g", "!memusage 8", "lm")
    assert status == 0, text[-2000:]
    before, after = output_of(text, "!memusage"), output_of(text, "!memusage 8")

    def counts(summary: str) -> dict[str, int]:
        return {m.group(1): int(m.group(2))
                for m in re.finditer(r"^ *([\w/]+): +(\d+) \( +\d+ kb\)$", summary, re.M)}

    first, second = counts(before), counts(after)
    assert first["TOTAL"] == second["TOTAL"] == sum(v for k, v in first.items() if k != "TOTAL")
    assert first["Free"] == 0 and first["Zeroed"] > 0
    # trackdemo.sys's image went to the free list, and nothing else left the active set.
    assert second["Free"] > 0 and second["Active/Valid"] == first["Active/Valid"] - second["Free"]
    assert "Usage Summary" in before and "Nonpaged pool" in before and "trackdemo" in before
    assert "Usage Summary" not in after
    check_golden("memusage_unload", text)


def test_dbgprint_shows_the_boot_messages_oldest_first():
    text, status = batch(*RUN_TO_FIRST_TICK, "!dbgprint", "ed nt!KiSimRequest 77", "g",
                         "!dbgprint")
    assert status == 0, text[-2000:]
    boot = output_of(text, "!dbgprint")
    printed = text.split("0: kd> g\n")[2].split("Breakpoint 0 hit")[0]
    assert boot + "\n" == printed and "TrackDemo: DriverEntry\n" in boot
    later = text.rsplit("kd> !dbgprint\n", 1)[1]
    assert later.startswith(boot) and "KSIM: unknown KiSimRequest 119 ignored\n" in later
    check_golden("dbgprint_boot", text)


def test_bad_arguments_are_one_line_each():
    text, status = batch("!pool", "!pool nosuchsymbol", "!pool nt", "!pool fffffa80`00fff010",
                         "!poolfind Dem",
                         "!poolfind Demo 2", "!poolfind 0xZZ", "!poolused 6", "!poolused 8",
                         "!memusage 3", "!dbgprint now", "!pooltag Demo")
    assert status == 1
    for command, line in [
            ("!pool", "Usage: !pool Address [Flags]"),
            ("!poolfind Dem", "A tag is four characters (or a pattern with *): 'Dem'"),
            ("!poolfind 0xZZ", "Bad tag value 0xZZ: 0x and up to eight hex digits"),
            ("!poolused 8", "!poolused 8: this target has no session pool"),
            ("!memusage 3", "!memusage flags are 0, 1, 2 or 8, not 0x3"),
            ("!dbgprint now", "Usage: !dbgprint (it takes no arguments)")]:
        assert output_of(text, command) == line
    assert output_of(text, "!pool nt").endswith("is not in the pool: nonpaged pool is "
                                               "fffffa8000000000 - fffffa8001000000")
    assert output_of(text, "!pool nosuchsymbol").startswith("Bad address 'nosuchsymbol'")
    assert output_of(text, "!pool fffffa80`00fff010").splitlines()[1:] == [
        "fffffa8000fff010 is not a valid small pool allocation: page fffffa8000fff000 holds "
        "no pool headers", "fffffa8000fff010 is not valid pool (a free pool page, or memory "
        "the pool does not manage)"]
