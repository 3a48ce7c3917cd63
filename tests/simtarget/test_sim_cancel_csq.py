"""The cancel spin lock, cancel routines and cancel-safe queues in the simulated kernel,
driven from a WDK-style driver (wdkdrivers/cancelq): IoCancelIrp calls the IRP's cancel
routine once at DISPATCH_LEVEL with the cancel spin lock held and Irp->Cancel set, and
returns FALSE with no routine; IRPs queued with IoCsqInsertIrp are marked pending, a
cancelled one goes to CsqCompleteCanceledIrp and the others come back in order from
IoCsqRemoveNextIrp; IoCsqRemoveIrp finds an IRP by its context once; IoCsqInsertIrpEx
returns the driver's refusal and completes an IRP cancelled before it was queued."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet

EXPECTED = {
    "spin lock": "inside=2 old=0 after=0",
    "routine": "previous=0 first=1 second=0 calls=1 seen=21 irql=0 unset=1 later=0 flag=1",
    "csq queued": "=103,103,103 pending_flag=1 routine_set=1",
    "csq cancel": "=1 completed=1 status=c0000120 same=1 next=1,1 empty=1 routine_cleared=1 late=0",
    "context": "known=1 taken=1 again=1 after_cancel=1 completed=1 empty=1",
    "insert ex": "rejected=80000011 late_completed=1 cancelled_insert=0 completed=1 accepted=0 taken=1",
}


def line(case: str) -> str:
    sep = "" if EXPECTED[case].startswith("=") else " "
    return f"cancel: {case}{sep}{EXPECTED[case]}"


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    machine = Machine(drivers=[build("cancelq", tmp_path_factory.mktemp("cancelq"))])
    machine.boot()
    return machine, run_quiet(machine)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_case_behaves_as_documented(booted, case):
    _, events = booted
    sep = "" if EXPECTED[case].startswith("=") else " "
    assert printed(events, f"cancel: {case}{sep}") == [line(case)]


def test_driver_entry_ends_without_a_bug_check(booted):
    _, events = booted
    assert len(printed(events, "cancel:")) == len(EXPECTED)
    assert not any(isinstance(e, BugCheck) for e in events)


def test_every_irp_is_freed_and_the_driver_unloads(booted):
    machine, _ = booted
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "cancel:") == ["cancel: unload"]
    allocs, frees, _ = tag_counts(machine, b"Irp ")
    assert allocs == frees
