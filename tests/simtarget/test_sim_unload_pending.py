"""A driver that unloads with work still pending (wdkdrivers/leftbehind: a thread
notify routine, a timer whose DPC routine is in the image, a timer that is itself in
the image): when the kernel later reaches the memory the image occupied it bug checks
DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS (0xCE) with the parameters
Microsoft documents (address referenced, access kind, the instruction, 0), at any IRQL,
and kdcon's bug check table names it. Also: every thread's KTHREAD carries its stack's
bounds (InitialStack, StackBase, StackLimit), which !thread shows."""

from __future__ import annotations

import re
import struct

import pytest

from kdcon.extensions import _bugcodes
from kdcon.tools.simtarget import drvbuild
from kdcon.tools.simtarget.events import BudgetExhausted, BugCheck, DebugPrintStop
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest
from tests.simtarget.simhelpers import run_on_from
from tests.simtarget.wdkbuild import WDK_DRIVERS, build, printed, require_driver_toolchain, run_quiet

UNLOADED_PENDING = 0xCE
EXECUTE = 8
# KTHREAD (Windows 7 SP1 x64, the simulated kernel's layout).
INITIAL_STACK, STACK_LIMIT, STACK_BASE = 0x28, 0x30, 0x278


def boot_left_behind(out, kind: int) -> tuple[Machine, int, range]:
    """The machine after leftbehind.sys (built with LEFT_BEHIND=kind) started and was
    unloaded: with the address DriverEntry printed and the range the image had."""
    require_driver_toolchain()
    image = drvbuild.build_driver([WDK_DRIVERS / "leftbehind"], out / f"left{kind}" / "leftbehind.sys",
                                  defines=[f"LEFT_BEHIND={kind}"]).image
    machine = Machine(drivers=[image])
    machine.boot()
    (line,) = printed(run_quiet(machine), "left:")
    address = int(re.search(r"left: \w+ ([0-9A-F]{16})", line).group(1), 16)
    module = machine.modules[-1]
    return machine, address, range(module.base, module.base + module.image.size_of_image)


def unload(machine: Machine) -> list:
    machine.set_request(KiSimRequest.UNLOAD)
    return run_quiet(machine)


def bugcheck(events) -> BugCheck:
    found = [e for e in events if isinstance(e, BugCheck)]
    assert found, events[-3:]
    return found[0]


def test_a_thread_notify_routine_left_registered_is_0xce_where_it_is_called(tmp_path):
    machine, routine, image = boot_left_behind(tmp_path, 1)
    assert routine in image
    events = unload(machine)
    assert printed(events, "left:") == ["left: unload"]
    assert not any(isinstance(e, BugCheck) for e in events)
    machine.io.post(IoRequest.start_process())        # its thread is reported to the routine
    stop = bugcheck(run_quiet(machine))
    assert (stop.code, stop.params) == (UNLOADED_PENDING, (routine, EXECUTE, routine, 0))


def test_a_timer_whose_dpc_routine_was_unloaded_is_0xce_at_dispatch_level_too(tmp_path):
    machine, routine, image = boot_left_behind(tmp_path, 2)
    assert routine in image
    stop = bugcheck(unload(machine))
    assert (stop.code, stop.params) == (UNLOADED_PENDING, (routine, EXECUTE, routine, 0))


def test_a_timer_in_the_unloaded_image_is_0xce_when_the_kernel_reads_it(tmp_path):
    machine, timer, image = boot_left_behind(tmp_path, 3)
    assert timer in image
    stop = bugcheck(unload(machine))
    referenced, access, instruction, reserved = stop.params
    assert stop.code == UNLOADED_PENDING
    assert timer <= referenced < timer + 0x80 and access in (0, 1) and reserved == 0
    kernel = machine.modules[0]
    assert kernel.image.name == "ntoskrnl.exe"
    assert kernel.base <= instruction < kernel.base + kernel.image.size_of_image


def test_the_bug_check_table_names_0xce_and_finds_its_address_and_access():
    code = _bugcodes.describe(UNLOADED_PENDING)
    assert code.name == "DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS"
    params = (0xFFFFF800_01081030, EXECUTE, 0xFFFFF800_01081030, 0)
    assert (params[code.memory - 1], params[code.ip - 1]) == (params[0], params[2])
    assert _bugcodes.access_kind(code, params) == "EXECUTE"
    assert _bugcodes.access_kind(code, (1, 1, 2, 0)) == "WRITE"


def q(machine: Machine, address: int) -> int:
    return struct.unpack("<Q", machine.read_virtual(address, 8))[0]


def assert_stack_bounds(machine: Machine) -> tuple[int, int]:
    thread = machine.current_thread
    base, limit = q(machine, thread + STACK_BASE), q(machine, thread + STACK_LIMIT)
    assert q(machine, thread + INITIAL_STACK) == base
    assert limit < machine.get_context().Rsp < base
    return base, limit


def test_the_system_thread_s_kthread_holds_its_stack_bounds():
    machine = Machine()
    machine.boot()
    event = machine.run(budget=2_000_000)
    assert not isinstance(event, BugCheck)
    base, limit = assert_stack_bounds(machine)
    assert base - limit >= 0x1000


def test_a_created_thread_s_kthread_holds_its_own_stack_bounds(tmp_path):
    machine = Machine(drivers=[build("systhread", tmp_path)])
    machine.boot()
    system = None
    for _ in range(200):
        event = machine.run(budget=3_000_000)
        assert not isinstance(event, (BudgetExhausted, BugCheck)), event
        if isinstance(event, DebugPrintStop) and event.text.startswith("thread: created"):
            system = assert_stack_bounds(machine)
        if isinstance(event, DebugPrintStop) and event.text.startswith("thread: A starts"):
            base, limit = assert_stack_bounds(machine)
            assert base - limit == 0x6000 and system and base != system[0]
            return
        run_on_from(machine, event)
    pytest.fail("thread A never started")
