"""KUSER_SHARED_DATA at 0xFFFFF780'00000000, as Windows x64 keeps it: the kernel fills
its fixed fields at startup and brings the clocks up to date on each pass of the system
loop, so a debugger that stops the machine reads the time of the last pass."""

from __future__ import annotations

import struct

from kdcon.tools.simtarget import layout

from .simhelpers import boot_testdrv, run_until_quiet

SHARED = 0xFFFFF78000000000
TIME_INCREMENT = 156250        # nt!KeTimeIncrement: 15.625 ms in 100 ns units


def _system_time(machine, offset: int) -> int:
    low, high1, high2 = struct.unpack("<Iii", machine.read_virtual(SHARED + offset, 12))
    assert high1 == high2       # written whole: High2Time, LowPart, High1Time
    return (high1 << 32) | low


def test_the_clocks_follow_the_guests_time_and_the_fixed_fields_are_windows_7s():
    machine = boot_testdrv()
    run_until_quiet(machine)
    first = _system_time(machine, 0x08)
    run_until_quiet(machine)
    interrupt = _system_time(machine, 0x08)
    assert 0 < first < interrupt <= machine.ports.time_100ns
    assert _system_time(machine, 0x14) == layout.SYSTEM_TIME_AT_BOOT + interrupt
    assert _system_time(machine, 0x320) == interrupt // TIME_INCREMENT
    assert _system_time(machine, 0x20) == 0                      # UTC
    major, minor = struct.unpack("<II", machine.read_virtual(SHARED + 0x26C, 8))
    assert (major, minor) == (6, 1)
    assert machine.read_virtual(SHARED + 0x2D4, 1) == b"\x03"     # KdDebuggerEnabled
    root = machine.read_virtual(SHARED + 0x30, 22).decode("utf-16-le")
    assert root == "C:\\Windows\x00"
    # The tick count in ms is TickCount * TickCountMultiplier >> 24: 15.625 ms a tick.
    multiplier, = struct.unpack("<I", machine.read_virtual(SHARED + 4, 4))
    assert multiplier / (1 << 24) == TIME_INCREMENT / 10000
