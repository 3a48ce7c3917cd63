"""kdcon-linetest analyses at the link's own rate and knows an echo from a wrong baud rate."""

from __future__ import annotations

import argparse

from kdcon.protocol.transports import BaudMismatch, add_link_arguments, open_link
from kdcon.protocol.transports.cli import link_baud
from kdcon.tools.linetest import BREAKIN, analyse_probe, main
from tests.programs import run_program
from tests.protocol.test_linetest_cli import DATA_PACKET, RESET_PACKET, FakeTarget

PROG = "kdcon-linetest"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tool", exit_on_error=False)
    add_link_arguments(parser)
    return parser.parse_args(list(argv))


def test_link_baud_takes_the_kd_strings_rate_over_the_baud_option():
    assert link_baud(_args("-k", "com:port=COM1,baud=57600")) == 57600
    assert link_baud(_args("-k", "com:port=COM1,baud=57600", "--baud", "9600")) == 57600
    assert link_baud(_args("--port", "com:port=COM1,baud=19200")) == 19200
    assert link_baud(_args("-k", "com:port=COM1", "--baud", "38400")) == 38400
    assert link_baud(_args("--port", "loop://")) == 115200


def test_cable_test_reports_the_kd_strings_rate():
    result = run_program(PROG, "-k", "com:port=loop://,baud=57600", "--loopback-plug")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "loopback plug on com:port=loop://,baud=57600 at 57600 baud"


def test_probe_over_a_loop_url_is_an_echo_not_a_wrong_baud_rate():
    result = run_program(PROG, "--port", "loop://", "--probe", "--wait", "0.3")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "echo: " in result.stdout and "wrong baud" not in result.stdout


def test_probe_analyses_at_the_kd_strings_rate(tmp_path, capsys):
    # The target runs at 19200; we read at the string's 57600. Analysed at 115200 instead,
    # the same bytes point to 38400.
    sock = str(tmp_path / "kd.sock")
    target_end = open_link(f"unix://{sock}?listen")
    line = BaudMismatch(tx_baud=19200, rx_baud=57600)
    with FakeTarget(target_end, RESET_PACKET + DATA_PACKET, on_any_byte=True, line=line):
        status = main(["-k", f"com:port=unix://{sock},baud=57600", "--probe", "--wait", "1.5"])
    out = capsys.readouterr().out
    assert status == 1
    assert out.startswith(f"probe com:port=unix://{sock},baud=57600 at 57600 baud\n")
    assert "probably runs at 19200 baud" in out


def test_our_break_ins_coming_back_are_an_echo():
    report = analyse_probe(BREAKIN * 3, 115200, waited=3.0, sent=3)
    assert report.kind == "echo" and not report.ok
    assert report.lines[0].startswith("echo: the 3 break-in bytes sent came back unchanged")


def test_more_break_in_bytes_than_were_sent_are_not_an_echo():
    assert analyse_probe(BREAKIN * 5, 115200, sent=2).kind != "echo"
    assert analyse_probe(BREAKIN + b"\x00\x81", 115200, sent=2).kind == "wrong_baud"
