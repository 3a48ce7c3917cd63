"""ObReferenceObjectByHandle with the exported object types (ExEventObjectType,
PsThreadType, PsProcessType) in the simulated kernel, driven from a WDK-style driver
(wdkdrivers/obtypes): an event's handle gives back the event, a thread's handle a
waitable thread, another type STATUS_OBJECT_TYPE_MISMATCH, a bad handle
STATUS_INVALID_HANDLE; every object is freed once its references are dropped."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet

EXPECTED = {
    "event": "status=0 same=1 signalled=1 mismatch=c0000024 bad=c0000008 untyped=0,1 wrong_untouched=1",
    "thread": "created=0 status=0 waited=0 mismatch=c0000024 types=1",
}


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    machine = Machine(drivers=[build("obtypes", tmp_path_factory.mktemp("obtypes"))])
    machine.boot()
    return machine, run_quiet(machine)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_case_behaves_as_documented(booted, case):
    _, events = booted
    assert printed(events, f"ob: {case} ") == [f"ob: {case} {EXPECTED[case]}"]


def test_driver_entry_ends_without_a_bug_check(booted):
    _, events = booted
    assert len(printed(events, "ob:")) == len(EXPECTED)
    assert not any(isinstance(e, BugCheck) for e in events)


def test_objects_are_freed_when_their_references_are_dropped(booted):
    machine, _ = booted
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "ob:") == ["ob: unload"]
    events = tag_counts(machine, b"Even")
    threads = tag_counts(machine, b"Thre")        # the initial system thread's object lives on
    assert events[0] == 1 and events[0] == events[1]
    assert threads[0] == 2 and threads[0] - threads[1] == 1
