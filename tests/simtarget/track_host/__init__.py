"""Host build of Track and trackdemo for tests that need no simulated kernel.

``build_library`` compiles every C source of Track and trackdemo together with the libc
shim in this folder into a shared library with the host's gcc; ``TrackHost`` loads one
private copy of it with ctypes (fresh globals per test) and gives the tests the shim's
recordings plus a debugger's view of Track's globals: the statistics blocks and the
TrackRecordList chain, read through the same fixed layouts the PDB describes.
"""

from __future__ import annotations

import ctypes
import itertools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import kdcon.tools.simtarget

__all__ = [
    "DEMO_SOURCE",
    "SOURCE_ROOT",
    "TrackHost",
    "TrackRecordView",
    "allocator_names",
    "build_library",
    "c_sources",
    "marked_line",
]

SOURCE_ROOT = Path(kdcon.tools.simtarget.__file__).resolve().parent / "src"
DEMO_SOURCE = SOURCE_ROOT / "trackdemo" / "trackdemo.c"
SHIM_ROOT = Path(__file__).resolve().parent

IOCTL_TICK = 0x222000
IOCTL_LEAK = 0x222004
IOCTL_OVERWRITE = 0x222008
IOCTL_STATS = 0x22200C
IOCTL_DUMP = 0x222010
IOCTL_VALIDATE = 0x222014

_copies = itertools.count()


def c_sources() -> list[Path]:
    """Every C file the simulated kernel's build puts into trackdemo.sys."""
    return sorted((SOURCE_ROOT / "track").glob("*.c")) + sorted(
        (SOURCE_ROOT / "trackdemo").glob("*.c")
    )


def build_library(gcc: str, out_dir: Path, dbg: int) -> Path:
    """Compile Track, trackdemo and the shim into ``out_dir`` (checked when dbg=1)."""
    out = out_dir / f"libtrackhost_dbg{dbg}.so"
    command = [
        gcc, "-std=c11", "-shared", "-fPIC", "-O1", f"-DDBG={dbg}",
        "-Wall", "-Wextra", "-Werror",
        "-I", str(SOURCE_ROOT / "track"), "-I", str(SOURCE_ROOT / "trackdemo"),
        *map(str, c_sources()), *map(str, sorted(SHIM_ROOT.glob("*.c"))),
        "-o", str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"host build failed:\n{result.stderr}")
    return out


def marked_line(marker: str, source: Path = DEMO_SOURCE) -> int:
    """1-based number of the only line of ``source`` that contains ``marker``."""
    hits = [n for n, text in enumerate(source.read_text().splitlines(), 1) if marker in text]
    if len(hits) != 1:
        raise AssertionError(f"{marker!r} marks {len(hits)} lines of {source.name}")
    return hits[0]


class _ListEntry(ctypes.Structure):
    pass


_ListEntry._fields_ = [
    ("Flink", ctypes.POINTER(_ListEntry)),
    ("Blink", ctypes.POINTER(_ListEntry)),
]


class _TrackRecord(ctypes.Structure):
    # TRACK_RECORD, track.h: the layout the debugger extensions read.
    _fields_ = [
        ("ListEntry", _ListEntry),
        ("Value", ctypes.c_uint64),
        ("Size", ctypes.c_uint64),
        ("Allocator", ctypes.c_uint32),
        ("Line", ctypes.c_uint32),
        ("Flags", ctypes.c_uint32),
        ("Source", ctypes.c_char * 41),
    ]


class _TrackStats(ctypes.Structure):
    _fields_ = [("TotalCalls", ctypes.c_uint32), ("CurrentCount", ctypes.c_uint32)]


