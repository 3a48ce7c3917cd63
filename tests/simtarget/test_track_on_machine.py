"""trackdemo on the simulated machine: the committed x64 images, run by the kernel.

What the debugger side will rely on, checked without any protocol: DriverEntry breaks
in first, the system loop's requests produce Track's reports, the leak report at
unload lists exactly the planted leaks, and the statistics and record list read from
target memory through the driver's PDB (as !trackstats and !trackdump will) equal what
TRACKSTATS and TRACKDUMPALLOCATED print at that moment.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import pytest

from kdcon.symbols.pdb import open_pdb
from kdcon.tools.simtarget.events import (
    BreakpointHit,
    BudgetExhausted,
    DebugPrintStop,
    DebugPromptStop,
    StopEvent,
    UnloadSymbols,
)
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.simhelpers import run_on_from
from tests.simtarget.track_host import allocator_names, marked_line
from tests.simtarget.track_host.reports import (
    dump_report,
    planted_leak_report,
    record_text,
    stats_report,
)

FLAVOURS = ("checked", "free")
QUIET_BUDGET = 2_000_000


@dataclass
class Transcript:
    """DbgPrint and DbgPrompt text in order, and every other stop."""

    text: str = ""
    stops: list[StopEvent] = field(default_factory=list)


class Demo:
    """One booted machine with trackdemo loaded, and its PDB."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.machine = Machine(seed=0, drivers=[IMAGES_DIR / flavour / "trackdemo.sys"])
        self.machine.boot()
        with open_pdb(IMAGES_DIR / flavour / "trackdemo.pdb") as pdb:
            self.rvas = {record.name: record.rva for record in pdb.globals()}
        self.base = next(m.base for m in self.machine.modules if m.image.name == "trackdemo.sys")

    def run_until_quiet(self, answer: str = "i", stop_on_print: bool = False) -> Transcript:
        """Run until a whole budget passes with nothing to report (the loop only ticks)."""
        transcript = Transcript()
        for _ in range(200):
            event = self.machine.run(budget=QUIET_BUDGET)
            if isinstance(event, BudgetExhausted):
                return transcript
            if isinstance(event, DebugPrintStop):
                transcript.text += event.text
                if stop_on_print:
                    return transcript
            elif isinstance(event, DebugPromptStop):
                transcript.text += event.text
                self.machine.answer_prompt(answer)
            else:
                transcript.stops.append(event)
                run_on_from(self.machine, event)
        raise AssertionError(f"the machine never went quiet: {transcript.text[-500:]!r}")

    def request(self, request: KiSimRequest, answer: str = "i") -> Transcript:
        self.machine.set_request(request)
        return self.run_until_quiet(answer)

    def read(self, name: str, size: int, offset: int = 0) -> bytes:
        return self.machine.read_virtual(self.base + self.rvas[name] + offset, size)


@pytest.fixture(params=FLAVOURS)
def demo(request: pytest.FixtureRequest) -> Demo:
    return Demo(request.param)


def test_driver_entry_breaks_in_first(demo: Demo) -> None:
    transcript = demo.run_until_quiet()
    breaks = [s for s in transcript.stops if isinstance(s, BreakpointHit)]
    assert [b.pc for b in breaks] == [demo.machine.kernel_symbol("DbgBreakPoint")]
    expected = "TrackDemo: DriverEntry\nTrackDemo: ready\n" if demo.flavour == "checked" else ""
    assert transcript.text == expected


def test_ticks_run_quietly_and_are_counted(demo: Demo) -> None:
    demo.run_until_quiet()
    before = struct.unpack("<I", demo.read("TrackDemoTickCount", 4))[0]
    assert demo.run_until_quiet().text == ""
    after = struct.unpack("<I", demo.read("TrackDemoTickCount", 4))[0]
    assert after > before > 0


