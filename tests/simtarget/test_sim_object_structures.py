"""The simulated kernel keeps objects and handle tables as Windows 7 SP1 x64 does.

Read from the booted machine's memory at the offsets Windows 7 x64's public symbols give
(the Vergilius Project's pages of _OBJECT_HEADER, _OBJECT_HEADER_NAME_INFO, _OBJECT_TYPE,
_OBJECT_DIRECTORY, _HANDLE_TABLE and _HANDLE_TABLE_ENTRY), never through the kernel's
own headers, so a drifting C structure fails here; the globals' addresses come from the
kernel PDB's publics. trackdemo's DriverEntry gives the kernel table a handle to
its named event, \\BaseNamedObjects\\TrackDemoEvent.
"""

from __future__ import annotations

import pytest

from tests.oracles import require_tool

from .simhelpers import booted_with_kernel_publics, d, q, unicode_string

TYPES = {2: "Event", 3: "File", 4: "Key", 5: "Section", 6: "Directory", 7: "Thread",
         8: "Process"}
TAGS = {"Event": b"Even", "File": b"File", "Key": b"Key ", "Section": b"Sect",
        "Directory": b"Dire", "Thread": b"Thre", "Process": b"Proc"}
BODY = 0x30                     # _OBJECT_HEADER.Body
EPROCESS_OBJECT_TABLE = 0x200


@pytest.fixture(scope="module")
def booted():
    # trackdemo's DriverEntry makes a named event with a kernel handle.
    return booted_with_kernel_publics(require_tool("llvm-pdbutil"))


def byte(machine, address: int) -> int:
    return machine.read_virtual(address, 1)[0]


def header_of(machine, body: int) -> dict[str, int]:
    header = body - BODY
    return {"PointerCount": q(machine, header), "HandleCount": q(machine, header + 8),
            "TypeIndex": byte(machine, header + 0x18), "InfoMask": byte(machine, header + 0x1A)}


def test_each_type_is_in_the_index_table_at_its_index_with_its_name_and_tag(booted):
    machine, symbols = booted
    table = symbols["ObTypeIndexTable"]
    assert q(machine, table) == q(machine, table + 8) == 0
    for index, name in TYPES.items():
        kind = q(machine, table + 8 * index)
        assert byte(machine, kind + 0x28) == index, name              # Index
        assert unicode_string(machine, kind + 0x10) == name           # Name
        assert machine.read_virtual(kind + 0xB8, 4) == TAGS[name]     # Key
    event_type = q(machine, machine.kernel_symbol("ExEventObjectType"))
    assert event_type == q(machine, table + 8 * 2)
    assert q(machine, machine.kernel_symbol("PsProcessType")) == q(machine, table + 8 * 8)


def test_the_system_process_s_table_is_the_kernel_s_and_its_entries_point_at_headers(booted):
    machine, symbols = booted
    table = q(machine, symbols["ObpKernelHandleTable"])
    system = q(machine, machine.kernel_symbol("PsInitialSystemProcess"))
    assert q(machine, system + EPROCESS_OBJECT_TABLE) == table
    code = q(machine, table)                                          # TableCode
    assert code & 3 == 0 and q(machine, table + 8) == system          # QuotaProcess
    assert q(machine, table + 0x10) == 4                              # UniqueProcessId
    entries = machine.read_virtual(code, 0x1000)
    in_use = []
    for index in range(256):
        value = int.from_bytes(entries[16 * index:16 * index + 8], "little")
        if value:
            in_use.append(index)
            assert value & 1, index                                   # unlocked
            header = header_of(machine, (value & ~7) + BODY)
            assert header["TypeIndex"] in TYPES and header["HandleCount"] >= 1
    assert 0 not in in_use and in_use
    assert d(machine, table + 0x58) == len(in_use)                    # HandleCount
    # The table is on HandleTableListHead by its HandleTableList (+0x20).
    head = symbols["HandleTableListHead"]
    assert q(machine, head) == table + 0x20 or q(machine, q(machine, head)) == table + 0x20


def test_the_root_directory_holds_the_named_objects_by_hash_with_their_name_info(booted):
    machine, symbols = booted
    root = q(machine, symbols["ObpRootDirectoryObject"])
    header = header_of(machine, root)
    assert TYPES[header["TypeIndex"]] == "Directory" and header["InfoMask"] & 2
    assert unicode_string(machine, root - BODY - 0x20 + 8) == "\\"
    names = []
    for bucket in range(37):
        entry = q(machine, root + 8 * bucket)
        while entry:
            body, hash_value = q(machine, entry + 8), d(machine, entry + 0x10)
            assert hash_value % 37 == bucket
            named = header_of(machine, body)
            assert named["InfoMask"] & 2
            info = body - BODY - 0x20
            assert q(machine, info) == root                           # Directory
            names.append(unicode_string(machine, info + 8))
            entry = q(machine, entry)                                 # ChainLink
    assert "\\BaseNamedObjects\\TrackDemoEvent" in names
