"""Machine state a KD stub serves: memory semantics, registers, kernel data structures."""

from __future__ import annotations

import struct

import pytest

from kdcon.protocol.constants import NtStatus
from kdcon.protocol.context import CONTEXT_AMD64_SIZE as CONTEXT_SIZE
from kdcon.protocol.context import Context, SpecialRegisters
from kdcon.tools.simtarget import layout
from kdcon.tools.simtarget.events import BugCheck, ExceptionEvent
from kdcon.tools.simtarget.errors import MachineStateError
from kdcon.tools.simtarget.machine import Machine

from .simhelpers import boot_testdrv, d, q, run_until_quiet


@pytest.fixture(scope="module")
def machine():
    m = boot_testdrv()
    run_until_quiet(m)
    return m


def test_read_stops_at_the_first_unmapped_byte(machine):
    end = layout.STACK_TOP
    assert len(machine.read_virtual(end - 16, 64)) == 16
    assert machine.read_virtual(end, 8) == b""
    assert machine.read_virtual(0, 4) == b""


def test_write_returns_the_writable_prefix_and_lands(machine):
    end = layout.STACK_TOP
    assert machine.write_virtual(end - 4, b"abcdefgh") == 4
    assert machine.read_virtual(end - 4, 4) == b"abcd"


def test_physical_reads_see_the_same_bytes_as_virtual_ones(machine):
    kern = machine.kern_base
    physical = machine.memory.virtual_to_physical(kern)
    assert machine.read_physical(physical, 64) == machine.read_virtual(kern, 64)
    assert machine.read_physical(layout.PHYS_POOL + 0x10, 32) == machine.read_virtual(layout.POOL_BASE + 0x10, 32)
    assert machine.read_physical(0xFFFF_0000_0000, 8) == b""


def test_search_and_query_memory(machine):
    found = machine.search_memory(machine.kern_base, 0x100000, b"KsimVirtualCPU")
    assert found is not None and machine.read_virtual(found, 14) == b"KsimVirtualCPU"
    assert machine.search_memory(machine.kern_base, 0x1000, b"\xde\xad\xbe\xef\x99") is None
    info = machine.query_memory(machine.kern_base + 0x1000)
    assert info.base == machine.kern_base and info.name == "ntoskrnl.exe"
    assert machine.query_memory(layout.BAD_ADDRESS) is None


def test_context_round_trips_through_the_1232_byte_layout(machine):
    ctx = machine.get_context()
    raw = ctx.to_bytes()
    assert len(raw) == CONTEXT_SIZE
    assert struct.unpack_from("<Q", raw, 0xF8)[0] == ctx.Rip
    assert struct.unpack_from("<Q", raw, 0x98)[0] == ctx.Rsp
    assert Context.from_bytes(raw) == ctx


def test_set_context_changes_registers_the_cpu_uses(machine):
    ctx = machine.get_context()
    machine.set_context(ctx.replace(Rax=0x1122334455667788))
    assert machine.get_context().Rax == 0x1122334455667788
    machine.set_context(ctx)


def test_special_registers_show_the_kernel_tables(machine):
    special = machine.get_special_registers()
    raw = special.to_bytes()
    assert len(raw) == 0xE0 and SpecialRegisters.from_bytes(raw) == special
    kpcr = machine.kpcr
    assert special.IdtrBase == q(machine, kpcr + layout.KPCR_IDT_BASE) and special.IdtrLimit == 0xFFF
    assert special.GdtrBase == q(machine, kpcr) and special.Cr3 == layout.CR3_VALUE
    assert special.MsrGsBase == kpcr


def test_msrs_read_and_write(machine):
    assert machine.read_msr(0xC0000101) == machine.kpcr
    assert machine.write_msr(0xC0000102, 0x1234) and machine.read_msr(0xC0000102) == 0x1234


def test_version_block_and_debugger_data_point_at_real_structures(machine):
    version = machine.read_virtual(machine.kd_version_block, 40)
    major, minor, proto, secondary, flags, machine_type = struct.unpack_from("<HHBBHH", version)
    kern_base, module_list, data_list = struct.unpack_from("<QQQ", version, 16)
    assert (major, minor, proto, secondary, flags, machine_type) == (0xF, 7601, 6, 2, 6, 0x8664)
    assert kern_base == machine.kern_base and module_list == machine.ps_loaded_module_list
    kdbg = q(machine, data_list)
    assert kdbg == machine.kd_debugger_data_block
    assert machine.read_virtual(kdbg + 0x10, 4) == b"KDBG" and d(machine, kdbg + 0x14) == 0x380
    assert q(machine, kdbg + 0x18) == machine.kern_base
    assert q(machine, kdbg + 0x48) == machine.ps_loaded_module_list
    assert q(machine, kdbg + 0x88) == machine.ki_bugcheck_data
    assert q(machine, kdbg + 0x20) == machine.kernel_symbol("RtlpBreakWithStatusInstruction")