def test_leak_report_at_unload_lists_exactly_the_planted_leaks(demo: Demo) -> None:
    demo.run_until_quiet()
    demo.request(KiSimRequest.LEAK)
    demo.request(KiSimRequest.LEAK)
    transcript = demo.request(KiSimRequest.UNLOAD)
    assert transcript.text.endswith(planted_leak_report())
    if demo.flavour == "checked":
        assert transcript.text.startswith("TrackDemo: unloading after ")
    else:
        assert transcript.text == planted_leak_report()
    unloads = [s for s in transcript.stops if isinstance(s, UnloadSymbols)]
    assert [u.image.path.rsplit("\\", 1)[-1] for u in unloads] == ["trackdemo.sys"]


def test_overwrite_reports_the_block_and_asserts_in_checked_build(demo: Demo) -> None:
    demo.run_until_quiet()
    transcript = demo.request(KiSimRequest.OVERWRITE, answer="i")
    report = (
        "Starting to validate allocations.  This could crash if your driver\n"
        "attempts to allocate/free resources while validating.\n"
        "Track Error ****************\n"
        "Memory Overwrite corruption\n"
        f"Allocation point: trackdemo\\trackdemo.c, line {marked_line('overwritten block')}\n"
        "Track Error ****************\n"
    )
    if demo.flavour == "free":
        assert transcript.text == report
        return
    assert transcript.text.startswith(report + "\n*** Assertion failed: Corrupt Memory\n"
                                      "***   Source File: track\\trackmemory.c, line ")
    assert transcript.text.endswith("(bipt)? ")
    # Ignored, the driver carries on: the next request is served.
    assert demo.request(KiSimRequest.VALIDATE).text.count("Memory Overwrite corruption\n") == 1


def stats_from_memory(demo: Demo) -> str:
    """What !trackstats will print: the statistics globals read through the PDB."""
    memory = struct.unpack("<IIQQ", demo.read("TrackMemoryStats", 0x18))
    resource = struct.unpack("<II", demo.read("TrackResourceStats", 8))
    handle = struct.unpack("<II", demo.read("TrackHandleStats", 8))
    return stats_report(memory, resource, handle)


def dump_from_memory(demo: Demo) -> str:
    """What !trackdump will print: TrackRecordList walked in target memory."""
    names = allocator_names()
    head = demo.base + demo.rvas["TrackRecordList"]
    link = struct.unpack("<Q", demo.machine.read_virtual(head, 8))[0]
    records = []
    while link != head:
        raw = demo.machine.read_virtual(link, 0x58)
        flink, _, value, size, allocator, line, flags = struct.unpack_from("<QQQQIII", raw)
        source = raw[0x2C:0x2C + 41].split(b"\0", 1)[0].decode()
        records.append(record_text(names[allocator], source, line,
                                   size if flags & 1 else None, value))
        link = flink
    return dump_report(records)


def report_and_memory(demo: Demo, request: KiSimRequest, from_memory) -> tuple[str, str]:
    """The report a request prints, and the same report built from memory while the
    machine stands at the report's first line (no tick can run before the rest)."""
    demo.run_until_quiet()
    demo.request(KiSimRequest.LEAK)
    demo.machine.set_request(request)
    first = demo.run_until_quiet(stop_on_print=True)
    expected = from_memory(demo)
    return first.text + demo.run_until_quiet().text, expected


def test_statistics_in_memory_equal_the_stats_report(demo: Demo) -> None:
    printed, expected = report_and_memory(demo, KiSimRequest.STATS, stats_from_memory)
    assert printed == expected
    # After LEAK: the work buffer and the 20-byte leak are the live memory records.
    assert re.search(r"^Memory          : \d+ calls, 2 live$", printed, re.MULTILINE)


def test_record_list_in_memory_equals_the_dump(demo: Demo) -> None:
    printed, expected = report_and_memory(demo, KiSimRequest.DUMP, dump_from_memory)
    assert printed == expected
    assert printed.endswith("Live records: 5\n")
