"""Driver objects, device objects and IRPs read from target memory, for !drvobj,
!devobj, !devstack and !irp.

What it does: ``Record`` reads one I/O manager structure whole in a single request and
gives its fields by their names in ``nt``'s PDB type, falling back to the documented
x64 offset where the kernel's type leaves a part unnamed (the simulated kernel's
DEVICE_OBJECT keeps the device queue in an unnamed array, its IRP the Tail overlay).
``read_driver``, ``read_device`` and ``read_irp`` decode the three objects;
``drivers`` lists the driver objects the kernel keeps, ``find_driver`` and
``find_device`` look up ``\\Driver\\X`` and ``\\Device\\X`` in the object directory as
Windows keeps it (``!object``'s walk: the root, then its ``\\Driver`` and ``\\Device``
directories), or, for a kernel without those directories, in the simulated kernel's
driver table (``nt!IopDrivers``) and each driver's devices; ``lower_device`` finds the
device a device is attached to.
What it does not do: print, or read device nodes and the DEVOBJ_EXTENSION a real kernel
keeps beside each device.

Not an extension itself (the leading underscore keeps the loader away).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kdcon.api import ExtensionFailed, MemoryReadError, Target, printable

from .objects import find_named

__all__ = ["Record", "Driver", "Device", "Irp", "StackLocation", "IRP_MJ_NAMES",
           "read_driver", "read_device", "read_irp", "drivers", "find_driver",
           "find_device", "lower_device", "object_name", "symbol_text"]

log = logging.getLogger(__name__)

IO_TYPE_DEVICE = 3
IO_TYPE_DRIVER = 4
IO_TYPE_IRP = 6
_MAX_DRIVERS = 256
_MAX_DEVICES = 1024
_MAX_STACKS = 64
_MAX_DRIVERS_GUESS = 32            # the table entries read with the count in one request
_STACKS_GUESS = 4                  # the stack locations read with an IRP in one request

# wdm.h's major function codes, in order (WinDbg's names).
IRP_MJ_NAMES = (
    "IRP_MJ_CREATE", "IRP_MJ_CREATE_NAMED_PIPE", "IRP_MJ_CLOSE", "IRP_MJ_READ",
    "IRP_MJ_WRITE", "IRP_MJ_QUERY_INFORMATION", "IRP_MJ_SET_INFORMATION", "IRP_MJ_QUERY_EA",
    "IRP_MJ_SET_EA", "IRP_MJ_FLUSH_BUFFERS", "IRP_MJ_QUERY_VOLUME_INFORMATION",
    "IRP_MJ_SET_VOLUME_INFORMATION", "IRP_MJ_DIRECTORY_CONTROL",
    "IRP_MJ_FILE_SYSTEM_CONTROL", "IRP_MJ_DEVICE_CONTROL",
    "IRP_MJ_INTERNAL_DEVICE_CONTROL", "IRP_MJ_SHUTDOWN", "IRP_MJ_LOCK_CONTROL",
    "IRP_MJ_CLEANUP", "IRP_MJ_CREATE_MAILSLOT", "IRP_MJ_QUERY_SECURITY",
    "IRP_MJ_SET_SECURITY", "IRP_MJ_POWER", "IRP_MJ_SYSTEM_CONTROL",
    "IRP_MJ_DEVICE_CHANGE", "IRP_MJ_QUERY_QUOTA", "IRP_MJ_SET_QUOTA", "IRP_MJ_PNP")

# x64 offsets (wdm.h's structures) of the parts a kernel's type may leave unnamed.
_DEVICE_QUEUE_X64 = 0xA0           # DEVICE_OBJECT.DeviceQueue (KDEVICE_QUEUE)
_IRP_X64 = {
    "Overlay.AsynchronousParameters.UserApcRoutine": 0x58,
    "Overlay.AsynchronousParameters.UserApcContext": 0x60,
    "Overlay.AllocationSize": 0x58,
    "Tail.Overlay.DeviceQueueEntry": 0x78,
    "Tail.Overlay.Thread": 0x98,
    "Tail.Overlay.AuxiliaryBuffer": 0xA0,
    "Tail.Overlay.ListEntry.Flink": 0xA8,
    "Tail.Overlay.ListEntry.Blink": 0xB0,
    "Tail.Overlay.CurrentStackLocation": 0xB8,
    "Tail.Overlay.OriginalFileObject": 0xC0,
    "Tail.Apc": 0x78,
    "Tail.CompletionKey": 0x78,
}
# The simulated kernel's IRP names the two Tail fields it uses at the top level.
_IRP_ALIASES = {"Tail.Overlay.CurrentStackLocation": "CurrentStackLocation",
                "Tail.Overlay.OriginalFileObject": "OriginalFileObject"}


class Record:
    """One ``nt!`` structure at an address, read whole in one request."""

    def __init__(self, target: Target, address: int, type_name: str, what: str,
                 data: bytes | None = None) -> None:
        self.target = target
        self.address = address
        self.type_name = f"nt!{type_name}"
        info = target.find_type(self.type_name)
        if info is None or not getattr(info, "size", 0):
            raise ExtensionFailed(f"Type {self.type_name} not found: are the kernel's "
                                  f"symbols loaded (.reload /f nt)?")
        self.size = info.size
        if data is None:
            data = target.read(address, self.size) if address else b""
            if len(data) < self.size:
                raise ExtensionFailed(f"Cannot read the {what} at "
                                      f"{target.format_address(address)}")
        self.data = data

    def offset(self, path: str, x64: int | None = None) -> int | None:
        offset = self.target.field_offset(self.type_name, path)
        if offset is None and x64 is not None and self.target.pointer_size == 8:
            offset = x64
        return offset

    def get(self, path: str, size: int | None = None, x64: int | None = None) -> int | None:
        """The field at ``path`` (``size`` bytes; a pointer when None); None when the
        layout has no such field and no x64 offset is given."""
        offset = self.offset(path, x64)
        if offset is None:
            return None
        size = size or self.target.pointer_size
        if offset + size > len(self.data):
            return None
        return int.from_bytes(self.data[offset: offset + size], "little")

    def value(self, path: str, size: int | None = None, x64: int | None = None) -> int:
        return self.get(path, size, x64) or 0


_TYPE_NAMES = {IO_TYPE_DEVICE: "a device object", IO_TYPE_DRIVER: "a driver object",
               IO_TYPE_IRP: "an IRP"}


def _what(record: Record) -> str:
    """What the I/O type at the start of ``record`` says it is."""
    kind = record.value("Type", 2)
    return f"Type {kind:#x}" + (f": {_TYPE_NAMES[kind]}" if kind in _TYPE_NAMES else "")


def _unicode(target: Target, record: Record, path: str) -> str:
    """A UNICODE_STRING field's text as the target has it ('' when absent): escape it
    (``printable``) where it is shown."""
    offset = record.offset(path)
    if offset is None:
        return ""
    length = record.get(f"{path}.Length", 2) or 0
    buffer = record.get(f"{path}.Buffer") or 0
    if not length or not buffer:
        return ""
    data = target.read(buffer, min(length, 0x400) & ~1)
    return data.decode("utf-16-le", "replace")


@dataclass
class Driver:
    address: int
    name: str
    devices: list[int]
    record: Record


@dataclass
class Device:
    address: int
    name: str                       # the object name the device was created with, or ''
    driver: int
    driver_name: str
    attached: int                   # the device above (AttachedDevice)
    record: Record
    lower: int | None = None        # the device below, when known
    queue: list[int] = field(default_factory=list)
    queue_busy: bool | None = None


def read_driver(target: Target, address: int, *, with_devices: bool = True) -> Driver:
    record = Record(target, address, "_DRIVER_OBJECT", "driver object")
    if record.value("Type", 2) != IO_TYPE_DRIVER:
        raise ExtensionFailed(f"{target.format_address(address)} is not a driver object "
                              f"({_what(record)})")
    devices: list[int] = []
    if with_devices:
        device = record.value("DeviceObject")
        # Each device is read whole (the per-stop cache keeps it for read_device).
        info = target.find_type("nt!_DEVICE_OBJECT")
        size = getattr(info, "size", 0) or 0x150
        next_offset = target.field_offset("nt!_DEVICE_OBJECT", "NextDevice") or 0x10
        while device and device not in devices and len(devices) < _MAX_DEVICES:
            devices.append(device)
            data = target.read(device, size)[next_offset: next_offset + target.pointer_size]
            device = int.from_bytes(data, "little") if len(data) == target.pointer_size else 0
    return Driver(address, _unicode(target, record, "DriverName"), devices, record)


def read_device(target: Target, address: int, *, with_queue: bool = False) -> Device:
    record = Record(target, address, "_DEVICE_OBJECT", "device object")
    if record.value("Type", 2) != IO_TYPE_DEVICE:
        raise ExtensionFailed(f"{target.format_address(address)} is not a device object "
                              f"({_what(record)})")
    driver = record.value("DriverObject")
    driver_name = ""
    if driver:
        try:
            driver_name = read_driver(target, driver, with_devices=False).name
        except ExtensionFailed:
            driver_name = "?"
    name = _unicode(target, record, "KsimName")
    device = Device(address, name, driver, driver_name, record.value("AttachedDevice"),
                    record)
    if with_queue:
        _read_queue(target, device)
    return device


def _read_queue(target: Target, device: Device) -> None:
    """The device queue's state and the IRPs waiting on it."""
    record = device.record
    base = record.offset("DeviceQueue", _DEVICE_QUEUE_X64)
    if base is None:
        return
    queue = Record(target, address=device.address + base, type_name="_KDEVICE_QUEUE",
                   what="device queue", data=record.data[base:])
    device.queue_busy = bool(queue.value("Busy", 1))
    head = device.address + base + (queue.offset("DeviceListHead") or 0)
    entry_offset = target.field_offset("nt!_IRP", "Tail.Overlay.DeviceQueueEntry")
    if entry_offset is None:
        entry_offset = _IRP_X64["Tail.Overlay.DeviceQueueEntry"]
    for entry in target.list_entries(head, limit=_MAX_DEVICES):
        device.queue.append(entry - entry_offset)


