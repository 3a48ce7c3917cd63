"""The Track extensions and the leak gate, end to end on the simulated target.

Golden transcripts of !trackstats, !trackdump, !trackvalidate and !trackleaks before
and after the planted leaks (KiSimRequest 1) and after the overwrite (KiSimRequest 2,
the damaged block named); !trackleaks -atunload makes ``kdcon --batch`` exit 1
exactly when leaks exist, in both trackdemo flavours. The lines the reports must show
are read from the trackdemo source, where they are marked, not written here.
"""

from __future__ import annotations

import re

import pytest

from tests.simtarget.track_host import marked_line

from .transcripts import batch, check_golden, run_kdcon

# A breakpoint at the dispatch routine stops at the start of every request: the one a
# KiSimRequest makes, then the next TICK, by which time the request has been served.
RUN_TO_FIRST_TICK = ("bp trackdemo!TrackDemoDispatch", "g", "g")
PLANT_LEAKS = ("ed nt!KiSimRequest 1", "g", "g")


def _gate(flavour: str, *, plant: bool) -> tuple[str, int]:
    commands = list(RUN_TO_FIRST_TICK) + (list(PLANT_LEAKS) if plant else [])
    commands += ["bc *", "ed nt!KiSimRequest 6", "!trackleaks -atunload trackdemo"]
    return batch(*commands, extra=["--flavour", flavour])


def _leak_report() -> str:
    return ("****************************************\n"
            "Track Reports Allocation/Resource Leaks:\n"
            "****************************************\n"
            "AllocatorFn : RtlAnsiStringToUnicodeString\n"
            "   Source   : trackdemo\\trackdemo.c\n"
            f"   Line     : {marked_line('planted leak: resource')}\n"
            "AllocatorFn : ExAllocatePoolWithTag\n"
            "   Source   : trackdemo\\trackdemo.c\n"
            f"   Line     : {marked_line('planted leak: memory')}\n"
            "   Size     : 20\n"
            "Track reports 2 leaks\n")


@pytest.mark.parametrize("flavour", ["checked", "free"])
def test_leak_gate_at_unload_fails_the_batch_exactly_when_leaks_exist(flavour):
    clean, clean_status = _gate(flavour, plant=False)
    assert clean_status == 0, clean[-800:]
    assert clean.endswith("Track: no leaks in trackdemo\n")
    leaky, leaky_status = _gate(flavour, plant=True)
    assert leaky_status == 1, leaky[-800:]
    verdict = leaky.split("kd> !trackleaks -atunload trackdemo\n", 1)[1]
    assert "Breakpoint 0 hit\ntrackdemo!Track_Close:\n" in verdict
    assert verdict.endswith(_leak_report())


def test_track_family_before_and_after_the_planted_leaks():
    text, status = batch("!trackstats", *RUN_TO_FIRST_TICK, "!trackstats", "!trackdump",
                         "!trackvalidate", "!trackleaks", *PLANT_LEAKS, "!trackstats",
                         "!trackdump", "!trackleaks trackdemo.sys")
    assert status == 1
    first = text.split("kd> !trackstats\n", 1)[1]
    assert first.startswith("Track is not active in trackdemo (TrackInitialized is FALSE)")
    after = text.rsplit("kd> !trackleaks trackdemo.sys\n", 1)[1]
    leaks = re.findall(r"AllocatorFn : (\w+)", after)
    assert leaks[:2] == ["RtlAnsiStringToUnicodeString", "ExAllocatePoolWithTag"]
    assert f"   Line     : {marked_line('planted leak: memory')}\n   Size     : 20\n" in after
    check_golden("track_leaks", text)


def test_trackvalidate_names_the_overwritten_block():
    text, status = batch(*RUN_TO_FIRST_TICK, "!trackvalidate", "ed nt!KiSimRequest 2", "g",
                         "g", "!trackvalidate", "!trackdump",
                         extra=["--prompt-answer", "i"])
    assert status == 1
    validate = text.rsplit("kd> !trackvalidate\n", 1)[1].split("kd> ", 1)[0]
    line = marked_line("overwritten block")
    assert validate.startswith("Track Error ****************\nMemory Overwrite corruption\n"
                               f"Allocation point: trackdemo\\trackdemo.c, line {line}\n"
                               "Track Error ****************\n")
    block = re.search(r"Corrupt block (\S+), 24 bytes from ExAllocatePoolWithTag: 4 of the 16 "
                      r"guard bytes after it changed\n", validate)
    assert block, validate
    dump = text.rsplit("kd> !trackdump\n", 1)[1]
    assert f"   Line     : {line}\n   Size     : 24\n   Value    : {block.group(1)}\n" in dump
    check_golden("track_overwrite", text)


def test_a_module_without_track_and_an_unknown_module_are_one_line_each():
    text, status = batch("!trackleaks hal", "!trackdump nosuch", "!trackleaks -atunload",
                         "!trackstats kdcom")
    assert status == 1
    assert "kd> !trackleaks hal\nhal does not use Track (no hal!TrackRecordList symbol)\n" in text
    assert "kd> !trackdump nosuch\nNo module nosuch is loaded (lm lists them)\n" in text
    assert "Usage: !trackleaks [module] | !trackleaks -atunload module\n" in text
    assert "kd> !trackstats kdcom\nkdcom does not use Track" in text


def test_json_rows_carry_the_records():
    import json

    text, status = run_kdcon(["--loopback", "--batch", "--json", "--timeout", "60",
                              "-c", "bp trackdemo!TrackDemoDispatch", "-c", "g", "-c", "g",
                              "-c", "!trackdump"])
    assert status == 0
    results = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    dump = next(r for r in results if r.get("command") == "!trackdump")
    assert dump["ok"] is True
    assert {row["allocator"] for row in dump["rows"]} >= {"IoCreateDevice", "ExAllocatePoolWithTag"}
    assert all(row["module"] == "trackdemo" for row in dump["rows"])


def test_reload_extension_is_dot_reload_with_its_options():
    text, status = batch("!reload", "!reload /f trackdemo", "!reload nosuch", "lm m trackdemo")
    assert status == 1
    assert "kd> !reload\nLoading Kernel Symbols\nLoading unloaded module list\n" in text
    assert "kd> !reload nosuch\nUnable to find module 'nosuch'\n0: kd>" in text
    check_golden("reload_extension", text)
