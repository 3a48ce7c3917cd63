"""Modes and failures: help entries, -cf files, --timeout, sx filters, bm, a lost link."""

from __future__ import annotations

import io

from kdcon.app import EXIT_FAILED, EXIT_TIMEOUT, App
from kdcon.console import Console
from kdcon.output import Output
from kdcon.registry import REGISTRY
from kdcon.tools.simtarget.loopback import SimTarget

from .transcripts import batch, check_golden, run_kdcon


def test_every_command_has_a_summary_that_is_one_sentence():
    import kdcon.commands  # noqa: F401 - declares them

    for cmd in REGISTRY:
        assert cmd.summary and cmd.summary.endswith("."), cmd.name
        assert cmd.usage, cmd.name


def test_help_lists_categories_and_one_commands_usage():
    text, status = batch(".help", ".help bp", ".help nosuch")
    assert status == 1
    assert "Breakpoints:\n" in text and "  bp           Set a breakpoint" in text
    assert "bp[ID] [/1] address [passes] [\"commands\"]" in text
    assert "No command nosuch: .help lists them all" in text


def test_a_command_file_runs_like_c(tmp_path):
    script = tmp_path / "cmds.txt"
    script.write_text("? 0n10\nbl\n", encoding="utf-8")
    text, status = run_kdcon(["--loopback", "--batch", "-cf", str(script)])
    assert status == 0
    assert "0: kd> ? 0n10\nEvaluate expression: 10 = 00000000`0000000a" in text


def test_a_missing_command_file_is_a_usage_error(tmp_path, capsys):
    from kdcon.cli import main

    assert main(["--loopback", "--batch", "-cf", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("kdcon: cannot read the command file:")


def test_timeout_breaks_in_and_exits_3():
    text, status = run_kdcon(["--loopback", "--batch", "--timeout", "3", "-c", "bc *",
                              "-c", "g", "-c", "g", "-c", "g", "-c", "? 1"])
    assert status == EXIT_TIMEOUT
    assert "The run passed its --timeout with the target running; broke in" in text
    assert "? 1" not in text


def test_sxe_ld_breaks_when_the_module_loads_after_a_reboot():
    text, status = batch("sxe ld:trackdemo", ".reboot", "g", "lm m trackdemo", "sxi ld", "g")
    assert status == 0
    loaded = text.split("kd> .reboot", 1)[1].split("kd> g", 1)[1].split("kd> lm", 1)[0]
    assert "ModLoad: " in loaded and "trackdemo.sys" in loaded
    check_golden("sxe_ld_reboot", text)


def test_bm_sets_one_breakpoint_per_match_and_bp_on_an_unknown_name_defers():
    text, status = batch("bm trackdemo!TrackDemo*Leak*", "bp nosuch!Function", "bl", ".bpcmds",
                         "bm trackdemo!NoMatchAtAll*")
    assert status == 1
    check_golden("bm_deferred", text)


def test_expressions_in_a_session():
    text, status = batch("? trackdemo!DriverEntry - trackdemo", "? poi(nt!PsLoadedModuleList) == 0",
                         "? @rip - $ip", "? hi(fffff800`01000000)", "? 0y101 + 0t17 + 0n10 + 1f",
                         "? dwo(nt!KiSimRequest) + by(nt!KiSimRequest)", "? nosuch!sym", "? 1 +")
    assert status == 1
    check_golden("session_expressions", text)


def test_a_lost_link_is_one_line_and_the_console_stays_usable():
    sim = SimTarget(seed=0, break_on_connect=True)
    stream = io.StringIO()
    app = App(sim.connect(), link_name="loopback", output=Output(stream=stream))
    try:
        app.connect()
        sim.close()
        assert app.run_commands(["g", "r", "? 1+1", "bl"]) == EXIT_FAILED
    finally:
        app.close()
    text = stream.getvalue()
    after = text.split("kd> g", 1)[1]
    assert "Traceback" not in text
    assert "lost" in after.splitlines()[1]
    assert "Evaluate expression: 2 = 00000000`00000002" in after
    assert isinstance(app.console, Console)


def test_the_33rd_breakpoint_is_refused_with_the_kernel_limit():
    text, status = batch("bm nt!*", "bl")
    assert status == 1
    assert text.count("Unable to set breakpoint: a kernel target allows 32 breakpoints") == 1
    listing = text.split("kd> bl", 1)[1].splitlines()[1:]
    assert len(listing) == 32 and listing[-1].startswith("31 e ")
