"""Running the machine: breakpoints, single steps, data breakpoints, prompts, break-in,
requests, bug checks and reboot.  No protocol: the machine API alone."""

from __future__ import annotations

import struct
import threading
import time

import pefile
import pytest

from kdcon.tools.simtarget.events import (BreakInStop, BreakpointHit, BudgetExhausted, BugCheck, DataBreakpoint,
                                          DebugPrintStop, DebugPromptStop, LoadSymbols, SingleStep, UnloadSymbols)
from kdcon.tools.simtarget.layout import BAD_ADDRESS, KiSimRequest
from tests.oracles import require_tool

from .simhelpers import TESTDRV, TESTDRV_PDB, boot_testdrv, d, pdb_publics, q, run_on_from, run_until_quiet


@pytest.fixture
def machine():
    m = boot_testdrv()
    run_until_quiet(m)
    return m


@pytest.fixture(scope="module")
def testdrv_symbols():
    tool = require_tool("llvm-pdbutil")
    pe = pefile.PE(str(TESTDRV), fast_load=True)
    rvas = [s.VirtualAddress for s in pe.sections]

    def at(base: int) -> dict[str, int]:
        return pdb_publics(tool, TESTDRV_PDB, base, rvas)
    return at


def driver_base(m) -> int:
    return next(mod.base for mod in m.modules if mod.name == "testdrv.sys")


def run_to_event(m, kinds, budget=2_000_000, limit=32):
    for _ in range(limit):
        event = m.run(budget=budget)
        if isinstance(event, kinds):
            return event
        if isinstance(event, DebugPromptStop):
            raise AssertionError(f"unexpected prompt {event}")
        run_on_from(m, event)
    raise AssertionError(f"no {kinds} in {limit} runs")


def test_breakpoint_on_dispatch_routine_is_hit_with_rip_at_the_routine(machine, testdrv_symbols):
    dispatch = testdrv_symbols(driver_base(machine))["TestDispatch"]
    handle = machine.write_breakpoint(dispatch)
    assert 1 <= handle <= 32
    event = run_to_event(machine, BreakpointHit)
    assert event == BreakpointHit(pc=dispatch, handle=handle)
    assert machine.get_context().Rip == dispatch
    # The kernel's saved context (KDBG SavedContext -> KPRCB ContextFrame) is this stop's.
    saved = q(machine, machine.kd_debugger_data_block + 0x28)
    assert saved == machine.kprcb + 0x120
    assert q(machine, saved + 0xF8) == dispatch


def test_memory_reads_show_the_original_byte_under_a_breakpoint(machine, testdrv_symbols):
    dispatch = testdrv_symbols(driver_base(machine))["TestDispatch"]
    before = machine.read_virtual(dispatch, 16)
    machine.write_breakpoint(dispatch)
    assert machine.read_virtual(dispatch, 16) == before
    assert machine.memory._uc.mem_read(dispatch, 1) == b"\xcc"


def test_continuing_from_a_breakpoint_hits_it_again_on_the_next_tick(machine, testdrv_symbols):
    dispatch = testdrv_symbols(driver_base(machine))["TestDispatch"]
    handle = machine.write_breakpoint(dispatch)
    run_to_event(machine, BreakpointHit)
    ticks = d(machine, testdrv_symbols(driver_base(machine))["TestTickCount"])
    assert run_to_event(machine, BreakpointHit) == BreakpointHit(pc=dispatch, handle=handle)
    assert d(machine, testdrv_symbols(driver_base(machine))["TestTickCount"]) == ticks + 1


def test_restored_breakpoint_is_not_hit_and_unused_handles_fail(machine, testdrv_symbols):
    dispatch = testdrv_symbols(driver_base(machine))["TestDispatch"]
    handle = machine.write_breakpoint(dispatch)
    assert machine.restore_breakpoint(handle) is True
    assert [machine.restore_breakpoint(h) for h in range(1, 33)] == [False] * 32
    assert isinstance(machine.run(budget=3_000_000), BudgetExhausted)


def test_a_breakpoint_on_an_unmapped_address_is_deferred(machine):
    handle = machine.write_breakpoint(BAD_ADDRESS)
    assert handle is not None and machine.breakpoints[handle] == BAD_ADDRESS
    assert machine.restore_breakpoint(handle) is True


