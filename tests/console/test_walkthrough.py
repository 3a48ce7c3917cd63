"""The README's walkthrough, as a golden transcript: what a new user types, what kd shows.

Set a breakpoint in the demo driver, go, hit it, step, plant Track's leaks, then unload
the driver and read the leak report Track prints at unload (``sxe ud`` stops there).
"""

from __future__ import annotations

from .transcripts import batch, check_golden

WALKTHROUGH = ("x trackdemo!TrackDemoT*", "bp trackdemo!TrackDemoTick", "g", "k", "g", "p",
               "ed nt!KiSimRequest 1", "g", "bc *", "sxe ud", "ed nt!KiSimRequest 6", "g")


def test_the_readme_walkthrough():
    text, status = batch(*WALKTHROUGH)
    assert status == 0
    assert "Track Reports Allocation/Resource Leaks:" in text
    assert "Unload module trackdemo.sys at " in text
    check_golden("walkthrough", text)