def drivers(target: Target) -> list[int]:
    """The driver objects the kernel keeps: the simulated kernel's nt!IopDrivers."""
    table = target.symbol("nt!IopDrivers")
    count = target.symbol("nt!IopDriverCount")
    if table is None or count is None:
        raise ExtensionFailed("Driver and device names are looked up in nt!IopDrivers, which "
                              "this kernel does not have: give the object's address")
    size = target.pointer_size
    if 0 <= table - count <= 0x40:       # together, as the kernel's data lays them out
        target.read(count, table - count + _MAX_DRIVERS_GUESS * size)
    number = min(target.u32(count), _MAX_DRIVERS)
    data = target.read(table, number * size)
    return [int.from_bytes(data[i: i + size], "little") for i in range(0, len(data), size)
            if int.from_bytes(data[i: i + size], "little")]


def _from_directory(target: Target, wanted: str, directory: str, kind: str) -> int | None:
    """The body of the ``kind`` object named ``wanted``, looked up in the object
    directory; None when the kernel keeps no ``directory`` directory (or no object
    manager symbols), so its driver table is to be asked; one line when the directory
    is there and the name is not."""
    try:
        found = find_named(target, wanted)
        if found is not None and found[1] == kind:
            return found[0]
        held = find_named(target, directory)
    except (ExtensionFailed, MemoryReadError) as exc:
        log.debug("no object directory to look %s up in: %s", wanted, exc)
        return None
    if held is None or held[1] != "Directory":
        return None
    raise ExtensionFailed(f"No {kind.lower()} object is named "
                          f"{printable(wanted, newlines=False)}")