def test_process_list_holds_the_system_process_and_its_thread(machine):
    head = q(machine, machine.kd_debugger_data_block + 0x50)
    first = q(machine, head)
    assert q(machine, first) == head            # one process
    eprocess = first - 0x188
    assert q(machine, eprocess + 0x180) == 4
    assert machine.read_virtual(eprocess + 0x2E0, 7) == b"System\0"
    thread_entry = q(machine, eprocess + 0x308)
    ethread = thread_entry - 0x420             # ETHREAD.ThreadListEntry, Windows 7 SP1 x64
    assert ethread == machine.current_thread
    assert q(machine, ethread + 0x210) == eprocess
    assert struct.unpack("<QQ", machine.read_virtual(ethread + 0x3B0, 16)) == (4, 8)  # Cid


def test_pool_pages_are_chains_of_x64_pool_headers(machine):
    tags = {}
    for page in range(layout.POOL_BASE, layout.POOL_BASE + 0x40000, 0x1000):
        offset, previous = 0, 0
        header = struct.unpack("<I", machine.read_virtual(page, 4))[0]
        if header == 0:
            continue                                   # free or a big-pool page
        while offset < 0x1000:
            ulong1, tag = struct.unpack("<II", machine.read_virtual(page + offset, 8))
            prev_size, block, pool_type = ulong1 & 0xFF, (ulong1 >> 16) & 0xFF, ulong1 >> 24
            if offset == 0 and block == 0:
                break                                   # a big-pool page, not a small-pool one
            assert prev_size == previous and block > 0
            if pool_type:
                tags[tag.to_bytes(4, "little")] = tags.get(tag.to_bytes(4, "little"), 0) + 1
            previous, offset = block, offset + block * 16
        else:
            assert offset == 0x1000
    assert b"Proc" in tags and b"Thre" in tags and b"Devi" in tags


def test_big_pool_table_records_the_drivers_large_block_with_its_tag(machine):
    table = q(machine, machine.kernel_symbol("PoolBigPageTable"))
    size = q(machine, machine.kernel_symbol("PoolBigPageTableSize"))
    entries = [struct.unpack("<QIIQ", machine.read_virtual(table + 0x18 * i, 0x18)) for i in range(size)]
    live = [(va, key, nbytes) for va, key, _type, nbytes in entries if va and not va & 1]
    assert [(key.to_bytes(4, "little"), nbytes) for _va, key, nbytes in live] == [(b"Test", 0x2345)]
    assert live[0][0] % 0x1000 == 0


def test_page_fault_at_passive_level_is_a_first_chance_exception_then_bugcheck_50():
    m = boot_testdrv()
    run_until_quiet(m)
    pc = m.get_context().Rip
    m.set_context(m.get_context().replace(Rip=layout.BAD_ADDRESS))
    event = m.run()
    assert event == ExceptionEvent(code=NtStatus.STATUS_ACCESS_VIOLATION, address=layout.BAD_ADDRESS,
                                   params=(8, layout.BAD_ADDRESS), first_chance=True)
    bugcheck = m.run()
    while not isinstance(bugcheck, BugCheck):
        bugcheck = m.run()
    assert (bugcheck.code, bugcheck.params) == (0x50, (layout.BAD_ADDRESS, 10, layout.BAD_ADDRESS, 0))
    assert pc != layout.BAD_ADDRESS


def test_calls_before_boot_are_refused_in_one_line():
    with pytest.raises(MachineStateError, match="boot"):
        Machine().run()


def test_a_call_through_a_null_pointer_is_an_access_violation_not_a_stop():
    m = boot_testdrv()
    run_until_quiet(m)
    m.set_context(m.get_context().replace(Rip=0))
    assert m.run() == ExceptionEvent(code=NtStatus.STATUS_ACCESS_VIOLATION, address=0, params=(8, 0), first_chance=True)


def _run_code(code: bytes):
    """Boot, place ``code`` in a fresh pool page and point RIP at it."""
    m = boot_testdrv()
    run_until_quiet(m)
    page = layout.POOL_BASE + layout.POOL_SIZE - 0x1000
    m.write_virtual(page, code)
    m.set_context(m.get_context().replace(Rip=page))
    return m, page


def test_nt_assert_reports_an_assertion_failure_and_continues_after_it():
    from kdcon.tools.simtarget.events import SingleStep
    m, page = _run_code(b"\xcd\x2c\x90\x90")          # int 2Ch; nop; nop
    assert m.run() == ExceptionEvent(code=NtStatus.STATUS_ASSERTION_FAILURE, address=page, params=(), first_chance=True)
    assert m.run(trace=True) == SingleStep(pc=page + 3)


def test_fastfail_in_kernel_mode_is_bugcheck_139_with_the_failure_code():
    m, page = _run_code(b"\xb9\x07\x00\x00\x00\xcd\x29")   # mov ecx, 7; int 29h
    event = m.run()
    while not isinstance(event, BugCheck):
        event = m.run()
    assert (event.code, event.params[0]) == (0x139, 7)


def test_divide_error_is_first_chance_then_kmode_exception_not_handled():
    m, page = _run_code(b"\x31\xc9\xf7\xf1")           # xor ecx, ecx; div ecx
    assert m.run() == ExceptionEvent(code=NtStatus.STATUS_INTEGER_DIVIDE_BY_ZERO, address=page + 2, params=(),
                                     first_chance=True)
    event = m.run()
    while not isinstance(event, BugCheck):
        event = m.run()
    assert (event.code, event.params[:2]) == (0x1E, (NtStatus.STATUS_INTEGER_DIVIDE_BY_ZERO, page + 2))
