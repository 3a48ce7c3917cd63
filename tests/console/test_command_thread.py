"""The REPL's command thread: jobs in order, command jobs before background ones, only
command jobs make it busy; and the forced stop's guard (only an extension's own code)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from kdcon.commandthread import CommandThread, in_extension_code


def test_command_jobs_run_before_queued_background_jobs_and_only_they_are_busy():
    order: list[str] = []
    gate = threading.Event()
    background_running = threading.Event()
    done = threading.Event()
    runner = CommandThread()
    runner.start()
    try:
        runner.submit(lambda: (order.append("first command"), gate.wait(5)))
        runner.submit_background(lambda: order.append("background 1"))
        runner.submit_background(lambda: (order.append("background 2"), background_running.set(),
                                          done.wait(5)))
        runner.submit(lambda: order.append("second command"))
        gate.set()
        assert background_running.wait(5)
        assert not runner.busy and runner.active
        done.set()
        assert runner.wait_idle(5)
    finally:
        done.set()
        gate.set()
        runner.stop()
    assert order == ["first command", "second command", "background 1", "background 2"]


def test_a_job_that_raises_keeps_the_thread():
    ran = threading.Event()
    runner = CommandThread()
    runner.start()
    try:
        runner.submit(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
        runner.submit(ran.set)
        assert ran.wait(5)
    finally:
        runner.stop()


def test_only_an_extensions_own_code_may_be_stopped_by_force():
    inside = threading.Event()
    release = threading.Event()

    def computing() -> None:
        inside.set()
        release.wait(5)          # threading.py's wait: a lock of the standard library

    thread = threading.Thread(target=computing, daemon=True)
    thread.start()
    try:
        assert inside.wait(5)
        idle = SimpleNamespace(extensions=SimpleNamespace(target=SimpleNamespace(owner=None)))
        running = SimpleNamespace(extensions=SimpleNamespace(target=SimpleNamespace(owner="x")))
        assert not in_extension_code(idle, thread)          # no extension runs
        assert not in_extension_code(running, thread)       # not called by the loader
    finally:
        release.set()
        thread.join(5)
