"""The interactive console driven headlessly: the real PromptSession over pipe input and
a dummy output, against the simulated target. Keys, history, the toolbar, quitting."""

from __future__ import annotations

import pytest

from kdcon.session import TargetState
from tests.console.repl_driver import (
    CTRL_B,
    CTRL_C,
    CTRL_D,
    CTRL_K,
    CTRL_R,
    F2,
    UP,
    Loopback,
    ReplDriver,
    go,
    wait_until,
)


@pytest.fixture(scope="module")
def loop():
    loopback = Loopback()
    yield loopback
    loopback.close()


@pytest.fixture
def history(tmp_path):
    return tmp_path / "state" / "kdcon" / "history"


def test_a_typed_line_runs_and_ctrl_d_at_an_empty_prompt_quits_leaving_the_target_halted(loop):
    driver = ReplDriver(loop)

    def script(d: ReplDriver) -> None:
        d.run_command("r rip")
        d.wait_prompt()
        d.type(CTRL_D)
        wait_until(lambda: not d.repl.prompt_session.app.is_running, "Ctrl+D to quit")

    driver.run(script)
    assert loop.app.console.results[-1].command == "r rip"
    assert "rip=" in loop.text
    assert loop.app.session.state is TargetState.HALTED


def test_ctrl_c_breaks_into_a_running_target_and_the_toolbar_follows(loop):
    driver = ReplDriver(loop)
    seen: dict[str, str] = {}

    def script(d: ReplDriver) -> None:
        d.run_command("bc *")
        seen["halted"] = d.repl.toolbar()
        banners = loop.text.count("THIS IS NOT A BUG OR A SYSTEM CRASH")
        go(d)
        wait_until(lambda: "running" in d.repl.toolbar(), "the toolbar to say running")
        seen["running"] = d.repl.toolbar()
        seen["prompt"] = d.repl.message()
        d.type(CTRL_C)
        wait_until(lambda: loop.text.count("THIS IS NOT A BUG OR A SYSTEM CRASH") > banners,
                   "the break-in banner")
        wait_until(lambda: not d.repl.runner.busy, "g to return")
        seen["after"] = d.repl.toolbar()
        seen["prompt after"] = d.repl.message()

    driver.run(script)
    assert "kdsim (test)" in seen["halted"] and "halted cpu0" in seen["halted"]
    assert "running" in seen["running"] and "halted" not in seen["running"]
    assert seen["prompt"] == "kd> "
    last = loop.app.console.results[-1]
    assert last.command == "g"
    assert "halted cpu0" in seen["after"]
    assert "nt!DbgBreakPointWithStatus" in seen["after"]
    assert f"last: {last.round_trips} round trips, {last.wire_bytes} bytes" in seen["after"]
    assert seen["prompt after"] == "0: kd> "
    assert "nt!DbgBreakPointWithStatus:" in loop.text.rsplit("THIS IS NOT A BUG", 1)[1]


def test_ctrl_c_on_a_halted_target_cancels_a_long_output(loop):
    driver = ReplDriver(loop)
    before = len(loop.text)

    def script(d: ReplDriver) -> None:
        d.wait_prompt()
        d.type("db nt L200000\r")
        wait_until(lambda: loop.text.count("\n", before) > 20, "the dump to start")
        d.type(CTRL_C)
        wait_until(lambda: not d.repl.runner.busy, "the dump to stop")

    driver.run(script)
    shown = loop.text[before:]
    assert "The command was cancelled (Ctrl+C)." in shown
    assert shown.count("\n") < 200000 // 16          # far from the whole dump
    result = loop.app.console.results[-1]
    assert result.command == "db nt L200000" and not result.ok


def test_ctrl_c_at_an_idle_prompt_clears_the_line(loop):
    driver = ReplDriver(loop)

    def script(d: ReplDriver) -> None:
        d.wait_prompt()
        d.type("dd rsp")
        wait_until(lambda: d.buffer.text == "dd rsp", "the typed text")
        d.type(CTRL_C)
        wait_until(lambda: d.buffer.text == "", "Ctrl+C to clear the line")

    count = len(loop.app.console.results)
    driver.run(script)
    assert len(loop.app.console.results) == count            # nothing ran
    assert loop.app.session.halted


def test_history_is_kept_in_a_file_searched_by_prefix_and_suggested(loop, history):
    first = ReplDriver(loop, history=history)

    def type_two(d: ReplDriver) -> None:
        d.run_command("r rip")
        d.run_command("lm")

    first.run(type_two)
    assert history.read_text().count("+r rip") == 1
    second = ReplDriver(loop, history=history)
    seen: dict[str, str | None] = {}

    def recall(d: ReplDriver) -> None:
        d.wait_prompt()
        d.type("l")
        wait_until(lambda: d.buffer.suggestion is not None, "a suggestion")
        seen["suggestion"] = d.buffer.suggestion.text
        d.type(CTRL_C)
        wait_until(lambda: d.buffer.text == "", "a clear line")
        d.type("r")
        d.type(UP)
        wait_until(lambda: d.buffer.text == "r rip", "Up to find the line starting with r")
        count = len(loop.app.console.results)
        d.type("\r")
        wait_until(lambda: len(loop.app.console.results) > count and not d.repl.runner.busy,
                   "the recalled line to run")

    second.run(recall)
    assert seen["suggestion"] == "m"
    assert loop.app.console.results[-1].command == "r rip"


