"""!object and !handle on Windows 7 x64's own shapes, without a target or a PDB.

The simulated kernel uses only part of what Windows 7 does (one optional header, full
paths in the root, level-0 tables); a fake target serves the console's built-in Windows
7 SP1 x64 layout and holds what a real kernel has besides: a header with creator and
name information (InfoMask 0x3, the name 0x40 bytes before the header), a name under a
subdirectory, a type at another index, and a kernel handle table of level 1 whose second
leaf page holds handle 0x40c. Offsets are written here from Windows 7 x64's public
symbols (the Vergilius Project's pages), not from the layout table under test.
"""

from __future__ import annotations

import struct

import pytest

from kdcon.api import ExtensionFailed
from kdcon.extensions import objects

from .test_kernel_extension_layouts import FakeTarget

TYPE_TABLE = 0xFFFFF800_02A00000          # nt!ObTypeIndexTable
KERNEL_TABLE_POINTER = 0xFFFFF800_02A01000
ROOT_POINTER = 0xFFFFF800_02A01008
EVENT_TYPE, DIRECTORY_TYPE = 0xFFFFFA80_00100000, 0xFFFFFA80_00101000
EVENT_INDEX, DIRECTORY_INDEX = 0x0C, 0x03
POOL = 0xFFFFF8A0_00010000


class Windows7(FakeTarget):
    """FakeTarget with the object manager's globals, output and whole reads."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.rows: list[dict] = []

    def symbol(self, name: str):
        return {"nt!ObTypeIndexTable": TYPE_TABLE, "nt!ObpKernelHandleTable": KERNEL_TABLE_POINTER,
                "nt!ObpRootDirectoryObject": ROOT_POINTER}.get(name)

    def poke(self, address: int, data: bytes) -> None:
        """Write ``data`` into the run that holds ``address``."""
        base = next(b for b, run in self.memory.items() if b <= address < b + len(run))
        self.memory[base][address - base:address - base + len(data)] = data

    def read_exact(self, address: int, size: int) -> bytes:
        data = self.read(address, size)
        assert len(data) == size, hex(address)
        return data

    def write(self, text: str) -> None:
        self.text.append(text)

    def row(self, **fields) -> None:
        self.rows.append(fields)


def _unicode(target: Windows7, at: int, text: str) -> bytes:
    """A UNICODE_STRING for ``text``, its buffer put at ``at``."""
    data = text.encode("utf-16-le")
    target.put(at, data)
    return struct.pack("<HH4xQ", len(data), len(data), at)


def _type(target: Windows7, address: int, index: int, name: str) -> None:
    block = bytearray(0xD0)
    block[0x10:0x20] = _unicode(target, address + 0x100, name)
    block[0x28] = index
    target.put(address, block)


def _object(target: Windows7, block: int, index: int, name: str, directory: int,
            body_size: int = 0x18) -> int:
    """An object with creator (0x20) and name (0x20) information; its body's address."""
    data = bytearray(0x40 + 0x30 + body_size)
    # _OBJECT_HEADER_NAME_INFO at the start: Directory, Name.
    struct.pack_into("<Q", data, 0, directory)
    data[8:0x18] = _unicode(target, block + 0x1000, name)
    header = 0x40
    struct.pack_into("<qq", data, header, 3, 1)            # PointerCount, HandleCount
    data[header + 0x18] = index                            # TypeIndex
    data[header + 0x1A] = 0x3                              # InfoMask: creator, name
    target.put(block, data)
    return block + header + 0x30


def _directory(target: Windows7, body: int, entries: list[tuple[str, int]]) -> None:
    """Fill the directory whose body is at ``body`` with (name, object) entries, each
    in its name's hash bucket with that HashValue, as the object manager files them."""
    buckets = bytearray(0x150)
    for number, (name, obj) in enumerate(entries):
        entry = body + 0x2000 + 0x20 * number
        struct.pack_into("<Q", buckets, 8 * (objects.name_hash(name) % 37), entry)
        target.put(entry, struct.pack("<QQI4x", 0, obj, objects.name_hash(name)))
    target.poke(body, buckets)


