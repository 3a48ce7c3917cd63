"""Paging (kd's ``-- more --``): the pager's pages, ``.more``, its place in the
workspace, and the real prompt pausing a long output (pipe input, dummy output of
40 rows: pages of 38 lines), going on by a page or a line, and stopping on q
(quietly, as kd does) or Ctrl+C (saying the command was cancelled)."""

from __future__ import annotations

import io
import pytest

from kdcon.output import Output, Pager
from kdcon.repl import MORE
from kdcon.scripting import CANCELLED
from kdcon.workspace_state import apply, capture
from tests.console.repl_driver import CTRL_C, Loopback, ReplDriver, wait_until


def paged(text_pieces: list[str], answers: list[str], rows: int = 6) -> tuple[list[str], int]:
    """What a pager lets through for ``text_pieces`` written one after another, with
    ``answers`` given at its pauses, and how many times it asked."""
    asked = []

    def ask() -> str:
        asked.append(True)
        return answers.pop(0)

    pager = Pager(lambda: rows, ask, lambda: True)
    stream = io.StringIO()
    output = Output(stream)
    output.pager = pager
    for piece in text_pieces:
        output.write(piece)
    return stream.getvalue().splitlines(), len(asked)


LINES = [f"line {n}" for n in range(20)]


@pytest.mark.parametrize("pieces", [
    ["\n".join(LINES) + "\n"],                          # one write
    [line + "\n" for line in LINES],                     # a line at a time
    ["".join(LINES[:3]) + "\n" + "\n".join(LINES[3:]) + "\n", ""],
], ids=["whole", "by-line", "uneven"])
def test_a_page_is_the_terminal_less_two_rows_and_space_enter_go_on(pieces):
    shown, asked = paged(pieces, [" ", "\n", "q"])
    # 4 lines, space: 4 more, Enter: 1 more, q: nothing else.
    assert len(shown) == 9 and asked == 3


def test_q_drops_the_rest_and_later_writes(tmp_path):
    shown, asked = paged(["\n".join(LINES) + "\n", "after\n"], ["q"])
    assert shown == LINES[:4] and asked == 1


def test_output_that_fits_never_asks_and_captures_are_never_paged():
    shown, asked = paged(["a\nb\nc\nd\n"], [])
    assert shown == ["a", "b", "c", "d"] and asked == 0
    pager = Pager(lambda: 4, lambda: pytest.fail("asked"), lambda: True)
    output = Output(io.StringIO())
    output.pager = pager
    output.begin_capture()
    output.write("x\n" * 50)
    assert output.end_capture() == "x\n" * 50


def test_logs_see_every_line_while_the_screen_waits():
    logged: list[str] = []
    seen_at_pause: list[int] = []
    output = Output(io.StringIO())
    output.add_tee(logged.append)
    output.pager = Pager(lambda: 6, lambda: seen_at_pause.append(len("".join(logged).splitlines())) or " ",
                         lambda: True)
    output.write("\n".join(LINES) + "\n")
    assert "".join(logged).splitlines() == LINES
    assert seen_at_pause == [4, 8, 12, 16]


@pytest.fixture(scope="module")
def loop():
    loopback = Loopback()
    yield loopback
    loopback.close()


def test_more_is_off_by_default_and_says_its_state(loop):
    console = loop.app.console
    assert console.settings.more is False
    console.execute(".more")
    assert loop.text.rstrip().endswith("Paging is off (.more on pauses long output at -- more --)")
    console.execute(".more on")
    assert console.settings.more is True
    assert "Paging is on" in loop.text.rstrip().splitlines()[-1]
    assert not console.execute(".more sometimes")
    assert loop.text.rstrip().endswith("Syntax error at 'sometimes': .more [on | off]")
    console.execute(".more off")
    assert console.settings.more is False
    start = len(loop.text)
    console.execute(".help")
    assert ".more" in loop.text[start:]


