"""The kernel extensions' process and thread walks and bug check table, without a target.

A kernel whose PDB has no ``_EPROCESS``/``_ETHREAD`` is read with the types the target
gives from its build's built-in layout: a fake target serves the console's Windows 7
SP1 x64 table and holds processes and threads laid out by the simulated kernel's ki.h
(which declares the 7601 offsets of the fields it fills), and the process and thread
walks must find them. The bug check table must describe every code the
extension promises, each with four parameter meanings.
"""

from __future__ import annotations

import struct

import pytest

from kdcon import layouts
from kdcon.api import ExtensionFailed
from kdcon.extensions import _bugcodes, _ntobjects

from .test_golden_kernel_extensions import ki_constant

HEAD = 0xFFFFF800_01007000          # PsActiveProcessHead
PROCESSES = 0xFFFFFA80_00010000


class FakeTarget:
    """Memory as a dict of byte runs; 64-bit, its kernel types the built-in Windows 7
    SP1 x64 layout's (none for a 32-bit target)."""

    pointer_size = 8

    def __init__(self) -> None:
        self.memory: dict[int, bytearray] = {}

    def put(self, address: int, data: bytes) -> None:
        self.memory[address] = bytearray(data)

    def read(self, address: int, size: int) -> bytes:
        for base, data in self.memory.items():
            if base <= address < base + len(data):
                return bytes(data[address - base: address - base + size])
        return b""

    def pointer(self, address: int) -> int:
        return struct.unpack("<Q", self.read(address, 8))[0]

    def list_entries(self, head: int, *, limit: int = 100000):
        entry = self.pointer(head)
        while entry != head and entry and limit:
            yield entry
            limit -= 1
            entry = self.pointer(entry)

    def find_type(self, name: str):
        table = layouts.table_for(7601, self.pointer_size)
        return table.find(name.rpartition("!")[2]) if table is not None else None

    def type_layout(self, name: str):
        return "Windows 7 SP1 x64 (7601)" if self.find_type(name) is not None else None

    def symbol(self, name: str):
        return HEAD if name == "nt!PsActiveProcessHead" else None

    def check_cancelled(self) -> None:
        pass

    def format_address(self, address: int) -> str:
        return f"{address >> 32:08x}`{address & 0xFFFFFFFF:08x}"


def _link(memory: bytearray, offset: int, flink: int, blink: int) -> None:
    struct.pack_into("<QQ", memory, offset, flink, blink)


def _machine() -> tuple[FakeTarget, list[int], int]:
    """Two processes on the list (ki.h's offsets), the second with one thread."""
    target = FakeTarget()
    size = ki_constant("EPROCESS_SIZE")
    links = ki_constant("EP_ACTIVE_PROCESS_LINKS")
    addresses = [PROCESSES, PROCESSES + 0x1000]
    thread = PROCESSES + 0x2000
    heads = [a + links for a in addresses]
    head = bytearray(16)
    _link(head, 0, heads[0], heads[1])
    target.put(HEAD, head)
    for index, (address, image, pid) in enumerate(zip(addresses, ("System", "smss.exe"),
                                                      (4, 0x10C))):
        block = bytearray(size)
        struct.pack_into("<Q", block, ki_constant("EP_UNIQUE_PROCESS_ID"), pid)
        struct.pack_into("<Q", block, ki_constant("EP_DIRECTORY_TABLE_BASE"), 0x187000 + index)
        name = ki_constant("EP_IMAGE_FILE_NAME")
        block[name: name + len(image)] = image.encode()
        _link(block, links, heads[1] if index == 0 else HEAD, HEAD if index == 0 else heads[0])
        # The first process's thread list is empty (its head points at itself).
        kthreads = address + ki_constant("EP_KTHREAD_LIST_HEAD")
        entry = thread + ki_constant("ET_KTHREAD_LIST_ENTRY") if index else kthreads
        _link(block, ki_constant("EP_KTHREAD_LIST_HEAD"), entry, entry)
        target.put(address, block)
    block = bytearray(ki_constant("ETHREAD_SIZE"))
    struct.pack_into("<Q", block, ki_constant("ET_PROCESS"), addresses[1])
    block[ki_constant("ET_STATE")] = 5
    _link(block, ki_constant("ET_KTHREAD_LIST_ENTRY"), addresses[1] +
          ki_constant("EP_KTHREAD_LIST_HEAD"), addresses[1] + ki_constant("EP_KTHREAD_LIST_HEAD"))
    target.put(thread, block)
    return target, addresses, thread


