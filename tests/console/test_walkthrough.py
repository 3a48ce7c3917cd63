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


def test_the_readmes_session_is_the_golden_one_shortened():
    """Every line the README shows (but its ``...``) is in the golden transcript, in order."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    shown = readme.split("```text\n$ kdcon --loopback\n", 1)[1].split("```", 1)[0].splitlines()
    golden = (root / "tests" / "console" / "golden" / "walkthrough.txt").read_text(
        encoding="utf-8").splitlines()
    at = 0
    for line in shown:
        if line.strip() == "...":
            continue
        assert line in golden[at:], f"README line not in the golden session after line {at}: {line!r}"
        at = golden.index(line, at) + 1
