"""What reaches the terminal: colour only where it helps and only when wanted, plain
text from pipes and --batch, and the keys .help lists."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from kdcon.terminal import KEYS, TerminalStream, colour_wanted, colourise
from tests.console.transcripts import batch


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("environ, no_color, wanted", [
    ({"TERM": "xterm-256color"}, False, True),
    ({"TERM": "xterm-256color", "NO_COLOR": "1"}, False, False),
    ({"TERM": "xterm-256color", "NO_COLOR": ""}, False, True),     # no-color.org: non-empty
    ({"TERM": "dumb"}, False, False),
    ({"TERM": "xterm"}, True, False),
])
def test_colour_is_off_for_no_color_a_dumb_terminal_or_the_option(environ, no_color, wanted):
    assert colour_wanted(Tty(), no_color=no_color, environ=environ) is wanted


def test_colour_is_off_when_output_is_not_a_terminal():
    assert colour_wanted(io.StringIO(), environ={"TERM": "xterm"}) is False


def test_symbols_stop_locations_hits_and_breakpoint_states_are_painted():
    text = ("Breakpoint 0 hit\n"
            "trackdemo!TrackDemoTick:\n"
            "fffff800`01074520 e8 call    nt!KeBugCheck (fffff800`01001000)\n"
            " 0 e  fffff800`01074520     0001 (0001) trackdemo!TrackDemoTick\n"
            " 1 d  fffff800`01001014     0001 (0001) nt!DbgBreakPoint\n")
    painted = colourise(text)
    assert "\x1b[1;33mBreakpoint 0 hit\x1b[0m" in painted
    assert "\x1b[1;36mtrackdemo!TrackDemoTick:\x1b[0m" in painted
    assert "\x1b[36mnt!KeBugCheck\x1b[0m" in painted
    assert " 0 \x1b[32me\x1b[0m  fffff800" in painted and " 1 \x1b[2md\x1b[0m  fffff800" in painted
    assert _plain(painted) == text


@pytest.mark.parametrize("text", ["!sym noisy\n", "a != b\n", "TrackDemo: ready\n",
                                  "fffff800`01001016 cc              int     3\n"])
def test_text_without_symbols_stays_plain(text):
    assert colourise(text) == text


def test_the_stream_paints_only_when_asked_and_a_gate_can_drop_text():
    target = io.StringIO()
    stream = TerminalStream(target)
    stream.write("nt!Foo\n")
    stream.colour = True
    stream.write("nt!Foo\n")
    stream.gate = lambda: False
    stream.write("dropped\n")
    assert target.getvalue() == "nt!Foo\n\x1b[36mnt!Foo\x1b[0m\n"


def test_batch_text_carries_no_escape_codes():
    text, status = batch("u nt!DbgBreakPoint L2", "bp trackdemo!TrackDemoTick", "bl")
    assert status == 0
    assert "nt!DbgBreakPoint:" in text and "\x1b" not in text


def test_a_pipe_gets_the_plain_prompt_and_plain_text():
    run = subprocess.run([sys.executable, "-m", "kdcon.cli", "--loopback"],
                         input="r rip\nu nt!DbgBreakPoint L1\nq\n", capture_output=True,
                         text=True, timeout=60, env={"TERM": "xterm-256color", "PATH": ""})
    assert run.returncode == 0, run.stderr
    assert "0: kd> rip=" in run.stdout
    assert "nt!DbgBreakPoint:" in run.stdout and "\x1b" not in run.stdout


def test_help_keys_lists_every_key(capsys):
    text, status = batch(".help keys")
    assert status == 0
    for key, meaning in KEYS:
        assert f"  {key:<14} {meaning}" in text
    assert {"Ctrl+C", "Ctrl+D", "Ctrl+B", "Ctrl+R", "Ctrl+K", "F2"} <= {key for key, _ in KEYS}


def _plain(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("reason, attempt, shown", [
    ("the peer closed the link; reconnecting, try 3 in 0.4 s", 2, "lost, reconnecting, try 3 in 0.4 s"),
    ("the peer closed the link", 1, "lost, reconnecting (attempt 1)"),
    ("the peer closed the link", 0, "lost (the peer closed the link)"),
    (None, 0, "lost"),
])
def test_the_toolbar_says_when_a_lost_link_is_tried_again(reason, attempt, shown):
    from types import SimpleNamespace

    from kdcon.session import TargetState
    from kdcon.toolbar import target_state_text

    session = SimpleNamespace(state=TargetState.LOST, lost_reason=reason, stop=None)
    assert target_state_text(session, healer=SimpleNamespace(attempt=attempt)) == shown
