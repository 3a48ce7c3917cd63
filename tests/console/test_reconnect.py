"""A connection that heals itself: kdcon-sim killed and restarted, a silent target, .restart.

The target runs as the real ``kdcon-sim`` program on a unix socket; the console is an
App in this process with its Healer watching the link. Every wait is on an event or
a line of output with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import io
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kdcon.app import App
from kdcon.output import Output
from kdcon.reconnect import Backoff, Reopen, heal_spec
from kdcon.session import TargetState
from kdcon.tools.simtarget.loopback import SimTarget

from .transcripts import run_kdcon

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"
SYMBOLS = f"{IMAGES};{IMAGES / 'checked'}"
START_TIMEOUT = 20.0


class Screen(io.TextIOBase):
    """What the console shows, written from any thread, with waits for a line."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._changed = threading.Condition()

    def write(self, text: str) -> int:
        with self._changed:
            self._parts.append(text)
            self._changed.notify_all()
        return len(text)

    def text(self) -> str:
        with self._changed:
            return "".join(self._parts)

    def wait_for(self, needle: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: needle in "".join(self._parts), timeout)


class SimProcess:
    """``kdcon-sim --listen unix://PATH`` as a child process, started and stopped at will."""

    def __init__(self, path: Path) -> None:
        self.url = f"unix://{path}"
        self.proc: subprocess.Popen[str] | None = None
        self.listening_at = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from kdcon.tools.simtarget.cli import main; "
             "sys.exit(main())", "--listen", self.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=START_TIMEOUT), "kdcon-sim printed nothing"
        line = self.proc.stdout.readline().strip()
        self.listening_at = time.monotonic()
        assert line == f"listening on {self.url}", self.proc.stderr.read()

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=START_TIMEOUT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def sim(tmp_path):
    process = SimProcess(tmp_path / "kd.sock")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _app(sim: SimProcess, screen: Screen, **options) -> App:
    return App(Reopen(sim.url)(), link_name=sim.url, output=Output(screen),
               symbol_path=SYMBOLS, timeout=60, **options)


@pytest.mark.slow
def test_a_session_survives_the_target_killed_and_restarted_on_the_same_socket(sim):
    screen = Screen()
    app = _app(sim, screen)
    app.restart_commands = [".echo the -cfr script ran"]
    try:
        app.connect()
        app.run_line('bu trackdemo!TrackDemoTick ".echo tick command ran"')
        app.healer.watch(Reopen(sim.url))
        sim.kill()
        assert screen.wait_for("The link to the target is lost", 10)
        started = time.monotonic()
        app.run_line("r rip")
        assert time.monotonic() - started < 2.0
        # The reconnecting loop's own lines may come between the command and its answer.
        answer = screen.text().split("kd> r rip\n", 1)[1]
        assert "\nthe target link is lost (" in "\n" + answer
        sim.start()
        assert app.healer.wait_reconnected(1, 30), screen.text()
        assert app.session.state is TargetState.HALTED
        app.run_line("g")
    finally:
        app.close()
    text = screen.text()
    restored = text.split("KDTARGET: Refreshing KD connection", 1)[1]
    assert "Breakpoints: 1 kept, written into the target when it runs" in restored
    assert "0: kd> .echo the -cfr script ran\nthe -cfr script ran\n" in restored
    after = restored.split("Reconnected: the session is back", 1)[1]
    hit = after.split("kd> g\n", 1)[1]
    assert "Breakpoint 0 hit\ntrackdemo!TrackDemoTick:\n" in hit
    assert "tick command ran" in hit
    assert "Traceback" not in text


@pytest.mark.slow
def test_a_silent_target_gives_a_timeout_line_within_the_bound_and_the_session_goes_on(sim):
    screen = Screen()
    app = _app(sim, screen, request_timeout=0.5)
    bound = 0.5 * 3
    try:
        app.connect()
        sim.signal(signal.SIGSTOP)
        started = time.monotonic()
        app.run_line("dd nt L4")
        elapsed = time.monotonic() - started
        sim.signal(signal.SIGCONT)
        silent = screen.text().rsplit("kd> dd nt L4\n", 1)[1]
        app.run_line("dd nt L4")
        app.run_line("r rip")
    finally:
        app.close()
    assert silent.startswith("The target did not answer: DbgKdReadVirtualMemoryApi")
    assert elapsed < bound + 1.0, elapsed
    after = screen.text().rsplit("kd> dd nt L4\n", 1)[1]
    assert after.startswith("fffff800`01000000  00785a4d")
    assert "rip=fffff800" in after