def test_ctrl_s_searches_the_history_as_you_type(loop, history):
    history.parent.mkdir(parents=True)
    history.write_text("\n# 1\n+lm\n\n# 2\n+r rip\n\n# 3\n+vertarget\n")
    driver = ReplDriver(loop, history=history)

    def script(d: ReplDriver) -> None:
        d.wait_prompt()
        d.type("\x13")                                   # Ctrl+S
        wait_until(lambda: d.repl.prompt_session.app.layout.search_target_buffer_control
                   is not None, "the search to start")
        d.type("ri")
        count = len(loop.app.console.results)
        d.type("\r")
        wait_until(lambda: d.buffer.text == "r rip", "the search to find r rip")
        d.type("\r")
        wait_until(lambda: len(loop.app.console.results) > count and not d.repl.runner.busy,
                   "the found line to run")

    driver.run(script)
    assert loop.app.console.results[-1].command == "r rip"


def test_ctrl_r_resyncs_and_the_session_stays_usable(loop):
    driver = ReplDriver(loop)

    def script(d: ReplDriver) -> None:
        d.wait_prompt()
        before = len(loop.text)
        d.type(CTRL_R)
        wait_until(lambda: "KDTARGET: Refreshing KD connection" in loop.text[before:],
                   "the resync line")
        wait_until(lambda: not d.repl.runner.busy, "the resync")
        d.run_command("r rip")

    driver.run(script)
    assert loop.app.session.halted
    assert loop.app.console.results[-1].ok


def test_ctrl_k_cycles_break_on_reboot(loop):
    driver = ReplDriver(loop)
    settings = loop.app.console.settings
    seen = []

    def script(d: ReplDriver) -> None:
        d.wait_prompt()
        for _ in range(3):
            before = settings.break_on_reboot
            d.type(CTRL_K)
            wait_until(lambda: settings.break_on_reboot != before, "Ctrl+K")
            seen.append(settings.break_on_reboot)

    start = settings.break_on_reboot
    driver.run(script)
    assert start == "none"
    assert seen == ["initial", "first-load", "none"]
    assert "Break on reboot: first-load" in loop.text


def test_f2_turns_the_packet_trace_on_and_off(loop, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                  # where .kdtrace writes its capture
    driver = ReplDriver(loop)

    def script(d: ReplDriver) -> None:
        d.wait_prompt()
        d.type(F2)
        d.wait_text("Packet trace on")
        wait_until(lambda: not d.repl.runner.busy, ".kdtrace on")
        before = len(loop.text)
        d.type(CTRL_R)                           # a resync always crosses the wire
        wait_until(lambda: "KDTARGET" in loop.text[before:] and not d.repl.runner.busy,
                   "the resync")
        d.type(F2)
        d.wait_text("Packet trace off")
        wait_until(lambda: not d.repl.runner.busy, ".kdtrace off")

    driver.run(script)
    commands = [r.command for r in loop.app.console.results[-2:]]
    assert commands == [".kdtrace on", ".kdtrace off"]
    assert [p for p in tmp_path.iterdir() if p.stat().st_size], loop.text[-3000:]


def test_colour_reaches_the_terminal_only_while_the_repl_runs(loop):
    driver = ReplDriver(loop, colour=True)
    before = len(loop.text)

    def script(d: ReplDriver) -> None:
        d.run_command("u nt!DbgBreakPoint L1")

    driver.run(script)
    assert "\x1b[1;36mnt!DbgBreakPoint:\x1b[0m" in loop.text[before:]
    after = len(loop.text)
    loop.app.console.execute("u nt!DbgBreakPoint L1")
    assert "\x1b" not in loop.text[after:]


def test_ctrl_b_quits_leaving_the_target_running():
    loopback = Loopback()
    try:
        driver = ReplDriver(loopback)

        def script(d: ReplDriver) -> None:
            d.wait_prompt()
            d.type(CTRL_B)
            wait_until(lambda: loopback.app.console.quit_requested, "Ctrl+B to detach")

        driver.run(script)
        assert loopback.app.console.results[-1].command == "qd"
        assert loopback.app.session.state is TargetState.RUNNING
        assert "quit:" in loopback.text
    finally:
        loopback.close()


def test_a_dbgprompt_takes_the_next_line_typed_as_its_answer(loop):
    driver = ReplDriver(loop)
    seen: dict[str, str] = {}

    def script(d: ReplDriver) -> None:
        d.run_command("ed nt!KiSimRequest 2")
        d.wait_prompt()
        d.type("g\r")
        d.wait_text("(bipt)? ")
        wait_until(lambda: d.repl.message() == "", "the prompt to wait for an answer")
        seen["toolbar"] = d.repl.toolbar()
        d.type("b\r")
        wait_until(lambda: not d.repl.runner.busy, "g to stop after the answer")

    driver.run(script)
    assert "The target asks" in seen["toolbar"]
    shown = loop.text.rsplit("(bipt)? ", 1)[1]
    # The terminal ends the question's line before the prompt; the session echoes the answer.
    assert shown.startswith("\nb\nBreak instruction exception - code 80000003 (first chance)\n")
    assert loop.app.session.halted and loop.app.console.results[-1].command == "g"


def test_quitting_after_a_failed_command_exits_zero_as_kd_does(loop):
    driver = ReplDriver(loop)

    def script(d: ReplDriver) -> None:
        d.run_command("nosuchcommand")
        d.wait_prompt()
        d.type(CTRL_D)
        wait_until(lambda: not d.repl.prompt_session.app.is_running, "Ctrl+D to quit")

    driver.run(script)
    assert not loop.app.console.results[-1].ok
    assert driver.status == 0
