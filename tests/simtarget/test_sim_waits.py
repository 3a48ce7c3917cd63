"""Events, semaphores, mutexes and waits with timeouts in the simulated kernel, driven
from a WDK-style driver (wdkdrivers/kewait): zero, relative and infinite timeouts on the
simulated clock, waits satisfied by a timer's DPC, what satisfying a wait does to each
object, the documented exceptions of KeReleaseSemaphore and KeReleaseMutex,
KeWaitForMultipleObjects with WaitAny and WaitAll, and delays that let the clock run."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BugCheck, ExceptionEvent
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.wdkbuild import build, printed, run_quiet

EXPECTED = {
    "notification": "zero=00000102 timed=00000102 waited2ms=1 by_dpc=00000000 dpc=1 stays=00000000 previous=1 "
                    "reset=1 state=0",
    "synchronization": "first=00000000 again=00000102 cleared=00000102 state=0",
    "semaphore": "empty=00000102 released=0,1 over_limit=c0000047 taken=00000000 count=1",
    "mutex": "first=00000000 recursive=00000000 held=-1 released=-1,0 free=1 not_owned=c0000046",
    "multiple any": "any=00000001 all_missing=00000102 kept=1",
    "multiple all": "all=00000000 event=0 semaphore=0 any_by_dpc=00000001",
    "delay": "waited4ms=1 dpc_ran=1 event=1",
}


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    machine = Machine(drivers=[build("kewait", tmp_path_factory.mktemp("kewait"))])
    machine.boot()
    return machine, run_quiet(machine)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_case_behaves_as_documented(booted, case):
    _, events = booted
    lines = printed(events, f"wait: {case.split()[0]} ")
    if case.startswith("multiple"):
        lines = [line for line in lines if line.startswith(f"wait: multiple {case.split()[1]}=")]
    assert lines == [f"wait: {case.split()[0]} {EXPECTED[case]}"]


def test_driver_entry_finishes_without_a_bug_check(booted):
    _, events = booted
    assert printed(events, "wait:")[-1] == "wait: done"
    assert not any(isinstance(e, BugCheck) for e in events)


def test_the_release_errors_are_raised_exceptions_the_debugger_sees_first(booted):
    _, events = booted
    codes = [e.code for e in events if isinstance(e, ExceptionEvent)]
    assert 0xC0000047 in codes and 0xC0000046 in codes


def test_unload_finds_the_one_shot_timer_expired(booted):
    machine, _ = booted
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "wait:") == ["wait: unload timer set=0"]