class _TrackMemoryStats(ctypes.Structure):
    _fields_ = [
        ("TotalCalls", ctypes.c_uint32),
        ("CurrentCount", ctypes.c_uint32),
        ("BytesAllocated", ctypes.c_uint64),
        ("PeakBytes", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class TrackRecordView:
    """One TRACK_RECORD as a debugger would read it from memory."""

    address: int
    value: int
    size: int
    allocator: int
    line: int
    flags: int
    source: str


_FILE = ctypes.c_char_p
_LINE = ctypes.c_uint32


class TrackHost:
    """A private copy of the host library, with typed access to what tests need."""

    def __init__(self, library: Path, scratch: Path) -> None:
        copy = scratch / f"{library.stem}_{next(_copies)}.so"
        shutil.copyfile(library, copy)
        self.lib = ctypes.CDLL(str(copy))
        self._declare()

    def _declare(self) -> None:
        lib = self.lib
        p, size, ulong = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32
        signatures = {
            "Track_ExAllocatePool": (p, [ctypes.c_int, size, _FILE, _LINE]),
            "Track_ExAllocatePoolWithTag": (p, [ctypes.c_int, size, ulong, _FILE, _LINE]),
            "Track_ExAllocatePoolWithQuota": (p, [ctypes.c_int, size, _FILE, _LINE]),
            "Track_ExAllocatePoolWithQuotaTag": (p, [ctypes.c_int, size, ulong, _FILE, _LINE]),
            "Track_ExFreePool": (None, [p, _FILE, _LINE]),
            "Track_MmAllocateContiguousMemory": (p, [size, ctypes.c_int64, _FILE, _LINE]),
            "Track_MmAllocateNonCachedMemory": (p, [size, _FILE, _LINE]),
            "Track_MmFreeContiguousMemory": (None, [p, _FILE, _LINE]),
            "Track_MmFreeNonCachedMemory": (None, [p, size, _FILE, _LINE]),
            "Track_MmMapIoSpace": (p, [ctypes.c_int64, size, ctypes.c_int, _FILE, _LINE]),
            "Track_MmUnmapIoSpace": (None, [p, size, _FILE, _LINE]),
            "Track_IoAllocateMdl": (p, [p, ulong, ctypes.c_ubyte, ctypes.c_ubyte, p, _FILE, _LINE]),
            "Track_IoBuildPartialMdl": (None, [p, p, p, ulong, _FILE, _LINE]),
            "Track_IoFreeMdl": (None, [p, _FILE, _LINE]),
            "Track_MmMapLockedPages": (p, [p, ctypes.c_byte, _FILE, _LINE]),
            "Track_MmUnmapLockedPages": (None, [p, p, _FILE, _LINE]),
            "Track_ZwClose": (ctypes.c_int32, [p, _FILE, _LINE]),
            "Track_IoCreateNotificationEvent": (p, [p, ctypes.POINTER(p), _FILE, _LINE]),
            "Track_ZwOpenKey": (ctypes.c_int32, [ctypes.POINTER(p), ulong, p, _FILE, _LINE]),
            "ExAllocatePoolWithTag": (p, [ctypes.c_int, size, ulong]),
            "HostLoad": (ctypes.c_int, []),
            "HostDeviceControl": (ctypes.c_int, [ulong]),
            "HostUnload": (None, []),
            "HostReset": (None, []),
        }
        for name, (restype, argtypes) in signatures.items():
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
        for name in ("Track_Initialize", "Track_Stats", "Track_DumpAllocated",
                     "Track_ValidateAllocated", "Track_Close"):
            getattr(lib, name).restype = None
            getattr(lib, name).argtypes = []

    def __getattr__(self, name: str):
        return getattr(self.lib, name)

    def global_int(self, name: str, ctype=ctypes.c_int):
        return ctype.in_dll(self.lib, name)

    # What the shim recorded.
    def output(self) -> str:
        length = ctypes.c_size_t.in_dll(self.lib, "HostOutputLength").value
        return ctypes.string_at(ctypes.addressof(ctypes.c_char.in_dll(self.lib, "HostOutput")),
                                length).decode()

    def call_log(self) -> list[str]:
        length = ctypes.c_size_t.in_dll(self.lib, "HostCallLogLength").value
        text = ctypes.string_at(
            ctypes.addressof(ctypes.c_char.in_dll(self.lib, "HostCallLog")), length
        ).decode()
        return text.splitlines()

    def asserts(self) -> tuple[int, str, str, int]:
        lib = self.lib
        return (
            ctypes.c_int.in_dll(lib, "HostAssertCount").value,
            ctypes.c_char_p(ctypes.addressof(ctypes.c_char.in_dll(lib, "HostAssertText"))).value.decode(),
            ctypes.c_char_p(ctypes.addressof(ctypes.c_char.in_dll(lib, "HostAssertFile"))).value.decode(),
            ctypes.c_uint.in_dll(lib, "HostAssertLine").value,
        )

    def lock_violations(self) -> int:
        return ctypes.c_int.in_dll(self.lib, "HostLockViolations").value

    def set_irql(self, irql: int) -> None:
        ctypes.c_ubyte.in_dll(self.lib, "HostIrql").value = irql

    def fail_allocations(self, fail: bool) -> None:
        ctypes.c_int.in_dll(self.lib, "HostFailAllocations").value = int(fail)

    # A debugger's view of Track's globals.
    def memory_stats(self) -> dict[str, int]:
        stats = _TrackMemoryStats.in_dll(self.lib, "TrackMemoryStats")
        return {name: getattr(stats, name) for name, _ in stats._fields_}

    def class_stats(self, name: str) -> dict[str, int]:
        stats = _TrackStats.in_dll(self.lib, name)
        return {field: getattr(stats, field) for field, _ in stats._fields_}

    def records(self) -> list[TrackRecordView]:
        """Walk TrackRecordList by Flink, newest record first."""
        head = _ListEntry.in_dll(self.lib, "TrackRecordList")
        head_address = ctypes.addressof(head)
        views: list[TrackRecordView] = []
        link = ctypes.cast(head.Flink, ctypes.c_void_p).value
        while link is not None and link != head_address:
            record = _TrackRecord.from_address(link)  # ListEntry is at offset 0
            views.append(TrackRecordView(
                address=link, value=record.Value, size=record.Size,
                allocator=record.Allocator, line=record.Line, flags=record.Flags,
                source=record.Source.decode(),
            ))
            link = ctypes.cast(record.ListEntry.Flink, ctypes.c_void_p).value
            if len(views) > 100000:
                raise AssertionError("TrackRecordList does not come back to its head")
        return views


def allocator_names() -> dict[int, str]:
    """TRACK_FUNCTION enumerators from track.h: value -> function name."""
    text = (SOURCE_ROOT / "track" / "track.h").read_text()
    return {int(v): n for n, v in re.findall(r"TrackFn(\w+) = (\d+),", text) if n != "Count"}
