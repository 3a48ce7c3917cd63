"""Acceptance: run control on the simulated kernel through the host role.

A breakpoint on trackdemo's dispatch routine (address from its PDB by llvm-pdbutil),
restore plus trace flag stepping exactly one instruction (length by llvm-objdump), a
data breakpoint on Track's statistics, break-in latency, reboot, and bugchecks.
"""

from __future__ import annotations

import struct
import time

import pytest

from kdcon.protocol.constants import INITIAL_PACKET_ID, SYNC_PACKET_ID
from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.context import CONTEXT_AMD64
from kdcon.protocol.events import DebugPrint, DebugPrompt, StateChange

from kdcon.tools.simtarget.loopback import SimTarget

from .kd_host import KdHost
from .kd_sim_fixtures import (
    EXCEPTION,
    Booted,
    FILES,
    BAD_ADDRESS,
    KI_SIM_BAD_ACCESS,
    KI_SIM_BUGCHECK,
    LOAD_SYMBOLS,
    STATUS_BREAKPOINT,
    STATUS_SINGLE_STEP,
    boot,
    exception_code,
    follow_boot,
    get_context,
    instruction_length,
    pdb_rva,
)

TRACKDEMO_PDB = FILES["trackdemo.sys"].with_suffix(".pdb")
BREAKIN_BOUND = 0.100  # the acceptance criterion, wall time


@pytest.fixture
def booted():
    b = boot()
    yield b
    b.close()


def _set_breakpoint(host, address: int) -> int:
    reply = host.request(A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=address,
                                                          BreakPointHandle=0))
    assert reply.return_status == 0
    return reply.message.u.BreakPointHandle


def test_breakpoint_on_dispatch_is_hit_and_one_step_is_one_instruction(booted):
    host = booted.host
    rva = pdb_rva(TRACKDEMO_PDB, "TrackDemoDispatch")
    dispatch = booted.base("trackdemo.sys") + rva
    handle = _set_breakpoint(host, dispatch)
    host.continue2()
    stop = host.next_stop()
    assert exception_code(stop) == STATUS_BREAKPOINT
    assert stop.program_counter == dispatch
    assert get_context(host).Rip == dispatch
    assert stop.message.ControlReport.Amd64ControlReport.InstructionStream[0] != 0xCC
    assert host.request(A.DbgKdRestoreBreakPointApi, dict(BreakPointHandle=handle)
                        ).return_status == 0
    host.continue2(trace=True)
    step = host.next_stop()
    assert exception_code(step) == STATUS_SINGLE_STEP
    length = instruction_length(FILES["trackdemo.sys"], rva)
    assert step.program_counter == dispatch + length
    assert get_context(host).Rip == dispatch + length


def test_data_breakpoint_fires_on_a_write_to_track_statistics(booted):
    host = booted.host
    stats = booted.base("trackdemo.sys") + pdb_rva(TRACKDEMO_PDB, "TrackMemoryStats")
    before = host.read_virtual(stats, 4)
    context = get_context(host)
    # Dr7: L0, R/W0 = 01 (write), LEN0 = 11 (4 bytes) on TotalCalls.
    dr7 = 0x1 | (0b01 << 16) | (0b11 << 18)
    context.Dr0, context.Dr7 = stats, dr7
    reply = host.request(A.DbgKdSetContextApi, dict(ContextFlags=0x100010),
                         CONTEXT_AMD64.build(context))
    assert reply.return_status == 0
    values = [before]
    # TRACKINITIALIZE writes zeros first; the first tracked call then counts.
    for _ in range(6):
        host.continue2(dr7=dr7)
        stop = host.next_stop()
        assert exception_code(stop) == STATUS_SINGLE_STEP
        report = stop.message.ControlReport.Amd64ControlReport
        assert report.Dr6 & 0x1 and report.Dr7 == dr7
        # Reported after the writing instruction (memset in the kernel, or Track).
        assert any(b <= stop.program_counter < b + n for b, n in booted.loads.values())
        values.append(host.read_virtual(stats, 4))
        if values[-1] != before:
            break
    assert struct.unpack("<I", values[-1])[0] == 1, values


def test_dbgprint_from_driver_entry_arrives(booted):
    host = booted.host
    host.continue2()
    host.wait_for(DebugPrint, where=lambda e: b"TrackDemo" in e.text or b"trackdemo" in e.text)
    assert any(b"DriverEntry" in text for text in host.prints)


