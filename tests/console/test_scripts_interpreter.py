"""Running command programs: blocks, loops, errors, resumes, script files and aliases,
on a console over a fake session (no target needed)."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import kdcon.commands  # noqa: F401 - the registry copied below holds every command
from kdcon.console import Console
from kdcon.output import Output
from kdcon.registry import REGISTRY, Category, Registry, command
from kdcon.scripting import MAX_BLOCK_DEPTH

from .memory_fake import FakeSession


class Bench:
    """A console with the real commands plus ``go`` (resumes, like g) and ``boom`` (fails)."""

    def __init__(self, json_mode: bool = False) -> None:
        registry = Registry()
        for cmd in REGISTRY:
            registry.add(cmd)
        self.resumes = 0

        @command("go", category=Category.EXECUTION, resumes=True, needs_halt=False,
                 registry=registry)
        def go(ctx, args):
            """Pretend to resume."""
            self.resumes += 1

        @command("boom", category=Category.META, needs_halt=False, registry=registry)
        def boom(ctx, args):
            """Fail."""
            raise MemoryError("boom failed")

        self.stream = io.StringIO()
        self.events: list[dict] = []
        self.console = Console(FakeSession(), Output(self.stream), registry=registry,  # type: ignore[arg-type]
                               json_sink=self.events.append if json_mode else None)
        if json_mode:
            self.console.output.quiet = True

    def run(self, line: str, *, nested: bool = False) -> str:
        start = self.stream.tell()
        self.console.execute(line, nested=nested)
        self.stream.seek(start)
        text = self.stream.read()
        self.stream.seek(0, io.SEEK_END)
        return text


@pytest.fixture
def bench() -> Bench:
    return Bench()


def test_if_elsif_else_pick_the_first_true_branch_only(bench):
    line = ".if (@$t0 == 1) {.echo one} .elsif (@$t0 > 1) {.echo many} .else {.echo none}"
    assert bench.run(line) == "none\n"
    assert bench.run("r $t0 = 1; " + line) == "one\n"
    assert bench.run("r $t0 = 5; " + line) == "many\n"


def test_for_while_do_and_the_user_registers(bench):
    assert bench.run(".for (r $t0 = 0; @$t0 < 3; r $t0 = @$t0 + 1; r $t1 = @$t1 + 2) "
                     "{ .printf \"%d \", @$t0 }; r $t1") == "0 1 2 $t1=0000000000000006\n"
    assert bench.run("r $t2 = 3; .while (@$t2) { r $t2 = @$t2 - 1; .printf \"%d \", @$t2 }") == "2 1 0 "
    assert bench.run(".do { .echo once } (0)") == "once\n"


def test_break_and_continue_reach_through_nested_blocks_to_their_loop(bench):
    line = (".for (r $t0 = 0; @$t0 < 6; r $t0 = @$t0 + 1) { .if (@$t0 == 1) { .continue }; "
            ".if (@$t0 == 4) { .block { .break } }; .printf \"%d\", @$t0 }; .echo |done")
    assert bench.run(line) == "023|done\n"


def test_break_continue_and_leave_outside_their_block_are_errors(bench):
    assert bench.run(".break") == ".break outside a loop\n"
    assert bench.run(".continue") == ".continue outside a loop\n"
    assert bench.run(".leave") == ".leave outside a .catch block\n"
    assert bench.run(".else {x}") == ".else without an .if before it\n"


def test_an_error_in_a_block_ends_the_program_but_a_plain_list_goes_on(bench):
    assert bench.run(".echo a; boom; .echo b") == "a\nboom failed\nb\n"
    assert bench.run(".block { .echo a; boom; .echo b }; .echo c") == "a\nboom failed\n"
    assert bench.run(".for (r $t0 = 0; @$t0 < 5; r $t0 = @$t0 + 1) { boom }; .echo c") == \
        "boom failed\n"
    assert bench.console.failures == 2 + 0 + 1


def test_catch_holds_an_error_and_the_program_goes_on_after_it(bench):
    failures = bench.console.failures
    out = bench.run(".catch { .echo a; boom; .echo never }; .echo after")
    assert out == "a\nboom failed\nafter\n"
    assert bench.console.failures == failures
    assert bench.run(".catch { .echo a; .if (1) { .leave }; .echo never }; .echo after") == "a\nafter\n"


def test_a_resume_ends_a_nested_list_from_inside_blocks(bench):
    line = ".if (1) { .echo a; .for (;;) { go; .echo never } }; .echo never"
    assert bench.run(line, nested=True) == "a\n"
    assert bench.resumes == 1
    assert bench.run(".if (1) { go; .echo b }; .echo c") == "b\nc\n"


def test_quit_in_a_block_ends_everything(bench):
    assert bench.run(".while (1) { q; .echo never }; .echo never") == "quit:\n"
    assert bench.console.quit_requested


def test_a_loop_stops_at_the_deadline_of_the_run(bench):
    bench.console.executor = SimpleNamespace(deadline=time.monotonic() - 1)
    assert bench.run(".while (1) { }") == "The run passed its --timeout in a loop; the loop stops\n"
    assert bench.console.state.values["timed_out"]


def test_a_silent_loop_stops_on_ctrl_c_and_so_does_the_rest_of_the_line(bench):
    pressed = threading.Event()
    bench.console.target = SimpleNamespace(cancelled=pressed.is_set)
    rounds = iter(range(10**6))

    @command("tick", category=Category.META, needs_halt=False, registry=bench.console.registry)
    def tick(ctx, args):
        """Count, and press Ctrl+C at the 1000th round."""
        if next(rounds) == 999:
            pressed.set()

    failures = bench.console.failures
    out = bench.run(".for (;;) { tick }; .echo after")
    assert out == "The command was cancelled (Ctrl+C).\n"
    assert next(rounds) == 1000                     # stopped at the next round
    assert bench.console.failures == failures + 1
    for line in (".for (;;) { }", ".while (1) { .block { } }", ".foreach /s (w \"a b c\") { }",
                 ".echo a; .echo b"):
        assert bench.run(line) == "The command was cancelled (Ctrl+C).\n", line


def test_blocks_nest_to_a_bound(bench):
    deep = ".block {" * (MAX_BLOCK_DEPTH + 1) + ".echo x" + "}" * (MAX_BLOCK_DEPTH + 1)
    assert bench.run(deep).splitlines() == [f"Blocks nest too deep (more than {MAX_BLOCK_DEPTH} levels)"]
    shallow = ".block {" * 10 + ".echo x" + "}" * 10
    assert bench.run(shallow) == "x\n"


def test_foreach_over_output_string_and_file_with_skips(bench, tmp_path):
    # A variable touching other text (here the quotes) is replaced only as ${w}.
    assert bench.run('.foreach (w {.echo a b\tc}) { .printf "<%s>", "w" }') == "<w><w><w>"
    assert bench.run('.foreach (w {.echo a b\tc}) { .printf "<%s>", "${w}" }') == "<a><b><c>"
    assert bench.run('.foreach /pS 1 /ps 2 /s (w "1 2 3 4 5 6 7") { .printf "${w}" }') == "25"
    words = tmp_path / "words.txt"
    words.write_text("first second\nthird\n", encoding="utf-8")
    assert bench.run(f'.foreach /f (w "{words}") {{ .echo w }}') == "first\nsecond\nthird\n"


def test_foreach_in_commands_are_not_shown_and_their_error_is(bench):
    assert bench.run(".foreach (w {.echo x; boom}) { .echo w }; .echo after") == "boom failed\n"


def test_foreach_reads_command_output_in_json_mode_too():
    bench = Bench(json_mode=True)
    bench.run(".foreach (w {.echo a b}) { .echo w }")
    texts = [event["text"] for event in bench.events if event.get("command") == ".echo a"] + \
            [event["text"] for event in bench.events if event.get("command") == ".echo b"]
    assert texts == ["a\n", "b\n"]
    json.dumps(bench.events)


def test_aliases_are_seen_by_blocks_entered_after_they_are_set(bench):
    assert bench.run("aS v one; .echo v; .block { .echo v }") == "v\none\n"
    assert bench.run(".echo v") == "one\n"
    assert bench.run("as line a; b; c") == ""
    assert bench.console.scripts.aliases.values["line"] == "a; b; c"


def test_alias_options(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("KDCON_TEST_ALIAS", "from the environment")
    text_file = tmp_path / "alias.txt"
    text_file.write_text("file text\n", encoding="utf-8")
    bench.run("aS /x sum 1+2; aS /e env KDCON_TEST_ALIAS; aS /c out .echo captured")
    bench.run(f"aS /f file {text_file}")
    values = bench.console.scripts.aliases.values
    assert values == {"sum": "0x3", "env": "from the environment", "out": "captured\n",
                      "file": "file text"}
    assert bench.run("aS /x bad nosuchsymbol").startswith("Couldn't resolve error")
    assert bench.run("aS /e none KDCON_NO_SUCH_VARIABLE") == \
        "Environment variable KDCON_NO_SUCH_VARIABLE is not set\n"
    assert bench.run("aS /z x y") == "Unknown option '/z' of aS\n"
    assert bench.run("aS lonely") == "No alias equivalent given for 'lonely'\n"


def test_ad_and_al(bench):
    bench.run("aS b 2; aS a 1")
    assert bench.run("al") == "  Alias            Value\n -------          -------\n a                1\n b                2\n"
    assert bench.run("ad ${/v:a}; ad /q zz; al") == \
        "  Alias            Value\n -------          -------\n b                2\n"
    assert bench.run("ad zz") == "No alias named 'zz'\n"
    assert bench.run("ad *; al") == "No aliases\n"
    assert bench.run("ad") == "An alias name is missing: ad name | ad *\n"


def test_comments(bench):
    assert bench.run("$$ not a command; .echo after") == "after\n"
    assert bench.run("* not a command; .echo hidden") == ""


def _script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_script_lines_are_echoed_after_the_prompt_and_blank_lines_skipped(bench, tmp_path):
    name = _script(tmp_path, "s.txt", ".echo one\r\n\r\n.echo two\r\n")
    assert bench.run(f"$<{name}") == "kd> .echo one\none\nkd> .echo two\ntwo\n"
    assert bench.run(f"$$<{name}; .echo after") == "kd> .echo one\none\nkd> .echo two\ntwo\nafter\n"


def test_a_folded_script_is_one_block_echoed_once_and_an_error_ends_it(bench, tmp_path):
    name = _script(tmp_path, "f.txt", ".echo one\nboom\n.echo never\n")
    assert bench.run(f"$><{name}") == "kd> .echo one;boom;.echo never;\none\nboom failed\n"


def test_arguments_script_does_not_echo_and_quotes_group_an_argument(bench, tmp_path):
    name = _script(tmp_path, "a.txt", ".echo [${$arg1}] [${$arg2}] ${$n}\n")
    assert bench.run(f'$$>a<{name} x "y z"; .echo after') == "[x] [y z] 2\nafter\n"
    spaced = _script(tmp_path, "with space.txt", ".echo ${$arg1}\n")
    assert bench.run(f'$$>a<"{spaced}" ok') == "ok\n"


def test_script_errors_are_one_line(bench, tmp_path):
    assert bench.run("$<").startswith("A script file name is missing")
    assert bench.run(f"$<{tmp_path / 'none.txt'}") == \
        f"Unable to read script file '{tmp_path / 'none.txt'}': No such file or directory\n"
    assert bench.run(f"$$<{tmp_path}") .startswith("Unable to read script file")
