"""KdHost: each typed request against the simulated target, over real bytes."""

from __future__ import annotations

import struct

import pytest

from kdcon.protocol import Role
from kdcon.protocol.context import CONTEXT_AMD64, CONTEXT_AMD64_SIZE
from kdcon.protocol.events import StateChange
from kdcon.protocol.host import KdHost, TargetError
from kdcon.protocol.link import KdLink
from kdcon.tools.simtarget.loopback import SimTarget

LOAD_SYMBOLS = 0x3031


@pytest.fixture(scope="module")
def halted():
    """A host attached to a booted target halted at its first exception stop."""
    sim = SimTarget(seed=0)
    link = KdLink(sim.connect(), Role.HOST)
    host = KdHost(link, timeout=5.0)
    loads = {}
    try:
        while True:
            stop = link.wait_for(StateChange, 20.0)
            if stop.new_state != LOAD_SYMBOLS:
                break
            name = stop.data.rstrip(b"\0").decode().rsplit("\\", 1)[-1]
            loads[name] = stop.message.u.BaseOfDll
            host.continue2()
        yield host, stop, loads
    finally:
        link.close()
        sim.close()


def test_version_names_the_kernel_and_its_module_list(halted):
    host, _, loads = halted
    version = host.get_version()
    assert version.KernBase == loads["ntoskrnl.exe"]
    assert version.PsLoadedModuleList > version.KernBase
    assert version.MachineType == 0x8664


def test_read_spans_several_packets_and_matches_smaller_reads(halted):
    host, _, loads = halted
    base = loads["ntoskrnl.exe"]
    before = host.round_trips
    whole = host.read_virtual(base, 10000)
    assert host.round_trips - before == 3
    assert whole[:2] == b"MZ"
    assert whole[5000:5100] == host.read_virtual(base + 5000, 100)


def test_read_of_unmapped_memory_is_empty(halted):
    host, _, _ = halted
    assert host.read_virtual(0x10, 16) == b""


def test_write_then_read_back(halted):
    host, stop, _ = halted
    rsp = struct.unpack_from("<Q", host.get_context_ex(0x98, 8))[0]
    scratch = rsp - 0x200
    old = host.read_virtual(scratch, 8)
    assert host.write_virtual(scratch, b"kdconxyz") == 8
    assert host.read_virtual(scratch, 8) == b"kdconxyz"
    host.write_virtual(scratch, old)


def test_context_and_its_window_agree(halted):
    host, stop, _ = halted
    whole = host.get_context()
    assert len(whole) == CONTEXT_AMD64_SIZE
    assert CONTEXT_AMD64.parse(whole).Rip == stop.program_counter
    assert host.get_context_ex(0x78, 0x88) == whole[0x78:0x100]


def test_breakpoint_handles_round_trip(halted):
    host, stop, _ = halted
    handle = host.write_breakpoint(stop.program_counter + 0x10)
    assert handle >= 1
    assert host.restore_breakpoint(handle)
    assert not host.restore_breakpoint(handle)


def test_a_second_breakpoint_at_one_address_is_refused(halted):
    host, stop, _ = halted
    address = stop.program_counter + 0x20
    handle = host.write_breakpoint(address)
    try:
        with pytest.raises(TargetError, match=f"DbgKdWriteBreakPointApi at {address:#x} failed"):
            host.write_breakpoint(address)
    finally:
        assert host.restore_breakpoint(handle)


def test_special_registers_carry_cr3(halted):
    host, _, _ = halted
    special = host.read_special_registers()
    assert len(special) == 0xE0
    assert struct.unpack_from("<Q", special, 0x10)[0] != 0   # Cr3


def test_search_finds_the_dos_header(halted):
    host, _, loads = halted
    base = loads["ntoskrnl.exe"]
    assert host.search_memory(base, 0x1000, b"This program") is not None
    assert host.search_memory(base, 0x40, b"no such bytes here") is None
