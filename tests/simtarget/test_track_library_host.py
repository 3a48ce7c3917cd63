"""The Track library on the host shim, driven call by call through ctypes.

Covers the record format (source names cut to their last 40 characters), guard bytes
and the three corruption reports, wrong-function and unknown releases, statistics and
the locking rule (no release while Track's spin lock is held).
"""

from __future__ import annotations

import ctypes

import pytest

from tests.simtarget.track_host import TrackHost, allocator_names
from tests.simtarget.track_host.fixtures import checked, free, host_libraries  # noqa: F401
from tests.simtarget.track_host.reports import leak_report, record_text

FILE = b"d:\\dev\\trackdemo\\trackdemo.c"
TAG = 0x6F6D6544
STATUS_INVALID_HANDLE = 0xC0000008 - (1 << 32)
VALIDATE_HEADER = (
    "Starting to validate allocations.  This could crash if your driver\n"
    "attempts to allocate/free resources while validating.\n"
)


@pytest.fixture
def track(checked: TrackHost) -> TrackHost:
    checked.Track_Initialize()
    return checked


def corruption_report(kind: str, line: int) -> str:
    return (
        "Track Error ****************\n"
        f"Memory {kind} corruption\n"
        f"Allocation point: d:\\dev\\trackdemo\\trackdemo.c, line {line}\n"
        "Track Error ****************\n"
    )


def test_long_source_names_keep_their_last_40_characters(track: TrackHost) -> None:
    long_name = b"C:\\build\\agent\\work\\1234\\drivers\\storage\\trackdemo\\trackdemo.c"
    block = track.Track_ExAllocatePoolWithTag(0, 8, TAG, long_name, 7)
    track.Track_ExAllocatePoolWithTag(0, 8, TAG, FILE, 9)
    newest, oldest = track.records()
    assert oldest.source == long_name.decode()[-40:]
    assert len(oldest.source) == 40
    assert newest.source == FILE.decode()
    track.Track_ExFreePool(block, FILE, 10)
    assert [r.line for r in track.records()] == [9]


def test_exactly_40_characters_are_kept_whole(track: TrackHost) -> None:
    name = b"x" * 32 + b"\\track.c"
    assert len(name) == 40
    track.Track_ExAllocatePool(0, 1, name, 1)
    assert track.records()[0].source == name.decode()


def test_guards_surround_the_callers_block(track: TrackHost) -> None:
    size = 13
    block = track.Track_ExAllocatePoolWithTag(0, size, TAG, FILE, 1)
    guard = track.global_int("TrackGuardSize", ctypes.c_uint32).value
    fill = track.global_int("TrackGuardFill", ctypes.c_ubyte).value
    assert (guard, fill) == (16, 0xFD)
    assert block % 16 == 0
    assert ctypes.string_at(block - guard, guard) == bytes([fill]) * guard
    assert ctypes.string_at(block + size, guard) == bytes([fill]) * guard
    record = track.records()[0]
    assert (record.value, record.size, record.flags) == (block, size, 0x3)
    # The real allocator was asked for the guards too.
    real = [line for line in track.call_log() if line.startswith("ExAllocatePoolWithTag")]
    assert real == [f"ExAllocatePoolWithTag {block - guard:#x} {size + 2 * guard}"]


@pytest.mark.parametrize(
    ("under", "over", "kind"),
    [(True, False, "Underwrite"), (False, True, "Overwrite"), (True, True, "Underwrite and Overwrite")],
)
def test_damaged_guards_are_reported_then_asserted(
    track: TrackHost, under: bool, over: bool, kind: str
) -> None:
    intact = track.Track_ExAllocatePoolWithTag(0, 32, TAG, FILE, 100)
    block = track.Track_ExAllocatePoolWithQuota(1, 10, FILE, 536)
    if under:
        ctypes.memset(block - 1, 0, 1)
    if over:
        ctypes.memset(block + 10, 0x41, 3)
    track.HostReset()
    track.Track_ValidateAllocated()
    count, text, source, _ = track.asserts()
    assert track.output().startswith(VALIDATE_HEADER + corruption_report(kind, 536)
                                     + "\n*** Assertion failed: Corrupt Memory\n")
    assert (count, text, source) == (1, "Corrupt Memory", "track\\trackmemory.c")
    assert intact is not None


def test_every_damaged_block_is_reported_before_one_assertion(track: TrackHost) -> None:
    first = track.Track_ExAllocatePool(0, 4, FILE, 1)
    second = track.Track_MmAllocateNonCachedMemory(4, FILE, 2)
    ctypes.memset(first + 4, 0, 1)
    ctypes.memset(second - 16, 0, 1)
    track.HostReset()
    track.Track_ValidateAllocated()
    assert track.output().startswith(
        VALIDATE_HEADER + corruption_report("Underwrite", 2) + corruption_report("Overwrite", 1)
    )
    assert track.asserts()[0] == 1


