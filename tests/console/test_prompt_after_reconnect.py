"""The prompt comes back after a reconnect: the plain line prompt is written again, the
REPL's is redrawn; the reconnecting loop's lines never run on after a waiting prompt.

Waits are on output and events with deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest

from kdcon import repl as repl_module
from kdcon.app import App
from kdcon.output import Output
from kdcon.reconnect import Reopen
from kdcon.tools.simtarget.loopback import SimTarget

from .test_reconnect import SYMBOLS, Screen, SimProcess, sim  # noqa: F401  (the fixture)


@pytest.mark.slow
def test_the_plain_prompt_is_written_again_once_the_session_is_back(sim):
    screen = Screen()
    app = App(Reopen(sim.url)(), link_name=sim.url, output=Output(screen), symbol_path=SYMBOLS)
    read_end, write_end = os.pipe()
    stdin = os.fdopen(read_end, "r")
    typed = os.fdopen(write_end, "w")
    prompt = threading.Thread(target=app.run_prompt, args=(stdin,))
    try:
        app.connect()
        app.healer.watch(Reopen(sim.url))
        prompt.start()
        assert screen.wait_for("0: kd> ", 10)
        sim.kill()
        assert screen.wait_for("The link to the target is lost", 10)
        sim.start()
        assert screen.wait_for("after the link opened)\n0: kd> ", 30), screen.text()
        typed.write("r rip\n")
        typed.flush()
        assert screen.wait_for("rip=fffff800", 10), screen.text()
    finally:
        typed.close()
        prompt.join(10)
        stdin.close()
        app.close()
    text = screen.text()
    assert not prompt.is_alive()
    # The loss starts a line of its own below the prompt that was waiting.
    assert "0: kd> \nThe link to the target is lost (" in text
    assert "Traceback" not in text


def test_prompt_again_redraws_the_repl_and_rewrites_only_a_covered_plain_prompt():
    sim = SimTarget(seed=0, break_on_connect=True)
    screen = Screen()
    app = App(sim.connect(), link_name="loopback", output=Output(screen))
    redraws: list[int] = []
    try:
        app.connect()
        app.redraw_prompt = lambda: redraws.append(1)
        before = screen.text()
        app.prompt_again()
        assert screen.text() == before          # no plain prompt waits: nothing written
        app._prompt_waiting = True
        app.event_line("an event")
        app.prompt_again()
        app.prompt_again()
    finally:
        app.close()
        sim.close()
    assert redraws == [1, 1, 1]
    assert screen.text()[len(before):] == "\nan event\n0: kd> "


def test_the_repl_is_redrawn_by_prompt_again_while_it_runs(monkeypatch):
    seen: dict[str, object] = {}

    class FakeRepl:
        def __init__(self, app, **options):
            self.app = app
            self.prompt_session = SimpleNamespace(
                app=SimpleNamespace(invalidate=lambda: seen.setdefault("invalidated", True)))

        def run(self):
            self.app.prompt_again()
            return 0

    monkeypatch.setattr(repl_module, "Repl", FakeRepl)
    sim = SimTarget(seed=0, break_on_connect=True)
    app = App(sim.connect(), link_name="loopback", output=Output(Screen()))
    try:
        assert app.run_repl() == 0
    finally:
        app.close()
        sim.close()
    assert seen == {"invalidated": True}
    assert app.redraw_prompt is None
