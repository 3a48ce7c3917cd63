"""Where a raised exception stops (wdkdrivers/sehtest's RtlRaiseException of 0x20000001):
the Exception state change shows the raise site in the driver, the return address of its
call to RtlRaiseException, with the registers RtlRaiseException captured for its caller,
as x64 Windows reports it; what the debugger changes there goes into the context the
dispatch runs with, and the kernel's own registers come back when the machine runs on."""

from __future__ import annotations

import struct

import pytest

from kdcon.protocol.context import CONTEXT_AMD64_SIZE, Context
from kdcon.tools.simtarget.events import BudgetExhausted, ExceptionEvent, LoadSymbols, StopEvent
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.simhelpers import run_on_from
from tests.simtarget.wdkbuild import build, printed, run_quiet

RAISED = 0x20000001


@pytest.fixture(scope="module")
def sehtest(tmp_path_factory):
    return build("sehtest", tmp_path_factory.mktemp("sehtest"))


def run_to_raise(machine: Machine) -> tuple[ExceptionEvent, LoadSymbols]:
    loaded = None
    for _ in range(200):
        event: StopEvent = machine.run(budget=3_000_000)
        assert not isinstance(event, BudgetExhausted), "the driver never raised 0x20000001"
        if isinstance(event, LoadSymbols) and event.image.path.endswith("sehtest.sys"):
            loaded = event
        if isinstance(event, ExceptionEvent) and event.code == RAISED:
            assert loaded is not None
            return event, loaded
        run_on_from(machine, event)
    raise AssertionError("too many stops before the raise")


@pytest.fixture
def at_raise(sehtest):
    machine = Machine(drivers=[sehtest])
    machine.boot()
    event, loaded = run_to_raise(machine)
    return machine, event, loaded


def test_the_stop_is_at_the_raise_site_in_the_driver_not_in_the_kernel(at_raise):
    machine, event, loaded = at_raise
    ctx = machine.get_context()
    assert event.address == machine.pc == ctx.Rip
    assert loaded.image.base <= ctx.Rip < loaded.image.base + loaded.image.size


def test_the_registers_are_the_callers_after_its_call_returned(at_raise):
    machine, _, _ = at_raise
    ctx = machine.get_context()
    # The call pushed its return address just below the caller's RSP.
    assert struct.unpack("<Q", machine.read_virtual(ctx.Rsp - 8, 8))[0] == ctx.Rip


def test_a_register_changed_at_the_stop_goes_into_the_dispatched_context(at_raise):
    machine, _, _ = at_raise
    shown = machine.get_context()
    machine.set_context(shown.replace(R15=0x1234567890ABCDEF))
    machine.run(trace=True)
    own = machine.get_context()
    # The kernel runs on in its own code; the service's rdx names the captured CONTEXT.
    assert own.Rip != shown.Rip and own.Rsp < shown.Rsp
    captured = Context.from_bytes(machine.read_virtual(own.Rdx, CONTEXT_AMD64_SIZE))
    assert (captured.Rip, captured.Rsp, captured.R15) == (shown.Rip, shown.Rsp, 0x1234567890ABCDEF)


def test_running_on_from_the_raise_site_reaches_the_drivers_handler(at_raise):
    machine, _, _ = at_raise
    events = run_quiet(machine)
    assert printed(events, "seh: continue") == ["seh: continue 1"]
