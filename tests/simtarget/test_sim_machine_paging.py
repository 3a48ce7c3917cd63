"""The machine's page tables describe exactly its mappings (checked from the inside).

Every page the CPU can reach has a present leaf naming its physical page, with W and NX
as the CPU enforces them; every present leaf is such a page; unloading a driver clears
its leaves. Walked from physical memory with the SDM's 4-level format.
"""

from __future__ import annotations

import struct

from unicorn import UC_PROT_EXEC, UC_PROT_WRITE

from kdcon.tools.simtarget.layout import CR3_VALUE, KiSimRequest

from .simhelpers import boot_testdrv, run_until_quiet

PRESENT, WRITE, LARGE, NX = 1, 2, 0x80, 1 << 63
PFN = 0x000F_FFFF_FFFF_F000


def _leaves(machine, table: int = CR3_VALUE, level: int = 4, va: int = 0):
    """(virtual page, physical page, entry) of every present 4 KB page the tables map."""
    entries = struct.unpack("<512Q", machine.read_physical(table, 0x1000))
    for index, entry in enumerate(entries):
        if not entry & PRESENT:
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
