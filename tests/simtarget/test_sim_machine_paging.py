"""The machine's page tables describe exactly its mappings (checked from the inside).

Every page the CPU can reach has a present leaf naming its physical page, with W and NX
as the CPU enforces them; every present leaf is such a page, but for the self-map (PML4
slot 0x1ED names the PML4, as on Windows x64, so the debugger reads the tables at
0xFFFFF680'00000000); unloading a driver clears its leaves. Walked from physical memory
with the SDM's 4-level format.
"""

from __future__ import annotations

import struct

from unicorn import UC_PROT_EXEC, UC_PROT_WRITE

from kdcon.tools.simtarget.layout import CR3_VALUE, KiSimRequest

from .simhelpers import boot_testdrv, run_until_quiet

PRESENT, WRITE, LARGE, NX = 1, 2, 0x80, 1 << 63
PFN = 0x000F_FFFF_FFFF_F000
SELF_MAP = 0x1ED


def _leaves(machine, table: int = CR3_VALUE, level: int = 4, va: int = 0):
    """(virtual page, physical page, entry) of every present 4 KB page the tables map."""
    entries = struct.unpack("<512Q", machine.read_physical(table, 0x1000))
    for index, entry in enumerate(entries):
        if not entry & PRESENT or level == 4 and index == SELF_MAP:
            continue
        address = va | index << (12 + 9 * (level - 1))
        if level == 4 and index >= 256:
            address |= 0xFFFF_0000_0000_0000          # canonical upper half
        if level == 1 or (level == 2 and entry & LARGE):
            count = 1 if level == 1 else 512
            base = entry & PFN & ~((0x1000 << (9 * (level - 1))) - 1)
            for i in range(count):
                yield address + i * 0x1000, base + i * 0x1000, entry
        else:
            yield from _leaves(machine, entry & PFN, level - 1, address)


def _cpu_pages(machine) -> dict[int, int]:
    """virtual page -> unicorn protection of every mapped page."""
    pages = {}
    for begin, end, prot in machine.memory._uc.mem_regions():
        for page in range(begin, end + 1, 0x1000):
            pages[page] = prot
    return pages


def test_the_tables_describe_every_mapping_and_nothing_else():
    machine = boot_testdrv()
    run_until_quiet(machine)
    cpu = _cpu_pages(machine)
    leaves = {va: (pa, entry) for va, pa, entry in _leaves(machine)}
    assert set(leaves) == set(cpu)
    for va, (pa, entry) in leaves.items():
        assert pa == machine.memory.virtual_to_physical(va)
        assert bool(entry & WRITE) == bool(cpu[va] & UC_PROT_WRITE), hex(va)
        assert (not entry & NX) == bool(cpu[va] & UC_PROT_EXEC), hex(va)
    sample = sorted(leaves)[::97]
    for va in sample:
        assert machine.read_physical(leaves[va][0], 0x1000) == machine.read_virtual(va, 0x1000), hex(va)


def test_the_self_map_shows_the_tables_to_the_debugger_only():
    machine = boot_testdrv()
    run_until_quiet(machine)
    pml4 = struct.unpack("<512Q", machine.read_physical(CR3_VALUE, 0x1000))
    assert pml4[SELF_MAP] & PFN == CR3_VALUE
    assert pml4[SELF_MAP] & (PRESENT | WRITE | NX) == PRESENT | WRITE | NX
    # The PML4 at 0xFFFFF6FB'7DBED000, and the PTE of the kernel's first page where
    # Windows x64 puts it: PTE_BASE + (va >> 9 & 0x7FFFFFFFF8).
    assert machine.read_virtual(0xFFFFF6FB7DBED000, 0x1000) == machine.read_physical(CR3_VALUE, 0x1000)
    kernel = 0xFFFFF80001000000
    pte = 0xFFFFF68000000000 + (kernel >> 9 & 0x7FFFFFFFF8)
    pa, entry = machine.memory.page_tables.translate(kernel)
    assert int.from_bytes(machine.read_virtual(pte, 8), "little") == entry and entry & PFN == pa
    # The CPU has no such mapping, and the debugger cannot edit the tables through it.
    assert not machine.memory.is_mapped(pte)
    assert machine.write_virtual(pte, bytes(8)) == 0
    assert machine.memory.page_tables.translate(kernel) == (pa, entry)


def test_unloading_a_driver_clears_its_leaves():
    machine = boot_testdrv()
    run_until_quiet(machine)
    driver = next(m for m in machine.modules if m.name == "testdrv.sys")
    assert machine.memory.page_tables.translate(driver.base) is not None
    machine.set_request(KiSimRequest.UNLOAD)
    run_until_quiet(machine)
    assert machine.read_virtual(driver.base, 1) == b""
    for page in range(driver.base, driver.base + driver.size, 0x1000):
        assert machine.memory.page_tables.translate(page) is None
    assert machine.read_physical(0x1000000, 2) == b"MZ"      # the kernel's RAM stays


def test_a_guest_write_to_read_only_code_is_an_access_violation():
    from kdcon.protocol.constants import NtStatus
    from kdcon.tools.simtarget.events import ExceptionEvent
    machine = boot_testdrv()
    run_until_quiet(machine)
    target = machine.kernel_symbol("KeBugCheckEx")
    code = 0xFFFFFA80_00000000 + 0xFFF000               # executable pool (Windows 7)
    machine.write_virtual(code, b"\x48\x89\x00")         # mov [rax], rax
    context = machine.get_context()
    machine.set_context(context.replace(Rip=code, Rax=target))
    event = machine.run(budget=10)
    assert isinstance(event, ExceptionEvent) and event.code == NtStatus.STATUS_ACCESS_VIOLATION
    assert event.params == (1, target) and event.address == code
