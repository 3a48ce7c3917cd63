"""Simulated machine benchmarks: ``python -m kdcon.tools.bench.simmachine``, one JSON line
per figure, each compared with a baseline measured in the same run.

- ``machine_instructions_per_s``: the booted kernel and test driver running their
  system loop through ``Machine.run``, against the same code driven by bare unicorn
  ``emu_start`` slices of the same size (what unicorn allows; the ratio is the
  machine's own overhead);
- ``breakpoint_cycle_us``: stop at a breakpoint hit once per system-loop tick, step
  over it and run to the next hit, against the time of one tick running free;
- ``breakin_latency_ms``: wall time from ``request_breakin`` (another thread) to the
  BreakInStop, median of several, against the 100 ms goal;
- ``boot_to_quiet_s``: Machine() + boot() + every boot event, against the time to
  parse the images alone.

Not a test: nothing here asserts; the README quotes the figures.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from typing import Any

from unicorn import x86_const as X

from kdcon.tools.bench.args import BenchParser, positive_int
from kdcon.tools.simtarget.events import BreakInStop, BreakpointHit, BudgetExhausted
from kdcon.tools.simtarget.kernel import IMAGES_DIR, KernelImages
from kdcon.tools.simtarget.machine import SLICE, Machine

__all__ = ["main"]

TESTDRV = IMAGES_DIR / "test" / "testdrv.sys"


def _emit(name: str, value: float, baseline_name: str, baseline: float, unit: str, **extra: Any) -> None:
    record = dict(figure=name, value=round(value, 4), unit=unit, baseline=baseline_name,
                  baseline_value=round(baseline, 4), ratio=round(value / baseline, 4) if baseline else None,
                  **extra)
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _booted() -> Machine:
    machine = Machine(drivers=[TESTDRV])
    machine.boot()
    while not isinstance(machine.run(budget=2_000_000), BudgetExhausted):
        machine.skip_break_instruction()
    return machine


def _bare_emu_start_rate(instructions: int) -> float:
    """The same kernel code driven by bare ``emu_start`` slices, no Machine.run around them."""
    machine = _booted()
    uc = machine._uc
    done, pc = 0, uc.reg_read(X.UC_X86_REG_RIP)
    start = time.perf_counter()
    while done < instructions:
        uc.emu_start(pc, 0, count=SLICE)
        pc = uc.reg_read(X.UC_X86_REG_RIP)
        done += SLICE
    return done / (time.perf_counter() - start)


def bench_throughput(instructions: int) -> None:
    machine = _booted()
    start = time.perf_counter()
    machine.run(budget=instructions)
    rate = instructions / (time.perf_counter() - start)
    _emit("machine_instructions_per_s", rate, "bare_emu_start_slices", _bare_emu_start_rate(instructions), "instr/s")


def _loop_count(machine: Machine) -> int:
    return int.from_bytes(machine.read_virtual(machine.kernel_symbol("KiSystemLoopCount"), 4), "little")


def bench_breakpoint_cycle(hits: int) -> None:
    machine = _booted()
    # The system loop calls IofCallDriver once a tick for the test driver's one device:
    # each hit is one tick of work plus a stop and a step over the breakpoint.
    machine.write_breakpoint(machine.kernel_symbol("IofCallDriver"))
    machine.run()
    start = time.perf_counter()
    for _ in range(hits):
        event = machine.run()
        assert isinstance(event, BreakpointHit), event
    per_hit = (time.perf_counter() - start) / hits
    free = _booted()
    before = _loop_count(free)
    start = time.perf_counter()
    free.run(budget=20 * SLICE)
    per_tick = (time.perf_counter() - start) / max(1, _loop_count(free) - before)
    _emit("breakpoint_cycle_us", per_hit * 1e6, "free_running_tick_us", per_tick * 1e6, "us")


def bench_breakin(samples: int) -> None:
    machine = _booted()
    latencies = []
    for _ in range(samples):
        result: dict[str, Any] = {}
        stopped = threading.Event()

        def runner() -> None:
            result["event"] = machine.run()
            result["at"] = time.perf_counter()
            stopped.set()

        thread = threading.Thread(target=runner)
        thread.start()
        time.sleep(0.02)            # let the CPU get going; latency is measured from the request
        requested = time.perf_counter()
        machine.request_breakin()
        stopped.wait(10)
        thread.join()
        assert isinstance(result["event"], BreakInStop), result
        latencies.append((result["at"] - requested) * 1000)
        machine.skip_break_instruction()         # as the debugger does before running on
        machine.run(budget=SLICE)
    _emit("breakin_latency_ms", statistics.median(latencies), "goal", 100.0, "ms",
          max_ms=round(max(latencies), 3), samples=samples)


def bench_boot() -> None:
    start = time.perf_counter()
    KernelImages(None, [TESTDRV])
    parse = time.perf_counter() - start
    start = time.perf_counter()
    _booted()
    _emit("boot_to_quiet_s", time.perf_counter() - start, "parse_images_s", parse, "s")


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.simmachine",
                         description="Benchmark the simulated machine.")
    parser.add_argument("--instructions", type=positive_int, default=40_000_000)
    parser.add_argument("--hits", type=positive_int, default=300)
    parser.add_argument("--samples", type=positive_int, default=9)
    args = parser.parse_args(argv)
    bench_boot()
    bench_throughput(args.instructions)
    bench_breakpoint_cycle(args.hits)
    bench_breakin(args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
