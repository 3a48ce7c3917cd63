"""Acceptance: Track's reports and assertion prompt reach the debugger over KD.

The leak report at unload lists exactly the planted leaks (their lines read from the
trackdemo source, where they are marked); the overwrite scenario prints the corruption
report and raises RtlAssert's prompt, and each answer does what RtlAssert documents.
"""

from __future__ import annotations

import re
import struct

import pytest

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.events import DebugPrint, DebugPrompt, StateChange

from .kd_sim_fixtures import (
    FILES,
    KI_SIM_LEAK,
    KI_SIM_OVERWRITE,
    KI_SIM_UNLOAD,
    LOAD_SYMBOLS,
    STATUS_BREAKPOINT,
    TRACKDEMO_SOURCE,
    boot,
    exception_code,
    pdb_rva,
)

PROMPT = b"Break, Ignore, Terminate Process or Terminate Thread (bipt)? "
IOCTL_TRACKDEMO_TICK = 0x222000
IOCTL_TRACKDEMO_OVERWRITE = 0x222008


@pytest.fixture
def running():
    b = boot()
    b.host.continue2()
    yield b
    b.close()


def _marked_line(marker: str) -> int:
    for number, line in enumerate(TRACKDEMO_SOURCE.read_text().splitlines(), 1):
        if marker in line:
            return number
    raise AssertionError(f"no line marked {marker!r}")


def _request_and_run(booted, value: int) -> None:
    """Break in, set KiSimRequest, run on: the system loop acts on its next tick."""
    host = booted.host
    host.breakin()
    assert exception_code(host.next_stop()) == STATUS_BREAKPOINT
    booted.set_request(value)
    host.continue2()


def test_leak_report_at_unload_lists_exactly_the_planted_leaks(running):
    host = running.host
    _request_and_run(running, KI_SIM_LEAK)
    host.wait_for(DebugPrint, where=lambda e: b"leaks planted" in e.text)
    _request_and_run(running, KI_SIM_UNLOAD)
    unload = host.wait_for(StateChange, where=lambda e: e.new_state == LOAD_SYMBOLS)
    assert unload.message.u.UnloadSymbols == 1
    assert unload.data.rstrip(b"\0").endswith(b"trackdemo.sys")
    text = b"".join(host.prints).decode("latin-1")
    start = text.index("Track Reports Allocation/Resource Leaks:")
    report = text[start:].split("\n")
    expected = [
        "Track Reports Allocation/Resource Leaks:",
        "****************************************",
        "AllocatorFn : RtlAnsiStringToUnicodeString",
        "   Source   : trackdemo\\trackdemo.c",
        f"   Line     : {_marked_line('planted leak: resource')}",
        "AllocatorFn : ExAllocatePoolWithTag",
        "   Source   : trackdemo\\trackdemo.c",
        f"   Line     : {_marked_line('planted leak: memory')}",
        "   Size     : 20",
    ]
    assert report[: len(expected)] == expected
    assert "AllocatorFn" not in "\n".join(report[len(expected):])
    host.continue2()


def _overwrite_prompt(booted) -> DebugPrompt:
    _request_and_run(booted, KI_SIM_OVERWRITE)
    prompt = booted.host.wait_for(DebugPrompt)
    assert prompt.prompt == PROMPT
    text = b"".join(booted.host.prints).decode("latin-1")
    assert "Memory Overwrite corruption" in text
    line = _marked_line("overwritten block")
    assert re.search(rf"Allocation point: trackdemo\\trackdemo\.c, line {line}\b", text)
    assert "*** Assertion failed: Corrupt Memory" in text
    return prompt


def test_assert_answer_b_breaks_into_the_debugger(running):
    host = running.host
    _overwrite_prompt(running)
    host.send("send_prompt_reply", b"b")
    stop = host.next_stop()
    assert exception_code(stop) == STATUS_BREAKPOINT
    assert stop.program_counter == running.export("ntoskrnl.exe", "DbgBreakPoint")


@pytest.mark.parametrize("answer, finishes_request", [
    (b"i", True), (b"p", False), (b"t", False)])
def test_assert_answers_i_p_t_as_documented(running, answer, finishes_request):
    """i returns into the driver, which completes the OVERWRITE request; p and t end
    the request (the system loop's only thread), so the next completion is a TICK's."""
    host = running.host
    complete = running.base("trackdemo.sys") + pdb_rva(
        FILES["trackdemo.sys"].with_suffix(".pdb"), "TrackDemoComplete")
    host.breakin()
    assert exception_code(host.next_stop()) == STATUS_BREAKPOINT
    reply = host.request(A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=complete,
                                                          BreakPointHandle=0))
    assert reply.return_status == 0
    running.set_request(KI_SIM_OVERWRITE)
    host.continue2()
    # Completions of earlier TICKs may come first; then the prompt.
    while True:
        event = host.wait_for((StateChange, DebugPrompt))
        if isinstance(event, DebugPrompt):
            break
        assert event.program_counter == complete
        host.continue2()
    assert event.prompt == PROMPT
    host.send("send_prompt_reply", answer)
    hit = host.next_stop()
    assert hit.program_counter == complete, "no break: the answer did not return"
    context = host.request(A.DbgKdGetContextApi, dict(Unused=0)).data
    irp = struct.unpack_from("<Q", context, 0x80)[0]  # Rcx: the IRP
    stack = struct.unpack("<Q", host.read_virtual(irp + 0xB8, 8))[0]
    code = struct.unpack("<I", host.read_virtual(stack + 0x18, 4))[0]
    assert code == (IOCTL_TRACKDEMO_OVERWRITE if finishes_request else IOCTL_TRACKDEMO_TICK)
