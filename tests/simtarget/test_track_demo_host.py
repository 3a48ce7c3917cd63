"""trackdemo on the host shim: load, IOCTLs and unload, in checked and free builds.

The leak report must list exactly the two planted leaks, with the lines marked
"planted leak" in trackdemo.c, byte for byte in track.md's format.
"""

from __future__ import annotations

import ctypes

import pytest

from tests.simtarget.track_host import (
    IOCTL_DUMP,
    IOCTL_LEAK,
    IOCTL_OVERWRITE,
    IOCTL_STATS,
    IOCTL_TICK,
    IOCTL_VALIDATE,
    TrackHost,
    marked_line,
)
from tests.simtarget.track_host.fixtures import checked, free, host_libraries  # noqa: F401
from tests.simtarget.track_host.reports import BANNER, planted_leak_report, stats_report
STATUS_INVALID_DEVICE_REQUEST = 0xC0000010 - (1 << 32)


def run_to_unload(host: TrackHost, *ioctls: int) -> str:
    assert host.HostLoad() == 0
    for code in ioctls:
        assert host.HostDeviceControl(code) == 0
    host.HostReset()
    host.HostUnload()
    return host.output()


@pytest.fixture(params=["checked", "free"])
def demo(request: pytest.FixtureRequest) -> TrackHost:
    return request.getfixturevalue(request.param)


def test_leak_report_lists_exactly_the_planted_leaks_checked(checked: TrackHost) -> None:
    text = run_to_unload(checked, IOCTL_TICK, IOCTL_LEAK, IOCTL_TICK, IOCTL_LEAK, IOCTL_TICK)
    assert text == "TrackDemo: unloading after 3 ticks\n" + planted_leak_report()


def test_leak_report_lists_exactly_the_planted_leaks_free(free: TrackHost) -> None:
    text = run_to_unload(free, IOCTL_TICK, IOCTL_LEAK, IOCTL_OVERWRITE, IOCTL_TICK)
    assert text == planted_leak_report()


def test_unload_without_planted_leaks_prints_no_report(demo: TrackHost) -> None:
    text = run_to_unload(demo, IOCTL_TICK, IOCTL_TICK)
    assert "Leaks" not in text
    assert demo.records() == []


def test_unload_releases_every_object_the_driver_made(demo: TrackHost) -> None:
    assert demo.HostLoad() == 0
    for code in (IOCTL_TICK, IOCTL_OVERWRITE, IOCTL_TICK):
        assert demo.HostDeviceControl(code) == 0
    demo.HostUnload()
    live: set[str] = set()
    for line in demo.call_log():
        name, *rest = line.split()
        if not rest or not rest[0].startswith("0x") or name == "IoBuildPartialMdl":
            continue
        # The shim logs a create and a release with the same value: toggle it.
        live ^= {rest[0]}
    assert live == set()
    assert demo.lock_violations() == 0


def test_driver_entry_breaks_in_only_with_a_debugger(checked: TrackHost) -> None:
    breaks = checked.global_int("HostBreakCount")
    assert checked.HostLoad() == 0
    assert breaks.value == 0
    checked.HostUnload()
    checked.global_int("HostKdFlag", ctypes.c_ubyte).value = 1
    assert checked.HostLoad() == 0
    assert breaks.value == 1


def test_checked_build_traces_and_free_build_is_quiet(checked: TrackHost, free: TrackHost) -> None:
    assert checked.HostLoad() == 0
    assert free.HostLoad() == 0
    assert checked.output().startswith("TrackDemo: DriverEntry\n")
    assert checked.output().endswith("TrackDemo: ready\n")
    assert free.output() == ""


def test_tick_is_quiet_and_counts(demo: TrackHost) -> None:
    assert demo.HostLoad() == 0
    demo.HostReset()
    for _ in range(5):
        assert demo.HostDeviceControl(IOCTL_TICK) == 0
    assert demo.output() == ""
    assert demo.global_int("TrackDemoTickCount").value == 5


def test_tick_goes_through_every_class(demo: TrackHost) -> None:
    assert demo.HostLoad() == 0
    before = (demo.memory_stats()["TotalCalls"], demo.class_stats("TrackResourceStats")["TotalCalls"],
              demo.class_stats("TrackHandleStats")["TotalCalls"])
    assert demo.HostDeviceControl(IOCTL_TICK) == 0
    after = (demo.memory_stats()["TotalCalls"], demo.class_stats("TrackResourceStats")["TotalCalls"],
             demo.class_stats("TrackHandleStats")["TotalCalls"])
    # Two pool blocks allocated and freed; a string and an MDL; a directory handle.
    assert [b - a for a, b in zip(before, after)] == [4, 4, 2]


