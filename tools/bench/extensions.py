"""Benchmark: what the Track extensions cost on a paced 115200-baud cable.

    python -m kdcon.tools.bench.extensions [--runs N]

Boots the simulated target behind a link paced like a real 115200 8N1 line (86.8 µs a
byte), runs trackdemo to its first request, plants the leaks (five live records), and
prints one JSON line per figure, each beside a baseline from the same run:

- ``trackdump`` / ``trackvalidate`` / ``trackleaks``: wire bytes of one command on a
  fresh stop, against the bytes the job needs, sent the cheapest way kd could: one
  request for the Track globals it reads and one per record (and per guard pair for
  ``trackvalidate``), each a 16-byte header, the 56-byte DBGKD_MANIPULATE_STATE64, its
  data, a trailer byte and a 16-byte ACK (kd-protocol.md §1.4). Below 1 means the
  page cache read neighbours in one request. The same command's wall time on the
  paced cable is reported beside it, and so is the raw data the job needs.
- ``trackdump_again``: the same command again at the same stop (goal: 0 bytes, every
  page is cached), against the first run.

Not here: !poolfind's scan (the pool extensions' own benchmark figures).
"""

from __future__ import annotations

import io
import json
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
PACKET, ACK, MANIPULATE = 16 + 1, 16, 56


def _request(data_back: int) -> int:
    return (PACKET + MANIPULATE) + ACK + (PACKET + MANIPULATE + data_back) + ACK


def _emit(figure: str, value: float, unit: str, baseline_name: str, baseline: float,
          **extra: Any) -> None:
    line = {"figure": figure, "value": round(value, 4), "unit": unit,
            "baseline": baseline_name, "baseline_value": round(baseline, 4),
            "ratio": round(value / baseline, 4) if baseline else None}
    line.update(extra)
    print(json.dumps(line), flush=True)


class _Session:
    def __init__(self) -> None:
        self.sim = SimTarget(seed=0, break_on_connect=True)
        self.app = App(self.sim.connect(pace=BAUD), link_name="bench",
                       symbol_path=f"{IMAGES_DIR};{IMAGES_DIR / 'checked'}",
                       output=Output(stream=io.StringIO()), echo_commands=False, timeout=120)
        self.app.connect()
        for line in ("bp trackdemo!TrackDemoDispatch", "g", "g", "ed nt!KiSimRequest 1", "g",
                     "g"):
            self.app.console.execute(line)

    def cost(self, command: str) -> tuple[int, int, float]:
        session = self.app.session
        before = session.wire()
        started = time.perf_counter()
        ok = self.app.console.execute(command)
        seconds = time.perf_counter() - started
        after = session.wire()
        if not ok and command != "!trackleaks" and command != "!trackvalidate":
            raise RuntimeError(f"{command} failed")
        return after.total - before.total, after.round_trips - before.round_trips, seconds

    def next_stop(self) -> None:
        """A fresh stop (the next request), so nothing is cached."""
        self.app.console.execute("g")

    def records(self) -> tuple[int, int]:
        target = self.app.console.target
        head = target.symbol("trackdemo!TrackRecordList")
        views = list(target.walk_list(head, "trackdemo!_TRACK_RECORD", "ListEntry"))
        guarded = sum(1 for view in views if view.Flags & 2)
        return len(views), guarded

    def close(self) -> None:
        self.app.close()
        self.sim.close()


def bench(runs: int) -> None:
    session = _Session()
    try:
        count, guarded = session.records()
        size = session.app.console.target.find_type("trackdemo!_TRACK_RECORD").size
        walk = (1 + 16 + count * size, _request(1) + _request(16) + count * _request(size))
        guards = (4 + 1 + guarded * 32, _request(4) + _request(1) + 2 * guarded * _request(16))
        needs = {"!trackdump": walk, "!trackleaks": walk,
                 "!trackvalidate": (walk[0] + guards[0], walk[1] + guards[1])}
        for command, (data, wire) in needs.items():
            costs, trips, times = [], [], []
            for _ in range(runs):
                session.next_stop()
                cost, round_trips, seconds = session.cost(command)
                costs.append(cost)
                trips.append(round_trips)
                times.append(seconds)
            name = command.lstrip("!")
            _emit(name, statistics.median(costs), "bytes", "kd_one_request_per_object", wire,
                  round_trips=statistics.median(trips), data_bytes_needed=data,
                  records=count, seconds=round(statistics.median(times), 4),
                  baud=BAUD)
        session.next_stop()
        first, _, _ = session.cost("!trackdump")
        again, again_trips, again_time = session.cost("!trackdump")
        _emit("trackdump_again", again, "bytes", "trackdump_first_run_at_this_stop", first,
              round_trips=again_trips, seconds=round(again_time, 4), goal_bytes=0)
    finally:
        session.close()


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="kdcon.tools.bench.extensions",
                         description="Wire cost of the Track extensions at 115200 baud.")
    parser.add_argument("--runs", type=positive_int, default=3,
                        help="fresh stops each command is measured on (default 3)")
    args = parser.parse_args(argv)
    bench(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
