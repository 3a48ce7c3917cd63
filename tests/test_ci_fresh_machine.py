""".ci/run on a fresh Debian 12: a fresh .venv (python3-venv installed when venv fails),
then the README's test command word for word.

The venv step runs against stand-ins for ``python3`` and ``apt-get`` that behave as
Debian 12's do: ``python3 -m venv`` fails until ``apt-get install python3-venv`` ran.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_STEP = ROOT / ".ci" / "setup.d" / "90-venv.sh"

FAKE_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    if [ -e "$STATE/python3-venv" ]; then mkdir -p "$3/bin"; exit 0; fi
    echo "The virtual environment was not created successfully because ensurepip is not available." >&2
    exit 1
fi
exit 0
"""
FAKE_APT = """#!/bin/sh
echo "$*" >> "$STATE/apt.log"
case "$*" in *install*python3-venv*) touch "$STATE/python3-venv" ;; esac
exit 0
"""


def _run_venv_step(tmp_path: Path, has_venv: bool) -> tuple[subprocess.CompletedProcess, Path, Path]:
    state, bin_dir, clone = tmp_path / "state", tmp_path / "bin", tmp_path / "clone"
    for directory in (state, bin_dir, clone / ".venv" / "stale"):
        directory.mkdir(parents=True)
    for name, text in (("python3", FAKE_PYTHON), ("apt-get", FAKE_APT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    if has_venv:
        (state / "python3-venv").touch()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state), "HOME": str(tmp_path)}
    result = subprocess.run(["bash", "-c", f"set -euo pipefail; cd {clone}; source {VENV_STEP}"],
                            env=env, capture_output=True, text=True, timeout=60)
    return result, state, clone


def test_a_python_without_venv_gets_python3_venv_then_a_fresh_venv(tmp_path):
    result, state, clone = _run_venv_step(tmp_path, has_venv=False)
    assert result.returncode == 0, result.stderr
    assert "install -y -qq python3-venv" in (state / "apt.log").read_text()
    assert (clone / ".venv" / "bin").is_dir() and not (clone / ".venv" / "stale").exists()


def test_a_python_with_venv_installs_nothing_and_starts_from_nothing(tmp_path):
    result, state, clone = _run_venv_step(tmp_path, has_venv=True)
    assert result.returncode == 0, result.stderr
    assert not (state / "apt.log").exists()
    assert (clone / ".venv" / "bin").is_dir() and not (clone / ".venv" / "stale").exists()


def _readme_command(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(re.escape(heading) + r"[^\n]*\n\s*```sh\n(.+?)\n```", text, re.DOTALL)
    assert block is not None, heading
    return block.group(1).strip()


def test_ci_runs_the_readmes_test_command_word_for_word():
    command = _readme_command("Install and pass the tests:")
    assert command.startswith("python3 -m venv .venv && .venv/bin/")
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in lines


def test_the_readme_names_the_debian_package_that_gives_venv():
    quick_start = (ROOT / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "python3-venv" in quick_start
    assert _readme_command("Run the main job").startswith("python3 -m venv .venv && .venv/bin/pip install -e .")


def test_the_venv_step_is_sourced_last():
    steps = sorted(p.name for p in (ROOT / ".ci" / "setup.d").glob("*.sh"))
    assert steps[-1] == VENV_STEP.name
