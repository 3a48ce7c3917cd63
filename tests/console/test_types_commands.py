"""dt, dv and .frame against the simulated target: golden sessions and the argument rules."""

from __future__ import annotations

import json

from .transcripts import batch, check_golden, run_kdcon

# Break in TrackDemoTick: DriverEntry has run, so Track's list holds live records.
AT_TICK = ("bp trackdemo!TrackDemoTick", "g", "g")
RECORD = "trackdemo!_TRACK_RECORD"
FIRST = "poi(trackdemo!TrackRecordList)"


def after_prompt(text: str, command: str) -> list[str]:
    """The lines one command printed in a transcript."""
    marker = f"kd> {command}\n"
    start = text.index(marker) + len(marker)
    end = text.find("kd> ", start)
    body = text[start:end if end >= 0 else len(text)]
    return body.splitlines()[:-1] if end >= 0 else body.splitlines()


def test_kernel_type_layouts():
    text, status = batch("dt nt!_KLDR_DATA_TABLE_ENTRY", "dt _LIST_ENTRY", "dt nt!_POOL_HEADER",
                         "dt -v trackdemo!_TRACK_RECORD", "dt trackdemo!_TRACK_FUNCTION",
                         "dt trackdemo!_TRACK*", "dt -r1 nt!_DRIVER_OBJECT",
                         "dt trackdemo!_NOPE")
    assert status == 1
    check_golden("types_layouts", text)


def test_track_records_at_live_addresses():
    text, status = batch(*AT_TICK, f"dt {RECORD} {FIRST}", f"dt -r1 {RECORD} {FIRST}",
                         f"dt {RECORD} ListEntry.Flink Source {FIRST}",
                         "dt trackdemo!TrackRecordList", "dt trackdemo!TrackMemoryStats",
                         "dt trackdemo!TrackFunctionNames", "dt trackdemo!Track*",
                         f"dt {RECORD} Nope {FIRST}", f"dt {RECORD} 0")
    assert status == 1
    check_golden("types_track", text)


def test_a_driver_object_shows_strings_function_pointers_and_null(tmp_path):
    # The first break is DbgBreakPoint inside DriverEntry: rdi holds the DRIVER_OBJECT,
    # whose pool block starts with its object name information and header (0x50 bytes).
    text, status = batch("g", "dt nt!_DRIVER_OBJECT @rdi", "dt _UNICODE_STRING @rdi+38",
                         "dt -b nt!_DRIVER_OBJECT @rdi DriverName",
                         "dt nt!_POOL_HEADER @rdi-60")
    assert status == 0
    check_golden("types_driver_object", text)


def test_the_address_may_come_before_the_type_and_options_anywhere():
    text, status = batch(*AT_TICK, f"dt {RECORD} {FIRST}", f"dt {FIRST} {RECORD}",
                         f"dt {RECORD} {FIRST} -r1", f"dt -r1 {RECORD} {FIRST}")
    assert status == 0
    plain = after_prompt(text, f"dt {RECORD} {FIRST}")
    assert len(plain) == 7 and plain[0].startswith("   +0x000 ListEntry        : _LIST_ENTRY [ ")
    assert after_prompt(text, f"dt {FIRST} {RECORD}") == plain
    assert after_prompt(text, f"dt {RECORD} {FIRST} -r1") == \
        after_prompt(text, f"dt -r1 {RECORD} {FIRST}")


def test_a_period_repeats_the_last_name():
    text, status = batch(*AT_TICK, f"dt {RECORD} Line {FIRST}", f"dt . Line {FIRST}")
    assert status == 0
    line = after_prompt(text, f"dt {RECORD} Line {FIRST}")
    assert len(line) == 1 and line[0].startswith("   +0x024 Line : ")
    assert after_prompt(text, f"dt . Line {FIRST}") == line


def test_a_global_with_a_field_shows_that_field_only():
    text, status = batch(*AT_TICK, "dt trackdemo!TrackMemoryStats CurrentCount")
    assert status == 0
    lines = after_prompt(text, "dt trackdemo!TrackMemoryStats CurrentCount")
    assert len(lines) == 1 and lines[0].startswith("   +0x004 CurrentCount : ")


