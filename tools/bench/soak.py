"""Soak: the console's script over a paced, fault-injecting 115200 cable, seed after seed.

    python -m kdcon.tools.bench.soak [--seconds S] [--first-seed N] [--faults SPEC]

Each run is ``kdcon --loopback --batch`` as its own process, the script of
tests/console/test_noisy_line.py (breakpoint hits, a stack, registers, memory,
disassembly, a step, a ``.restart`` resync and a hit after it), over a line paced at
115200 baud with the fault model's bit flips, drops, duplicates and garbage bursts,
one seed per run, until ``--seconds`` have passed. The baseline is the same script
over a clean, unpaced link, run first. One JSON line per run (``soak_run``: seed,
exit status, seconds, whether its transcript is the clean one's and, if not, the
first line that differs) and a summary (``soak``): runs, identical transcripts,
hangs (a run that passed its wall-clock bound, or exit status 3 from --timeout) and
the median seconds a run took against the clean run's.

The KD checksum is a byte sum: a duplicated and a dropped byte of the same value pass
it (docs/protocol.md, "blind spot"). On a line that damaged packets lately the console
asks again for large memory and context replies (protocol/host.py), checks a stop's
instruction bytes against a read of that memory and reads the module list's entries
and names until two reads agree (session.py), and takes RIP from the context when a
stop's two copies of it disagree; what is left (other small replies, the rest of a
state change) still reaches a run now and then at these fault rates, ten times a bad
cable's: such a run shows a different line, and is counted, not hidden. Run the code
before and after a change side by side (same seeds, same load) to compare them. Not
part of the test suite.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from kdcon.tools.bench.args import BenchParser, positive_int

__all__ = ["main", "SCRIPT", "FAULTS"]

SCRIPT = ("bu trackdemo!TrackDemoTick", "g", "g", "k", "r", "db trackdemo!TrackDemoTickCount L20",
          "u rip L4", "p", ".restart", "g", "bl")
FAULTS = "flip=1e-4,drop=1e-3,dup=1e-3,garbage=1e-4"
# What one run may take on the wall clock before it counts as a hang: a clean paced run
# takes about 15 s on a loaded two-core machine.
RUN_BOUND = 180.0


def _run(extra: list[str]) -> tuple[str, int, float, bool]:
    """(transcript, exit status, seconds, hung)."""
    command = [sys.executable, "-m", "kdcon.cli", "--loopback", "--batch", "--timeout", "120"]
    for line in SCRIPT:
        command += ["-c", line]
    started = time.monotonic()
    try:
        done = subprocess.run(command + extra, capture_output=True, text=True, timeout=RUN_BOUND)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return output, -1, time.monotonic() - started, True
    return done.stdout, done.returncode, time.monotonic() - started, done.returncode == 3


def _first_difference(clean: str, other: str) -> str | None:
    for ours, theirs in zip(clean.splitlines(), other.splitlines()):
        if ours != theirs:
            return theirs
    if len(clean.splitlines()) != len(other.splitlines()):
        return "(the transcript is cut short)" if len(other) < len(clean) else "(extra lines)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.soak",
                         description="The noisy-line script over many fault seeds.")
    parser.add_argument("--seconds", type=positive_int, default=300,
                        help="keep starting runs until this many seconds have passed "
                             "(default 300)")
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first run")
    parser.add_argument("--faults", default=FAULTS, help=f"fault rates (default {FAULTS})")
    parser.add_argument("--pace", type=positive_int, default=115200, help="baud (default 115200)")
    args = parser.parse_args(argv)
    clean, clean_status, clean_seconds, _ = _run([])
    if clean_status != 0:
        print(json.dumps({"figure": "soak", "error": "the clean run failed",
                          "status": clean_status}), flush=True)
        return 1
    deadline = time.monotonic() + args.seconds
    seed, runs, identical, hangs, seconds = args.first_seed, 0, 0, 0, []
    while time.monotonic() < deadline:
        text, status, took, hung = _run(["--pace", str(args.pace),
                                         "--faults", f"{args.faults},seed={seed}"])
        same = text == clean and status == 0
        runs, identical, hangs = runs + 1, identical + same, hangs + hung
        seconds.append(took)
        record = {"figure": "soak_run", "seed": seed, "status": status,
                  "seconds": round(took, 3), "identical": same}
        if not same:
            record["first_difference"] = _first_difference(clean, text)
        print(json.dumps(record), flush=True)
        seed += 1
    median = statistics.median(seconds) if seconds else 0.0
    print(json.dumps({"figure": "soak", "value": round(median, 3), "unit": "s",
                      "baseline": "clean_run", "baseline_value": round(clean_seconds, 3),
                      "ratio": round(median / clean_seconds, 3) if clean_seconds else None,
                      "runs": runs, "identical": identical, "hangs": hangs,
                      "faults": args.faults, "pace": args.pace}), flush=True)
    return 0 if hangs == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
