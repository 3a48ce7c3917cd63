"""The target's x64 page tables, walked by a host over the wire from CR3.

CR3 comes from control space (KSPECIAL_REGISTERS), every table entry from
ReadPhysicalMemory; the walk follows the Intel SDM's 4-level format (PML4E, PDPTE, PDE
with PS for 2 MB pages, PTE). The page a present leaf names holds the same bytes, read
physically, as the virtual page, and its W and NX bits are the page's protection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pefile
import pytest

from kdcon.protocol.constants import ManipulateApi as A

from .kd_sim_fixtures import BAD_ADDRESS, FILES, boot, pdb_rva

PRESENT, WRITE, USER, LARGE, NX = 1 << 0, 1 << 1, 1 << 2, 1 << 7, 1 << 63
PFN = 0x000F_FFFF_FFFF_F000
PAGE = 0x1000


@dataclass(frozen=True)
class Leaf:
    entry: int
    level: int          # 1: 4 KB PTE, 2: 2 MB PDE
    physical: int       # of the byte translated

    @property
    def page_size(self) -> int:
        return PAGE << (9 * (self.level - 1))


def walk(host, cr3: int, va: int) -> Leaf | None:
    """Translate ``va`` by reading the tables from physical memory, as a debugger does."""
    table = cr3 & PFN
    for level in (4, 3, 2, 1):
        index = (va >> (12 + 9 * (level - 1))) & 0x1FF
        raw = host.read_physical(table + 8 * index, 8)
        assert len(raw) == 8, f"table entry at {table + 8 * index:#x} cannot be read"
        entry = struct.unpack("<Q", raw)[0]
        if not entry & PRESENT:
            return None
        assert not entry & USER, f"a user-accessible entry maps kernel address {va:#x}"
        if level == 1 or (level == 2 and entry & LARGE):
            span = PAGE << (9 * (level - 1))
            return Leaf(entry, level, (entry & PFN & ~(span - 1)) + (va & (span - 1)))
        table = entry & PFN
    return None


@pytest.fixture(scope="module")
def booted():
    b = boot()
    yield b
    b.close()


@pytest.fixture(scope="module")
def cr3(booted):
    value = booted.host.special_registers().Cr3
    assert value == 0x187000
    return value


def _same_page_both_ways(host, va: int, leaf: Leaf) -> None:
    page = va & ~(PAGE - 1)
    physical = leaf.physical & ~(PAGE - 1)
    virtual = host.read_virtual(page, PAGE)
    assert len(virtual) == PAGE
    assert host.read_physical(physical, PAGE) == virtual


def test_cr3_holds_a_pml4_readable_physically(booted, cr3):
    pml4 = booted.host.read_physical(cr3, PAGE)
    assert len(pml4) == PAGE
    entries = struct.unpack("<512Q", pml4)
    assert entries[0] == 0, "no low (user) addresses are mapped"
    assert any(e & PRESENT for e in entries[256:])


def test_kernel_code_is_present_read_only_and_executable(booted, cr3):
    host = booted.host
    va = booted.export("ntoskrnl.exe", "KeBugCheckEx")
    leaf = walk(host, cr3, va)
    assert leaf is not None and leaf.level == 1
    assert not leaf.entry & WRITE and not leaf.entry & NX
    _same_page_both_ways(host, va, leaf)


def test_driver_data_is_present_writable_and_not_executable(booted, cr3):
    host = booted.host
    va = booted.base("trackdemo.sys") + pdb_rva(FILES["trackdemo.sys"].with_suffix(".pdb"), "TrackMemoryStats")
    leaf = walk(host, cr3, va)
    assert leaf is not None and leaf.entry & WRITE and leaf.entry & NX
    _same_page_both_ways(host, va, leaf)


def test_image_headers_are_read_only_data(booted, cr3):
    base = booted.base("trackdemo.sys")
    leaf = walk(booted.host, cr3, base)
    assert leaf is not None and not leaf.entry & WRITE and leaf.entry & NX
    assert booted.host.read_physical(leaf.physical, 2) == b"MZ"


def test_every_section_page_carries_its_section_protection(booted, cr3):
    host = booted.host
    pe = pefile.PE(str(FILES["hal.dll"]), fast_load=True)
    base = booted.base("hal.dll")
    for section in pe.sections:
        writable = bool(section.Characteristics & 0x80000000)
        executable = bool(section.Characteristics & 0x20000000)
        leaf = walk(host, cr3, base + section.VirtualAddress)
        assert leaf is not None, section.Name
        assert (bool(leaf.entry & WRITE), not leaf.entry & NX) == (writable, executable), section.Name


def test_the_stack_is_present_writable_and_not_executable(booted, cr3):
    host = booted.host
    rsp = host.get_context().Rsp
    leaf = walk(host, cr3, rsp)
    assert leaf is not None and leaf.entry & WRITE and leaf.entry & NX
    _same_page_both_ways(host, rsp, leaf)


def test_the_pool_is_mapped_with_2mb_pages(booted, cr3):
    host = booted.host
    pool = 0xFFFFFA80_00000000
    leaf = walk(host, cr3, pool + 0x212345)
    assert leaf is not None and leaf.level == 2 and leaf.entry & WRITE
    assert leaf.physical == 0x10000000 + 0x212345
    _same_page_both_ways(host, pool + 0x212345, leaf)


@pytest.mark.parametrize("address", [BAD_ADDRESS, 0x10000, 0xFFFFF880_00000000, 0xFFFF8000_00000000])
def test_an_unmapped_address_has_no_present_leaf(booted, cr3, address):
    assert booted.host.read_virtual(address, 1) == b""
    assert walk(booted.host, cr3, address) is None


def test_a_physical_write_is_seen_by_a_virtual_read_and_back(booted, cr3):
    host = booted.host
    rsp = host.get_context().Rsp
    scratch = rsp - 0x400
    leaf = walk(host, cr3, scratch)
    old = host.read_virtual(scratch, 8)
    assert host.write_physical(leaf.physical, b"physical") == 8
    assert host.read_virtual(scratch, 8) == b"physical"
    assert host.write_virtual(scratch, b"virtual!") == 8
    assert host.read_physical(leaf.physical, 8) == b"virtual!"
    host.write_virtual(scratch, old)


def test_a_breakpoint_on_a_read_only_code_page_is_written(booted, cr3):
    host = booted.host
    va = booted.export("ntoskrnl.exe", "KeBugCheckEx") + 1
    leaf = walk(host, cr3, va)
    assert not leaf.entry & WRITE
    reply = host.request(A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=va, BreakPointHandle=0))
    assert reply.return_status == 0
    assert host.request(A.DbgKdRestoreBreakPointApi,
                        dict(BreakPointHandle=reply.message.u.BreakPointHandle)).return_status == 0
