"""Acceptance: attach to the simulated kernel as WinDbg does and read what it reads.

Handshake, GetVersion pointing at real structures, the PsLoadedModuleList walk of
kd-protocol.md §8.3 and the module headers against the files on disk.
"""

from __future__ import annotations

import struct
import threading

import pefile
import pytest

from kdcon.protocol.constants import INITIAL_PACKET_ID, KDBG_OWNER_TAG, SYNC_PACKET_ID
from kdcon.protocol.constants import ManipulateApi as A

from .kd_sim_fixtures import (
    EXCEPTION,
    FILES,
    STATUS_BREAKPOINT,
    boot,
    exception_code,
    get_context,
)


@pytest.fixture(scope="module")
def booted():
    before = set(threading.enumerate())
    b = boot()
    yield b
    b.close()
    assert set(threading.enumerate()) <= before, "the target left threads behind"


def _q(host, address: int) -> int:
    data = host.read_virtual(address, 8)
    assert len(data) == 8, f"cannot read {address:#x}"
    return struct.unpack("<Q", data)[0]


def _unicode(host, address: int) -> str:
    length, _maximum, buffer = struct.unpack("<HHxxxxQ", host.read_virtual(address, 16))
    return host.read_virtual(buffer, length).decode("utf-16-le")


def test_boot_reports_every_module_then_breaks_in_driver_entry(booted):
    assert booted.first.packet_id == INITIAL_PACKET_ID | SYNC_PACKET_ID
    assert list(booted.loads) == ["ntoskrnl.exe", "hal.dll", "kdcom.dll", "trackdemo.sys"]
    stop = booted.initial_break
    assert stop.new_state == EXCEPTION and exception_code(stop) == STATUS_BREAKPOINT
    # BreakIfKdPresent calls the kernel's DbgBreakPoint: RIP at its int 3, the return
    # address in DriverEntry.
    assert stop.program_counter == booted.export("ntoskrnl.exe", "DbgBreakPoint")
    context = get_context(booted.host)
    assert context.Rip == stop.program_counter
    base, size = booted.loads["trackdemo.sys"]
    assert base <= _q(booted.host, context.Rsp) < base + size


def test_get_version_points_at_the_kernel_structures(booted):
    host = booted.host
    reply = host.request(A.DbgKdGetVersionApi)
    v = reply.message.u
    assert reply.return_status == 0
    assert (v.ProtocolVersion, v.KdSecondaryVersion, v.MachineType) == (6, 2, 0x8664)
    assert v.Flags & 0x6 == 0x6
    assert v.KernBase == booted.base("ntoskrnl.exe")
    assert host.read_virtual(v.KernBase, 2) == b"MZ"
    assert v.PsLoadedModuleList == booted.export("ntoskrnl.exe", "PsLoadedModuleList")
    kdbg = _q(host, v.DebuggerDataList)
    header = host.read_virtual(kdbg, 0x58)
    tag, size = struct.unpack_from("<II", header, 0x10)
    assert tag == KDBG_OWNER_TAG and size >= 0x318
    kern_base, = struct.unpack_from("<Q", header, 0x18)
    module_list, = struct.unpack_from("<Q", header, 0x48)
    assert (kern_base, module_list) == (v.KernBase, v.PsLoadedModuleList)
    assert _q(host, kdbg + 8) == v.DebuggerDataList  # the list closes on its head


def test_module_list_walk_finds_every_image_with_base_size_and_name(booted):
    host = booted.host
    head = booted.export("ntoskrnl.exe", "PsLoadedModuleList")
    found: dict[str, tuple[int, int, str]] = {}
    entry = _q(host, head)
    for _ in range(64):
        if entry == head:
            break
        raw = host.read_virtual(entry, 0x88)
        dll_base, _entry_point, size = struct.unpack_from("<QQI", raw, 0x30)
        name = _unicode(host, entry + 0x58)
        found[name.lower()] = (dll_base, size, _unicode(host, entry + 0x48))
        entry = struct.unpack_from("<Q", raw, 0)[0]
    else:
        pytest.fail("PsLoadedModuleList does not close")
    for name, path in FILES.items():
        base, size, full = found[name]
        assert (base, size) == booted.loads[name]
        assert size == pefile.PE(str(path), fast_load=True).OPTIONAL_HEADER.SizeOfImage
        assert full.lower().endswith(name)


def test_module_headers_in_memory_equal_the_files(booted):
    for name, path in FILES.items():
        pe = pefile.PE(str(path), fast_load=True)
        size = pe.OPTIONAL_HEADER.SizeOfHeaders
        on_disk = path.read_bytes()[:size]
        assert booted.host.read_virtual(booted.base(name), size) == on_disk, name


def test_restore_of_stale_handles_on_connect_fails_fast(booted):
    # WinDbg clears handles 1..32 right after attaching (§5.6); none is in use here.
    statuses = {booted.host.request(A.DbgKdRestoreBreakPointApi, dict(BreakPointHandle=h)
                                    ).return_status for h in range(1, 33)}
    assert statuses == {0xC0000001}


def test_unmapped_reads_fail_fast_and_reads_stop_at_the_first_hole(booted):
    host = booted.host
    low = host.request(A.DbgKdReadVirtualMemoryApi, dict(TargetBaseAddress=0x1000,
                                                          TransferCount=64, ActualBytesRead=0))
    assert low.return_status == 0xC0000001 and low.message.u.ActualBytesRead == 0
    base, size = booted.loads["hal.dll"]
    end = base + ((size + 0xFFF) & ~0xFFF)
    tail = host.request(A.DbgKdReadVirtualMemoryApi, dict(TargetBaseAddress=end - 16,
                                                           TransferCount=64, ActualBytesRead=0))
    assert host.read_virtual(end, 1) == b"", "images sit on 64 KB boundaries: a hole follows"
    assert tail.return_status == 0 and tail.message.u.ActualBytesRead == 16


def test_control_space_agrees_with_the_kernel_debugger_data(booted):
    host = booted.host

    def control(index: int, count: int):
        reply = host.request(A.DbgKdReadControlSpaceApi, dict(
            TargetBaseAddress=index, TransferCount=count, ActualBytesRead=0))
        assert reply.return_status == 0 and len(reply.data) == count
        return reply.data

    kpcr, prcb, thread = (struct.unpack("<Q", control(i, 8))[0] for i in (0, 1, 3))
    v = host.request(A.DbgKdGetVersionApi).message.u
    kdbg = _q(host, v.DebuggerDataList)
    offset_current_thread = struct.unpack("<H", host.read_virtual(kdbg + 0x2B4, 2))[0]
    assert _q(host, prcb + offset_current_thread) == thread != 0
    assert kpcr != 0 and prcb != 0
    special = control(2, 0xE0)
    cr3 = struct.unpack_from("<Q", special, 0x10)[0]
    assert cr3 and cr3 & 0xFFF == 0  # a page-aligned page-table root
    gdt_limit, gdt_base = struct.unpack_from("<HQ", special, 0x56)
    assert gdt_base and gdt_limit
    assert host.request(A.DbgKdReadControlSpaceApi, dict(
        TargetBaseAddress=9, TransferCount=8, ActualBytesRead=0)).return_status == 0xC0000001
