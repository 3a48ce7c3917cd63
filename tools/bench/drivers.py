"""Driver benchmarks on the simulated kernel: ``python -m kdcon.tools.bench.drivers``, one
JSON line per figure, each against a baseline measured in the same run.

- ``boot_to_driver_entry_s``: Machine() + boot() + running until a sioctl-like WDK-style
  driver (ioctltest, built with ``kdcon-sim build-driver``) prints from DriverEntry,
  against the same boot with no driver until the kernel reports its last own module
  (kdcom.dll), the point where the driver would be loaded next;
- ``ioctl_round_trips_per_s``: buffered device controls played into that driver as a
  user-mode program would (posted to the machine's I/O queue, each one DbgPrints as
  sioctl does), against the same number of requests on a handle that was never opened,
  which the I/O manager fails without reaching a driver.

The driver is built from ``--driver-src`` (default: the test suite's ioctltest sources
in a source checkout).  Not a test: nothing here asserts on speed.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kdcon.tools.bench.args import BenchParser, positive_int
from kdcon.tools.simtarget import drvbuild
from kdcon.tools.simtarget.events import (BreakInStop, BreakpointHit, BudgetExhausted, BugCheck, DebugPrintStop,
                                          LoadSymbols)
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest

__all__ = ["main"]

log = logging.getLogger(__name__)

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "tests" / "simtarget" / "wdkdrivers" / "ioctltest"
DEVICE = r"\\.\IoctlTestKsim"
BUFFERED_CODE = 40000 << 16 | 0x902 << 2          # METHOD_BUFFERED, FILE_ANY_ACCESS
BUDGET = 2_000_000


def _emit(name: str, value: float, baseline_name: str, baseline: float, unit: str, **extra: Any) -> None:
    record = dict(figure=name, value=round(value, 4), unit=unit, baseline=baseline_name,
                  baseline_value=round(baseline, 4), ratio=round(value / baseline, 4) if baseline else None,
                  **extra)
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _run_until(machine: Machine, done) -> None:
    """Run, resuming from every stop as a debugger would, until ``done(event)``."""
    while True:
        event = machine.run(budget=BUDGET)
        if done(event):
            return
        if isinstance(event, BugCheck):
            raise RuntimeError(f"the simulated kernel bug checked: {event}")
        if isinstance(event, (BreakpointHit, BreakInStop)):
            machine.skip_break_instruction()


def _quiet(event) -> bool:
    return isinstance(event, BudgetExhausted)


def bench_boot(driver: Path, repeats: int) -> None:
    def timed(drivers: list[Path], done) -> float:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            machine = Machine(drivers=drivers)
            machine.boot()
            _run_until(machine, done)
            best = min(best, time.perf_counter() - start)
        return best

    loaded = timed([driver], lambda e: isinstance(e, DebugPrintStop) and e.text.startswith("ioctl: loaded"))
    # The kernel's last own module reported: where a boot with no driver has done the same work.
    bare = timed([], lambda e: isinstance(e, LoadSymbols) and e.image.path.lower().endswith("kdcom.dll"))
    _emit("boot_to_driver_entry_s", loaded, "boot_without_driver_s", bare, "s", repeats=repeats)


def _round_trips(machine: Machine, requests: list[IoRequest]) -> float:
    before = len(machine.io.results)
    start = time.perf_counter()
    machine.io.post(*requests)
    _run_until(machine, lambda e: not machine.io.busy and len(machine.io.results) - before >= len(requests))
    return len(requests) / (time.perf_counter() - start)


def _open(machine: Machine, name: str) -> int:
    """Post a create of ``name``; its request index is what later requests name."""
    index = len(machine.io.results)
    machine.io.post(IoRequest.create(name))
    _run_until(machine, lambda e: not machine.io.busy)
    return index


def bench_ioctls(driver: Path, count: int) -> None:
    machine = Machine(drivers=[driver])
    machine.boot()
    _run_until(machine, _quiet)
    opened = _open(machine, DEVICE)
    rate = _round_trips(machine, [IoRequest.ioctl(opened, BUFFERED_CODE, b"bench\0", 64) for _ in range(count)])
    failures = [r.status for r in machine.io.results[-count:] if r.status != 0]
    if failures:
        raise RuntimeError(f"{len(failures)} of {count} device controls failed (status {failures[0]:#x})")
    # A create that failed leaves no handle: the I/O manager refuses these before any driver.
    unopened = _open(machine, r"\\.\NoSuchDeviceKsim")
    baseline = _round_trips(machine, [IoRequest.ioctl(unopened, BUFFERED_CODE, b"bench\0", 64)
                                      for _ in range(count)])
    _emit("ioctl_round_trips_per_s", rate, "unopened_handle_requests_per_s", baseline, "req/s", count=count)


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.drivers",
                         description="Benchmark a WDK-style driver in the simulated kernel.")
    parser.add_argument("--driver-src", type=Path, default=DEFAULT_SOURCE,
                        help="folder of the sioctl-like driver's .c files")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--count", type=positive_int, default=200)
    args = parser.parse_args(argv)
    if not args.driver_src.is_dir():
        parser.error(f"--driver-src {args.driver_src} is not a folder")
    with tempfile.TemporaryDirectory() as out:
        try:
            driver = drvbuild.build_driver([args.driver_src], Path(out) / "benchdrv.sys").image
        except drvbuild.DriverBuildError as error:
            sys.stderr.write(f"{parser.prog}: error: {error}\n")
            return 1
        bench_boot(driver, args.repeats)
        bench_ioctls(driver, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