def test_the_workspace_keeps_more(loop):
    console = loop.app.console
    console.settings.more = True
    try:
        data = capture(console)
        assert data["output"]["more"] is True
        console.settings.more = False
        problems, _, _ = apply(console, data)
        assert console.settings.more is True and problems == []
        problems, _, _ = apply(console, {"output": {"more": "yes"}})
        assert problems == ["output.more = 'yes': use true or false"]
    finally:
        console.settings.more = False


def _lines_since(loop, start: int) -> list[str]:
    return [line for line in loop.text[start:].splitlines() if line.startswith("fffff800")]


def test_the_prompt_pauses_long_output_and_goes_on_by_a_page_or_a_line(loop):
    driver = ReplDriver(loop, paging=True)
    seen: dict[str, object] = {}

    def script(d: ReplDriver) -> None:
        d.run_command(".more on")
        start = len(loop.text)
        d.type("db nt L1000\r")                        # 256 lines
        wait_until(lambda: d.repl.message() == MORE, "-- more --")
        seen["first"] = len(_lines_since(loop, start))
        seen["toolbar"] = d.repl.toolbar()
        d.type(" ")
        wait_until(lambda: len(_lines_since(loop, start)) > seen["first"] and
                   d.repl.message() == MORE, "the next page")
        seen["second"] = len(_lines_since(loop, start))
        d.type("\r")
        wait_until(lambda: len(_lines_since(loop, start)) > seen["second"] and
                   d.repl.message() == MORE, "one more line")
        seen["third"] = len(_lines_since(loop, start))
        seen["buffer"] = d.buffer.text
        d.type("q")
        wait_until(lambda: not d.repl.runner.busy, "q to stop")
        seen["after"] = len(_lines_since(loop, start))
        seen["tail"] = loop.text[start:].rstrip().splitlines()[-1]
        seen["cancelled"] = loop.text[start:].count(CANCELLED)
        start = len(loop.text)
        d.run_command(".echo next line runs")
        seen["next"] = loop.text[start:]
        d.run_command(".more off")

    driver.run(script)
    assert seen["first"] == 38 and seen["second"] == 76 and seen["third"] == 77
    # kd's q stops the output and says nothing: the last line is the last one shown.
    assert seen["after"] == 77 and seen["tail"].startswith("fffff800")
    assert seen["cancelled"] == 0 and "next line runs" in seen["next"]
    assert seen["buffer"] == ""                          # the keys never reached the line
    assert "space" in seen["toolbar"] and "q" in seen["toolbar"]
    result = [r for r in loop.app.console.results if r.command == "db nt L1000"][-1]
    assert not result.ok


def test_ctrl_c_at_more_cancels_and_off_means_no_pause(loop):
    driver = ReplDriver(loop, paging=True)
    seen: dict[str, int] = {}

    def script(d: ReplDriver) -> None:
        d.run_command(".more on")
        start = len(loop.text)
        d.type("db nt L1000; .echo never\r")
        wait_until(lambda: d.repl.message() == MORE, "-- more --")
        d.type(CTRL_C)
        wait_until(lambda: not d.repl.runner.busy, "Ctrl+C to stop")
        seen["cancelled"] = loop.text[start:].count(CANCELLED)
        start = len(loop.text)
        d.run_command(".echo next line runs")
        seen["next"] = loop.text[start:]
        d.run_command(".more off")
        start = len(loop.text)
        d.run_command("db nt L1000")
        seen["unpaged"] = len(_lines_since(loop, start))

    driver.run(script)
    assert seen["cancelled"] == 1 and seen["unpaged"] == 256
    assert "\nnever" not in loop.text


def test_output_is_never_paged_when_not_on_a_terminal(loop):
    driver = ReplDriver(loop)                           # a StringIO: no terminal
    seen: dict[str, int] = {}

    def script(d: ReplDriver) -> None:
        d.run_command(".more on")
        start = len(loop.text)
        d.run_command("db nt L1000")
        seen["lines"] = len(_lines_since(loop, start))
        d.run_command(".more off")

    driver.run(script)
    assert seen["lines"] == 256
