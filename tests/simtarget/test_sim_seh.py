"""Structured exception handling in the simulated kernel, driven from a WDK-style driver
(wdkdrivers/sehtest): CPU faults and raised exceptions reach __except handlers through
.pdata, __finally runs during the unwind, ProbeForRead/ProbeForWrite raise, and the
debugger is told first chance before any handler runs."""

from __future__ import annotations

import pytest

from kdcon.protocol.constants import NtStatus
from kdcon.tools.simtarget.events import BugCheck, DebugPrintStop, ExceptionEvent, UnloadSymbols
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.wdkbuild import build, printed, run_quiet

EXPECTED = [
    "seh: null c0000005",
    "seh: deep c000009a keep=6666 order=0",
    "seh: finally axfh",
    "seh: leave 11",
    "seh: divide c0000094",
    "seh: nested c000000d inner=1",
    "seh: continue 1",
    "seh: probe kernel=c0000005 misaligned=80000002 end=c0000005 empty=00000000",
    "seh: done",
]


@pytest.fixture(scope="module")
def sehtest(tmp_path_factory):
    return build("sehtest", tmp_path_factory.mktemp("sehtest"))


@pytest.fixture(scope="module")
def boot_events(sehtest):
    machine = Machine(drivers=[sehtest])
    machine.boot()
    return machine, run_quiet(machine)


def test_every_case_reaches_its_handler_and_the_driver_loads(boot_events):
    _, events = boot_events
    assert printed(events, "seh:") == EXPECTED
    assert not any(isinstance(e, BugCheck) for e in events)


def test_a_cpu_fault_is_reported_first_chance_before_the_handler_runs(boot_events):
    _, events = boot_events
    texts = [e for e in events if isinstance(e, (ExceptionEvent, DebugPrintStop))]
    null_line = next(i for i, e in enumerate(texts) if isinstance(e, DebugPrintStop) and "seh: null" in e.text)
    fault = texts[null_line - 1]
    assert isinstance(fault, ExceptionEvent)
    assert (fault.code, fault.params, fault.first_chance) == (NtStatus.STATUS_ACCESS_VIOLATION, (0, 0), True)


def test_raised_exceptions_are_reported_first_chance_with_their_status(boot_events):
    _, events = boot_events
    codes = [e.code for e in events if isinstance(e, ExceptionEvent)]
    # ExRaiseStatus in the deep, finally and nested cases, the divide fault, the
    # continuable RtlRaiseException, and the four probes that raise.
    assert codes == [0xC0000005, 0xC000009A, 0xC0000022, 0xC0000094, 0xC000000D, 0x20000001,
                     0xC0000005, 0x80000002, 0xC0000005]


def test_the_driver_unloads_after_its_exceptions(boot_events):
    machine, _ = boot_events
    machine.set_request(KiSimRequest.UNLOAD)
    events = run_quiet(machine)
    assert printed(events, "seh:") == ["seh: unload"]
    assert any(isinstance(e, UnloadSymbols) and e.image.path.endswith("sehtest.sys") for e in events)


def test_an_unhandled_fault_in_a_driver_still_bug_checks(sehtest):
    machine = Machine(drivers=[sehtest])
    machine.boot()
    run_quiet(machine)
    machine.set_context(machine.get_context().replace(Rip=0x1000))
    events = run_quiet(machine)
    assert isinstance(events[0], ExceptionEvent) and events[0].address == 0x1000
    assert isinstance(events[-1], BugCheck)
    assert (events[-1].code, events[-1].params[0]) == (0x1E, NtStatus.STATUS_ACCESS_VIOLATION)
