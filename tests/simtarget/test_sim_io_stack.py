"""Completion routines and device stacks in the simulated kernel, driven from a
WDK-style filter-over-function pair (wdkdrivers/iostack) by a user program's device
controls: the filter attached with IoAttachDeviceToDeviceStack gets the user's IRPs
first and passes them down with IoCallDriver; IoCompleteRequest calls its completion
routine with its own device under the InvokeOnSuccess/InvokeOnError conditions,
with PendingReturned for an IRP the function device left pending (completed later at
DISPATCH_LEVEL from a DPC); STATUS_MORE_PROCESSING_REQUIRED gives the IRP back to the
filter, which completes it again; IoSetCompletionRoutineEx frees its context whether or
not the routine runs; IRPs built with IoBuildDeviceIoControlRequest and
IoBuildSynchronousFsdRequest return their output, status block and event and are freed
by the I/O manager; IoGetAttachedDeviceReference counts a reference that
ObDereferenceObject gives back; a filter driver of its own (wdkdrivers/iofilter) opens
the device with IoGetDeviceObjectPointer, asks it a device control, releases the file
object, attaches by name with IoAttachDevice, and its routine runs last."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet

FAILS = 0xC00000A3
OK_OUT = b"function\0"
# function code -> (status, output) the user program gets
REPLIES = {
    0x900: (0, OK_OUT), 0x901: (FAILS, b""), 0x902: (0, OK_OUT), 0x903: (0, b"function+filter\0"),
    0x904: (0, OK_OUT), 0x905: (FAILS, b""), 0x906: (0, OK_OUT), 0x907: (FAILS, b""),
}


def ctl(function: int) -> int:
    return 40003 << 16 | function << 2


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build("iostack", tmp_path_factory.mktemp("iostack"))


def play(driver, *functions):
    machine = Machine(drivers=[driver])
    machine.boot()
    assert printed(run_quiet(machine), "iostack:") == ["iostack: loaded lower_is_function=1"]
    requests = [IoRequest.create(r"\\.\IoStackKsim")]
    requests += [IoRequest.ioctl(0, ctl(f), b"", 32) for f in functions]
    machine.io.post(*requests, IoRequest.close(0))
    events = run_quiet(machine)
    assert not machine.io.busy
    assert not any(isinstance(e, BugCheck) for e in events)
    return machine, machine.io.results[1:-1], printed(events, "iostack:")


@pytest.mark.parametrize("function", list(REPLIES))
def test_the_user_gets_the_status_and_output_through_the_stack(driver, function):
    _, results, _ = play(driver, function)
    assert (results[0].status, results[0].output) == REPLIES[function]


@pytest.mark.parametrize("function, status", [(0x900, "00000000"), (0x901, "c00000a3")])
def test_the_filters_routine_runs_on_success_and_on_error_with_its_own_device(driver, function, status):
    _, _, lines = play(driver, function)
    assert lines == [f"iostack: function 0x{function:x} at location 1 of 2",
                     f"iostack: filter completion 0x{function:x} status={status} pending=0 device=1 irql=0"]


def test_a_pending_irp_completed_from_a_dpc_reaches_the_routine_with_pending_returned(driver):
    _, _, lines = play(driver, 0x902)
    assert lines == ["iostack: function 0x902 at location 1 of 2",
                     "iostack: function completes the pending IRP at irql 2",
                     "iostack: filter completion 0x902 status=00000000 pending=1 device=1 irql=2"]


def test_more_processing_required_hands_the_irp_back_to_the_filter(driver):
    _, results, lines = play(driver, 0x903)
    assert lines[1] == "iostack: filter has the IRP back status=00000000 info=9 back_at_own_location=1"
    assert results[0].information == 16


@pytest.mark.parametrize("function, called", [(0x904, False), (0x905, True), (0x907, False), (0x906, False)])
def test_a_routine_runs_only_under_its_invoke_conditions(driver, function, called):
    machine, _, lines = play(driver, function)
    assert any(line.startswith("iostack: filter completion") for line in lines) is called
    # IoSetCompletionRoutineEx's context goes back to the pool either way.
    allocs, frees, _ = tag_counts(machine, b"ICmp")
    assert allocs == frees and allocs == (function in (0x904, 0x905))


def test_skipping_its_location_gives_the_filters_location_to_the_function_device(driver):
    _, _, lines = play(driver, 0x906)
    assert lines == ["iostack: function 0x906 at location 2 of 2"]


def test_irps_the_filter_builds_come_back_completed_and_freed(driver):
    machine, results, lines = play(driver, 0x910)
    assert results[0].status == 0
    assert lines[0] == "iostack: stack top_is_filter=1 attached=1 sizes=1,2 refs=1"
    assert "iostack: built ioctl status=00000000 iosb=00000000,9 out=function event=1" in lines
    assert "iostack: built pending status=00000103 iosb=00000000,9 out=function" in lines
    assert lines[-1] == "iostack: built read status=00000000 iosb=00000000,13 out=read at 0x4c refs=0"
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "iostack:") == ["iostack: unload detached=1"]
    for tag in (b"Irp ", b"IoBf", b"Mdl ", b"File"):
        allocs, frees, _ = tag_counts(machine, tag)
        assert allocs == frees, tag


def test_a_driver_of_its_own_opens_the_device_by_name_then_attaches_and_completes_last(driver, tmp_path):
    machine = Machine(drivers=[driver, build("iofilter", tmp_path)])
    machine.boot()
    assert printed(run_quiet(machine), "iofilter:") == [
        "iofilter: opened missing=c0000034 type=5 top_is_stack_top=1 refs=1 asked=00000000,function",
        "iofilter: released refs=0",
        "iofilter: attached missing=c0000034 none=1 stack=3"]
    machine.io.post(IoRequest.create(r"\\.\IoStackKsim"), IoRequest.ioctl(0, ctl(0x902), b"", 32),
                    IoRequest.close(0))
    lines = printed(run_quiet(machine))
    assert lines[-3:] == ["iostack: function completes the pending IRP at irql 2",
                          "iostack: filter completion 0x902 status=00000000 pending=1 device=1 irql=2",
                          "iofilter: completion status=00000000 pending=1 device=1 location=3 of 3"]
    assert (machine.io.results[1].status, machine.io.results[1].output) == (0, OK_OUT)
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine)) == ["iofilter: unload", "iostack: unload detached=1"]
    # IoGetDeviceObjectPointer's file object went with its last reference.
    for tag in (b"File", b"Irp ", b"IoBf"):
        allocs, frees, _ = tag_counts(machine, tag)
        assert allocs == frees, tag
