"""``.time`` reads KUSER_SHARED_DATA's clocks and prints kd's two lines: the target's
local time (SystemTime less TimeZoneBias, or the ``-h`` offset) and its uptime
(InterruptTime). A target that does not map the page gets one line saying so."""

from __future__ import annotations

import calendar
import io
import struct

import pytest

from kdcon.app import App
from kdcon.output import Output
from kdcon.tools.simtarget.hostile import HostileTarget

SHARED = 0xFFFFF78000000000
# 2025-09-09 08:41:26.237 UTC, seven hours west of UTC: 01:41:26.237 local.
UTC_SECONDS = calendar.timegm((2025, 9, 9, 8, 41, 26))
SYSTEM_TIME = (UTC_SECONDS + 11_644_473_600) * 10_000_000 + 2_370_000
BIAS = 7 * 3600 * 10_000_000
# 1 day, 2 h, 3 min, 4.005 s since boot.
INTERRUPT_TIME = ((86_400 + 2 * 3600 + 3 * 60 + 4) * 1000 + 5) * 10_000


def _ksystem_time(value: int, *, torn: bool = False) -> bytes:
    high = value >> 32
    return struct.pack("<Iii", value & 0xFFFFFFFF, high, high + 1 if torn else high)


def _shared_page(address: int, want: int) -> bytes | None:
    if not SHARED <= address < SHARED + 0x1000:
        return None
    page = bytearray(0x1000)
    page[0x08:0x14] = _ksystem_time(INTERRUPT_TIME)
    page[0x14:0x20] = _ksystem_time(SYSTEM_TIME, torn=True)
    page[0x20:0x2C] = _ksystem_time(BIAS)
    offset = address - SHARED
    return bytes(page[offset:offset + want])


def _unmapped(address: int, want: int) -> bytes | None:
    return b"" if SHARED <= address < SHARED + 0x1000 else None


def _run(target: HostileTarget, line: str) -> tuple[bool, str]:
    screen = io.StringIO()
    app = App(target.connect(), link_name="hostile", output=Output(screen),
              echo_commands=False)
    try:
        app.connect()
        mark = len(screen.getvalue())
        ok = app.run_line(line)
        return ok, screen.getvalue()[mark:]
    finally:
        app.close()
        target.close()


def test_time_shows_the_targets_local_time_and_uptime():
    ok, shown = _run(HostileTarget(overlays=[_shared_page]), ".time")
    assert ok
    assert shown == ("Debug session time: Tue Sep  9 01:41:26.237 2025 (UTC - 7:00)\n"
                     "System Uptime: 1 days 2:03:04.005\n")


@pytest.mark.parametrize("line, first", [
    (".time -h 2", "Debug session time: Tue Sep  9 10:41:26.237 2025 (UTC + 2:00)"),
    (".time -h (-5)", "Debug session time: Tue Sep  9 03:41:26.237 2025 (UTC - 5:00)"),
])
def test_time_h_puts_the_given_offset_in_place_of_the_targets(line, first):
    ok, shown = _run(HostileTarget(overlays=[_shared_page]), line)
    assert ok
    assert shown.splitlines()[0] == first


def test_time_on_a_target_without_the_shared_page_says_so_in_one_line():
    ok, shown = _run(HostileTarget(overlays=[_unmapped]), ".time")
    assert not ok
    assert shown == "Unable to read KUSER_SHARED_DATA at fffff780`00000000\n"


def test_time_on_the_simulated_kernel_reads_the_page_its_kernel_keeps():
    from .transcripts import batch

    text, status = batch("bp trackdemo!TrackDemoTick", "g", "g", ".time",
                         "dd 0xfffff78000000008 L3")
    assert status == 0
    shown = text.split("kd> .time\n", 1)[1].splitlines()[:2]
    low, high1, high2 = (int(word, 16) for word in
                         text.split("kd> dd 0xfffff78000000008 L3\n", 1)[1].split()[1:4])
    assert high1 == high2
    ms = ((high1 << 32) | low) // 10_000
    assert ms > 0
    assert shown == [f"Debug session time: Mon Dec 29 16:00:{ms // 1000:02d}.{ms % 1000:03d} 2025 "
                     "(UTC + 0:00)",
                     f"System Uptime: 0 days 0:00:{ms // 1000:02d}.{ms % 1000:03d}"]
