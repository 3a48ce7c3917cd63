"""Golden transcripts: run ``kdcon --loopback --batch`` in-process and compare its text.

``run_kdcon(args)`` runs the real command line (cli.main) with standard output captured
and returns (text, exit status). ``check_golden(name, text)`` compares ``text`` with
``tests/console/golden/NAME.txt`` line by line; with ``KDCON_UPDATE_GOLDEN=1`` in the
environment it writes the file instead (then review the diff before committing).
``without_kernel_pdb(symbol_path, drivers)`` is a session on the simulated target whose
symbol path holds no PDB for nt (exports only, no types): what the built-in layouts serve.
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


@contextlib.contextmanager
def without_kernel_pdb(symbol_path: str, drivers: list | None = None):
    """(app, screen) of a session stopped at its first break-in whose symbol path is
    ``symbol_path`` (one without nt's PDB), closed on leaving."""
    from kdcon.app import App
    from kdcon.output import Output
    from kdcon.tools.simtarget.loopback import SimTarget

    sim = SimTarget(seed=0, drivers=drivers or None, break_on_connect=True)
    screen = io.StringIO()
    app = App(sim.connect(), link_name="kdsim", output=Output(stream=screen),
              symbol_path=symbol_path, timeout=60)
    try:
        app.connect()
        yield app, screen
    finally:
        app.close()
        sim.close()