def find_driver(target: Target, name: str) -> Driver:
    """The driver named ``\\Driver\\X`` (``X`` alone means the same), any case."""
    wanted = name if name.startswith("\\") else f"\\Driver\\{name}"
    address = _from_directory(target, wanted, "\\Driver", "Driver")
    if address is not None:
        return read_driver(target, address)
    for address in drivers(target):
        driver = read_driver(target, address, with_devices=False)
        if driver.name.lower() == wanted.lower():
            return read_driver(target, address)
    raise ExtensionFailed(f"No driver object is named {printable(wanted, newlines=False)}")


def find_device(target: Target, name: str) -> int:
    """The device object named ``\\Device\\X`` (``X`` alone means the same), any case."""
    wanted = name if name.startswith("\\") else f"\\Device\\{name}"
    address = _from_directory(target, wanted, "\\Device", "Device")
    if address is not None:
        return address
    for address in drivers(target):
        for device in read_driver(target, address).devices:
            if read_device(target, device).name.lower() == wanted.lower():
                return device
    raise ExtensionFailed(f"No device object is named {printable(wanted, newlines=False)}")


def lower_device(target: Target, device: Device) -> int | None:
    """The device ``device`` is attached to: DEVOBJ_EXTENSION.AttachedTo where the
    kernel's type has it, else the device of any driver whose AttachedDevice it is."""
    extension = device.record.get("DeviceObjectExtension")
    if extension:
        offset = target.field_offset("nt!_DEVOBJ_EXTENSION", "AttachedTo")
        if offset is not None:
            return target.pointer(extension + offset) or None
    try:
        everything = drivers(target)
    except ExtensionFailed:
        return None
    attached_offset = target.field_offset("nt!_DEVICE_OBJECT", "AttachedDevice") or 0x18
    for address in everything:
        for candidate in read_driver(target, address).devices:
            if target.pointer(candidate + attached_offset) == device.address:
                return candidate
    return None


