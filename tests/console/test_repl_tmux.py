"""The real program in a real terminal: ``kdcon --loopback`` under tmux, keys sent with
``send-keys``, the screen read with ``capture-pane``. Every wait is a bounded poll on
what the screen shows; each test ends its own tmux server."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from ..oracles import IN_CI

if shutil.which("tmux") is None:
    if IN_CI:
        raise RuntimeError("tmux is missing: .ci/run installs it")
    pytest.skip("tmux is not installed", allow_module_level=True)

BANNER = "THIS IS NOT A BUG OR A SYSTEM CRASH"
PROMPT = r"(?m)^0: kd>\s*$"          # capture-pane drops the trailing space


class Terminal:
    """One tmux server running one kdcon."""

    def __init__(self, tmp_path, *args: str) -> None:
        # A socket of our own under the test's directory: nothing left in /tmp/tmux-*.
        self.socket = str(tmp_path / "tmux.sock")
        state = tmp_path / "state"
        command = " ".join(shlex.quote(part) for part in
                           (sys.executable, "-m", "kdcon.cli", "--loopback", *args))
        self.tmux("new-session", "-d", "-x", "140", "-y", "45",
                  "-e", f"XDG_STATE_HOME={state}", "-e", f"HOME={tmp_path}",
                  f"{command}; echo kdcon-exited-$?; sleep 30")

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              text=True, timeout=10)

    def screen(self, history: int = 0) -> str:
        args = ["capture-pane", "-p"] + (["-S", f"-{history}"] if history else [])
        return self.tmux(*args).stdout

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def wait_for(self, pattern: str, *, timeout: float = 8.0, history: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen(history)
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on screen; it shows:\n{text}")
            time.sleep(0.05)

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(tmp_path):
    started = Terminal(tmp_path)
    try:
        yield started
    finally:
        started.close()


def test_the_prompt_appears_with_its_toolbar_and_ctrl_d_quits(terminal):
    terminal.wait_for(PROMPT)
    terminal.wait_for(r"halted cpu0 \| nt!DbgBreakPointWithStatus \| no command yet")
    terminal.send("C-d")
    terminal.wait_for(r"kdcon-exited-0")


def test_tab_after_module_bang_lists_the_modules_symbols(terminal):
    terminal.wait_for(PROMPT)
    terminal.send("bp trackdemo!TrackDemoT")
    terminal.send("Tab")
    screen = terminal.wait_for(r"TrackDemoTickCount")
    assert re.search(r"(?m)^\s+TrackDemoTick\s", screen)            # the menu's other line
    terminal.send("C-c")
    terminal.wait_for(PROMPT)


def test_g_then_ctrl_c_breaks_in_with_the_banner(terminal):
    terminal.wait_for(PROMPT)
    terminal.send("g", "Enter")
    terminal.wait_for(r"nt!DbgBreakPoint:\n")                 # DriverEntry's own break
    terminal.send("g", "Enter")
    terminal.wait_for(r"(?m)^kd>\s*$")
    terminal.wait_for(r"\| running \|")                      # the toolbar redraws after the prompt
    terminal.send("C-c")
    screen = terminal.wait_for(r"(?s)TrackDemo: ready.*" + BANNER + r".*0: kd>", history=200)
    assert screen.count(BANNER) == 2


def test_ctrl_c_stops_a_silent_loop_with_one_line_and_the_prompt_works(terminal):
    terminal.wait_for(PROMPT)
    terminal.send(".for (r $t0 = 0; @$t0 < 0n100000000; r $t0 = @$t0 + 1) { }; .echo never",
                  "Enter")
    terminal.wait_for(r"halted cpu0, busy")
    terminal.send("C-c")
    screen = terminal.wait_for(r"(?m)^The command was cancelled \(Ctrl\+C\)\.\n0: kd>\s*$")
    assert screen.count("The command was cancelled") == 1
    terminal.send("? 7", "Enter")
    terminal.wait_for(r"Evaluate expression: 7 = ")
    assert not re.search(r"(?m)^never$", terminal.screen(history=100))


def test_more_pauses_long_output_space_goes_on_and_q_stops(terminal):
    terminal.wait_for(PROMPT)
    terminal.send(".more on", "Enter")
    terminal.wait_for(r"Paging is on")
    terminal.send("db nt L1000", "Enter")
    # The page is on screen when the line right above -- more -- is one of its lines.
    terminal.wait_for(r"(?m)^fffff800`0100[0-9a-f]{4} .*\n-- more --")
    screen = terminal.screen(history=300)
    first = re.findall(r"(?m)^fffff800`0100[0-9a-f]{4}(?=  )", screen)
    assert len(first) == 45 - 2                       # a page: the pane less prompt and toolbar
    assert "fffff800`01000ff0" not in screen
    terminal.send("Space")
    terminal.wait_for(r"(?m)^fffff800`0100" + f"{len(first) * 16 + 0x10:04x}", history=300)
    terminal.send("q")
    # kd's q stops the output without a word: the prompt follows the last line shown.
    terminal.wait_for(r"(?m)^fffff800`0100[0-9a-f]{4}  .*\n0: kd>\s*$")
    screen = terminal.screen(history=400)
    assert "fffff800`01000ff0" not in screen and "cancelled" not in screen
    terminal.send(".more off", "Enter")
    terminal.wait_for(r"Paging is off")