def test_one_trace_step_runs_exactly_one_instruction(machine, testdrv_symbols):
    dispatch = testdrv_symbols(driver_base(machine))["TestDispatch"]
    machine.write_breakpoint(dispatch)
    run_to_event(machine, BreakpointHit)
    rsp = machine.get_context().Rsp
    first = machine.run(trace=True)
    # The dispatch routine's first instruction is its prolog: one push or sub changes RSP.
    assert isinstance(first, SingleStep)
    assert dispatch < first.pc <= dispatch + 15
    assert machine.get_context().Rsp != rsp
    second = machine.run(trace=True)
    assert isinstance(second, SingleStep) and second.pc > first.pc


def test_data_breakpoint_fires_after_the_writing_instruction(machine, testdrv_symbols):
    symbols = testdrv_symbols(driver_base(machine))
    watched = symbols["TestWatched"]
    ctx = machine.get_context()
    machine.set_context(ctx.replace(Dr0=watched, Dr7=0x1 | (0b01 << 16) | (0b11 << 18)))
    event = run_to_event(machine, DataBreakpoint)
    assert event.address == watched and event.dr6 & 0xF == 0x1
    assert symbols["TestDispatch"] < event.pc < symbols["TestDispatch"] + 0x100
    # The write is complete, and exactly once: the watched value equals the tick count.
    assert d(machine, watched) == d(machine, symbols["TestTickCount"])
    assert machine.get_context().Dr6 == event.dr6
    again = run_to_event(machine, DataBreakpoint)
    assert d(machine, watched) == d(machine, symbols["TestTickCount"]) and again.pc == event.pc


def test_request_breakin_stops_in_kernel_code_within_100_ms(machine):
    done = threading.Event()
    result = {}

    def runner():
        result["event"] = machine.run()
        result["stopped"] = time.perf_counter()
        done.set()

    thread = threading.Thread(target=runner)
    thread.start()
    time.sleep(0)   # let the CPU thread start running; the bound is measured from the request
    requested = time.perf_counter()
    machine.request_breakin()
    assert done.wait(5.0)
    thread.join()
    assert isinstance(result["event"], BreakInStop)
    assert result["event"].pc == machine.kernel_symbol("RtlpBreakWithStatusInstruction")
    assert result["stopped"] - requested < 0.100
    # Running on without moving RIP breaks again where it stopped (as Windows does);
    # past the int 3, it returns to the interrupted code.
    assert machine.run(budget=1_000_000) == result["event"]
    assert machine.skip_break_instruction()
    assert isinstance(machine.run(budget=1_000_000), BudgetExhausted)


def test_break_on_connect_breaks_in_during_boot_after_the_system_images():
    m = boot_testdrv(break_on_connect=True)
    events = []
    while not isinstance(events[-1] if events else None, BreakInStop):
        events.append(m.run(budget=2_000_000))
    assert [e.image.path.rsplit("\\", 1)[1] for e in events if isinstance(e, LoadSymbols)] == \
        ["ntoskrnl.exe", "hal.dll", "kdcom.dll"]


def test_assert_prompt_answer_i_returns_to_the_driver(machine):
    machine.set_request(KiSimRequest.OVERWRITE)
    printed = run_to_event(machine, DebugPrintStop)
    assert printed.text == "\n*** Assertion failed: TestGuard == 0\n***   Source File: testdrv.c, line 42\n\n"
    prompt = machine.run()
    assert prompt == DebugPromptStop(text="Break, Ignore, Terminate Process or Terminate Thread (bipt)? ", max_len=2)
    machine.answer_prompt("i")
    assert machine.run(budget=2_000_000) == DebugPrintStop(text="testdrv: assert returned\n", component=0xFFFFFFFF)


def test_assert_prompt_answer_b_breaks_then_returns(machine):
    machine.set_request(KiSimRequest.OVERWRITE)
    run_to_event(machine, DebugPromptStop)
    machine.answer_prompt("b")
    event = machine.run()
    assert isinstance(event, BreakpointHit) and event.handle is None
    assert event.pc == machine.kernel_symbol("DbgBreakPoint")
    assert machine.get_context().Rip == event.pc and machine.read_virtual(event.pc, 1) == b"\xcc"
    assert machine.skip_break_instruction()
    assert machine.run(budget=2_000_000).text == "testdrv: assert returned\n"


@pytest.mark.parametrize("answer", ["p", "t"])
def test_assert_prompt_answers_p_and_t_abandon_the_request(machine, answer):
    machine.set_request(KiSimRequest.OVERWRITE)
    run_to_event(machine, DebugPromptStop)
    machine.answer_prompt(answer)
    assert isinstance(machine.run(budget=3_000_000), BudgetExhausted)   # "assert returned" never printed
    counter = machine.kernel_symbol("KiSystemLoopCount")
    before = d(machine, counter)
    machine.run(budget=1_000_000)
    assert d(machine, counter) > before


