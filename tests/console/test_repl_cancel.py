"""Ctrl+C in the interactive console while the target is halted, driven headlessly
(the real PromptSession over pipe input, the simulated target): long commands that
print nothing and never read the target stop with one line, and the prompt works."""

from __future__ import annotations

import re
import textwrap

import pytest

from kdcon.scripting import CANCELLED
from tests.console.repl_driver import CTRL_C, Loopback, ReplDriver, wait_until


@pytest.fixture(scope="module")
def loop():
    loopback = Loopback()
    yield loopback
    loopback.close()


def interrupt(driver: ReplDriver, line: str, *, after: int = 0) -> None:
    """Type ``line``, press Ctrl+C while it runs (once it ran ``after`` commands),
    and wait for the prompt's return."""
    results = driver.app.console.results
    count = len(results)
    driver.wait_prompt()
    driver.type(line + "\r")
    wait_until(lambda: driver.repl.runner.busy and len(results) >= count + after,
               "the line to start")
    driver.type(CTRL_C)
    wait_until(lambda: not driver.repl.runner.busy, "Ctrl+C to stop the line")


def test_a_silent_script_loop_stops_and_the_prompt_works(loop):
    driver = ReplDriver(loop)
    before = len(loop.text)
    seen: dict[str, str] = {}

    def script(d: ReplDriver) -> None:
        interrupt(d, ".for (r $t0 = 0; @$t0 < 0n100000000; r $t0 = @$t0 + 1) { }; .echo never",
                  after=20)
        d.run_command("r $t0")
        seen["t0"] = loop.text.rsplit("$t0=", 1)[1].split()[0]

    driver.run(script)
    shown = loop.text[before:]
    assert shown.count(CANCELLED) == 1 and "never" not in shown.replace(".echo never", "")
    assert 0 < int(seen["t0"], 16) < 100000000
    assert loop.app.console.results[-1].command == "r $t0" and loop.app.console.results[-1].ok


def test_a_foreach_over_a_long_list_stops(loop, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text(" ".join(f"w{n}" for n in range(300000)))
    driver = ReplDriver(loop)
    before = len(loop.text)

    def script(d: ReplDriver) -> None:
        d.run_command("r $t1 = 0")
        interrupt(d, f'.foreach /f (w "{words}") {{ r $t1 = @$t1 + 1 }}', after=20)
        d.run_command("? @$t1")

    driver.run(script)
    shown = loop.text[before:]
    assert shown.count(CANCELLED) == 1
    counted = int(re.search(r"Evaluate expression: (\d+) =", shown).group(1))
    assert 0 < counted < 300000


def test_an_extension_that_computes_is_stopped(loop, tmp_path):
    source = tmp_path / "busy.py"
    source.write_text(textwrap.dedent('''
        """Computes for a long time, printing nothing and reading nothing."""
        from kdcon.api import bang


        @bang
        def spin(target, args):
            """Add numbers for seconds."""
            total = 0
            for number in range(10 ** 8):
                total += number
            return str(total)
    ''').lstrip())
    driver = ReplDriver(loop)
    before = len(loop.text)

    def script(d: ReplDriver) -> None:
        d.run_command(f".load {source}")
        interrupt(d, "!spin; .echo never")
        d.run_command("? 5")

    driver.run(script)
    shown = loop.text[before:]
    assert shown.count(CANCELLED) == 1
    assert "never" not in shown.replace(".echo never", "")
    assert "Evaluate expression: 5 =" in shown


def test_a_loop_over_a_quick_extension_stops(loop, tmp_path):
    source = tmp_path / "quick.py"
    source.write_text(textwrap.dedent('''
        """Returns at once (and clears the cancel event as every bang does)."""
        from kdcon.api import bang


        @bang
        def quick(target, args):
            """Nothing."""
    ''').lstrip())
    driver = ReplDriver(loop)
    before = len(loop.text)

    def script(d: ReplDriver) -> None:
        d.run_command(f".load {source}")
        interrupt(d, ".for (r $t2 = 0; @$t2 < 0n1000000; r $t2 = @$t2 + 1) { !quick }",
                  after=50)
        d.run_command("? @$t2")

    driver.run(script)
    shown = loop.text[before:]
    assert shown.count(CANCELLED) == 1
    counted = int(re.search(r"Evaluate expression: (\d+) =", shown).group(1))
    assert 0 < counted < 1000000