@pytest.fixture()
def windows7() -> tuple[Windows7, int, int]:
    target = Windows7()
    table = bytearray(0x100)
    struct.pack_into("<QQ", table, 8 * EVENT_INDEX, EVENT_TYPE, 0)
    struct.pack_into("<Q", table, 8 * DIRECTORY_INDEX, DIRECTORY_TYPE)
    target.put(TYPE_TABLE, table)
    _type(target, EVENT_TYPE, EVENT_INDEX, "Event")
    _type(target, DIRECTORY_TYPE, DIRECTORY_INDEX, "Directory")
    root = _object(target, POOL, DIRECTORY_INDEX, "\\", 0, body_size=0x150)
    named = _object(target, POOL + 0x10000, DIRECTORY_INDEX, "BaseNamedObjects", root,
                    body_size=0x150)
    event = _object(target, POOL + 0x20000, EVENT_INDEX, "TrackDemoEvent", named)
    _directory(target, root, [("BaseNamedObjects", named)])     # bucket 23
    _directory(target, named, [("TrackDemoEvent", event)])     # bucket 2
    # A level-1 kernel handle table: two leaf pages, handle 4 and handle 0x40c in use.
    handle_table, top = POOL + 0x30000, POOL + 0x31000
    leaves = (POOL + 0x32000, POOL + 0x33000)
    target.put(handle_table, struct.pack("<Q", top | 1) + bytes(0x60))
    target.put(top, struct.pack("<QQ", *leaves) + bytes(0x1000 - 16))
    first, second = bytearray(0x1000), bytearray(0x1000)
    struct.pack_into("<QI", first, 0x10, (event - 0x30) | 1, 0x1F0003)
    struct.pack_into("<QI", second, 3 * 0x10, (root - 0x30) | 3, 0x000F000F)
    target.put(leaves[0], first)
    target.put(leaves[1], second)
    target.put(KERNEL_TABLE_POINTER, struct.pack("<Q", handle_table))
    target.put(ROOT_POINTER, struct.pack("<Q", root))
    return target, event, root


def test_a_name_behind_creator_information_is_found_by_the_info_mask_offsets(windows7):
    target, event, _ = windows7
    obj = objects._Objects(target).read(event)
    assert (obj.type_name, obj.type_object, obj.header) == ("Event", EVENT_TYPE, event - 0x30)
    assert (obj.name, obj.pointer_count, obj.handle_count) == ("TrackDemoEvent", 3, 1)


def test_a_path_is_walked_one_directory_at_a_time(windows7):
    target, event, _ = windows7
    objects._show_path(target, objects._Objects(target), "\\basenamedobjects\\TrackDemoEvent")
    lines = "".join(target.text).splitlines()
    assert lines[0] == f"Object: {event:016x}  Type: ({EVENT_TYPE:016x}) Event"
    assert lines[3].endswith("  Name: TrackDemoEvent")


def test_the_root_lists_its_buckets(windows7):
    target, _, root = windows7
    objects._show_path(target, objects._Objects(target), "\\")
    text = "".join(target.text)
    assert text.startswith(f"Object: {root:016x}  Type: ({DIRECTORY_TYPE:016x}) Directory\n")
    assert "\n     23  " in text          # BaseNamedObjects' bucket
    assert text.rstrip().endswith("Directory                 BaseNamedObjects")


def test_a_level_1_table_gives_handles_past_the_first_leaf(windows7):
    target, event, root = windows7
    objects._show_handles(target, objects._Objects(target), 0, None, 0x11)
    text = "".join(target.text)
    assert text.startswith(f"Kernel handle table at {POOL + 0x31000:016x} with 2 entries in use")
    assert (f"0004: Object: {event:016x}  GrantedAccess: 001f0003 "
            f"Entry: {POOL + 0x32010:016x}") in text
    assert (f"040c: Object: {root:016x}  GrantedAccess: 000f000f "
            f"Entry: {POOL + 0x33030:016x}") in text
    assert [row["handle"] for row in target.rows] == [0x4, 0x40C]


def test_an_index_whose_type_says_another_index_is_not_an_object(windows7):
    target, event, _ = windows7
    target.poke(event - 0x30 + 0x18, bytes([DIRECTORY_INDEX + 1]))
    with pytest.raises(ExtensionFailed, match="not an object"):
        objects._Objects(target).read(event)
