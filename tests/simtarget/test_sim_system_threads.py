"""System threads and the scheduler of the simulated kernel, driven from a WDK-style
driver (wdkdrivers/systhread): PsCreateSystemThread runs its start routine at
PASSIVE_LEVEL in a thread of its own; threads that delay or wait let the others run;
an event set by DriverEntry wakes a blocked thread; thread objects are signalled when
the thread ends (by returning or by PsTerminateSystemThread, which never returns to a
thread it ends and refuses a thread it did not create)."""

from __future__ import annotations

import re

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    machine = Machine(drivers=[build("systhread", tmp_path_factory.mktemp("systhread"))])
    machine.boot()
    return machine, run_quiet(machine)


def lines(events, what):
    return [line for line in printed(events, "thread:") if line.startswith(f"thread: {what}")]


def test_a_created_thread_runs_its_start_routine_at_passive_level_with_its_own_id(booted):
    _, events = booted
    assert lines(events, "created") == ["thread: created 00000000 process=4 thread_id_differs=1"]
    assert lines(events, "A starts") == ["thread: A starts irql=0 own_id=1"]
    assert lines(events, "B starts") == ["thread: B starts irql=0 own_id=1"]


def test_threads_that_delay_let_each_other_run_and_waiting_on_both_ends_when_both_return(booted):
    _, events = booted
    (line,) = lines(events, "steppers done")
    status, order = re.fullmatch(r"thread: steppers done (\w+) order=(\w+)", line).groups()
    assert status == "00000000"
    assert sorted(order) == list("AAABBB")
    assert order[:2] == "AB"            # A's first delay gave B its first turn


def test_a_thread_blocked_on_an_event_wakes_when_it_is_set_and_terminated_threads_signal(booted):
    _, events = booted
    assert lines(events, "waiter woke") == ["thread: waiter woke 00000000 after 6 steps"]
    assert lines(events, "waiter early") == [
        "thread: waiter early=00000102 done=00000000 quitter=00000000 self_terminate=c000000d"]
    assert lines(events, "quitter still running") == []
    assert not any(isinstance(e, BugCheck) for e in events)


def test_the_driver_unloads_after_its_threads_ended(booted):
    machine, _ = booted
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "thread:") == ["thread: unload"]


def test_each_ended_thread_gave_back_its_stack_and_object(booted):
    machine, _ = booted
    stacks = tag_counts(machine, b"KtSk")        # 'kStK' as the pool stores it
    threads = tag_counts(machine, b"Thre")       # 'erhT': the system thread's and the four made
    assert stacks[:2] == (4, 4)
    assert threads[0] - threads[1] == 1
