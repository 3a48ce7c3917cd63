"""Benchmark: how soon a session is back after the target restarts on its socket.

    python -m kdcon.tools.bench.reconnect [--runs N]

The target is the real ``kdcon-sim`` program listening on a unix socket; the console
is an App in this process whose Healer watches the link (reconnect.py). Each run kills
the simulator, starts it again on the same path and times from the moment it prints
``listening on`` to the session being restored: resynchronised, module list read,
breakpoints taken back (one ``bu``), the stop shown, halted at the prompt. One JSON
line per figure, beside a baseline measured in the same run:

- ``reconnect_after_restart``: median over the runs (goal < 2 s), against
  ``attach_after_listen``: a new console attaching to a freshly started simulator,
  from ``listening on`` to its first prompt (what a user who restarts kdcon by hand
  waits, not counting the typing).
- ``reconnect_worst``: the slowest run, against the same baseline.
- ``restore_after_open``: from the reopened link to the session restored (the part
  that is not waiting for the simulator to listen), against the baseline.
- ``first_open_after_listen``: a console started before the simulator (waiting for
  its socket, linkwait.py) from ``listening on`` to its first stop shown, median,
  against the same baseline: what the wait's backoff adds.

Not part of the test suite.
"""

from __future__ import annotations

import io
import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kdcon.app import App
from kdcon.linkwait import open_waiting
from kdcon.output import Output
from kdcon.reconnect import Reopen
from kdcon.tools.bench.args import BenchParser, positive_int

__all__ = ["main"]

IMAGES = Path(__file__).resolve().parents[1] / "simtarget" / "images"
START_TIMEOUT = 30.0


class _Sim:
    def __init__(self, path: Path) -> None:
        self.url = f"unix://{path}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> float:
        """Start it; the monotonic time it said it listens."""
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from kdcon.tools.simtarget.cli import main; "
             "sys.exit(main())", "--listen", self.url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=START_TIMEOUT):
                raise SystemExit("kdcon-sim did not start")
        line = self.proc.stdout.readline()
        listening = time.monotonic()
        if not line.startswith("listening on"):
            raise SystemExit(f"kdcon-sim said {line!r}")
        return listening

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _app(url: str) -> App:
    return App(Reopen(url)(), link_name=url, output=Output(io.StringIO()),
               symbol_path=f"{IMAGES};{IMAGES / 'checked'}", timeout=60)


def _attach_after_listen(sim: _Sim) -> float:
    sim.kill()
    listening = sim.start()
    app = _app(sim.url)
    try:
        app.connect()
        return time.monotonic() - listening
    finally:
        app.close()


def _first_open_after_listen(sim: _Sim) -> float:
    """Start waiting for the socket, then start the simulator; seconds from its
    ``listening on`` to the console's first stop."""
    sim.kill()
    waiting = threading.Event()
    opened: list[object] = []

    def wait_for_link() -> None:
        opened.append(open_waiting(Reopen(sim.url), say=lambda line: waiting.set(),
                                   deadline=time.monotonic() + START_TIMEOUT))

    thread = threading.Thread(target=wait_for_link)
    thread.start()
    if not waiting.wait(START_TIMEOUT):
        raise SystemExit("the console did not wait for the missing socket")
    listening = sim.start()
    thread.join(START_TIMEOUT)
    if not opened:
        raise SystemExit("the socket did not open once the simulator listened")
    app = App(opened[0], link_name=sim.url, output=Output(io.StringIO()),
              symbol_path=f"{IMAGES};{IMAGES / 'checked'}", timeout=60)
    try:
        app.connect()
        return time.monotonic() - listening
    finally:
        app.close()


def _reconnects(sim: _Sim, runs: int) -> tuple[list[float], list[float]]:
    sim.kill()
    sim.start()
    app = _app(sim.url)
    back, restore = [], []
    try:
        app.connect()
        app.run_line("bu trackdemo!TrackDemoTick")
        app.healer.watch(Reopen(sim.url))
        for run in range(1, runs + 1):
            sim.kill()
            listening = sim.start()
            if not app.healer.wait_reconnected(run, START_TIMEOUT):
                raise SystemExit(f"run {run}: the session did not come back")
            back.append(time.monotonic() - listening)
            restore.append(app.healer.last_duration or 0.0)
    finally:
        app.close()
    return back, restore


def _emit(figure: str, value: float, baseline_name: str, baseline: float, **extra) -> None:
    line = {"figure": figure, "value": round(value, 4), "unit": "s",
            "baseline": baseline_name, "baseline_value": round(baseline, 4),
            "ratio": round(value / baseline, 4) if baseline else None}
    line.update(extra)
    print(json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.reconnect",
                         description="Reconnect time after the simulated target restarts.")
    parser.add_argument("--runs", type=positive_int, default=5,
                        help="restarts to time (default 5)")
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="kdcon-reconnect-")
    sim = _Sim(Path(directory) / "kd.sock")
    try:
        attach = statistics.median(_attach_after_listen(sim) for _ in range(max(1, args.runs // 2)))
        back, restore = _reconnects(sim, args.runs)
        first = statistics.median(_first_open_after_listen(sim) for _ in range(args.runs))
    finally:
        sim.stop()
        try:
            os.rmdir(directory)
        except OSError:
            pass
    _emit("reconnect_after_restart", statistics.median(back), "attach_after_listen", attach,
          goal="< 2 s", runs=args.runs)
    _emit("reconnect_worst", max(back), "attach_after_listen", attach, goal="< 2 s")
    _emit("restore_after_open", statistics.median(restore), "attach_after_listen", attach)
    _emit("first_open_after_listen", first, "attach_after_listen", attach, runs=args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
