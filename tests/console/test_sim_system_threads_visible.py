"""The console sees the simulated kernel's system threads: stopped in a work item's
routine (wdkdrivers/kelocks), ``k`` walks the worker thread's own stack down to its
start, and ``!process 0 7`` lists the worker, running, beside the system loop's thread,
ready, with each one's start address and saved stack pointer."""

from __future__ import annotations

import pytest

from tests.simtarget.wdkbuild import build

from .transcripts import batch


@pytest.fixture(scope="module")
def stopped_in_work_item(tmp_path_factory) -> str:
    driver = build("kelocks", tmp_path_factory.mktemp("kelocks"))
    text, status = batch("bu kelocks!Work", "g", "g", "k", "!process 0 7", extra=["--driver", str(driver)])
    assert status == 0, text[-1500:]
    return text.split("Breakpoint 0 hit", 1)[1]


def test_k_walks_the_worker_threads_stack_to_its_start(stopped_in_work_item):
    stack = stopped_in_work_item.split("kd> k\n", 1)[1].split("kd> ", 1)[0]
    frames = [line.split()[-1] for line in stack.splitlines()[1:] if "`" in line]
    assert [f.split("+")[0] for f in frames] == ["kelocks!Work", "nt!IopWorkerThread", "nt!KiThreadStartup"]


def test_process_list_shows_both_threads_with_their_states_and_starts(stopped_in_work_item):
    listing = stopped_in_work_item.split("kd> !process 0 7\n", 1)[1]
    threads = listing.split("THREAD ")[1:]
    assert len(threads) == 2
    loop, worker = threads
    assert "READY" in loop.splitlines()[0] and "Start Address nt!KiSystemLoop" in loop
    assert "RUNNING on processor 0" in worker.splitlines()[0] and "Start Address nt!IopWorkerThread" in worker
    current = int(loop.split("Current ")[1].split()[0], 16)
    init = int(loop.split("Stack Init ")[1].split()[0], 16)
    assert current < init                # the saved stack pointer of a switched-out thread
