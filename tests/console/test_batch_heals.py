"""A --batch run heals too: kdcon-sim killed mid-script and restarted on the same socket.

The command in flight fails (status 1 at the end), the script waits for the session to
come back and carries on; with the link still lost at --timeout the run ends with status 3.
Waits are on output lines and process exits with deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from kdcon.app import EXIT_TIMEOUT, App
from kdcon.output import Output
from kdcon.reconnect import Reopen

from .test_reconnect import SYMBOLS, Screen, SimProcess, sim  # noqa: F401  (the fixture)

DEADLINE = 60.0


def _read_until(proc: subprocess.Popen[str], needle: str) -> str:
    """stdout up to and including the line ``needle`` (kdcon flushes each write)."""
    seen: list[str] = []
    timer = threading.Timer(DEADLINE, proc.kill)
    timer.start()
    try:
        while True:
            line = proc.stdout.readline()
            assert line, "kdcon ended before printing " + repr(needle) + "\n" + "".join(seen)
            seen.append(line)
            if line == needle:
                return "".join(seen)
    finally:
        timer.cancel()


@pytest.mark.slow
def test_a_batch_goes_on_after_the_target_is_killed_and_restarted_mid_command(sim):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdcon.cli", "--port", sim.url, "--batch", "--timeout", "60",
         "-y", SYMBOLS, "-c", "r rip", "-c", "g", "-c", "r rip", "-c", ".echo after the loss"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = _read_until(proc, "0: kd> g\n")
        sim.kill()
        sim.start()
        after, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, before + after + err
    assert "0: kd> r rip\nrip=fffff800" in before
    # The reconnecting loop's lines may come before or after the failure of g itself.
    lost, restored = after.split("Reconnected: the session is back", 1)
    assert "\nThe link to the target is lost: " in "\n" + lost
    assert "The script waits for the target to come back before its next command\n" in lost
    assert "KDTARGET: Refreshing KD connection" in lost
    assert "Kernel Debugger connection established again: Windows 7601 x64" in lost
    assert "0: kd> r rip\nrip=fffff800" in restored
    assert restored.endswith("0: kd> .echo after the loss\nafter the loss\n")
    assert "Traceback" not in after + err


@pytest.mark.slow
def test_a_batch_whose_link_stays_lost_ends_at_the_timeout_with_status_3(sim):
    screen = Screen()
    app = App(Reopen(sim.url)(), link_name=sim.url, output=Output(screen), symbol_path=SYMBOLS)
    try:
        app.connect()
        app.healer.watch(Reopen(sim.url))
        sim.kill()
        assert screen.wait_for("The link to the target is lost", 10)
        app.timeout = 0.5
        app.started = time.monotonic()
        status = app.run_commands(["r rip", ".echo never"])
    finally:
        app.close()
    text = screen.text()
    assert status == EXIT_TIMEOUT, text
    assert "--timeout expired while the link to the target was lost; the rest of the " \
        "script was not run\n" in text
    assert "never" not in text
