"""Ctrl+C on a halted target, in the engine: the cancel event (what the REPL sets)
ends the whole line at the next natural point (a statement, a loop's round, a line
of output even when captured, a chunk of ``s``, a ``Progress`` update), with one
line, whatever the command raised on its way out. A console over a fake session."""

from __future__ import annotations

import io
import itertools

import pytest

import kdcon.commands  # noqa: F401 - the registry copied below holds every command
from kdcon.console import Console
from kdcon.output import Output
from kdcon.progress import Progress
from kdcon.registry import REGISTRY, Category, Registry, command
from kdcon.scripting import CANCELLED
from kdcon.target import Target

from .memory_fake import FakeSession


class Bench:
    """A console over the fake session with ``count`` (prints numbered lines; Ctrl+C
    is pressed at line ``press_at``) and ``compute`` (no output; Ctrl+C pressed at once,
    then it carries on and finishes)."""

    def __init__(self, json_mode: bool = False) -> None:
        self.registry = Registry()
        for cmd in REGISTRY:
            self.registry.add(cmd)
        self.stream = io.StringIO()
        self.results: list[dict] = []
        self.session = FakeSession()
        self.console = Console(self.session, Output(self.stream), registry=self.registry,  # type: ignore[arg-type]
                               json_sink=self.results.append if json_mode else None)
        if json_mode:
            self.console.output.quiet = True
        self.target = self.console.target = Target(self.console)
        self.press_at = 10
        self.printed = 0

        @command("count", category=Category.META, needs_halt=False, registry=self.registry)
        def count(ctx, args):
            """Print numbered lines."""
            for number in itertools.count():
                if number == self.press_at:
                    self.press()
                try:
                    ctx.out.line(f"line {number}")
                except Exception:        # a careless command swallows the first stop
                    if number > self.press_at + 5:
                        raise
                self.printed = number

        @command("compute", category=Category.META, needs_halt=False, registry=self.registry)
        def compute(ctx, args):
            """Ignore Ctrl+C and finish."""
            self.press()

    def press(self) -> None:
        self.target.cancel_event.set()

    def run(self, line: str) -> str:
        start = self.stream.tell()
        self.console.execute(line)
        self.stream.seek(start)
        text = self.stream.read()
        self.stream.seek(0, io.SEEK_END)
        return text


@pytest.fixture
def bench() -> Bench:
    return Bench()


def test_a_printing_command_stops_at_its_next_line_and_the_line_ends(bench):
    failures = bench.console.failures
    out = bench.run("count; .echo never")
    assert out == "".join(f"line {n}\n" for n in range(10)) + CANCELLED + "\n"
    result = bench.console.results[-1]
    assert result.command == "count" and not result.ok and result.error == CANCELLED
    assert bench.console.failures == failures + 1
    # Every later line of output stops it again, even one it swallowed.
    assert bench.printed < 16


def test_captured_output_stops_too_and_the_loop_never_starts(bench):
    out = bench.run(".foreach (w {count}) { .echo ${w} }; .echo never")
    assert out == CANCELLED + "\n"


def test_a_command_that_ignores_ctrl_c_ends_the_line_at_the_next_statement(bench):
    assert bench.run("compute; .echo never; .echo never") == CANCELLED + "\n"
    assert bench.console.results[-1].command == "compute"
    assert bench.console.results[-1].ok       # it finished: only what follows is cut


def test_a_loop_over_a_long_list_stops_at_its_next_round(bench):
    words = " ".join(f"w{n}" for n in range(2000))
    out = bench.run(f'.foreach /s (w "{words}") {{ .if ($spat("w", "${{w}}") == 0) {{ }}; '
                    f'.if (1) {{ compute }} }}')
    assert out == CANCELLED + "\n"
    compute_runs = [r for r in bench.console.results if r.command == "compute"]
    assert len(compute_runs) == 1


def test_a_long_search_stops_at_its_next_chunk(bench):
    reads = []
    fetch = bench.session.memory

    original = bench.session.read_virtual

    def read(address: int, size: int) -> bytes:
        reads.append(address)
        if len(reads) == 3:
            bench.press()
        return original(address, size)

    bench.session.read_virtual = read
    assert fetch is bench.session.memory
    out = bench.run("s -b 10000 L?4000000 12 34 56 78; .echo never")
    assert out == "The command was cancelled (Ctrl+C).\n"   # once
    assert len(reads) < 3 + 0x10000 // 0x1000     # no further than the chunk it was in


def test_progress_stops_a_job_with_the_one_line(bench):
    @command("job", category=Category.META, needs_halt=False, registry=bench.registry)
    def job(ctx, args):
        """A long job."""
        with Progress(ctx.console, "job", 100) as progress:
            for done in range(100):
                if done == 3:
                    bench.press()
                progress.update(done)

    assert bench.run("job; .echo never") == "The command was cancelled (Ctrl+C).\n"
    assert bench.console.results[-1].error == "The command was cancelled (Ctrl+C)."


def test_a_command_run_by_a_command_passes_ctrl_c_up(bench):
    @command("outer", category=Category.META, needs_halt=False, registry=bench.registry)
    def outer(ctx, args):
        """Run count, ignore how it went, and go on printing."""
        try:
            bench.target.run("count")
        except Exception:
            pass
        for number in range(100):
            ctx.out.line(f"outer {number}")

    out = bench.run("outer; .echo never")
    assert out == CANCELLED + "\n"


def test_json_mode_gives_the_cancelled_command_its_error():
    bench = Bench(json_mode=True)
    bench.run("count; .echo never")
    results = [r for r in bench.results if r.get("type") == "result"]
    assert [r["command"] for r in results] == ["count"]
    assert results[0]["ok"] is False and results[0]["error"] == CANCELLED
    assert "line 9\n" in results[0]["text"] and CANCELLED not in results[0]["text"]


def test_a_reported_ctrl_c_is_spent_when_its_line_ends(bench):
    bench.run("compute; .echo never")
    assert not bench.target.cancel_event.is_set()
    assert bench.run(".echo again") == "again\n"
