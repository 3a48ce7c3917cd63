"""The kdcon entry point says in one line what this release does not do yet."""

from __future__ import annotations

from kdcon.cli import main


def test_loopback_reports_the_missing_console_in_one_line_and_exits_2(capsys):
    assert main(["--loopback"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert "kdcon-sim" in lines[0]
