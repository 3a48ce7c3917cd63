"""Benchmark: the interactive console's completion on a 100,000-symbol module, and how
fast a keystroke reaches the screen while DbgPrint floods.

    python -m kdcon.tools.bench.repl [--cache DIR] [--runs N] [--skip-keys]

Completion runs on the synthetic PDB of ``bench/symbols.py`` (about 112,000 publics;
built once with clang-cl-14 and lld-link, kept in the cache directory) loaded as the
module ``synth``. One JSON line per figure, each beside a baseline measured in the
same run:

- ``complete_symbol_empty_prefix_first``: the first Tab on ``bp synth!`` with the
  module deferred, as the REPL answers it (``loading symbols`` at once, the names
  loaded and sorted by a background job; ``names_ready_seconds`` says when), against
  the same Tab answered by loading and sorting first (the way without a background);
  then ``complete_symbol_empty_prefix_after_ready`` (goal < 50 ms).
- ``complete_symbol_first``: the first Tab with a prefix (``bp synth!Fn3_12``) once
  the names are sorted, against loading the symbols for an exact ``x``.
- ``complete_symbol_prefix``: Tab on ``bp synth!<prefix>`` for prefixes none of which
  extends the one before (goal < 50 ms), against ``x synth!<prefix>*`` for the same
  prefixes; ``complete_symbol_narrowing``: one more letter typed; and
  ``complete_symbol_after_every_name_is_known`` (goal < 50 ms).
- ``complete_bare_word``: Tab on ``bp sy`` with the module deferred (it must stay
  deferred), against completing the command name ``b``.
- ``keystroke_to_screen``: from a key written to the prompt's input to the render
  that shows it, median and 95th percentile, while 1,000 DbgPrint lines a second
  go through the console's output above the prompt (goal: median < 50 ms), against
  the same with no DbgPrint. The REPL runs on a pseudo-terminal over the simulated
  target, with its toolbar and completer.

Not part of the test suite.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from types import SimpleNamespace

from kdcon.tools.bench.args import BenchParser, positive_int

__all__ = ["main"]


def _emit(figure: str, value: float, unit: str, baseline_name: str, baseline: float, **extra) -> None:
    line = {"figure": figure, "value": round(value, 6), "unit": unit,
            "baseline": baseline_name, "baseline_value": round(baseline, 6),
            "ratio": round(value / baseline, 6) if baseline else None}
    line.update(extra)
    print(json.dumps(line), flush=True)


def _median(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _synth_session(cache: str):
    from kdcon.symbols.pe import read_image
    from kdcon.symbols.session import SymbolSession
    from kdcon.tools.bench.symbols import build_pdb

    directory = os.path.dirname(build_pdb(cache))
    session = SymbolSession(directory)
    image = read_image(os.path.join(directory, "synth.dll"), "synth.dll")
    session.add_module("synth.dll", 0x180000000, image.identity.size_of_image, image=image)
    return session


def _worker():
    """A ``schedule`` running jobs in order on one thread, as the REPL's command thread
    does, and a way to wait for the jobs given so far."""
    import queue

    jobs: queue.Queue = queue.Queue()

    def run() -> None:
        while True:
            job = jobs.get()
            try:
                job()
            finally:
                jobs.task_done()

    threading.Thread(target=run, name="bench-background", daemon=True).start()
    return jobs.put, jobs.join


def bench_completion(cache: str, runs: int) -> None:
    import kdcon.commands  # noqa: F401 - fills the registry
    from kdcon.completion import LOADING, KdCompleter
    from kdcon.registry import REGISTRY
    from kdcon.symbols.module import SymbolState

    def console_over(symbols):
        return SimpleNamespace(registry=REGISTRY,
                               session=SimpleNamespace(symbols=symbols, breakpoints=[]))

    # The baseline: names found while answering (no background), as the REPL did.
    symbols = _synth_session(cache)
    console = console_over(symbols)
    completer = KdCompleter(console)
    module = symbols.module("synth")

    bare = _median(lambda: completer.complete("bp sy"), runs)
    command = _median(lambda: completer.complete("b"), runs)
    _emit("complete_bare_word", bare, "s", "complete_command_name", command,
          module_still_deferred=module.state is SymbolState.DEFERRED)

    started = time.perf_counter()
    blocking_every = completer.complete("bp synth!")[1]
    blocking_first = time.perf_counter() - started
    started = time.perf_counter()
    symbols.match("synth!Fn0_0")
    exact = time.perf_counter() - started

    # The REPL's way: a background job loads and sorts; the Tab answers at once.
    symbols = _synth_session(cache)
    schedule, wait = _worker()
    ready = threading.Event()
    background = KdCompleter(console_over(symbols), schedule=schedule, on_ready=ready.set)
    module = symbols.module("synth")
    started = time.perf_counter()
    answer = background.complete("bp synth!")[1]
    first = time.perf_counter() - started
    if [meta for _, meta in answer] != [LOADING]:
        raise SystemExit(f"repl bench: the first Tab did not say {LOADING!r}: {answer[:3]}")
    ready.wait(120)
    wait()
    names_ready = time.perf_counter() - started
    _emit("complete_symbol_empty_prefix_first", first, "s",
          "complete_symbol_empty_prefix_first_blocking", blocking_first, goal_seconds=0.05,
          symbols=len(module.index), names_ready_seconds=round(names_ready, 6),
          note=f"Tab on a deferred module!: '{LOADING}' at once; load and sort in the background")
    started = time.perf_counter()
    every = background.complete("bp synth!")[1]
    after_ready = time.perf_counter() - started
    _emit("complete_symbol_empty_prefix_after_ready", after_ready, "s",
          "complete_symbol_empty_prefix_first_blocking", blocking_first, goal_seconds=0.05,
          completions=len(every), same_first_page=every == blocking_every)

    started = time.perf_counter()
    background.complete("bp synth!Fn3_12")
    first_prefix = time.perf_counter() - started
    _emit("complete_symbol_first", first_prefix, "s", "x_exact_first_query_loading_the_module",
          exact, symbols=len(module.index), goal_seconds=0.05,
          note="the first prefix on a module whose names are sorted")

    # Each prefix new (none extends the one before).
    prefixes = [f"Fn{n % 8}_{n * 7 % 1000}" if n % 3 else f"G{n % 8}_{n * 13 % 4000}"
                for n in range(1, runs + 1)]
    found, fresh, wildcard = [], [], []
    for prefix in prefixes:
        started = time.perf_counter()
        found.append(len(background.complete(f"bp synth!{prefix}")[1]))
        fresh.append(time.perf_counter() - started)
        started = time.perf_counter()
        symbols.match(f"synth!{prefix}*")
        wildcard.append(time.perf_counter() - started)
    _emit("complete_symbol_prefix", statistics.median(fresh), "s", "x_wildcard_same_prefixes",
          statistics.median(wildcard), worst=round(max(fresh), 6), prefixes=len(prefixes),
          median_completions=statistics.median(found), goal_seconds=0.05,
          symbols=len(module.index))

    letters = iter(range(10**6))
    narrowing = _median(lambda: background.complete(f"bp synth!Fn5_1{next(letters) % 10}"), runs)
    _emit("complete_symbol_narrowing", narrowing, "s", "complete_symbol_prefix",
          statistics.median(fresh), note="one more letter typed")
    empty = _median(lambda: background.complete("bp synth!"), runs)
    after = _median(lambda: background.complete("bp synth!Fn7_3"), runs)
    _emit("complete_symbol_after_every_name_is_known", max(empty, after), "s",
          "x_wildcard_same_prefixes", statistics.median(wildcard), goal_seconds=0.05)


# -- keystrokes ---------------------------------------------------------------------------


def _drain(fd: int, stop: threading.Event, counted: list[int]) -> None:
    """Read the terminal's side of the pty, as a terminal would, counting bytes."""
    import select

    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                counted[0] += len(os.read(fd, 65536))
            except OSError:
                return


