"""The machine runs trackdemo, checked and free: the break at DriverEntry, TRACKSTATS on
request, and the planted leaks in the report at unload."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BreakpointHit, DebugPrintStop, LoadSymbols, UnloadSymbols
from kdcon.tools.simtarget.kernel import trackdemo_image
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine

from .simhelpers import run_until_quiet


@pytest.fixture(params=["checked", "free"])
def trackdemo(request):
    image = trackdemo_image(request.param)
    if not image.exists():
        pytest.fail(f"{image} is missing: run python -m kdcon.tools.simtarget.build")
    machine = Machine(drivers=[image])
    machine.boot()
    return machine


def test_driver_entry_breaks_in_first_thing_after_its_load_report(trackdemo):
    events = run_until_quiet(trackdemo)
    loads = [i for i, e in enumerate(events) if isinstance(e, LoadSymbols)]
    assert events[loads[-1]].image.path.endswith("\\trackdemo.sys")
    stop = events[loads[-1] + 1]
    assert stop == BreakpointHit(pc=trackdemo.kernel_symbol("DbgBreakPoint"), handle=None)


def test_stats_request_prints_the_track_statistics(trackdemo):
    run_until_quiet(trackdemo)
    trackdemo.set_request(KiSimRequest.STATS)
    text = "".join(e.text for e in run_until_quiet(trackdemo) if isinstance(e, DebugPrintStop))
    assert "Track Statistics:\n" in text and "Bytes Allocated : " in text


def test_unload_reports_exactly_the_planted_leaks(trackdemo):
    run_until_quiet(trackdemo)
    trackdemo.set_request(KiSimRequest.LEAK)
    run_until_quiet(trackdemo)
    trackdemo.set_request(KiSimRequest.UNLOAD)
    events = run_until_quiet(trackdemo)
    text = "".join(e.text for e in events if isinstance(e, DebugPrintStop))
    report = text[text.index("Track Reports Allocation/Resource Leaks:"):]
    assert report.count("AllocatorFn : ") == 2
    assert "AllocatorFn : RtlAnsiStringToUnicodeString\n" in report
    assert "AllocatorFn : ExAllocatePoolWithTag\n" in report and "   Size     : 20\n" in report
    assert isinstance(events[-1], UnloadSymbols)
