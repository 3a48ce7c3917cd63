"""Track's report texts as the tests expect them (track.md "Report formats", README).

One place for the expected leak, statistics and dump texts, so the host tests and the
machine tests compare against the same strings.
"""

from __future__ import annotations

from tests.simtarget.track_host import marked_line

__all__ = [
    "BANNER",
    "dump_report",
    "leak_report",
    "planted_leak_report",
    "record_text",
    "stats_report",
]

BANNER = "*" * 40 + "\n"


def record_text(allocator: str, source: str, line: int, size: int | None = None,
                value: int | None = None) -> str:
    """One record as the leak report (no value) or the dump (with value) prints it."""
    text = f"AllocatorFn : {allocator}\n   Source   : {source}\n   Line     : {line}\n"
    if size is not None:
        text += f"   Size     : {size}\n"
    if value is not None:
        text += f"   Value    : {value >> 32:08x}`{value & 0xFFFFFFFF:08x}\n"
    return text


def leak_report(records: list[str]) -> str:
    return BANNER + "Track Reports Allocation/Resource Leaks:\n" + BANNER + "".join(records)


def planted_leak_report() -> str:
    """trackdemo's leak report after IOCTL_TRACKDEMO_LEAK: the string, then the block."""
    source = "trackdemo\\trackdemo.c"
    return leak_report([
        record_text("RtlAnsiStringToUnicodeString", source, marked_line("planted leak: resource")),
        record_text("ExAllocatePoolWithTag", source, marked_line("planted leak: memory"), 20),
    ])


def stats_report(memory: tuple[int, int, int, int], resource: tuple[int, int],
                 handle: tuple[int, int]) -> str:
    """TRACKSTATS from (calls, live, bytes, peak), (calls, live) and (calls, live)."""
    calls, live, allocated, peak = memory
    return (
        BANNER + "Track Statistics:\n" + BANNER
        + f"Bytes Allocated : {allocated}\nPeak Bytes      : {peak}\n"
        + f"Memory          : {calls} calls, {live} live\n"
        + f"Resource        : {resource[0]} calls, {resource[1]} live\n"
        + f"Handle          : {handle[0]} calls, {handle[1]} live\n"
    )


def dump_report(records: list[str]) -> str:
    return (BANNER + "Track Live Allocations/Resources:\n" + BANNER + "".join(records)
            + f"Live records: {len(records)}\n")
