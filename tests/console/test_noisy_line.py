"""The same session over a paced, noisy 115200 line gives the same transcript as a clean one.

The script resynchronises on demand too (``.restart``: RESETs, the module list, the
breakpoints taken back) and the breakpoint still hits after it. A longer soak over many
seeds is ``python -m kdcon.tools.bench.soak``.
"""

from __future__ import annotations

import pytest

from .transcripts import batch

SCRIPT = ("bu trackdemo!TrackDemoTick", "g", "g", "k", "r", "db trackdemo!TrackDemoTickCount L20",
          "u rip L4", "p", ".restart", "g", "bl")


@pytest.mark.slow
def test_a_noisy_paced_line_changes_nothing_in_the_transcript():
    clean, clean_status = batch(*SCRIPT)
    noisy, noisy_status = batch(*SCRIPT, extra=[
        "--pace", "115200", "--faults", "flip=1e-4,drop=1e-3,dup=1e-3,garbage=1e-4,seed=7"])
    assert clean_status == noisy_status == 0
    assert clean.count("Breakpoint 0 hit") == 2
    assert "KDTARGET: Refreshing KD connection\n" in clean
    assert noisy == clean
