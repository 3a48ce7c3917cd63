"""The installed command-line programs, run as users run them.

``run_program("kdcon-symbols", "dump", path)`` starts the console script that
``pip install -e .`` put beside the interpreter running the tests (or on PATH)
and returns the finished process. A program that is not installed fails the
test: the tests run against the installed package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

__all__ = ["program_path", "run_program", "assert_one_line_error"]


def program_path(name: str) -> str:
    """Where the console script ``name`` is installed."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -e .)")
    return found


def run_program(name: str, *args: str, input: str | bytes | None = None,
                timeout: float = 60.0, text: bool = True) -> subprocess.CompletedProcess:
    """Run the installed ``name`` with ``args`` to completion."""
    return subprocess.run([program_path(name), *args], input=input, capture_output=True,
                          text=text, timeout=timeout, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess, name: str, status: int = 1) -> str:
    """The process ended with ``status`` and one ``name: ...`` line on stderr; returns it."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{name}: "), result.stderr
    return lines[0]