def test_breakin_while_running_stops_within_100_ms(booted):
    host = booted.host
    host.continue2()
    # Five break-ins while it runs the system loop. The bound holds for the median:
    # on a shared two-core CI machine one sample can lose the CPU to other processes
    # for longer than the bound, which says nothing about the target.
    latencies = []
    for _ in range(5):
        start = time.monotonic()
        host.breakin()
        stop = host.next_stop(timeout=5)
        latencies.append(time.monotonic() - start)
        assert exception_code(stop) == STATUS_BREAKPOINT
        host.continue2()
    assert sorted(latencies)[2] < BREAKIN_BOUND, latencies


def test_reboot_brings_the_target_back_with_module_loads(booted):
    host = booted.host
    host.send("send_manipulate", A.DbgKdRebootApi)
    first = host.next_stop()
    assert first.packet_id == INITIAL_PACKET_ID | SYNC_PACKET_ID
    assert first.new_state == LOAD_SYMBOLS
    booted.loads.clear()
    booted.first = first
    name = first.data.rstrip(b"\0").decode().rsplit("\\", 1)[-1]
    booted.loads[name] = (first.message.u.BaseOfDll, first.message.u.SizeOfImage)
    host.continue2()
    follow_boot(booted)
    assert list(booted.loads) == ["ntoskrnl.exe", "hal.dll", "kdcom.dll", "trackdemo.sys"]
    assert booted.initial_break.new_state == EXCEPTION
    assert host.request(A.DbgKdGetVersionApi).return_status == 0


def _bugcheck_data(booted) -> tuple[int, ...]:
    address = booted.export("ntoskrnl.exe", "KiBugCheckData")
    return struct.unpack("<5Q", booted.host.read_virtual(address, 40))


def test_bugcheck_request_leaves_kibugcheckdata_readable(booted):
    host = booted.host
    booted.set_request(KI_SIM_BUGCHECK)
    host.continue2()
    stop = host.next_stop()
    assert exception_code(stop) == STATUS_BREAKPOINT
    assert stop.program_counter == booted.export("ntoskrnl.exe", "DbgBreakPointWithStatus")
    assert _bugcheck_data(booted) == (0xE2, 0, 0, 0, 0)  # MANUALLY_INITIATED_CRASH
    assert any(b"Fatal System Error: 0x000000e2" in t for t in host.prints)


def test_cause_bugcheck_api_crashes_the_target(booted):
    host = booted.host
    host.send("send_manipulate", A.DbgKdCauseBugCheckApi)
    stop = host.next_stop()
    assert exception_code(stop) == STATUS_BREAKPOINT
    assert _bugcheck_data(booted)[0] == 0xE2


def test_break_on_connect_stops_after_the_boot_modules():
    b = boot(break_on_connect=True, include_trackdemo=False)
    try:
        assert list(b.loads) == ["ntoskrnl.exe", "hal.dll", "kdcom.dll"]
        stop = b.initial_break
        assert exception_code(stop) == STATUS_BREAKPOINT
        # DbgBreakPointWithStatus(DBG_STATUS_CONTROL_C) at RtlpBreakWithStatusInstruction.
        assert stop.program_counter == b.export("ntoskrnl.exe", "RtlpBreakWithStatusInstruction")
    finally:
        b.close()


def test_boot_completes_over_a_line_paced_to_115200_baud():
    sim = SimTarget(seed=0)
    try:
        booted = Booted(sim=sim, host=KdHost(sim.connect(pace=115200)))
        follow_boot(booted, timeout=30)
        assert list(booted.loads) == ["ntoskrnl.exe", "hal.dll", "kdcom.dll", "trackdemo.sys"]
        base = booted.base("ntoskrnl.exe")
        assert booted.host.read_virtual(base, 2) == b"MZ"
        booted.close()
    finally:
        sim.close()


def test_bad_access_at_dispatch_level_bugchecks_0xd1_with_its_parameters(booted):
    """DRIVER_IRQL_NOT_LESS_OR_EQUAL: (address, IRQL, 0 = read, faulting PC)."""
    host = booted.host
    booted.set_request(KI_SIM_BAD_ACCESS)
    host.continue2()
    while True:
        event = host.wait_for((StateChange, DebugPrompt))
        if isinstance(event, StateChange):
            break
        # The checked build's ASSERT_PASSIVE_LEVEL fires first: ignore it.
        host.send("send_prompt_reply", b"i")
    assert exception_code(event) == STATUS_BREAKPOINT
    code, address, irql, access, pc = _bugcheck_data(booted)
    base, size = booted.loads["trackdemo.sys"]
    assert (code, irql, access) == (0xD1, 2, 0)
    assert address & ~0xFFF == BAD_ADDRESS & ~0xFFF
    assert base <= pc < base + size
