"""Critical and guarded regions, fast mutexes, remove locks, work items and swprintf_s
in the simulated kernel, driven from a WDK-style driver (wdkdrivers/kelocks): a fast
mutex raises to APC_LEVEL and keeps a second thread out until released; a remove lock
makes IoReleaseRemoveLockAndWait wait for its other holder and refuses later
acquisitions; a work item queued from a DPC runs at PASSIVE_LEVEL in the worker thread;
swprintf_s formats wide and narrow arguments and refuses what does not fit."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet

EXPECTED = {
    "regions": "before=0 critical=1 guarded=1 after=0",
    "fast mutex": "inside=1 after=0 tried=1 busy=1 order=hwra contention=1",
    "guarded mutex": "guarded=1 irql=0 busy_try=0 after=0 tried=1",
    "remove lock": "first=00000000 waited_for_holder=1 late=c0000056",
    "work item": "wait=00000000 irql=0 other_thread=1 device=1 context=77",
    "swprintf_s": "n=19 text=wide=-12 narrow ff% too_small=-1 emptied=1 zero_size=-1",
}


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    machine = Machine(drivers=[build("kelocks", tmp_path_factory.mktemp("kelocks"))])
    machine.boot()
    return machine, run_quiet(machine)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_case_behaves_as_documented(booted, case):
    _, events = booted
    assert printed(events, f"locks: {case} ") == [f"locks: {case} {EXPECTED[case]}"]


def test_driver_entry_ends_without_a_bug_check(booted):
    _, events = booted
    assert len(printed(events, "locks:")) == len(EXPECTED)
    assert not any(isinstance(e, BugCheck) for e in events)


def test_the_work_item_is_freed_and_the_driver_unloads(booted):
    machine, _ = booted
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "locks:") == ["locks: unload"]
    allocs, frees, _ = tag_counts(machine, b"IoWk")
    assert (allocs, frees) == (1, 1)
