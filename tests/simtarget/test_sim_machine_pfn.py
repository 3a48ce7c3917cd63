"""The kernel's PFN database and DbgPrint buffer, read from the machine as a debugger would.

Every page a present leaf at CR3 maps is an active MMPFN whose PteAddress is that leaf's
address in Windows 7's self-map and whose PteFrame is the table holding it; every page
table page is one too; the page lists hold exactly the pages whose entries say they are
on them; an unloaded driver's pages go to the free list and their RAM stays; the
DbgPrint buffer holds what the kernel printed, wrapping with a rollover count.
The layouts are read from the kernel's PDB, not written here.
"""

from __future__ import annotations

import struct

import pytest

from kdcon.symbols.pdb import open_pdb
from kdcon.tools.simtarget.events import DebugPrintStop
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.layout import CR3_VALUE, KiSimRequest

from .simhelpers import boot_testdrv, d, q, run_until_quiet

PRESENT, LARGE = 1, 0x80
FRAME = 0x000F_FFFF_FFFF_F000
PTE_BASE = 0xFFFFF680_00000000


@pytest.fixture(scope="module")
def types():
    return open_pdb(IMAGES_DIR / "ntoskrnl.pdb").types


def _offset(types, type_name: str, path: str) -> tuple[int, int | None, int | None]:
    """(byte offset, bit position, bit width) of a field path, from the PDB."""
    info, offset, bit, width = types.find(type_name), 0, None, None
    for part in path.split("."):
        field = next(f for f in info.fields if f.name == part)
        offset += field.offset
        bit, width = field.bit_position, field.bit_width
        info = field.type
    return offset, bit, width


def _self_map(va: int, level: int) -> int:
    """Where Windows 7 x64 sees the level-``level`` entry for ``va`` (the SDM's indexes)."""
    base = PTE_BASE
    for _ in range(level - 1):
        base = PTE_BASE + ((base >> 9) & 0x7F_FFFF_FFF8)
    index = (va & 0xFFFF_FFFF_FFFF) >> (12 + 9 * (level - 1))
    return base + index * 8


def _tables(machine, table=CR3_VALUE, level=4, va=0, parent=None, entry_at=None):
    """(table page, level, va it starts, parent table, its own entry's va) for every table,
    and (physical page, table, entry's self-map address) for every mapped page."""
    entries = struct.unpack("<512Q", machine.read_physical(table, 0x1000))
    yield ("table", table, parent, entry_at, sum(1 for e in entries if e & PRESENT))
    for index, entry in enumerate(entries):
        if not entry & PRESENT:
            continue
        address = va | index << (12 + 9 * (level - 1))
        if address & (1 << 47):
            address |= 0xFFFF_0000_0000_0000
        if level == 1:
            yield ("page", entry & FRAME, table, _self_map(address, 1), 0)
        elif level == 2 and entry & LARGE:
            for i in range(512):
                yield ("page", (entry & FRAME & ~0x1FFFFF) + i * 0x1000, table,
                       _self_map(address, 2), 0)
        else:
            yield from _tables(machine, entry & FRAME, level - 1, address, table,
                               _self_map(address, level))


def _merged(runs) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for run in sorted(runs, key=lambda r: r.base):
        base, count = run.base // 0x1000, run.size // 0x1000
        if merged and sum(merged[-1]) == base:
            merged[-1] = (merged[-1][0], merged[-1][1] + count)
        else:
            merged.append((base, count))
    return merged


class Pfn:
    def __init__(self, machine, types) -> None:
        self.machine = machine
        kdbg = machine.kernel_symbol("KdDebuggerDataBlock")
        self.database = q(machine, q(machine, kdbg + 0xC0))
        self.size = types.find("_MMPFN").size
        self.fields = {name: _offset(types, "_MMPFN", name) for name in (
            "u1.Flink", "u2.Blink", "PteAddress", "u3.e1.PageLocation", "u4.PteFrame",
            "UsedPageTableEntries")}
        block = q(machine, q(machine, kdbg + 0x270))
        run_at, _, _ = _offset(types, "_PHYSICAL_MEMORY_DESCRIPTOR", "Run")
        self.runs = [(q(machine, block + run_at + 16 * i), q(machine, block + run_at + 16 * i + 8))
                     for i in range(d(machine, block))]

    def field(self, page: int, name: str) -> int:
        offset, bit, width = self.fields[name]
        raw = q(self.machine, self.database + page * self.size + offset)
        return (raw >> bit) & ((1 << width) - 1) if width else raw

    def pages(self):
        for base, count in self.runs:
            yield from range(base, base + count)


