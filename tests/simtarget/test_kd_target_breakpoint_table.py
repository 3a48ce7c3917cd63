"""The target's breakpoint table over KD follows kd64's rules (docs/simulated-target.md §2).

Handles are index + 1 in a 32-entry table; a second breakpoint at one address is refused
with STATUS_UNSUCCESSFUL; an unreadable address is deferred, not refused; RestoreBreakPoint
of a handle that names no entry fails; a restored entry is free again.
"""

from __future__ import annotations

import pytest

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.constants import NtStatus
from kdcon.tools.simtarget.machine import Machine

from .kd_sim_fixtures import BAD_ADDRESS, FILES, STATUS_BREAKPOINT, boot, exception_code, pdb_rva
from .simhelpers import TESTDRV

UNSUCCESSFUL = NtStatus.STATUS_UNSUCCESSFUL


@pytest.fixture
def booted():
    b = boot()
    yield b
    b.close()


def _write(host, address: int, handle: int = 0):
    reply = host.request(A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=address, BreakPointHandle=handle))
    return reply.return_status, reply.message.u.BreakPointHandle


def _restore(host, handle: int) -> int:
    return host.request(A.DbgKdRestoreBreakPointApi, dict(BreakPointHandle=handle)).return_status


def _kernel_code(booted, n: int) -> list[int]:
    start = booted.export("ntoskrnl.exe", "KeBugCheckEx")
    return [start + i for i in range(n)]


def test_a_second_breakpoint_at_the_same_address_is_unsuccessful_and_the_first_stays(booted):
    host = booted.host
    dispatch = booted.base("trackdemo.sys") + pdb_rva(FILES["trackdemo.sys"].with_suffix(".pdb"),
                                                      "TrackDemoDispatch")
    status, first = _write(host, dispatch)
    assert status == 0 and first == 1
    assert _write(host, dispatch, handle=9) == (UNSUCCESSFUL, 0)
    host.continue2()
    stop = host.next_stop()
    assert exception_code(stop) == STATUS_BREAKPOINT and stop.program_counter == dispatch
    assert _restore(host, first) == 0
    assert _write(host, dispatch) == (0, first)


def test_handles_are_index_plus_one_and_the_table_holds_32(booted):
    host = booted.host
    addresses = _kernel_code(booted, 33)
    assert [_write(host, a) for a in addresses[:32]] == [(0, h) for h in range(1, 33)]
    assert _write(host, addresses[32]) == (UNSUCCESSFUL, 0)
    assert _restore(host, 5) == 0
    assert _write(host, addresses[32]) == (0, 5)      # the lowest free entry
    assert _write(host, addresses[4]) == (UNSUCCESSFUL, 0)
    for handle in range(1, 33):
        assert _restore(host, handle) == 0


def test_restore_of_a_handle_that_names_no_entry_fails(booted):
    host = booted.host
    for handle in (0, 7, 33, 0xFFFFFFFF):
        assert _restore(host, handle) == UNSUCCESSFUL
    address = _kernel_code(booted, 1)[0]
    before = host.read_virtual(address, 4)
    status, handle = _write(host, address)
    assert status == 0
    assert _restore(host, handle) == 0
    assert _restore(host, handle) == UNSUCCESSFUL
    assert host.read_virtual(address, 4) == before


def test_an_unmapped_address_gets_a_deferred_breakpoint(booted):
    host = booted.host
    assert host.read_virtual(BAD_ADDRESS, 1) == b""
    status, handle = _write(host, BAD_ADDRESS)
    assert status == 0 and handle == 1
    assert _write(host, BAD_ADDRESS) == (UNSUCCESSFUL, 0)
    assert _write(host, _kernel_code(booted, 1)[0]) == (0, 2)    # it holds its entry
    assert _restore(host, handle) == 0
    assert _restore(host, handle) == UNSUCCESSFUL


def test_a_deferred_breakpoint_is_written_when_its_page_is_mapped():
    machine = Machine(drivers=[TESTDRV])
    machine.boot()
    page = 0xFFFFF880_00200000
    handle = machine.write_breakpoint(page + 0x10)
    assert handle == 1 and machine.read_virtual(page, 1) == b""
    machine.memory.map(page, 0x1000, 0x7F000000, "late")
    raw = machine.memory._uc.mem_read(page + 0x10, 1)
    assert raw == b"\xcc" and machine.read_virtual(page + 0x10, 1) == b"\0"
    assert machine.restore_breakpoint(handle)
    assert machine.memory._uc.mem_read(page + 0x10, 1) == b"\0"
