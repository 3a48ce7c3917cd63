"""Kernel data the pool and memory extensions share: structure layouts, kernel globals
and what reading memory costs on a serial line.

What it does: ``Layout.load`` gives the offsets, sizes and bit positions of the fields
an extension names, from the target's PDB (``nt!_POOL_HEADER``, ...) or, while the
kernel has no PDB, from the built-in layout of its build (``kdcon.layouts`` through
``Target.find_type``); a type neither gives fails in one line that says what to do. ``kernel_global`` finds a
kernel variable by its symbol, or else through the debugger data block
(``KDDEBUGGER_DATA64``, whose field offsets are wdbgexts.h's and the same for every
version that has the field). ``wire_cost`` says what reading a number
of bytes takes over KD on a serial line.
What it does not do: read structures field by field over the wire: callers read the
bytes once and decode them here.

Not an extension itself (the leading underscore keeps the loader away); the built-ins
import it relatively.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from kdcon.api import ExtensionFailed, Target

__all__ = ["FieldSpec", "Layout", "note_builtin", "kernel_global", "global_value", "wire_cost",
           "cost_line", "KDBG"]

# KDDEBUGGER_DATA64 field offsets (wdbgexts.h; kd-protocol.md §7.2): each holds the
# address of the kernel variable of that name.
KDBG = {
    "MmPfnDatabase": 0xC0, "MmLowestPhysicalPage": 0xE8, "MmHighestPhysicalPage": 0xF0,
    "MmNumberOfPhysicalPages": 0xF8, "MmNonPagedPoolStart": 0x110, "MmNonPagedPoolEnd": 0x118,
    "MmPagedPoolStart": 0x120, "MmPagedPoolEnd": 0x128, "MmZeroedPageListHead": 0x180,
    "MmFreePageListHead": 0x188, "MmStandbyPageListHead": 0x190,
    "MmModifiedPageListHead": 0x198, "MmModifiedNoWritePageListHead": 0x1A0,
    "MmAvailablePages": 0x1A8, "PoolTrackTable": 0x1B8, "KdPrintCircularBuffer": 0x1E0,
    "KdPrintWritePointer": 0x1F0, "KdPrintRolloverCount": 0x1F8,
    "MmPhysicalMemoryBlock": 0x270, "KdPrintCircularBufferPtr": 0x2C8,
    "KdPrintBufferSize": 0x2D0,
}
_KDBG_OWNER_TAG = 0x4742444B          # 'KDBG'

# KD on a serial line (kd-protocol.md §10): a read of n bytes is a 73-byte request, its
# 16-byte ACK, a reply of 73 + n bytes and its ACK; a reply carries at most 3944 bytes;
# a byte is 10 bits on the line.
_READ_OVERHEAD = 73 + 16 + 73 + 16
_MAX_READ = 3944
_BAUD = 115200


def wire_cost(data_bytes: int, baud: int = _BAUD) -> tuple[int, float]:
    """(bytes on the wire, seconds) to read ``data_bytes`` of memory over KD."""
    reads = -(-data_bytes // _MAX_READ)
    total = data_bytes + reads * _READ_OVERHEAD
    return total, total * 10 / baud


def cost_line(what: str, data_bytes: int) -> str:
    """One line saying what a scan will cost on a 115200-baud cable."""
    total, seconds = wire_cost(data_bytes)
    span = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    return (f"{what}: {data_bytes} bytes to read, {total} on the wire, about {span} "
            f"at {_BAUD} baud")


# -- layouts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """Where a field's value lies: ``size`` bytes at ``offset``, optionally a bitfield."""

    offset: int
    size: int
    bit: int | None = None
    width: int | None = None

    def get(self, data: bytes | bytearray | memoryview, base: int = 0) -> int:
        at = base + self.offset
        value = int.from_bytes(data[at: at + self.size], "little")
        if self.bit is not None and self.width is not None:
            value = (value >> self.bit) & ((1 << self.width) - 1)
        return value


def _strip(info: Any) -> Any:
    for _ in range(16):
        if info is None or info.kind not in ("modifier", "typedef") or info.type is None:
            break
        info = info.type
    return info