def test_restart_resynchronises_takes_breakpoints_back_and_runs_cfr_again(tmp_path):
    script = tmp_path / "restart.txt"
    script.write_text(".echo cfr line\n", encoding="utf-8")
    text, status = run_kdcon(["--loopback", "--batch", "--timeout", "60", "-cfr", str(script),
                              "-c", "bu trackdemo!TrackDemoTick", "-c", ".restart",
                              "-c", "g", "-c", "g"])
    assert status == 0, text
    restart = text.split("kd> .restart\n", 1)[1]
    assert restart.startswith("KDTARGET: Refreshing KD connection\n"
                              "Kernel Debugger connection established again: Windows 7601 x64")
    assert "Breakpoints: 1 kept, written into the target when it runs\n" in restart
    assert text.count("kd> .echo cfr line\ncfr line\n") == 2
    assert "Breakpoint 0 hit\ntrackdemo!TrackDemoTick:" in restart


def test_a_command_typed_while_the_session_is_restored_is_refused_at_once():
    sim = SimTarget(seed=0, break_on_connect=True)
    screen = Screen()
    app = App(sim.connect(), link_name="loopback", output=Output(screen))
    holding, release = threading.Event(), threading.Event()

    def restore() -> None:
        with app.console.lock:
            holding.set()
            release.wait(10)

    try:
        app.connect()
        helper = threading.Thread(target=restore)
        helper.start()
        assert holding.wait(10)
        started = time.monotonic()
        assert app.console.execute("bl") is False
        refused_in = time.monotonic() - started
        release.set()
        helper.join(10)
        assert app.console.execute("? 1") is True
    finally:
        release.set()
        app.close()
        sim.close()
    assert refused_in < 1.0
    assert "The console is reconnecting to the target; the command was not run" in screen.text()


def test_restart_on_a_lost_link_that_does_not_heal_says_so():
    sim = SimTarget(seed=0, break_on_connect=True)
    screen = Screen()
    app = App(sim.connect(), link_name="loopback", output=Output(screen))
    try:
        app.connect()
        app.session.link.close()
        app.run_line(".restart")
    finally:
        app.close()
        sim.close()
    assert "kd> .restart\nthe target link is lost (closed by this side) and this link does not " \
        "reconnect: start kdcon again\n" in screen.text()


@pytest.mark.parametrize("spec, healed", [
    ("unix:///tmp/vm.sock", "unix:///tmp/vm.sock"),
    ("unix:///tmp/vm.sock?reconnect", "unix:///tmp/vm.sock"),
    ("unix:///tmp/vm.sock?listen&reconnect", "unix:///tmp/vm.sock?listen"),
    ("tcp://127.0.0.1:5555?reconnect&pace=115200", "tcp://127.0.0.1:5555?pace=115200"),
    ("com:pipe,port=/tmp/vm.sock,reconnect", "unix:///tmp/vm.sock"),
    ("com:pipe,port=/tmp/vm.sock", None),
    ("com:port=/dev/ttyUSB0,baud=115200", "/dev/ttyUSB0"),
    ("/dev/pts/7", "/dev/pts/7"),
    ("loop://", None),
    ("pty://", None),
])
def test_which_links_heal_and_what_is_opened_again(spec, healed):
    assert heal_spec(spec) == healed


def test_backoff_doubles_up_to_its_cap():
    delays = Backoff(first=0.1, factor=2.0, cap=1.0).delays()
    assert [round(next(delays), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_a_reboot_keeps_a_data_breakpoint_armed_and_runs_cfr_again(tmp_path):
    script = tmp_path / "restart.txt"
    script.write_text(".echo cfr line\n", encoding="utf-8")
    text, status = run_kdcon(["--loopback", "--batch", "--timeout", "60", "-cfr", str(script),
                              "-c", "ba w4 trackdemo!TrackDemoTickCount", "-c", ".reboot",
                              "-c", "g", "-c", "g"])
    assert status == 0, text
    rebooted = text.split("kd> .reboot\n", 1)[1]
    assert "Running the -cfr script again (1 command)\n0: kd> .echo cfr line\ncfr line\n" \
        in rebooted
    assert "Breakpoint 0 hit\ntrackdemo!TrackDemoTick+" in rebooted