def test_a_global_of_a_plain_type_is_its_value():
    text, status = batch("dt trackdemo!TrackGuardSize", "dt fffff800`0108543c")
    assert status == 0
    assert after_prompt(text, "dt trackdemo!TrackGuardSize") == ["0x10"]
    assert after_prompt(text, "dt fffff800`0108543c") == ["0x10"]


def test_bad_input_is_one_line_each():
    commands = ["dt", "dt -q nt!_LIST_ENTRY", "dt trackdemo!_NOPE", "dt nt!_LIST_ENTRY Nope",
                "dt nt", "dt nt!_LIST_ENTRY 0", "dt 1000 trackdemo!_NOPE", "dt nope!_X*"]
    text, status = batch(*commands)
    assert status == 1
    assert "Traceback" not in text and "Internal error" not in text
    assert after_prompt(text, "dt trackdemo!_NOPE") == ["Symbol trackdemo!_NOPE not found."]
    assert after_prompt(text, "dt nt!_LIST_ENTRY Nope") == ["Cannot find specified field members."]
    assert after_prompt(text, "dt 1000 trackdemo!_NOPE") == ["Symbol trackdemo!_NOPE not found."]
    assert after_prompt(text, "dt nope!_X*") == ["Symbol nope!_X* not found."]
    assert after_prompt(text, "dt nt")[0].startswith("Symbol not found at address ")
    assert after_prompt(text, "dt nt!_LIST_ENTRY 0")[-1] == "Memory read error 00000000`00000000"
    for command in ("dt", "dt -q nt!_LIST_ENTRY"):
        assert len(after_prompt(text, command)) == 1


def test_json_rows_carry_each_field():
    output, status = run_kdcon(["--loopback", "--batch", "--json", "--timeout", "60",
                                "-c", "dt trackdemo!_TRACK_STATS"])
    assert status == 0
    results = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    dt = next(r for r in results if r.get("command") == "dt trackdemo!_TRACK_STATS")
    assert [row["name"] for row in dt["rows"]] == ["TotalCalls", "CurrentCount"]
    assert dt["rows"][1]["offset"] == 4


# -- dv and .frame -----------------------------------------------------------------------------

# Stopped in Track_RtlFreeUnicodeString, called from TrackDemoTick once `wide` holds text.
IN_FREE = ("bp trackdemo!Track_RtlFreeUnicodeString", "g", "g")


def test_locals_of_a_caller_frame():
    text, status = batch(*IN_FREE, "k", ".frame", ".frame 1", "dv", "dv /V", "dv a*",
                         ".frame /r 1", ".frame 2", "dv", ".frame 5", "dv", ".frame 9", "dv /i")
    assert status == 1
    check_golden("types_locals", text)


def test_a_selected_frame_lapses_when_the_target_runs_or_registers_change():
    text, status = batch(*IN_FREE, ".frame 1", "dv tick", "g", ".frame", "dv tick",
                         ".frame 1", "r rsp=rsp+8", ".frame")
    assert status == 0
    assert after_prompt(text, ".frame 1")[0].startswith("01 ")
    assert after_prompt(text, "dv tick") == ["           tick = 0"]
    shown = [line for line in text.splitlines() if line.startswith(("00 ", "01 "))]
    assert [line[:3] for line in shown] == ["01 ", "00 ", "01 ", "00 "]


def test_dv_names_the_tick_locals_with_their_stack_addresses():
    text, status = batch(*IN_FREE, ".frame 1", "dv /V")
    assert status == 0
    lines = after_prompt(text, "dv /V")
    names = [line.split(" = ")[0].split()[-1] for line in lines]
    assert names == ["Extension", "attributes", "wide", "ansi", "directory", "block", "mdl",
                     "tick"]
    assert lines[2].endswith('wide = struct _UNICODE_STRING "TrackDemo tick"')
    assert " @rsp+0xb0 " in lines[0] and " @rsp+0x70 " in lines[2]


def test_dv_where_the_pdb_has_no_procedure_says_so_in_one_line():
    # The initial break is in DbgBreakPointWithStatus, an assembly stub with no S_*PROC32.
    text, status = batch("dv")
    assert status == 1
    assert after_prompt(text, "dv") == ["Private symbols (symbols.pri) are required for locals."]