def test_intact_guards_validate_silently(track: TrackHost) -> None:
    for n in (0, 1, 15, 16, 17, 4096):
        ctypes.memset(track.Track_ExAllocatePool(0, n, FILE, n), 0x55, n)
    track.HostReset()
    track.Track_ValidateAllocated()
    assert track.output() == VALIDATE_HEADER
    assert track.asserts()[0] == 0


def test_validation_above_passive_level_checks_nothing(track: TrackHost) -> None:
    block = track.Track_ExAllocatePool(0, 4, FILE, 1)
    ctypes.memset(block + 4, 0, 1)
    track.set_irql(2)
    track.HostReset()
    track.Track_ValidateAllocated()
    # The IRQL assertion fires; the walk does not happen.
    assert track.asserts()[1] == "KeGetCurrentIrql() == PASSIVE_LEVEL"
    assert "corruption" not in track.output()
    assert "needs PASSIVE_LEVEL; nothing was checked.\n" in track.output()


def test_wrong_function_release_is_reported_and_skipped(track: TrackHost) -> None:
    mapped = track.Track_MmMapIoSpace(0xFED00000, 64, 0, FILE, 448)
    track.HostReset()
    track.Track_ExFreePool(mapped, b"caller.c", 77)
    assert track.output().startswith(
        "The object created in d:\\dev\\trackdemo\\trackdemo.c, line 448 cannot be deleted "
        "with ExFreePool.\n\n*** Assertion failed: Invalid delete\n"
    )
    # The assertion names the call site that tried the wrong release.
    assert track.asserts() == (1, "Invalid delete", "caller.c", 77)
    assert not any(line.startswith("ExFreePool") for line in track.call_log())
    assert [r.value for r in track.records()] == [mapped]
    track.Track_MmUnmapIoSpace(mapped, 64, FILE, 450)
    assert track.records() == []
    assert f"MmUnmapIoSpace {mapped:#x}" in track.call_log()


def test_wrong_release_in_free_build_prints_without_asserting(free: TrackHost) -> None:
    free.Track_Initialize()
    event_handle = ctypes.c_void_p()
    free.Track_IoCreateNotificationEvent(None, ctypes.byref(event_handle), FILE, 12)
    free.Track_ExFreePool(event_handle.value, FILE, 13)
    assert free.output() == (
        "The object created in d:\\dev\\trackdemo\\trackdemo.c, line 12 cannot be deleted "
        "with ExFreePool.\n"
    )
    assert free.asserts()[0] == 0


def test_zwclose_of_a_pool_block_is_refused(track: TrackHost) -> None:
    block = track.Track_ExAllocatePoolWithTag(0, 8, TAG, FILE, 5)
    assert track.Track_ZwClose(block, FILE, 6) == STATUS_INVALID_HANDLE
    assert "cannot be deleted with ZwClose.\n" in track.output()
    assert not any(line.startswith("ZwClose") for line in track.call_log())


def test_unknown_release_is_passed_through_untouched(track: TrackHost) -> None:
    untracked = track.ExAllocatePoolWithTag(0, 24, TAG)
    track.HostReset()
    track.Track_ExFreePool(untracked, FILE, 3)
    assert track.call_log() == [f"ExFreePool {untracked:#x}"]
    assert track.output() == ""
    assert track.memory_stats()["TotalCalls"] == 1
    handle = 0x1234
    assert track.Track_ZwClose(handle, FILE, 4) == 0
    assert track.call_log()[-1] == f"ZwClose {handle:#x}"


def test_released_guarded_block_goes_back_from_its_real_start(track: TrackHost) -> None:
    block = track.Track_MmAllocateNonCachedMemory(100, FILE, 1)
    track.HostReset()
    track.Track_MmFreeNonCachedMemory(block, 100, FILE, 2)
    log = track.call_log()
    assert log[0] == "MmFreeNonCachedMemory size 132"
    assert log[1] == f"MmFreeNonCachedMemory {block - 16:#x}"


