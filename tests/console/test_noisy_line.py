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
    # A bad cable's rates. At ten times these, a dropped and a duplicated byte of the
    # same value slip past KD's byte-sum checksum often enough to change a read now and
    # then (bench/soak.py measures both; docs/console.md has the figures).
    noisy, noisy_status = batch(*SCRIPT, extra=[
        "--pace", "115200", "--faults", "flip=1e-5,drop=1e-4,dup=1e-4,garbage=1e-5,seed=7"])
    assert clean_status == noisy_status == 0
    assert clean.count("Breakpoint 0 hit") == 2
    assert "KDTARGET: Refreshing KD connection\n" in clean
    assert noisy == clean
