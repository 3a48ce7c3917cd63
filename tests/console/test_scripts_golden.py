"""Command programs against the simulated target, as whole transcripts: script files
with arguments and nested .if/.foreach/.for, a conditional breakpoint, aliases,
.printf's formats, and a log file that holds exactly what the console showed."""

from __future__ import annotations

from pathlib import Path

import pytest

from .transcripts import REPO, batch, check_golden, run_kdcon

COUNT = r"""$$ Counts to ${$arg1} and names each round ${$arg2}
.printf "${$n} arguments: ${$arg1} rounds of ${$arg2}\n"
.for (r $t0 = 0; @$t0 < ${$arg1}; r $t0 = @$t0 + 1)
{
    .if (@$t0 == 0)
    {
        .printf "${$arg2} %d is zero\n", @$t0
    }
    .elsif (@$t0 & 1)
    {
        .printf "${$arg2} %d is odd\n", @$t0
    }
    .else
    {
        .printf "${$arg2} %d is even\n", @$t0
    }
}
.foreach /s (n "2 3 4") { $$>a<square.txt n ${$arg2} }
.echo ${$arg3} stays as written
"""

SQUARE = r"""aS /x square ${$arg1} * ${$arg1}
.block { .printf "${$arg2} ${$arg1}: squared is %d\n", square }
.if (${$arg1} == 3) { .echo three is the odd one out }
ad square
"""

LINES = r"""r $t1 = 2
.echo t1 is set

.while (@$t1) { r $t1 = @$t1 - 1; .printf "t1 down to %d\n", @$t1 }
$$<nested.txt
"""

NESTED = r""".echo nested line one
.foreach /pS 1 /ps 1 (word {.echo alpha beta gamma delta epsilon}) { .echo word }
"""

RECURSE = "$$>a<recurse.txt\n"


@pytest.fixture
def scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in (("count.txt", COUNT), ("square.txt", SQUARE), ("lines.txt", LINES),
                       ("nested.txt", NESTED), ("recurse.txt", RECURSE)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_script_files_with_arguments_nested_loops_conditions_and_their_echo(scripts):
    text, status = batch("$$>a<count.txt 5 round", "$<lines.txt", "$><nested.txt",
                         "$$><nested.txt; .echo after the block", "r $t0, $t1",
                         "$$>a<recurse.txt", "$<missing.txt")
    assert status == 1
    check_golden("scripts_nested", text)


def test_a_conditional_breakpoint_goes_on_until_the_tick_count_reaches_three():
    condition = (r'bp trackdemo!TrackDemoTick ".if (dwo(trackdemo!TrackDemoTickCount) < 3) {gc} '
                 r'.else {.printf \"stopping at tick %d\n\", dwo(trackdemo!TrackDemoTickCount)}"')
    text, status = batch(condition, "g", "g", "? dwo(trackdemo!TrackDemoTickCount)", "bl")
    assert status == 0
    assert text.count("Breakpoint 0 hit") == 4
    check_golden("conditional_breakpoint", text)


def test_aliases_are_replaced_as_lines_and_blocks_are_entered():
    # An alias's ';' cuts the line it is put in, unless the text around it is quoted.
    text, status = batch("as greeting hello world", "aS /x base trackdemo!TrackDemoTick",
                         'aS quoted "a; b"', "al", ".echo ${greeting}|${quoted}",
                         '.echo "${greeting}|${quoted}"',
                         ".echo greeting ${/v:greeting} ${/d:greeting} ${/d:none} [${/f:none}]",
                         "aS name first; .echo name; .block { .echo name }",
                         "ad name", ".echo name", "ad /q missing", "ad missing",
                         "bp trackdemo!TrackDemoTick", "g", "g",
                         '.foreach /s (addr "${base}") { u addr L1 }', "ad *", "al")
    assert status == 1
    check_golden("aliases", text)


def test_printf_formats_numbers_symbols_and_target_strings():
    text, status = batch(
        "bp trackdemo!TrackDemoTick", "g", "g",
        r'.printf "%p|%x|%X|%I64x|%d|%u|%08x|%-6d|%+d|%#x|%o|%c|%%\n", rip, -1, 0xabc, -1, '
        r'-2, -2, 0x1f, 0n42, 5, 0xff, 8, 0x41',
        r'.printf "%y and %y\n", trackdemo!TrackDemoTick+3, @rip',
        r'.printf "%N %I64d %hx %hhx\n", 0x1234, -2, 0x12345, 0x1ff',
        r'.printf "%s=%d, %5.2f %lf\n", "ticks", dwo(trackdemo!TrackDemoTickCount), '
        r'0x3fc00000, 0x3ff8000000000000',
        'eza @rsp-0x800 "ASCII text from the target"', 'ezu @rsp-0x700 "Wide text"',
        "ew @rsp-0x900 0x12 0x14", "eq @rsp-0x8f8 @rsp-0x700",
        r'.printf "%ma|%mu|%msu|%s\n", @rsp-0x800, @rsp-0x700, @rsp-0x900, @rsp-0x800',
        "eb @rsp-0x800+5 1b",
        r'.printf /D "<b>%ma</b> &lt;escaped&gt;\n", @rsp-0x800',
        r'.printf "%d %d\n", 1', r'.printf "%q\n", 1', '.printf "no newline"',
        r'.printf "%ma\n", 0')
    assert status == 1
    check_golden("printf_formats", text)


def _logged(path: Path) -> str:
    return path.read_text(encoding="utf-8").replace(REPO, "<repo>")


def test_a_log_holds_exactly_what_the_console_showed_while_it_was_open(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, status = batch(".logfile", ".logopen session.log", "r $t0 = 5", ".echo logged",
                         '.printf "part of "', r'.printf "a line\n"', "bp trackdemo!TrackDemoTick",
                         "g", "g", ".logfile", ".logclose", ".echo not logged", ".logclose")
    assert status == 0
    check_golden("log_session", text)
    start = text.index("Opened log file 'session.log'")
    end = text.index("Closing open log file session.log\n") + len("Closing open log file session.log\n")
    assert _logged(tmp_path / "session.log") == text[start:end]


def test_logo_logs_the_whole_session_and_loga_appends_to_it(tmp_path):
    log = tmp_path / "whole.log"
    first, status = run_kdcon(["--loopback", "--batch", "--timeout", "60", "-logo", str(log),
                               "-c", "bp trackdemo!TrackDemoTick", "-c", "g", "-c", "g"])
    assert status == 0
    assert first.startswith(f"Opened log file '{log}'")
    assert _logged(log) == first
    second, status = run_kdcon(["--loopback", "--batch", "--timeout", "60", "-loga", str(log),
                                "-c", "r $t0 = 1", "-c", "r $t0"])
    assert status == 0
    assert _logged(log) == first + second
