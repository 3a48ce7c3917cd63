"""The kdcon entry point: usage errors, connection errors and exit statuses."""

from __future__ import annotations

import subprocess
import sys

from kdcon.cli import main


def test_no_target_is_a_usage_error_in_one_line(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "kdcon: give a target: --loopback, --port URL or -k CONNECTION"


def test_a_link_that_cannot_open_is_exit_2_without_traceback():
    run = subprocess.run([sys.executable, "-m", "kdcon.cli", "--port", "unix:///nonexistent/kd.sock",
                          "--batch"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("kdcon: cannot open the link:")
    assert len(run.stderr.splitlines()) == 1
