"""Hostile-target soak: the console against a seeded lying kd, seed after seed.

    python -m kdcon.tools.bench.hostile [--seconds S] [--first-seed N] [--chance P]

Each run attaches a console (in this process) to tools/simtarget/hostile.py's target
with one seed: the seed picks the share of damaged replies, a hostile module list
(cycle, self link, long chain, escape-laden or 64 KiB names, absurd sizes) or none,
absurd GetVersion fields or none, and a few hostile stops (state changes with bad
processor numbers or NumberParameters, LoadSymbols whose path runs past the packet,
DbgPrint/DbgPrompt with escape sequences). It runs the commands of
tests/console/test_hostile_replies.py with ``g`` between them and then ``? 1+1``.
A run has a problem when its output holds a traceback or an internal error, a
character that could act on a terminal, a failure of more than one line, something
logged at ERROR (the CLI's stderr), a thread that died, or when
``? 1+1`` is not answered at the end. The baseline is the same commands against the
untampered target, run first.

One JSON line per run (``hostile_run``: seed, seconds, problems, the first problem
line) and a summary (``hostile``): runs, runs with problems, and the slowest run's
seconds against the clean run's. Not part of the test suite.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import threading
import time
from typing import Any

from kdcon.app import App
from kdcon.output import Output
from kdcon.tools.bench.args import BenchParser, positive_int
from kdcon.tools.simtarget.hostile import (
    OVERLAY_BASE,
    HostileTarget,
    Tamper,
    module_chain,
    raw_debug_io,
    raw_exception,
    raw_load_symbols,
)

__all__ = ["main", "COMMANDS", "one_run"]

COMMANDS = ("lm", "!lmi nt", ".reload /f", "k", "kv", "r", "u", "dt nt!_EPROCESS @$proc",
            "!process 0 0", "db @rsp", "da @rip", "du @rip", "dps @rsp", "x *!*",
            "!pool @rsp", "!analyze -v")
ACTING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
EVIL = "\x1b[2J\x1b]0;pwned\x07\x9b31m\u202egnp.exe\r\x08"
PC = 0xFFFFF80001001B7A
REQUEST_TIMEOUT = 0.15


class _Logged(logging.Handler):
    """What kdcon's CLI would print on stderr (it logs at ERROR and above)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:300])


def _target(seed: int, chance: float, kinds: tuple[str, ...] = ()) -> HostileTarget:
    rng = random.Random(seed)
    head = OVERLAY_BASE
    overlays = []
    version: dict[str, int] = {}
    kind = rng.choice(("none", "none", "cycle", "self", "long", "names", "sizes"))
    if kind != "none":
        count = {"cycle": 6, "self": 0, "long": 10**6}.get(kind, 4)
        names = {"names": lambda i: rng.choice((EVIL.encode("utf-16-le"), b"A\0" * 32767,
                                                 b"\x00\xd8" * 9, rng.randbytes(40)))}
        sizes = {"sizes": lambda i: rng.choice((0, 2**32 - 1, 0x1000))}
        overlays.append(module_chain(head, count, loop_to=2 if kind == "cycle" else None,
                                     name=names.get(kind), size=sizes.get(kind)))
        version["PsLoadedModuleList"] = head
    if rng.random() < 0.3:
        version.update(KernBase=rng.choice((0, 0xFFFFF80001000003, 0x0000900000000000)),
                       DebuggerDataList=rng.choice((0, 0x1234, 0x8000000000000000)))
    evil = EVIL.encode("utf-8")
    choices = [
        lambda: raw_exception(0x80000003, PC, processor=rng.randrange(256),
                              processors=rng.randrange(3)),
        lambda: raw_exception(0xC0000005, PC, parameters=[rng.getrandbits(64)] * 15,
                              count=rng.getrandbits(32)),
        lambda: raw_load_symbols(evil + b"\0", length=rng.choice((0xFFFF, len(evil) + 1, 0)),
                                 base=rng.getrandbits(64), size=rng.getrandbits(32)),
        lambda: raw_debug_io(evil + rng.randbytes(20) + b"\n",
                             length=rng.choice((None, 3000))),
        lambda: raw_debug_io(evil, prompt_max=rng.choice((1, 4, 0xFFFFFFFF))),
    ]
    stops = [rng.choice(choices)() for _ in range(4)]
    stops += [raw_exception(0x80000003, PC) for _ in range(6)]
    tamper = Tamper(chance=chance, seed=seed, **({"kinds": kinds} if kinds else {}))
    return HostileTarget(tamper=tamper, overlays=overlays, version=version, stops=stops)


