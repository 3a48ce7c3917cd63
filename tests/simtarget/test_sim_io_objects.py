"""Driver and device objects are objects as Windows 7 SP1 x64 keeps them: an
_OBJECT_HEADER of type Driver or Device (ObTypeIndexTable), and the named ones in the
root directory's \\Driver and \\Device subdirectories under their last name part; a
driver's unload takes them out again.

Read from the booted machine's memory at Windows 7 x64's offsets (_OBJECT_HEADER,
_OBJECT_HEADER_NAME_INFO, _OBJECT_DIRECTORY(_ENTRY), DRIVER_OBJECT, DEVICE_OBJECT), never
through the kernel's headers; the globals' addresses come from the kernel PDB's publics.
trackdemo's DriverEntry creates \\Device\\TrackDemo.
"""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from tests.oracles import require_tool

from .simhelpers import booted_with_kernel_publics, q, run_until_quiet, unicode_string

BODY = 0x30                     # _OBJECT_HEADER.Body
NAME_INFO = 0x20                # _OBJECT_HEADER_NAME_INFO, right before the header
BUCKETS = 37
DIRECTORY, DRIVER, DEVICE = 6, 9, 10            # ObTypeIndexTable indices
IO_TYPE_DEVICE, IO_TYPE_DRIVER = 3, 4


@pytest.fixture()
def booted():
    return booted_with_kernel_publics(require_tool("llvm-pdbutil"))


def type_index(machine, body: int) -> int:
    return machine.read_virtual(body - BODY + 0x18, 1)[0]


def entries(machine, directory: int) -> dict[str, tuple[int, int]]:
    """Name -> (body, the directory its name information names) of each entry."""
    found = {}
    for bucket in range(BUCKETS):
        entry = q(machine, directory + 8 * bucket)
        while entry:
            body = q(machine, entry + 8)
            assert machine.read_virtual(body - BODY + 0x1A, 1)[0] & 0x2       # InfoMask: named
            info = body - BODY - NAME_INFO
            found[unicode_string(machine, info + 8)] = (body, q(machine, info))
            entry = q(machine, entry)
    return found


def test_the_types_are_in_the_index_table_as_driver_and_device(booted):
    machine, symbols = booted
    table = symbols["ObTypeIndexTable"]
    for index, name, tag in ((DRIVER, "Driver", b"Driv"), (DEVICE, "Device", b"Devi")):
        kind = q(machine, table + 8 * index)
        assert machine.read_virtual(kind + 0x28, 1)[0] == index
        assert unicode_string(machine, kind + 0x10) == name
        assert machine.read_virtual(kind + 0xB8, 4) == tag


def test_the_driver_and_its_named_device_are_in_their_directories_by_last_name(booted):
    machine, symbols = booted
    root = q(machine, symbols["ObpRootDirectoryObject"])
    top = entries(machine, root)
    drivers, devices = top["Driver"], top["Device"]
    for body, parent in (drivers, devices):
        assert type_index(machine, body) == DIRECTORY and parent == root

    (driver, parent), = [v for k, v in entries(machine, drivers[0]).items() if k == "trackdemo"]
    assert parent == drivers[0] and type_index(machine, driver) == DRIVER
    assert int.from_bytes(machine.read_virtual(driver, 2), "little") == IO_TYPE_DRIVER
    assert unicode_string(machine, driver + 0x38) == "\\Driver\\trackdemo"     # DriverName

    listed = entries(machine, devices[0])
    assert list(listed) == ["TrackDemo"]
    device, parent = listed["TrackDemo"]
    assert parent == devices[0] and type_index(machine, device) == DEVICE
    assert int.from_bytes(machine.read_virtual(device, 2), "little") == IO_TYPE_DEVICE
    assert q(machine, device + 8) == driver                                   # DriverObject
    assert q(machine, driver + 8) == device                                   # DeviceObject


def test_an_unloaded_driver_and_its_devices_leave_the_directories(booted):
    machine, symbols = booted
    root = q(machine, symbols["ObpRootDirectoryObject"])
    top = entries(machine, root)
    assert entries(machine, top["Driver"][0]) and entries(machine, top["Device"][0])
    machine.set_request(KiSimRequest.UNLOAD)
    assert not any(isinstance(e, BugCheck) for e in run_until_quiet(machine))
    assert entries(machine, top["Driver"][0]) == {}
    assert entries(machine, top["Device"][0]) == {}
    assert set(entries(machine, root)) >= {"Driver", "Device"}
