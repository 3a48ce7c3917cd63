"""An ``int 3`` in the code over KD: the target reports it where it is, the host moves on.

A Windows x64 kernel reports STATUS_BREAKPOINT with ExceptionAddress, ProgramCounter
and the context's RIP all on the ``int 3`` (KiDispatchException backs RIP up by one),
and runs it again if the debugger continues without moving RIP; the debugger moves RIP
past a breakpoint instruction that is not its own before it resumes.  The rule and its
sources: docs/simulated-target.md.
"""

from __future__ import annotations

import struct

import pytest

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.events import DebugPrint, DebugPrompt

from .kd_sim_fixtures import (
    FILES,
    KI_SIM_LEAK,
    KI_SIM_OVERWRITE,
    STATUS_BREAKPOINT,
    boot,
    exception_code,
    pdb_rva,
)

IOCTL_TRACKDEMO_OVERWRITE = 0x222008


@pytest.fixture
def running():
    b = boot()
    b.host.continue2()
    yield b
    b.close()


def _assert_stopped_on_int3(booted, stop, address: int) -> None:
    host = booted.host
    assert exception_code(stop) == STATUS_BREAKPOINT
    assert stop.message.u.ExceptionRecord.ExceptionAddress == address
    assert stop.program_counter == address
    report = stop.message.ControlReport.Amd64ControlReport
    assert report.InstructionStream[0] == 0xCC
    assert host.get_context().Rip == address
    assert host.read_virtual(address, 1) == b"\xcc"


def test_breakin_reports_the_int3_address_in_record_report_and_context(running):
    host = running.host
    host.breakin()
    stop = host.next_stop()
    _assert_stopped_on_int3(running, stop, running.export("ntoskrnl.exe", "RtlpBreakWithStatusInstruction"))


def test_continuing_without_moving_rip_runs_the_int3_again(running):
    host = running.host
    host.breakin()
    first = host.next_stop()
    host.continue2(skip_break=False)
    again = host.next_stop()
    _assert_stopped_on_int3(running, again, first.program_counter)


def test_a_host_that_sets_rip_past_the_int3_runs_on(running):
    host = running.host
    host.breakin()
    stop = host.next_stop()
    running.set_request(KI_SIM_LEAK)
    context = host.get_context()
    assert host.set_context(context.replace(Rip=stop.program_counter + 1)) == 0
    assert host.get_context().Rip == stop.program_counter + 1
    host.continue2(skip_break=False)
    # The system loop takes the request on its next tick: the driver prints, no new stop.
    host.wait_for(DebugPrint, where=lambda e: b"leaks planted" in e.text)
    assert host.last_stop is None


def test_dbgbreakpoint_in_driver_code_reports_its_address_and_runs_on_past_it(running):
    host = running.host
    complete = running.base("trackdemo.sys") + pdb_rva(FILES["trackdemo.sys"].with_suffix(".pdb"),
                                                       "TrackDemoComplete")
    host.breakin()
    host.next_stop()
    running.set_request(KI_SIM_OVERWRITE)
    host.continue2()
    host.wait_for(DebugPrompt)
    host.send("send_prompt_reply", b"b")
    stop = host.next_stop()
    _assert_stopped_on_int3(running, stop, running.export("ntoskrnl.exe", "DbgBreakPoint"))
    reply = host.request(A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=complete, BreakPointHandle=0))
    assert reply.return_status == 0
    host.continue2()
    # DbgBreakPoint returns into RtlAssert, which returns into the driver: it completes
    # the OVERWRITE request it was serving.
    hit = host.next_stop()
    assert hit.program_counter == complete
    irp = host.get_context().Rcx
    stack = struct.unpack("<Q", host.read_virtual(irp + 0xB8, 8))[0]
    assert struct.unpack("<I", host.read_virtual(stack + 0x18, 4))[0] == IOCTL_TRACKDEMO_OVERWRITE