def one_run(seed: int, chance: float, kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the commands against one seed's target; the figures and the problems."""
    target = _target(seed, chance, kinds)
    stream = io.StringIO()
    errors: list[str] = []
    app = App(target.connect(), link_name="hostile", output=Output(stream=stream),
              request_timeout=REQUEST_TIMEOUT, prompt_answers=["y"] * 8)
    app.session.host.retries = 1
    started = time.monotonic()
    problems: list[str] = []
    hook, threading.excepthook = threading.excepthook, lambda args: errors.append(
        f"thread: {args.exc_type.__name__}: {args.exc_value}")
    logged = _Logged()
    logging.getLogger().addHandler(logged)
    try:
        try:
            app.connect(timeout=10)
        except Exception as exc:  # noqa: BLE001 - a failed attach must be one line too
            if "\n" in str(exc).strip() or not getattr(exc, "__module__", "").startswith(
                    "kdcon"):
                problems.append(f"attach: {type(exc).__name__}: {exc}")
        else:
            for line in COMMANDS + ("g",) + COMMANDS[3:6] + ("g", "lm", "? 1+1"):
                app.run_line(line)
                error = app.console.results[-1].error
                if error and "\n" in error.strip():
                    problems.append(f"{line}: a failure of several lines")
            if not stream.getvalue().rstrip().endswith("00000002"):
                problems.append("? 1+1 was not answered at the end")
    finally:
        threading.excepthook = hook
        logging.getLogger().removeHandler(logged)
        app.close()
        target.close()
    seconds = time.monotonic() - started
    text = stream.getvalue()
    for line in text.splitlines():
        if "Traceback" in line or "Internal error" in line:
            problems.append(line[:300])
    found = ACTING.search(text)
    if found:
        problems.append(f"acting character {found.group()!r}")
    problems += errors + [f"logged: {message}" for message in logged.messages]
    return {"figure": "hostile_run", "seed": seed, "value": round(seconds, 3), "unit": "s",
            "problems": len(problems), "first_problem": problems[0] if problems else None}


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=positive_int, default=120,
                        help="how long to keep starting runs (default 120)")
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first run")
    parser.add_argument("--chance", type=float, default=0.2,
                        help="share of replies damaged (default 0.2)")
    parser.add_argument("--kinds", default="",
                        help="damage kinds, comma-separated (flip,union,cut,status,garbage; "
                             "default all); flip,garbage lies about memory without timeouts")
    args = parser.parse_args(argv)
    clean = one_run(0, 0.0)
    print(json.dumps({**clean, "figure": "hostile_baseline"}), flush=True)
    runs, bad, slowest = 0, 0, 0.0
    seed = args.first_seed
    until = time.monotonic() + args.seconds
    while time.monotonic() < until:
        record = one_run(seed, args.chance, tuple(filter(None, args.kinds.split(","))))
        print(json.dumps(record), flush=True)
        runs += 1
        bad += bool(record["problems"])
        slowest = max(slowest, record["value"])
        seed += 1
    print(json.dumps({"figure": "hostile", "value": round(slowest, 3), "unit": "s",
                      "baseline": clean["value"],
                      "ratio": round(slowest / clean["value"], 2) if clean["value"] else None,
                      "runs": runs, "runs_with_problems": bad}), flush=True)
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