def test_processes_without_pdb_types_are_read_with_the_layout_the_target_gives():
    target, addresses, _ = _machine()
    found = _ntobjects.processes(target)
    assert [(p.address, p.pid, p.image, p.dirbase) for p in found] == [
        (addresses[0], 4, "System", 0x187000), (addresses[1], 0x10C, "smss.exe", 0x187001)]
    assert found[0].obj.source == "Windows 7 SP1 x64 (7601)"
    assert _ntobjects.layout_note(found[0].obj) == (
        "nt!_EPROCESS is not in the kernel's symbols: using the Windows 7 SP1 x64 (7601) "
        "layout")


def test_threads_are_walked_through_the_kprocess_list():
    target, addresses, thread = _machine()
    first, second = _ntobjects.processes(target)
    assert _ntobjects.threads(target, first) == []
    (only,) = _ntobjects.threads(target, second)
    assert (only.address, only.process, only.state_name) == (thread, addresses[1], "WAIT")


def test_an_unreadable_object_is_one_line():
    target = FakeTarget()
    with pytest.raises(ExtensionFailed, match="Cannot read the EPROCESS at fffffa80`00010000"):
        _ntobjects.read_process(target, PROCESSES)


def test_a_32_bit_kernel_without_the_type_is_refused_in_one_line():
    target = FakeTarget()
    target.pointer_size = 4
    with pytest.raises(ExtensionFailed, match=r"Type nt!_EPROCESS not found"):
        _ntobjects.read_process(target, PROCESSES)


@pytest.mark.parametrize("code", [0x0A, 0xD1, 0x7E, 0x7F, 0x50, 0x1E, 0x3B, 0xC2, 0xC5, 0xE2,
                                  0x19, 0x8E, 0x35, 0x0F])
def test_the_common_bug_checks_are_described(code):
    entry = _bugcodes.describe(code)
    assert not entry.name.startswith("Unknown") and entry.about
    assert len(entry.params) == 4
    assert all(0 <= n <= 4 for n in (entry.ip, entry.memory, entry.access, entry.irql))


def test_an_unknown_code_says_so():
    assert _bugcodes.describe(0x1234).name == "Unknown bugcheck code (1234)"


def test_subtypes_give_the_other_three_parameters():
    double_free = _bugcodes.subtype(_bugcodes.describe(0xC2), 0x07)
    assert double_free is not None and "already free" in double_free[3]
    assert _bugcodes.subtype(_bugcodes.describe(0xC2), 0x1234) is None


@pytest.mark.parametrize("code, value, kind", [
    (0xD1, 0, "READ"), (0xD1, 1, "WRITE"), (0xD1, 8, "EXECUTE"),
    (0x50, 0, "READ"), (0x50, 1, "WRITE"), (0x50, 2, "WRITE"), (0x50, 0x10, "EXECUTE")])
def test_the_access_parameter_is_read_per_code(code, value, kind):
    entry = _bugcodes.describe(code)
    params = [0, 0, 0, 0]
    params[entry.access - 1] = value
    assert _bugcodes.access_kind(entry, tuple(params)) == kind


def test_irql_names_are_kd_s():
    assert [_ntobjects.irql_name(n) for n in (0, 1, 2, 5, 15)] == [
        "LOW_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL", "DEVICE_LEVEL", "HIGH_LEVEL"]
