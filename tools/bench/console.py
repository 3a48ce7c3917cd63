"""Benchmark: what console commands cost on a paced 115200-baud cable, and start-up time.

    python -m kdcon.tools.bench.console [--runs N] [--skip-x]

Runs the console against the simulated target over a link paced like a real 115200
8N1 line (86.8 µs a byte) and prints one JSON line per figure, each beside its
baseline from the same run: the bytes kd itself moves for the same job, computed from
the packet sizes of the requests it makes (kd-protocol.md §1.4: a request is a
16-byte header, the 56-byte DBGKD_MANIPULATE_STATE64, its data and a trailer byte;
every data packet is answered by a 16-byte ACK). Figures:

- ``stop``: a breakpoint hit, from the state change to the prompt: requests made after
  the stop arrived (goal: none), against kd's GetContext plus its special registers.
- ``r``: one register dump (goal <= 400 bytes), against kd's whole-CONTEXT read.
- ``k``: one stack walk at trackdemo's breakpoint (six frames), against kd reading
  the stack page and each image's headers and unwind data (at least the stack bytes).
- ``k_deep`` / ``k_deep_image_from_memory``: one stack walk of 8+ frames (goal <= 1.5
  KB), same baseline: the benchmark builds its own driver (``deepstack.c`` beside this
  file, with ``kdcon-sim build-driver``: a system thread calling a chain of ten
  routines), breaks on the deepest and walks the stack, first with the driver's image
  on the symbol path, then with only its PDB there (``.pdata`` and unwind data then
  come from target memory). Skipped, with the reason, without clang-cl-14/lld-link.
- ``symbols_one_driver_local_image`` / ``_from_memory``: symbols for one driver when
  its image is on the symbol path, and when only its PDB is (the identity then comes
  from target memory; goal <= 600 bytes), against kd's 4 KB header page.
- ``attach``: attach to the first prompt with the simulated module list.
- ``startup``: ``kdcon --loopback --batch -c q`` wall time (goal < 1.5 s), against
  ``python -c pass``.
- ``x``: one ``x module!*pattern*`` over a module of 100,000+ symbols (goal < 50 ms),
  against one ``x`` answered from the same index with an exact name; the first
  wildcard query of a module, which builds its name text, is reported beside it.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import time

from kdcon.app import App
from kdcon.output import Output
from kdcon.tools.bench.args import BenchParser, positive_int
from kdcon.tools.simtarget.loopback import SimTarget

__all__ = ["main"]

BAUD = 115200
PACKET = 16 + 1                 # header + trailer of a data packet
ACK = 16
MANIPULATE = 56


def _kd_request(data_out: int = 0, data_back: int = 0) -> int:
    """Bytes one manipulate request and its reply cost with their ACKs."""
    return (PACKET + MANIPULATE + data_out) + ACK + (PACKET + MANIPULATE + data_back) + ACK


def _emit(figure: str, value: float, unit: str, baseline_name: str, baseline: float, **extra) -> None:
    line = {"figure": figure, "value": round(value, 4), "unit": unit,
            "baseline": baseline_name, "baseline_value": round(baseline, 4),
            "ratio": round(value / baseline, 4) if baseline else None}
    line.update(extra)
    print(json.dumps(line), flush=True)


def _session(images_path: str) -> tuple[App, SimTarget]:
    sim = SimTarget(seed=0, break_on_connect=True)
    port = sim.connect(pace=BAUD)
    # A time limit: a benchmark that waits on a stop that never comes says so and ends.
    app = App(port, link_name="bench", symbol_path=images_path,
              output=Output(stream=io.StringIO()), echo_commands=False, timeout=300)
    return app, sim


def _run(app: App, command: str) -> tuple[int, int]:
    before = app.session.wire()
    app.console.execute(command)
    after = app.session.wire()
    return after.round_trips - before.round_trips, after.total - before.total


def bench_wire() -> None:
    from pathlib import Path

    images = Path(__file__).resolve().parents[1] / "simtarget" / "images"
    app, sim = _session(f"{images};{images / 'checked'}")
    try:
        before = app.session.wire()
        started = time.monotonic()
        app.connect()
        attach = app.session.wire()
        _emit("attach", attach.total - before.total, "bytes", "kd_version_and_module_walk",
              _kd_request(data_back=40) + 5 * _kd_request(data_back=0xA0),
              round_trips=attach.round_trips - before.round_trips,
              seconds=round(time.monotonic() - started, 3))
        # Symbols for one driver: with the image on the symbol path (matched by the
        # module list's timestamp and size), then with only its PDB there, so that
        # the image's identity must come from target memory.
        module = app.session.symbols.module("trackdemo")
        app.session.memory.invalidate()
        trips, cost = _run(app, ".reload /f trackdemo.sys")
        _emit("symbols_one_driver_local_image", cost, "bytes", "kd_header_page",
              _kd_request(data_back=4096), round_trips=trips,
              state=module.state.value if module else None)
        app.console.execute("bp trackdemo!TrackInsertRecord")
        app.console.execute("g")
        app.console.execute("g")
        stop_seen = app.session.wire()
        app.executor.show(app.executor.last)
        after_show = app.session.wire()
        _emit("stop", after_show.total - stop_seen.total, "bytes", "kd_context_and_special_registers",
              _kd_request(data_back=1232) + _kd_request(data_back=0xE0),
              round_trips=after_show.round_trips - stop_seen.round_trips)
        trips, cost = _run(app, "r")
        _emit("r", cost, "bytes", "kd_get_context", _kd_request(data_back=1232), round_trips=trips,
              goal_bytes=400)
        trips, cost = _run(app, "k")
        from kdcon.stack import stack_frames

        frames = len(stack_frames(app.session))   # answered from the cache: no wire bytes
        _emit("k", cost, "bytes", "kd_stack_page", _kd_request(data_back=4096), round_trips=trips,
              goal_bytes=1536, frames=frames)
        # Last, as it changes the symbol path: only trackdemo's PDB on it, so the image's
        # identity must come from target memory.
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as only_pdb:
            shutil.copy(images / "checked" / "trackdemo.pdb", only_pdb)
            app.console.execute(f".sympath {only_pdb}")
            app.session.memory.invalidate()
            trips, cost = _run(app, ".reload /f trackdemo.sys")
            module = app.session.symbols.module("trackdemo")
            _emit("symbols_one_driver_from_memory", cost, "bytes", "kd_header_page",
                  _kd_request(data_back=4096), round_trips=trips, goal_bytes=600,
                  state=module.state.value if module else None)
    finally:
        app.close()
        sim.close()


DEEP_DRIVER = "deepstack"
DEEP_FUNCTION = "Depth10"


def bench_deep_stack() -> None:
    import shutil
    import tempfile
    from pathlib import Path

    from kdcon.stack import stack_frames
    from kdcon.tools.simtarget import drvbuild

    images = Path(__file__).resolve().parents[1] / "simtarget" / "images"
    with tempfile.TemporaryDirectory(prefix="kdcon-bench-") as work:
        built = Path(work) / "image"
        pdb_only = Path(work) / "pdb"
        pdb_only.mkdir()
        try:
            image = drvbuild.build_driver([Path(__file__).with_name(f"{DEEP_DRIVER}.c")],
                                          built / f"{DEEP_DRIVER}.sys").image
        except drvbuild.DriverBuildError as exc:
            for figure in ("k_deep", "k_deep_image_from_memory"):
                print(json.dumps({"figure": figure, "skipped": str(exc)}), flush=True)
            return
        shutil.copy(built / f"{DEEP_DRIVER}.pdb", pdb_only)
        for figure, directory in (("k_deep", built), ("k_deep_image_from_memory", pdb_only)):
            sim = SimTarget(seed=0, drivers=[image], break_on_connect=True, include_trackdemo=False)
            stream = io.StringIO()
            app = App(sim.connect(pace=BAUD), link_name="bench", symbol_path=f"{directory};{images}",
                      output=Output(stream=stream), echo_commands=False, timeout=300)
            try:
                app.connect()
                app.console.execute(f"bp {DEEP_DRIVER}!{DEEP_FUNCTION}")
                # The first stops may be the kernel's own breaks; go on to the breakpoint.
                for _ in range(5):
                    app.console.execute("g")
                    if f"{DEEP_DRIVER}!{DEEP_FUNCTION}:" in stream.getvalue().rsplit("Breakpoint", 1)[-1]:
                        break
                else:
                    raise RuntimeError(f"{DEEP_DRIVER}!{DEEP_FUNCTION} was never reached")
                trips, cost = _run(app, "k")
                frames = len(stack_frames(app.session))   # from the cache: no wire bytes
                _emit(figure, cost, "bytes", "kd_stack_page", _kd_request(data_back=4096),
                      round_trips=trips, goal_bytes=1536, frames=frames)
            finally:
                app.close()
                sim.close()


def bench_startup(runs: int) -> None:
    def timed(argv: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        return time.perf_counter() - started

    kdcon = [sys.executable, "-m", "kdcon.cli", "--loopback", "--batch", "-c", "q"]
    base = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(runs))
    value = statistics.median(timed(kdcon) for _ in range(runs))
    _emit("startup", value, "s", "python_c_pass", base, goal_seconds=1.5)


def bench_x() -> None:
    import os
    import tempfile

    from kdcon.tools.bench.symbols import build_pdb

    from kdcon.symbols.session import SymbolSession

    cache = os.path.join(tempfile.gettempdir(), "kdcon-bench-symbols")
    pdb = build_pdb(cache)
    directory = os.path.dirname(pdb)
    image = os.path.join(directory, "synth.dll")
    session = SymbolSession(directory)
    from kdcon.symbols.pe import read_image

    pe = read_image(image, "synth.dll")
    session.add_module("synth.dll", 0x180000000, pe.identity.size_of_image, image=pe)
    session.match("synth!no_such_name")    # loads the module and its name table
    symbols = len(session.module("synth").index)
    started = time.perf_counter()
    exact = session.match("synth!Fn1_17")
    exact_time = time.perf_counter() - started
    started = time.perf_counter()
    session.match("synth!*3_11*")          # the first wildcard builds the name text
    first_wildcard = time.perf_counter() - started
    started = time.perf_counter()
    found = session.match("synth!*3_12*")
    wildcard = time.perf_counter() - started
    _emit("x", wildcard, "s", "x_exact_name", exact_time, matches=len(found), goal_seconds=0.05,
          exact_matches=len(exact), symbols=symbols, first_wildcard=round(first_wildcard, 4))


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.console", description=__doc__)
    parser.add_argument("--runs", type=positive_int, default=3, help="start-up runs (median)")
    parser.add_argument("--skip-x", action="store_true", help="skip the 100,000-symbol x figure")
    args = parser.parse_args(argv)
    bench_wire()
    bench_deep_stack()
    bench_startup(args.runs)
    if not args.skip_x:
        bench_x()
    return 0


if __name__ == "__main__":
    sys.exit(main())