def _keystrokes(flood: bool, keys: int) -> tuple[list[float], int, int]:
    """Latencies (s) of ``keys`` keystrokes with or without a DbgPrint flood, the
    bytes the terminal received, and the DbgPrint lines written."""
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output.vt100 import Vt100_Output

    from kdcon.app import App
    from kdcon.output import Output
    from kdcon.repl import Repl
    from kdcon.terminal import TerminalStream
    from kdcon.tools.simtarget.loopback import SimTarget

    images = os.path.join(os.path.dirname(__file__), "..", "simtarget", "images")
    master, slave = os.openpty()
    stop = threading.Event()
    counted = [0]
    printed = [0]
    drainer = threading.Thread(target=_drain, args=(master, stop, counted), daemon=True)
    drainer.start()
    terminal = os.fdopen(slave, "w", encoding="utf-8", buffering=1)
    sim = SimTarget(break_on_connect=True)
    stream = TerminalStream()
    app = App(sim.connect(), link_name="kdsim (bench)", output=Output(stream),
              symbol_path=f"{images};{os.path.join(images, 'checked')}")
    latencies: list[float] = []
    original = sys.stdout
    try:
        sys.stdout = terminal
        app.connect()
        with create_pipe_input() as keyboard:
            output = Vt100_Output.from_pty(terminal, term="xterm-256color")
            with create_app_session(input=keyboard, output=output):
                repl = Repl(app, stream=stream, colour=True, history=None, input=keyboard,
                            output=output)
                rendered: list[tuple[float, int]] = []
                repl.prompt_session.app.after_render += lambda _: rendered.append(
                    (time.perf_counter(), len(repl.prompt_session.default_buffer.text)))
                typist = threading.Thread(target=_type, args=(repl, keyboard, rendered, latencies,
                                                              keys, flood, app, printed),
                                          daemon=True)
                typist.start()
                repl.run()
                typist.join(30)
    finally:
        sys.stdout = original
        app.close()
        sim.close()
        stop.set()
        drainer.join(1)
        terminal.close()
        os.close(master)
    return latencies, counted[0], printed[0]


