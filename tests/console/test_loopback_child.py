"""``kdcon --loopback`` runs the simulated target in a child process: its life cycle.

The child ends with the console however the console ends (``q``, end of input,
SIGTERM, SIGKILL, Ctrl+C ending a batch), keeps out of the console's Ctrl+C (the
console breaks in over the link instead), and a driver it cannot load is one line and
status 2 with no child left. Linux only: the child is found through /proc and awaited
with a pidfd.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..oracles import IN_CI

# Off Linux these cannot watch the child; CI runs on Linux, where they must run.
pytestmark = pytest.mark.skipif(not IN_CI and (not hasattr(os, "pidfd_open") or not Path("/proc").is_dir()),
                                reason="needs /proc and pidfd_open (Linux)")

PROMPT = b"kd> "


class Console:
    """``kdcon --loopback`` with its plain prompt on pipes, in a process group of its
    own (a terminal's Ctrl+C goes to the whole group)."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kdcon.cli", "--loopback", "--no-workspace", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            process_group=0)
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float = 60.0) -> bytes:
        """Standard output up to and including the next ``marker``."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while marker not in self.seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            assert ready, f"no {marker!r} within {timeout} s; output so far: {self.seen!r}"
            chunk = os.read(fd, 65536)
            assert chunk, f"the console ended before {marker!r}; output: {self.seen!r}"
            self.seen += chunk
        text, _, self.seen = self.seen.partition(marker)
        return text + marker

    def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def target_child(self) -> int:
        """The pid of the simulated target's process, the console's only child."""
        children = [pid for pid in _pids() if _parent(pid) == self.proc.pid]
        assert len(children) == 1, f"children of the console: {children}"
        return children[0]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except BrokenPipeError:
                pass  # our unread line died with the console


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ends_within(pidfd: int, timeout: float) -> bool:
    ready, _, _ = select.select([pidfd], [], [], timeout)
    return bool(ready)


@pytest.fixture
def console():
    made = Console()
    made.read_until(PROMPT)
    yield made
    made.close()


def _watch(console: Console) -> int:
    """A pidfd on the target's process (readable once that process has ended)."""
    return os.pidfd_open(console.target_child())


def test_child_ends_when_the_console_quits(console) -> None:
    pidfd = _watch(console)
    try:
        console.send("q")
        assert console.proc.wait(timeout=30) == 0
        assert _ends_within(pidfd, 30)
    finally:
        os.close(pidfd)


def test_child_ends_at_the_end_of_the_consoles_input(console) -> None:
    pidfd = _watch(console)
    try:
        console.proc.stdin.close()
        console.proc.wait(timeout=30)
        assert _ends_within(pidfd, 30)
    finally:
        os.close(pidfd)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_child_ends_when_the_console_is_killed(console, signum) -> None:
    pidfd = _watch(console)
    try:
        assert _ends_within(pidfd, 0) is False
        console.proc.send_signal(signum)
        console.proc.wait(timeout=30)
        assert _ends_within(pidfd, 30)
    finally:
        os.close(pidfd)


def test_ctrl_c_breaks_in_over_the_link_and_spares_the_child(console) -> None:
    child = console.target_child()
    console.send("g")  # to trackdemo's DriverEntry break
    console.read_until(PROMPT)
    console.send("g")
    # The target runs: no prompt until the break-in the group's Ctrl+C asks for.
    console.read_until(b"TrackDemo: ready\n")
    os.killpg(console.proc.pid, signal.SIGINT)
    text = console.read_until(PROMPT)
    assert b"Break instruction exception" in text
    assert console.target_child() == child
    console.send("r rip")
    assert b"rip=" in console.read_until(PROMPT)


def test_ctrl_c_ends_a_batch_whose_target_runs_and_its_child() -> None:
    batch = Console("--batch", "-c", "g", "-c", "g", "-c", "r rip")
    try:
        batch.read_until(b"TrackDemo: ready\n")
        pidfd = os.pidfd_open(batch.target_child())
        try:
            os.killpg(batch.proc.pid, signal.SIGINT)
            assert batch.proc.wait(timeout=30) == 1
            assert _ends_within(pidfd, 30)
        finally:
            os.close(pidfd)
        assert b"Traceback" not in batch.proc.stderr.read()
    finally:
        batch.close()


def test_driver_that_is_no_image_is_one_line_and_leaves_no_child(tmp_path) -> None:
    bad = tmp_path / "bad.sys"
    bad.write_bytes(b"not a driver\n")
    run = subprocess.run([sys.executable, "-m", "kdcon.cli", "--loopback", "--batch",
                          "--driver", str(bad), "-c", "lm"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("kdcon: cannot open the link: the simulated target could not "
                               "start: bad.sys is not a PE image")
    assert not [pid for pid in _pids() if str(bad).encode() in _command_line(pid)]
