"""Benchmarks refuse bad counts and sizes with one line, as users run them (python -m)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from kdcon.tools.bench.args import positive_int


@pytest.mark.parametrize("module, argv, said", [
    ("protocol", ["--control", "0"], "argument --control: '0' must be at least 1"),
    ("protocol", ["--data", "-5"], "argument --data: '-5' must be at least 1"),
    ("protocol", ["--transfers", "many"], "argument --transfers: 'many' is not a whole number"),
    ("simtarget", ["--bulk-mib", "-3"], "argument --bulk-mib: '-3' must be at least 1"),
    ("simtarget", ["--requests", "0"], "argument --requests: '0' must be at least 1"),
    ("simtarget", ["--start-runs", "0"], "argument --start-runs: '0' must be at least 1"),
    ("simmachine", ["--samples", "0"], "argument --samples: '0' must be at least 1"),
    ("simmachine", ["--hits", "-1"], "argument --hits: '-1' must be at least 1"),
    ("simmachine", ["--instructions", "1.5"], "argument --instructions: '1.5' is not a whole number"),
    ("symbols", ["--bogus"], "unrecognized arguments: --bogus"),
])
def test_a_bad_argument_is_one_line_and_status_2(module, argv, said):
    result = subprocess.run([sys.executable, "-m", f"kdcon.tools.bench.{module}", *argv],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"python -m kdcon.tools.bench.{module}: error: {said} (see --help)"]


@pytest.mark.parametrize("text, value", [("1", 1), ("200_000", 200000), ("16", 16)])
def test_positive_int_takes_whole_numbers_from_one(text, value):
    assert positive_int(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "", "1e3", "0x10", "2.0"])
def test_positive_int_rejects_the_rest(text):
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int(text)
