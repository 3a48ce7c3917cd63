"""``~Ns`` on a two-CPU target asks processor N to report (SwitchProcessor) and then
addresses it: the prompt says ``N: kd>`` and the context is asked of processor N.
A processor past the count is refused in one line with nothing sent; on a one-CPU
target ``~0s`` changes nothing and sends nothing."""

from __future__ import annotations

import io

from kdcon.app import App
from kdcon.output import Output
from kdcon.protocol.constants import ManipulateApi as A
from kdcon.scripting import prompt_for
from kdcon.tools.simtarget.loopback import SimTarget

from .two_cpu_target import two_cpu_target


def _app(sim: SimTarget) -> tuple[App, io.StringIO]:
    screen = io.StringIO()
    app = App(sim.connect(), link_name="loopback", output=Output(screen))
    app.connect()
    app.echo_commands = False
    return app, screen


def _after(screen: io.StringIO, mark: int) -> str:
    return screen.getvalue()[mark:]


def test_switching_to_processor_1_addresses_it_and_back_to_0():
    sim, requests = two_cpu_target()
    app, screen = _app(sim)
    try:
        assert prompt_for(app.session) == "0: kd> "
        mark = len(screen.getvalue())
        del requests[:]
        assert app.run_line("~1s")
        assert (A.DbgKdSwitchProcessor, 1) in requests
        assert prompt_for(app.session) == "1: kd> "
        shown = _after(screen, mark)
        assert "nt!DbgBreakPointWithStatus:\n" in shown
        assert "int     3" in shown
        del requests[:]
        assert app.run_line("r rip")
        contexts = [cpu for api, cpu in requests
                    if api in (A.DbgKdGetContextApi, A.DbgKdGetContextExApi)]
        assert contexts and set(contexts) == {1}
        del requests[:]
        assert app.run_line("? @$prcb")
        assert requests == [(A.DbgKdReadControlSpaceApi, 1)]
        del requests[:]
        assert app.run_line("k")
        assert requests and {cpu for api, cpu in requests} == {1}
        del requests[:]
        assert app.run_line("~0s")
        assert requests[0] == (A.DbgKdSwitchProcessor, 0)
        assert prompt_for(app.session) == "0: kd> "
        del requests[:]
        assert app.run_line("r rip")
        assert {cpu for api, cpu in requests} == {0}
    finally:
        app.close()
        sim.close()


def test_a_processor_past_the_count_is_refused_and_nothing_is_sent():
    sim, requests = two_cpu_target()
    app, screen = _app(sim)
    try:
        mark = len(screen.getvalue())
        del requests[:]
        assert not app.run_line("~2s")
        assert _after(screen, mark).strip() == "Illegal thread error in '~2s'"
        assert requests == []
        assert prompt_for(app.session) == "0: kd> "
    finally:
        app.close()
        sim.close()


def test_tilde_shows_the_current_processor():
    sim, _ = two_cpu_target()
    app, screen = _app(sim)
    try:
        app.run_line("~1s")
        mark = len(screen.getvalue())
        assert app.run_line("~")
        assert _after(screen, mark) == ".  1\n"
    finally:
        app.close()
        sim.close()


def test_processor_0_of_a_one_cpu_target_sends_nothing():
    sim = SimTarget(seed=0, break_on_connect=True)
    app, screen = _app(sim)
    try:
        asked: list[int] = []
        app.session.host.switch_processor = asked.append
        mark = len(screen.getvalue())
        assert app.run_line("~0s")
        assert _after(screen, mark) == ""
        assert asked == []
        assert not app.run_line("~1s")
        assert asked == []
        assert prompt_for(app.session) == "0: kd> "
    finally:
        app.close()
        sim.close()
