"""The driver benchmark's command line: a bad count or a missing driver folder is one
line and exit status 2, and a short run prints one JSON line per figure, each with the
baseline it was measured against."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.simtarget.wdkbuild import require_driver_toolchain

PROG = "python -m kdcon.tools.bench.drivers"


def bench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kdcon.tools.bench.drivers", *argv],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("argv, said", [
    (["--count", "0"], "argument --count: '0' must be at least 1"),
    (["--driver-src", "/nonexistent/driver"], "--driver-src /nonexistent/driver is not a folder"),
])
def test_a_bad_argument_is_one_line_and_status_2(argv, said):
    result = bench(*argv)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"{PROG}: error: {said} (see --help)"]


def test_each_figure_is_one_json_line_with_its_baseline():
    require_driver_toolchain()
    result = bench("--repeats", "1", "--count", "5")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["figure"] for r in records] == ["boot_to_driver_entry_s", "ioctl_round_trips_per_s"]
    assert all(r["value"] > 0 and r["baseline_value"] > 0 for r in records)