def test_unknown_ioctl_is_refused(demo: TrackHost) -> None:
    assert demo.HostLoad() == 0
    assert demo.HostDeviceControl(0x222018) == STATUS_INVALID_DEVICE_REQUEST


def test_overwrite_ioctl_reports_and_asserts_in_checked_build(checked: TrackHost) -> None:
    assert checked.HostLoad() == 0
    checked.HostReset()
    assert checked.HostDeviceControl(IOCTL_OVERWRITE) == 0
    line = marked_line("overwritten block")
    assert checked.output().startswith(
        "Starting to validate allocations.  This could crash if your driver\n"
        "attempts to allocate/free resources while validating.\n"
        "Track Error ****************\n"
        "Memory Overwrite corruption\n"
        f"Allocation point: trackdemo\\trackdemo.c, line {line}\n"
        "Track Error ****************\n"
        "\n*** Assertion failed: Corrupt Memory\n"
        "***   Source File: track\\trackmemory.c, line "
    )
    count, text, source, _ = checked.asserts()
    assert (count, text, source) == (1, "Corrupt Memory", "track\\trackmemory.c")


def test_overwrite_ioctl_reports_without_assertion_in_free_build(free: TrackHost) -> None:
    assert free.HostLoad() == 0
    assert free.HostDeviceControl(IOCTL_OVERWRITE) == 0
    assert "Memory Overwrite corruption\n" in free.output()
    assert free.asserts()[0] == 0


def test_validate_ioctl_reports_the_overwrite_again(checked: TrackHost) -> None:
    assert checked.HostLoad() == 0
    assert checked.HostDeviceControl(IOCTL_OVERWRITE) == 0
    checked.HostReset()
    assert checked.HostDeviceControl(IOCTL_VALIDATE) == 0
    assert checked.output().count("Memory Overwrite corruption\n") == 1
    assert checked.asserts()[0] == 1


def test_stats_ioctl_prints_the_statistics(demo: TrackHost) -> None:
    assert demo.HostLoad() == 0
    assert demo.HostDeviceControl(IOCTL_LEAK) == 0
    demo.HostReset()
    assert demo.HostDeviceControl(IOCTL_STATS) == 0
    memory = demo.memory_stats()
    resource = demo.class_stats("TrackResourceStats")
    handle = demo.class_stats("TrackHandleStats")
    assert demo.output() == stats_report(
        (memory["TotalCalls"], memory["CurrentCount"], memory["BytesAllocated"],
         memory["PeakBytes"]),
        (resource["TotalCalls"], resource["CurrentCount"]),
        (handle["TotalCalls"], handle["CurrentCount"]),
    )
    # Live after DriverEntry and LEAK: the work buffer and the 20-byte leak; the device
    # and the leaked string; the notification event.
    assert (memory["CurrentCount"], memory["BytesAllocated"]) == (2, 256 + 20)
    assert (resource["CurrentCount"], handle["CurrentCount"]) == (2, 1)


def test_dump_ioctl_lists_every_live_record(demo: TrackHost) -> None:
    assert demo.HostLoad() == 0
    assert demo.HostDeviceControl(IOCTL_LEAK) == 0
    demo.HostReset()
    assert demo.HostDeviceControl(IOCTL_DUMP) == 0
    text = demo.output()
    records = demo.records()
    assert text.startswith(BANNER + "Track Live Allocations/Resources:\n" + BANNER)
    assert text.endswith(f"Live records: {len(records)}\n")
    assert len(records) == 5
    values = [line.split(": ")[1] for line in text.splitlines() if line.startswith("   Value")]
    assert values == [f"{r.value >> 32:08x}`{r.value & 0xFFFFFFFF:08x}" for r in records]


def test_verify_evaluates_in_both_builds_and_asserts_only_in_checked(
    checked: TrackHost, free: TrackHost
) -> None:
    for host in (checked, free):
        assert host.HostLoad() == 0
        host.global_int("HostFailClose").value = 1
        host.HostReset()
        host.HostUnload()
        assert any(line.startswith("ZwClose") for line in host.call_log())
    count, text, source, line = checked.asserts()
    assert (count, text, source) == (
        1, "NT_SUCCESS(TrackZwClose(extension->EventHandle))", "trackdemo\\trackdemo.c",
    )
    assert line == marked_line("VERIFY(NT_SUCCESS(TrackZwClose(extension->EventHandle)))")
    assert free.asserts()[0] == 0
