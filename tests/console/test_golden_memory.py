"""The memory commands against the simulated target, as transcripts (from the first
prompt on: the connect banner is the session transcript's business)."""

from __future__ import annotations

import json
import re

from .transcripts import batch, check_golden, run_kdcon


def commands_only(text: str) -> str:
    return text[text.index("0: kd> "):]


def test_displays_of_kernel_data_strings_physical_and_unmapped_memory():
    text, status = batch(
        "db nt!KiSimRequest L20", "dq nt!KiSimRequest", "dps nt!PsLoadedModuleList L4",
        "dps nt!KdDebuggerDataBlock L6", "dd nt!KiSimRequest L8", "dd", "d L4", "dc nt L8",
        "dW nt L8", "dw nt L8", "da nt+5116", "da nt!NtBuildLab",
        "du poi(poi(nt!PsLoadedModuleList)+60)", "dpu poi(nt!PsLoadedModuleList)+60 L1",
        "db nt+16ff8 L20", "dq nt+16ff8 L4", "dc nt+16ff8 L4", "db /p 1000000 L20",
        "!db 1000000 L20", "!dq 1000000 L4", "!dd")
    assert status == 0
    check_golden("memory_display", commands_only(text))


def test_writes_fills_compares_moves_and_searches_show_in_later_displays():
    text, status = batch(
        "db nt!KiSimRequest L10", "eb nt!KiSimRequest 4b 44 'c' 'o' 'n'",
        "db nt!KiSimRequest L10", "ed nt!KiSimRequest+8 12345678", "dd nt!KiSimRequest L4",
        'eza nt!KiSimRequest "kdcon memory"', "da nt!KiSimRequest",
        'ezu nt!KiSimRequest+10 "wide"', "du nt!KiSimRequest+10",
        "f nt!KiSimRequest L20 'A' 'B' 'C'", "db nt!KiSimRequest L20",
        "c nt!KiSimRequest L8 nt!KiSimRequest+1", "m nt!KiSimRequest L4 nt!KiSimRequest+10",
        "db nt!KiSimRequest L20", 's -a nt L17000 "KSIM"', "s -d nt!KiSimRequest L20 'CBAC'",
        "s -[1]b nt L1000 4d 5a", "eq nt!KiSimRequest nt!KiSimRequest", "dps nt!KiSimRequest L1")
    assert status == 0
    check_golden("memory_edit", commands_only(text))


def test_every_bad_argument_is_one_line():
    text, status = batch(
        "db nt L", "db nt+10 nt", "db nt L20000000", "dd nt L4000001", "db /x nt", "db /c 0 nt",
        "db nt L10 junk", "dt nt", "dD nt", "eb", "eb nt!KiSimRequest",
        "eb nt!KiSimRequest 100", "ea nt!KiSimRequest 41", "eb 0 1", "f nt!KiSimRequest L4",
        "c nt L10", "m nt L10", "s -z nt L10 1", "s -[s]b nt L10 1", "s -b nt L10",
        's -a nt L10 41', "s", ".writemem", ".readmem /nonexistent/file nt", "!db [x] 0",
        "!db 0")
    assert status == 1
    check_golden("memory_errors", commands_only(text))
    assert "Traceback" not in text and "Internal error" not in text


def test_a_hostile_string_in_target_memory_puts_no_control_character_on_the_terminal():
    text, status = batch("eb nt!KiSimRequest 1b '[' '3' '1' 'm' 07 9b 0",
                         "da nt!KiSimRequest", "db nt!KiSimRequest L8", "dc nt!KiSimRequest L2",
                         "ezu nt!KiSimRequest \"x\"", "ew nt!KiSimRequest+2 202e 1b",
                         "du nt!KiSimRequest")
    assert status == 0
    shown = commands_only(text)
    assert '".[31m.."' in shown
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]", shown)


def test_a_second_display_of_the_same_bytes_in_one_stop_costs_no_round_trip():
    text, status = run_kdcon(["--loopback", "--batch", "--json", "--timeout", "60",
                              "-c", "db nt!KiSimRequest L80", "-c", "db nt!KiSimRequest L80",
                              "-c", "? nt!KiSimRequest"])
    results = [obj for obj in map(json.loads, text.splitlines()) if obj["type"] == "result"]
    first, second, where = results[0], results[1], results[2]
    assert first["text"] == second["text"] and first["wire"]["round_trips"] >= 1
    assert second["wire"]["round_trips"] == 0 and second["wire"]["bytes"] == 0
    assert first["rows"][0]["address"] == where["rows"][0]["value"]


def test_writemem_then_readmem_round_trip_the_bytes(tmp_path):
    dump = tmp_path / "nt.bin"
    text, status = batch(f".writemem {dump} nt L1000", f".readmem {dump} nt!KiSimRequest L10",
                         "db nt!KiSimRequest L10")
    assert status == 0
    assert "Writing 1000 bytes..\n" in text and "Reading 10 bytes.\n" in text
    assert dump.read_bytes()[:2] == b"MZ" and len(dump.read_bytes()) == 0x1000
    assert "4d 5a" in text.splitlines()[-1]