def test_every_mapped_page_and_table_is_active_and_names_its_pte(types):
    machine = boot_testdrv()
    run_until_quiet(machine)
    pfn = Pfn(machine, types)
    walked = list(_tables(machine))
    assert pfn.runs == _merged(machine.memory.physical.runs)
    for kind, page_address, table, entry_at, used in walked:
        page = page_address // 0x1000
        assert pfn.field(page, "u3.e1.PageLocation") == 6, hex(page_address)
        if table is not None:
            assert pfn.field(page, "u4.PteFrame") == table // 0x1000, hex(page_address)
            assert pfn.field(page, "PteAddress") == entry_at, hex(page_address)
        if kind == "table":
            assert pfn.field(page, "UsedPageTableEntries") == used
    active = {p for p in pfn.pages() if pfn.field(p, "u3.e1.PageLocation") == 6}
    assert active == {address // 0x1000 for _, address, *_ in walked}


def test_the_page_lists_hold_exactly_the_pages_their_entries_name(types):
    machine = boot_testdrv()
    run_until_quiet(machine)
    pfn = Pfn(machine, types)
    kdbg = machine.kernel_symbol("KdDebuggerDataBlock")
    flink_at, _, _ = _offset(types, "_MMPFNLIST", "Flink")
    for location, field in ((0, 0x180), (1, 0x188), (2, 0x190)):
        head = q(machine, kdbg + field)
        expected = [p for p in pfn.pages() if pfn.field(p, "u3.e1.PageLocation") == location]
        walked, page = [], q(machine, head + flink_at)
        while page != (1 << 64) - 1 and len(walked) <= len(expected):
            walked.append(page)
            page = pfn.field(page, "u1.Flink")
        assert walked == expected
        assert q(machine, head) == len(expected)
    zeroed = q(machine, q(machine, kdbg + 0x180))
    assert zeroed > 0 and q(machine, q(machine, kdbg + 0x1A8)) == zeroed + q(
        machine, q(machine, kdbg + 0x188))


def test_an_unloaded_drivers_pages_go_to_the_free_list_and_their_ram_stays(types):
    machine = boot_testdrv()
    run_until_quiet(machine)
    driver = next(m for m in machine.modules if m.name == "testdrv.sys")
    physical = machine.memory.virtual_to_physical(driver.base)
    header = machine.read_physical(physical, 2)
    machine.set_request(KiSimRequest.UNLOAD)
    run_until_quiet(machine)
    pfn = Pfn(machine, types)
    pages = range(physical // 0x1000, (physical + driver.size) // 0x1000)
    assert all(pfn.field(p, "u3.e1.PageLocation") == 1 for p in pages)
    assert pfn.field(pages[0], "PteAddress") == _self_map(driver.base, 1) | 1
    assert machine.read_physical(physical, 2) == header == b"MZ"
    kdbg = machine.kernel_symbol("KdDebuggerDataBlock")
    assert q(machine, q(machine, kdbg + 0x188)) == len(pages)


def test_the_dbgprint_buffer_keeps_what_the_kernel_printed_and_wraps(types):
    machine = boot_testdrv()
    events = run_until_quiet(machine)
    kdbg = machine.kernel_symbol("KdDebuggerDataBlock")
    start = q(machine, q(machine, kdbg + 0x2C8))
    size = d(machine, q(machine, kdbg + 0x2D0))
    assert start == q(machine, kdbg + 0x1E0) and size == 0x1000
    assert q(machine, kdbg + 0x1E8) == start + size
    write = q(machine, q(machine, kdbg + 0x1F0))
    printed = "".join(e.text for e in events if isinstance(e, DebugPrintStop)).encode("latin-1")
    assert printed and machine.read_virtual(start, write - start) == printed
    assert d(machine, q(machine, kdbg + 0x1F8)) == 0
    # Write on from 4 bytes before the end: the text wraps and the rollover is counted.
    # An unknown request makes the kernel print one line.
    machine.write_virtual(q(machine, kdbg + 0x1F0), struct.pack("<Q", start + size - 4))
    machine.set_request(99)
    more = "".join(e.text for e in run_until_quiet(machine)
                   if isinstance(e, DebugPrintStop)).encode("latin-1")
    assert more == b"KSIM: unknown KiSimRequest 99 ignored\n"
    assert d(machine, q(machine, kdbg + 0x1F8)) == 1
    assert machine.read_virtual(start + size - 4, 4) == more[:4]
    assert machine.read_virtual(start, len(more) - 4) == more[4:]
