"""loopback.share_one_cpu: a process with host and target in it, kept on one CPU."""

from __future__ import annotations

import os
import threading

import pytest

from kdcon.tools.simtarget.loopback import share_one_cpu

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                reason="the platform cannot pin threads")


def test_pins_this_thread_and_those_it_starts_and_can_be_undone():
    before = os.sched_getaffinity(0)
    cpus = share_one_cpu()
    try:
        assert cpus == before
        pinned = os.sched_getaffinity(0)
        assert len(pinned) == 1 and pinned <= before
        seen: list[set[int]] = []
        started = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        started.start()
        started.join(10)
        assert seen == [pinned]  # the target's threads, started after, share the CPU
    finally:
        os.sched_setaffinity(0, cpus)
    assert os.sched_getaffinity(0) == before
