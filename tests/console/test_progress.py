"""Long jobs report progress with an ETA from the wire rate, and stop on Ctrl+C."""

from __future__ import annotations

import io
import json

from kdcon.app import App
from kdcon.output import Output
from kdcon.progress import ProgressState, format_progress
from kdcon.tools.simtarget.loopback import SimTarget

from .transcripts import run_kdcon


def test_writemem_over_a_paced_line_reports_progress_events(tmp_path):
    dump = tmp_path / "kernel.bin"
    text, status = run_kdcon(["--loopback", "--batch", "--json", "--pace", "115200",
                              "-c", f".writemem {dump} nt L0x3000"])
    assert status == 0
    events = [json.loads(line) for line in text.splitlines()]
    progress = [e for e in events if e.get("event") == "progress"]
    assert progress and all(e["what"] == ".writemem" and e["total"] == 0x3000 for e in progress)
    assert progress[-1]["done"] == 0x3000
    assert dump.stat().st_size == 0x3000


def test_a_cancelled_search_ends_in_one_line_and_the_console_goes_on():
    sim = SimTarget(seed=0, break_on_connect=True)
    stream = io.StringIO()
    app = App(sim.connect(), link_name="loopback", output=Output(stream=stream))
    try:
        app.connect()
        # Ctrl+C as the search begins: at its first progress report.
        subscription = app.console.events.subscribe(
            "progress", lambda event: app.console.target.cancel_event.set())
        app.run_line("s -a nt L0x30000 \"no such text anywhere\"; .echo never")
        subscription.remove()
        app.run_line("? 1")
    finally:
        app.close()
        sim.close()
    after = stream.getvalue().split('no such text anywhere"', 1)[1].splitlines()
    assert after[1] == "The command was cancelled (Ctrl+C)."
    assert "never" not in after
    assert "Evaluate expression: 1 = 00000000`00000001" in after
    assert "progress" not in app.console.state.values


def test_progress_text_names_the_job_its_share_and_what_is_left():
    state = ProgressState(".writemem", 0x2D000, 0x64000, 12.4, 11300.0)
    assert format_progress(state) == ".writemem 45% (0x2d000 of 0x64000), 12 s left at 11.3 KB/s"
