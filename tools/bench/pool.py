"""Benchmark: what the pool and memory extensions cost on a 115200-baud cable.

    python -m kdcon.tools.bench.pool [--runs N]

Boots the simulated target, runs trackdemo to its first request and prints one JSON
line per figure, each beside a baseline from the same run:

- ``poolfind`` / ``memusage`` / ``pool`` / ``dbgprint``: the bytes one command puts on
  the wire at a fresh stop (counted at the port; the cable is not paced, the bytes are
  the same), against the estimate the command prints before it starts (``poolfind``,
  ``memusage``; 1.0 means the warning was exact) or the data the job reads (``pool``,
  ``dbgprint``). ``line_seconds`` is what those bytes take at 115200 8N1 (10 bits a
  byte), ``seconds`` the unpaced wall time.
- ``poolfind_again``: the same search at the same stop (goal: no pool page fetched
  again), against the first.
- ``dbgprint_paced``: !dbgprint's wall time on a cable paced at 115200 baud, against
  the line time its bytes predict.
"""

from __future__ import annotations

import io
import json
import re
import statistics
import sys
import time
from typing import Any

from kdcon.app import App
from kdcon.output import Output
from kdcon.tools.bench.args import BenchParser, positive_int
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.loopback import SimTarget

__all__ = ["main"]

BAUD = 115200
_ESTIMATE = re.compile(r": (\d+) bytes to read, (\d+) on the wire")


def _emit(figure: str, value: float, unit: str, baseline_name: str, baseline: float,
          **extra: Any) -> None:
    line = {"figure": figure, "value": round(value, 4), "unit": unit,
            "baseline": baseline_name, "baseline_value": round(baseline, 4),
            "ratio": round(value / baseline, 4) if baseline else None}
    line.update(extra)
    print(json.dumps(line), flush=True)


class _Session:
    def __init__(self, pace: int | None = None) -> None:
        self.sim = SimTarget(seed=0, break_on_connect=True)
        self.stream = io.StringIO()
        self.app = App(self.sim.connect(pace=pace), link_name="bench",
                       symbol_path=f"{IMAGES_DIR};{IMAGES_DIR / 'checked'}",
                       output=Output(stream=self.stream), echo_commands=False, timeout=600)
        self.app.connect()
        for line in ("bp trackdemo!TrackDemoDispatch", "g", "g"):
            self.app.console.execute(line)

    def cost(self, command: str) -> tuple[int, float, str]:
        """(wire bytes, wall seconds, text) of one command."""
        session = self.app.session
        start = len(self.stream.getvalue())
        before = session.wire()
        started = time.perf_counter()
        if not self.app.console.execute(command):
            raise RuntimeError(f"{command} failed")
        seconds = time.perf_counter() - started
        after = session.wire()
        return after.total - before.total, seconds, self.stream.getvalue()[start:]

    def next_stop(self) -> None:
        """A fresh stop (the next request), so nothing is cached."""
        self.app.console.execute("g")

    def close(self) -> None:
        self.app.close()
        self.sim.close()


def _line_seconds(count: int) -> float:
    return count * 10 / BAUD


def bench(runs: int) -> None:
    session = _Session()
    try:
        for command in ("!poolfind Demo", "!memusage", "!pool poi(poi(poi(trackdemo!"
                        "TrackRecordList))+10)", "!dbgprint"):
            costs, times, estimate, data = [], [], 0, 0
            for _ in range(runs):
                session.next_stop()
                cost, seconds, text = session.cost(command)
                costs.append(cost)
                times.append(seconds)
                found = _ESTIMATE.search(text)
                if found:
                    data, estimate = int(found.group(1)), int(found.group(2))
            name = command.split()[0].lstrip("!")
            value = statistics.median(costs)
            if estimate:
                _emit(name, value, "bytes", "estimate_printed_first", estimate,
                      data_bytes_read=data, line_seconds=round(_line_seconds(value), 1),
                      seconds=round(statistics.median(times), 4), baud=BAUD)
            else:
                # !pool reads one pool page, !dbgprint the 4 KB buffer: the data each needs.
                _emit(name, value, "bytes", "data_bytes_read", 0x1000,
                      line_seconds=round(_line_seconds(value), 2),
                      seconds=round(statistics.median(times), 4), baud=BAUD)
        session.next_stop()
        first, _, _ = session.cost("!poolfind Demo")
        again, again_time, _ = session.cost("!poolfind Demo")
        _emit("poolfind_again", again, "bytes", "poolfind_first_run_at_this_stop", first,
              seconds=round(again_time, 4), goal="no pool page fetched again")
    finally:
        session.close()
    paced = _Session(pace=BAUD)
    try:
        paced.next_stop()
        cost, seconds, _ = paced.cost("!dbgprint")
        _emit("dbgprint_paced", seconds, "s", "line_seconds_of_its_bytes", _line_seconds(cost),
              bytes=cost, baud=BAUD)
    finally:
        paced.close()


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.pool",
                         description="Wire cost of the pool and memory extensions at 115200 baud.")
    parser.add_argument("--runs", type=positive_int, default=3,
                        help="fresh stops each command is measured on (default 3)")
    args = parser.parse_args(argv)
    bench(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