class Layout:
    """A structure's size and the fields an extension reads from it."""

    def __init__(self, name: str, size: int, fields: dict[str, FieldSpec], source: str) -> None:
        self.name = name
        self.size = size
        self.fields = fields
        self.source = source

    def __getitem__(self, path: str) -> FieldSpec:
        return self.fields[path]

    def get(self, path: str, data: bytes | bytearray | memoryview, base: int = 0) -> int:
        return self.fields[path].get(data, base)

    @classmethod
    def load(cls, target: Target, module: str, name: str, paths: list[str]) -> Layout:
        """The ``paths`` of ``module!name``: from the PDB, or the built-in layout of the
        kernel's build while it has none (``Target.find_type`` gives either)."""
        info = _strip(target.find_type(f"{module}!{name}"))
        source = target.builtin_layout or "PDB"
        if info is not None and info.kind in ("struct", "union", "class") and info.size:
            try:
                return cls(name, info.size,
                           {p: _from_pdb(target, module, info, p) for p in paths}, source)
            except KeyError as exc:
                raise ExtensionFailed(f"{module}!{name} ({source}) has no field "
                                      f"{exc.args[0]}: not a layout this extension knows") from None
        raise ExtensionFailed(target.missing_type_message(f"{module}!{name}"))


def note_builtin(target: Target) -> None:
    """Say once per command when the kernel's layouts are built-in ones, not its PDB's."""
    if target.builtin_layout:
        target.warn(f"nt has no PDB types: using the built-in {target.builtin_layout} layouts")


def _from_pdb(target: Target, module: str, info: Any, path: str) -> FieldSpec:
    offset = 0
    current = info
    spec: FieldSpec | None = None
    for part in path.split("."):
        if current is None or current.kind not in ("struct", "union", "class"):
            raise KeyError(path)
        field = next((f for f in current.fields if f.name == part), None)
        if field is None:
            raise KeyError(path)
        offset += field.offset
        kind = _strip(field.type)
        if kind is not None and kind.kind in ("struct", "union", "class") and kind.forward \
                and kind.name:
            kind = _strip(target.find_type(f"{module}!{kind.name}")) or kind
        if field.bit_width is not None or (kind is not None and kind.kind == "bitfield"):
            base = _strip(kind.type) if kind is not None and kind.type is not None else None
            size = base.size if base is not None and base.size else 4
            bit = field.bit_position if field.bit_position is not None else kind.bit_position
            width = field.bit_width if field.bit_width is not None else kind.bit_width
            spec = FieldSpec(offset, size, bit, width)
        else:
            size = kind.size if kind is not None and kind.size else (
                kind.pointer_size if kind is not None and kind.pointer_size else 8)
            spec = FieldSpec(offset, size)
        current = kind
    assert spec is not None
    return spec


# -- kernel globals -----------------------------------------------------------------------------


def _debugger_data(target: Target) -> int | None:
    """The address of the kernel's KDDEBUGGER_DATA64, if it is where its symbol says."""
    block = target.symbol("nt!KdDebuggerDataBlock")
    if block is None:
        return None
    header = target.read(block, 0x18)
    if len(header) < 0x18 or struct.unpack_from("<I", header, 0x10)[0] != _KDBG_OWNER_TAG:
        return None
    return block


def kernel_global(target: Target, name: str) -> int:
    """The address of the kernel variable ``name``: its symbol, else the debugger data."""
    address = target.symbol(f"nt!{name}")
    if address is not None:
        return address
    offset = KDBG.get(name)
    block = _debugger_data(target) if offset is not None else None
    if block is not None:
        size = struct.unpack("<I", target.read_exact(block + 0x14, 4))[0]
        if offset + 8 <= size:
            value = target.u64(block + offset)
            if value:
                return value
    raise ExtensionFailed(f"nt!{name} is not known: are the kernel's symbols loaded "
                          f"(.reload /f nt)?")


def global_value(target: Target, name: str, size: int = 8) -> int:
    """The value of the kernel variable ``name`` (a pointer or an integer of ``size``)."""
    address = kernel_global(target, name)
    return target.u64(address) if size == 8 else target.u32(address)
