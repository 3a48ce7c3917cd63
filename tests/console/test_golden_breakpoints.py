"""Breakpoints, stepping and the stack against the simulated target, as whole transcripts."""

from __future__ import annotations

from .transcripts import batch, check_golden


def test_bu_survives_reboot_and_its_command_string_runs_on_the_hit():
    text, status = batch('bu trackdemo!DriverEntry "r rip"', "bp trackdemo!TrackDemoTick 3",
                         "bl", ".reboot", "bl", "g", "bl", ".bpcmds")
    assert status == 0
    check_golden("bu_reboot", text)


def test_pass_count_nested_quotes_and_the_resume_ending_the_list():
    text, status = batch(r'bp trackdemo!TrackDemoTick 2 ".echo \"tick; hit\"; r rip; t; .echo never"',
                         "g", "g", "bl", "bc *", "bl")
    assert status == 0
    check_golden("passes_commands", text)


def test_step_trace_go_up_and_a_stack_of_driver_frames():
    text, status = batch("bp trackdemo!TrackDemoTick", "g", "k", "t", "p", "gu", "kn 3",
                         "u rip L4", "ln rip")
    assert status == 0
    check_golden("step_stack", text)


def test_registers_and_bad_input_lines():
    text, status = batch("r", "r rax, rip", "r rax=1234", "r eax", "r al, ah, zf",
                         "r $t0=rax+1", "r $t0", "r bogus", "bp", "ba w3 rsp", "bc")
    assert status == 1
    check_golden("registers_errors", text)


def test_ba_w4_on_a_track_statistic_stops_after_each_write():
    text, status = batch("ba w4 trackdemo!TrackMemoryStats", "bl", "g", "g", "g", "k 3",
                         "dd trackdemo!TrackMemoryStats L6", "bd 0", "bl")
    assert status == 0
    assert text.count("Breakpoint 0 hit") == 2
    check_golden("ba_track_statistic", text)


def test_pc_and_tc_stop_at_the_next_call():
    text, status = batch("bp trackdemo!TrackDemoTick", "g", "g", "pr", "pc", "tc", "pc 2")
    assert status == 0
    after = text.split("kd> pr", 1)[1]
    calls = [line for line in after.splitlines() if "`" in line[:20]]
    assert len(calls) == 3 and all(" call " in line for line in calls)
    assert "Track_ExAllocatePoolWithTag+" in after.split("kd> tc", 1)[1]
    check_golden("pc_tc", text)