def _type(repl, keyboard, rendered, latencies, keys: int, flood: bool, app, printed) -> None:
    flooding = threading.Event()

    def dbgprint() -> None:
        # 1,000 lines a second in bursts of 10, as the session's pump shows them.
        number = 0
        next_burst = time.perf_counter()
        while flooding.is_set():
            lines = "".join(f"Flood: line {number + i} from the target's DbgPrint\n" for i in range(10))
            app.output.event_text(lines)
            number += 10
            printed[0] = number
            next_burst += 0.01
            time.sleep(max(0.0, next_burst - time.perf_counter()))

    try:
        deadline = time.monotonic() + 10
        while not repl.prompt_session.app.is_running and time.monotonic() < deadline:
            time.sleep(0.01)
        if flood:
            flooding.set()
            threading.Thread(target=dbgprint, daemon=True).start()
            time.sleep(0.3)
        for count in range(1, keys + 1):
            sent = time.perf_counter()
            keyboard.send_text("x")
            deadline = sent + 2.0
            while time.perf_counter() < deadline:
                shown = next((at for at, length in list(rendered) if length >= count and at >= sent), None)
                if shown is not None:
                    latencies.append(shown - sent)
                    break
                time.sleep(0.0005)
            time.sleep(0.02)
    finally:
        flooding.clear()
        repl.quit()


def bench_keystrokes(keys: int) -> None:
    quiet, quiet_bytes, _ = _keystrokes(False, keys)
    flooded, flood_bytes, lines = _keystrokes(True, keys)
    if not quiet or not flooded:
        raise SystemExit("repl bench: no keystroke reached the screen")
    quiet.sort()
    flooded.sort()
    p95 = flooded[min(len(flooded) - 1, int(len(flooded) * 0.95))]
    _emit("keystroke_to_screen", statistics.median(flooded), "s", "keystroke_to_screen_no_dbgprint",
          statistics.median(quiet), p95=round(p95, 6), keys=len(flooded), keys_sent=keys,
          dbgprint_lines_per_second=1000, dbgprint_lines=lines, terminal_bytes=flood_bytes,
          terminal_bytes_no_dbgprint=quiet_bytes, goal_seconds=0.05)


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.repl", description=__doc__)
    default_cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                 "kdcon-bench-symbols")
    parser.add_argument("--cache", default=default_cache, help="where the synthetic PDB is kept")
    parser.add_argument("--runs", type=positive_int, default=20, help="repetitions (median)")
    parser.add_argument("--keys", type=positive_int, default=100, help="keystrokes timed")
    parser.add_argument("--skip-keys", action="store_true", help="completion figures only")
    args = parser.parse_args(argv)
    bench_completion(args.cache, args.runs)
    if not args.skip_keys:
        bench_keystrokes(args.keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