def object_name(name: str) -> str:
    """The last part of an object's full name (WinDbg shows a device's that way)."""
    return name.rsplit("\\", 1)[-1]


def symbol_text(target: Target, address: int) -> str:
    """``module!name+0xoff`` for a code address, '' for none."""
    if not address:
        return ""
    return printable(target.name_for(address) or "", newlines=False)


# -- IRPs -----------------------------------------------------------------------------------


@dataclass
class StackLocation:
    address: int
    major: int
    minor: int
    flags: int
    control: int
    device: int
    file: int
    completion: int
    context: int
    args: tuple[int, int, int, int]


@dataclass
class Irp:
    address: int
    record: Record
    stack_count: int
    current: int                    # CurrentLocation: 1..stack_count, stack_count+1 done
    stacks: list[StackLocation]

    def get(self, path: str, size: int | None = None) -> int:
        """A field by its name in Windows' IRP, wherever this kernel's type keeps it."""
        record = self.record
        value = record.get(path, size)
        if value is None and path in _IRP_ALIASES:
            value = record.get(_IRP_ALIASES[path], size)
        if value is None:
            value = record.get(path, size, _IRP_X64.get(path))
        return value or 0


def read_irp(target: Target, address: int) -> Irp:
    """The IRP at ``address`` and its stack locations, read in one request (two for an
    IRP with more than four locations)."""
    info = target.find_type("nt!_IRP")
    location = target.find_type("nt!_IO_STACK_LOCATION")
    if address and info is not None and location is not None:
        target.read(address, (info.size or 0) + _STACKS_GUESS * (location.size or 0))
    head = Record(target, address, "_IRP", "IRP")
    if head.value("Type", 2) != IO_TYPE_IRP:
        raise ExtensionFailed(f"IRP signature does not match, probably not an IRP "
                              f"({target.format_address(address)}: {_what(head)})")
    count = head.value("StackCount", 1)
    current = head.value("CurrentLocation", 1)
    if not 0 < count <= _MAX_STACKS or current > count + 1:
        raise ExtensionFailed(f"The IRP at {target.format_address(address)} says it has "
                              f"{count} stack locations, {current} current: not a valid IRP")
    location = target.find_type("nt!_IO_STACK_LOCATION")
    if location is None or not getattr(location, "size", 0):
        raise ExtensionFailed("Type nt!_IO_STACK_LOCATION not found: are the kernel's "
                              "symbols loaded (.reload /f nt)?")
    whole = target.read(address, head.size + count * location.size)
    if len(whole) < head.size + count * location.size:
        raise ExtensionFailed(f"Cannot read the IRP's {count} stack locations at "
                              f"{target.format_address(address + head.size)}")
    record = Record(target, address, "_IRP", "IRP", data=whole[: head.size])
    stacks = []
    for index in range(count):
        begin = head.size + index * location.size
        at = address + begin
        sl = Record(target, at, "_IO_STACK_LOCATION", "stack location",
                    data=whole[begin: begin + location.size])
        stacks.append(StackLocation(
            address=at, major=sl.value("MajorFunction", 1), minor=sl.value("MinorFunction", 1),
            flags=sl.value("Flags", 1), control=sl.value("Control", 1),
            device=sl.value("DeviceObject"), file=sl.value("FileObject"),
            completion=sl.value("CompletionRoutine"), context=sl.value("Context"),
            args=tuple(sl.value(f"Parameters.Others.Argument{n}") for n in range(1, 5))))
    return Irp(address, record, count, current, stacks)
