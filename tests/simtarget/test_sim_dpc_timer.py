"""DPCs and kernel timers in the simulated kernel, driven from a WDK-style driver
(wdkdrivers/dpctimer): a DPC queued below DISPATCH_LEVEL runs at once, one queued at
DISPATCH_LEVEL when IRQL drops, at DISPATCH_LEVEL with its arguments; timers expire on
the simulated clock, signal their waiters and queue their DPCs; a cancelled timer never
fires; a periodic timer keeps firing from the clock after DriverEntry returned."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.wdkbuild import build, printed, run_quiet

DRIVER_ENTRY = [
    "dpc: passive queued=1 ran=1 irql=2 args=11,22",
    "dpc: dispatch first=1 second=0 removed=1 again=0 reinserted=1 ran=0/1 args=5,6",
    "dpc: timer state=0 set=0 reset=1 wait=00000000 waited10ms=1 under50ms=1 signalled=1 dpc=1 irql=2",
    "dpc: notification stays signalled wait=00000000",
    "dpc: cancel first=1 second=0 wait=00000102 signalled=0 dpc=0",
    "dpc: synchronization wait=00000000 state=0 again=00000102",
    "dpc: absolute wait=00000000",
    "dpc: DriverEntry done periodic=0",
]


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    machine = Machine(drivers=[build("dpctimer", tmp_path_factory.mktemp("dpctimer"))])
    machine.boot()
    return machine, run_quiet(machine)


def test_dpcs_and_timers_behave_as_documented_in_driver_entry(booted):
    _, events = booted
    assert printed(events, "dpc:")[:len(DRIVER_ENTRY)] == DRIVER_ENTRY
    assert not any(isinstance(e, BugCheck) for e in events)


def test_a_periodic_timer_fires_from_the_clock_at_dispatch_level_until_its_dpc_cancels_it(booted):
    _, events = booted
    assert printed(events, "dpc:")[len(DRIVER_ENTRY):] == [
        "dpc: periodic 1 irql=2 context=1",
        "dpc: periodic 2 irql=2 context=1",
        "dpc: periodic 3 irql=2 context=1",
        "dpc: cancelled from its dpc 1",
    ]


def test_the_cancelled_periodic_timer_stays_quiet_through_unload(booted):
    machine, _ = booted
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "dpc:") == ["dpc: unload periodic=3 still set=0"]
