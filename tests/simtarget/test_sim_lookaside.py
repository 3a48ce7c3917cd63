"""Lookaside lists in the simulated kernel, driven from a WDK-style driver
(wdkdrivers/lookaside) by a user program's device controls: the WDK's inline allocate
and free routines work over the kernel's SLIST routines (misses go to the pool, frees
beyond the depth go back to it, later allocations hit the list), a driver's own
allocate and free routines are used, LOOKASIDE_LIST_EX refuses contradictory flags and
flushes, and deleting a list leaves nothing in the pool.  Also: the system loop's
IOCTL_TRACKDEMO_* requests reach only the drivers written for them."""

from __future__ import annotations

import struct

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest
from tests.simtarget.simhelpers import q
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet

CASES = 40002 << 16 | 0x900 << 2
STRAYS = 40002 << 16 | 0x901 << 2
EXPECTED = [
    "lookaside: npaged depth=4 held=4 allocs=9 misses=6 frees=6 free_misses=2 aligned=1 distinct=1 size=40 tag=1",
    "lookaside: paged own allocs=6 frees_before_delete=2 irql=0",
    "lookaside: paged deleted own_frees=6",
    "lookaside: ex status=00000000 refused=c00000f3 held=4 flushed=0 allocs=6 misses=6 frees=6 free_misses=1",
]


def paged_counts(machine, tag: bytes) -> tuple[int, int]:
    table = q(machine, machine.kernel_symbol("PoolTrackTable"))
    for i in range(q(machine, machine.kernel_symbol("PoolTrackTableSize"))):
        entry = machine.read_virtual(table + 0x28 * i, 0x28)
        if entry[:4] == tag:
            return struct.unpack_from("<II", entry, 0x18)
    return 0, 0


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    machine = Machine(drivers=[build("lookaside", tmp_path_factory.mktemp("lookaside"))])
    machine.boot()
    assert printed(run_quiet(machine), "lookaside:") == ["lookaside: loaded"]
    return machine


@pytest.fixture(scope="module")
def cases(booted):
    booted.io.post(IoRequest.create(r"\\.\LookasideKsim"), IoRequest.ioctl(0, CASES), IoRequest.close(0))
    events = run_quiet(booted)
    assert not any(isinstance(e, BugCheck) for e in events)
    return printed(events, "lookaside:")


def test_each_list_counts_hits_and_misses_as_the_inline_routines_do(cases):
    assert cases == EXPECTED


def test_deleted_lists_leave_nothing_in_the_pool(booted, cases):
    assert cases
    for tag in (b"LkNp", b"LkEx"):
        allocs, frees, nbytes = tag_counts(booted, tag)
        assert allocs == frees == 6 and nbytes == 0, tag
    assert paged_counts(booted, b"LkOw") == (6, 6)


def test_the_system_loops_ioctls_reach_only_its_own_drivers(booted):
    loops = booted.kernel_symbol("KiSystemLoopCount")
    before = struct.unpack("<I", booted.read_virtual(loops, 4))[0]
    booted.set_request(KiSimRequest.STATS)
    booted.io.post(IoRequest.create(r"\\.\LookasideKsim"), IoRequest.ioctl(0, STRAYS, b"", 8),
                   IoRequest.ioctl(0, 0x222000), IoRequest.ioctl(0, STRAYS, b"", 8), IoRequest.close(0))
    run_quiet(booted)
    assert struct.unpack("<I", booted.read_virtual(loops, 4))[0] > before + 2
    first, _, second = booted.io.results[-4:-1]
    # Ticks and the STATS request went elsewhere; the user's own 0x222000 arrived.
    assert first.output == struct.pack("<II", 0, 0)
    assert second.output == struct.pack("<II", 1, 0x222000)


def test_the_driver_unloads_cleanly(booted, cases):
    assert cases
    booted.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(booted), "lookaside:") == ["lookaside: unload"]