def test_running_with_a_prompt_unanswered_is_refused(machine):
    from kdcon.tools.simtarget.errors import MachineStateError
    machine.set_request(KiSimRequest.OVERWRITE)
    run_to_event(machine, DebugPromptStop)
    with pytest.raises(MachineStateError):
        machine.run()


def test_bugcheck_request_leaves_kibugcheckdata_with_code_and_parameters(machine):
    machine.set_request(KiSimRequest.BUGCHECK)
    fatal = run_to_event(machine, DebugPrintStop)
    assert fatal.text.startswith("\n*** Fatal System Error: 0x000000e2\n")
    event = machine.run()
    assert event == BugCheck(pc=machine.kernel_symbol("RtlpBreakWithStatusInstruction"), code=0xE2,
                             params=(0, 0, 0, 0), first=True)
    data = struct.unpack("<5Q", machine.read_virtual(machine.ki_bugcheck_data, 40))
    assert data == (0xE2, 0, 0, 0, 0)
    assert machine.skip_break_instruction()
    assert machine.run() == BugCheck(pc=event.pc, code=0xE2, params=(0, 0, 0, 0), first=False)
    assert machine.halted


def test_bad_access_at_dispatch_level_in_driver_code_is_bugcheck_d1(machine, testdrv_symbols):
    dispatch = testdrv_symbols(driver_base(machine))["TestDispatch"]
    machine.set_request(KiSimRequest.BAD_ACCESS)
    event = run_to_event(machine, BugCheck)
    code, (address, irql, access, pc) = event.code, event.params
    assert code == 0xD1
    assert address == BAD_ADDRESS + 0x18        # IoControlCode in the bogus stack location
    assert (irql, access) == (2, 0)
    assert dispatch <= pc < dispatch + 0x40
    assert struct.unpack("<5Q", machine.read_virtual(machine.ki_bugcheck_data, 40)) == (0xD1, *event.params)


def test_cause_bugcheck_crashes_from_wherever_the_cpu_is(machine):
    machine.cause_bugcheck()
    assert isinstance(run_to_event(machine, BugCheck), BugCheck)
    assert q(machine, machine.ki_bugcheck_data) == 0xE2


def test_unload_request_runs_the_unload_routine_and_reports_it(machine):
    machine.set_request(KiSimRequest.UNLOAD)
    assert run_to_event(machine, DebugPrintStop).text == "testdrv: unload\n"
    event = machine.run()
    assert isinstance(event, UnloadSymbols) and event.image.path.endswith("\\testdrv.sys")
    assert machine.read_virtual(event.image.base, 2) == b"MZ"      # still mapped while reported
    assert isinstance(machine.run(budget=1_000_000), BudgetExhausted)
    assert [m.name for m in machine.modules] == ["ntoskrnl.exe", "hal.dll", "kdcom.dll"]
    assert machine.read_virtual(event.image.base, 1) == b""
    head = machine.ps_loaded_module_list
    count, link = 0, q(machine, head)
    while link != head:
        count, link = count + 1, q(machine, link)
    assert count == 3


def test_reboot_brings_back_a_fresh_boot_with_module_loads_again(machine):
    counter = machine.kernel_symbol("KiSystemLoopCount")
    assert d(machine, counter) > 0
    machine.reboot()
    events = run_until_quiet(machine)
    assert [e.image.path.rsplit("\\", 1)[1] for e in events if isinstance(e, LoadSymbols)] == \
        ["ntoskrnl.exe", "hal.dll", "kdcom.dll", "testdrv.sys"]


def test_execution_debug_register_breaks_before_the_instruction_and_lets_it_run_on(machine, testdrv_symbols):
    dispatch = testdrv_symbols(driver_base(machine))["TestDispatch"]
    machine.set_context(machine.get_context().replace(Dr1=dispatch))
    machine.set_dr7(0b1 << 2)                     # L1, RW1=00 (execute), LEN1=00
    event = run_to_event(machine, DataBreakpoint)
    assert (event.pc, event.address, event.dr6 & 0xF) == (dispatch, dispatch, 0x2)
    ticks = d(machine, testdrv_symbols(driver_base(machine))["TestTickCount"])
    assert run_to_event(machine, DataBreakpoint).pc == dispatch
    assert d(machine, testdrv_symbols(driver_base(machine))["TestTickCount"]) == ticks + 1
    machine.set_dr7(0)
    assert isinstance(machine.run(budget=2_000_000), BudgetExhausted)
