"""Golden transcripts: run ``kdcon --loopback --batch`` in-process and compare its text.

``run_kdcon(args)`` runs the real command line (cli.main) with standard output captured
and returns (text, exit status). ``check_golden(name, text)`` compares ``text`` with
``tests/console/golden/NAME.txt`` line by line; with ``KDCON_UPDATE_GOLDEN=1`` in the
environment it writes the file instead (then review the diff before committing).
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
from pathlib import Path

from kdcon.cli import main

GOLDEN = Path(__file__).resolve().parent / "golden"
# Paths on this machine (the symbol path names the checkout) read as <repo>.
REPO = str(Path(__file__).resolve().parents[2])


def run_kdcon(args: list[str]) -> tuple[str, int]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(args)
    return buffer.getvalue().replace(REPO, "<repo>"), status


def batch(*commands: str, extra: list[str] | None = None) -> tuple[str, int]:
    """``kdcon --loopback --batch`` with one ``-c`` per command line."""
    args = ["--loopback", "--batch", "--timeout", "60"]
    for line in commands:
        args += ["-c", line]
    return run_kdcon(args + (extra or []))


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("KDCON_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden transcript {path.name}: run with KDCON_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            "golden", "now"))
        raise AssertionError(f"transcript {name} changed:\n{diff}")