def test_statistics_count_calls_live_objects_bytes_and_peak(track: TrackHost) -> None:
    a = track.Track_ExAllocatePoolWithTag(0, 100, TAG, FILE, 1)
    b = track.Track_ExAllocatePool(1, 50, FILE, 2)
    track.Track_ExFreePool(a, FILE, 3)
    c = track.Track_MmAllocateContiguousMemory(30, 0xFFFFFFFF, FILE, 4)
    assert track.memory_stats() == {
        "TotalCalls": 4, "CurrentCount": 2, "BytesAllocated": 80, "PeakBytes": 150,
    }
    mdl = track.Track_IoAllocateMdl(c, 30, 0, 0, None, FILE, 5)
    track.Track_IoBuildPartialMdl(mdl, mdl, c, 8, FILE, 6)
    key = ctypes.c_void_p()
    assert track.Track_ZwOpenKey(ctypes.byref(key), 0x20019, None, FILE, 7) == 0
    assert track.class_stats("TrackResourceStats") == {"TotalCalls": 2, "CurrentCount": 1}
    assert track.class_stats("TrackHandleStats") == {"TotalCalls": 1, "CurrentCount": 1}
    track.Track_ZwClose(key.value, FILE, 8)
    track.Track_IoFreeMdl(mdl, FILE, 9)
    track.Track_MmFreeContiguousMemory(c, FILE, 10)
    track.Track_ExFreePool(b, FILE, 11)
    assert track.memory_stats() == {
        "TotalCalls": 6, "CurrentCount": 0, "BytesAllocated": 0, "PeakBytes": 150,
    }
    assert track.class_stats("TrackResourceStats") == {"TotalCalls": 3, "CurrentCount": 0}
    assert track.class_stats("TrackHandleStats") == {"TotalCalls": 2, "CurrentCount": 0}
    assert track.lock_violations() == 0


def test_failed_allocations_are_counted_but_not_recorded(track: TrackHost) -> None:
    track.fail_allocations(True)
    assert track.Track_ExAllocatePoolWithTag(0, 10, TAG, FILE, 1) is None
    assert track.Track_MmMapIoSpace(0, 10, 0, FILE, 2) is None
    assert track.records() == []
    assert track.memory_stats()["TotalCalls"] == 1
    assert track.class_stats("TrackResourceStats")["TotalCalls"] == 1


def test_records_are_newest_first_with_their_allocator(track: TrackHost) -> None:
    names = allocator_names()
    track.Track_ExAllocatePoolWithQuotaTag(0, 1, TAG, FILE, 1)
    track.Track_MmMapIoSpace(0x1000, 4096, 0, FILE, 2)
    handle = ctypes.c_void_p()
    track.Track_IoCreateNotificationEvent(None, ctypes.byref(handle), FILE, 3)
    records = track.records()
    assert [names[r.allocator] for r in records] == [
        "IoCreateNotificationEvent", "MmMapIoSpace", "ExAllocatePoolWithQuotaTag",
    ]
    assert [r.line for r in records] == [3, 2, 1]
    assert records[0].value == handle.value
    assert [r.flags for r in records] == [0, 0x1, 0x3]


def test_close_reports_sizes_only_where_records_have_them(track: TrackHost) -> None:
    track.Track_MmMapIoSpace(0x1000, 4096, 0, FILE, 20)
    track.Track_IoAllocateMdl(None, 16, 0, 0, None, FILE, 21)
    track.HostReset()
    track.Track_Close()
    source = FILE.decode()
    assert track.output() == leak_report([
        record_text("IoAllocateMdl", source, 21),
        record_text("MmMapIoSpace", source, 20, 4096),
    ])


def test_close_frees_every_record_and_stops_tracking(track: TrackHost) -> None:
    for n in range(5):
        track.Track_ExAllocatePool(0, n, FILE, n)
    track.Track_Close()
    log = track.call_log()
    made = [line.split()[1] for line in log if line.startswith("TrackRecord")]
    freed = {line.split()[1] for line in log if line.startswith("ExFreePool")}
    assert len(made) == 5 and set(made) <= freed
    assert track.records() == []
    assert track.global_int("TrackInitialized", ctypes.c_ubyte).value == 0
    # After TRACKCLOSE the wrappers only pass calls through.
    track.HostReset()
    block = track.Track_ExAllocatePool(0, 8, FILE, 99)
    assert track.call_log() == [f"ExAllocatePool {block:#x} 8"]


def test_nothing_is_released_under_the_spin_lock(track: TrackHost) -> None:
    blocks = [track.Track_ExAllocatePool(0, 8, FILE, n) for n in range(3)]
    mapped = track.Track_MmMapIoSpace(0, 8, 0, FILE, 4)
    track.Track_ExFreePool(mapped, FILE, 5)
    track.Track_Stats()
    track.Track_DumpAllocated()
    track.Track_ValidateAllocated()
    for block in blocks:
        track.Track_ExFreePool(block, FILE, 6)
    track.Track_Close()
    assert track.asserts()[0] == 1
    assert track.lock_violations() == 0
    assert track.global_int("HostLockHeld").value == 0


def test_calls_before_initialisation_are_passed_through(checked: TrackHost) -> None:
    block = checked.Track_ExAllocatePool(0, 8, FILE, 1)
    checked.Track_ExFreePool(block, FILE, 2)
    assert checked.call_log() == [f"ExAllocatePool {block:#x} 8", f"ExFreePool {block:#x}"]
    assert checked.records() == []
