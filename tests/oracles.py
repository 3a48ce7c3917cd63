"""Oracle programs the tests compare against.

Oracles (llvm-pdbutil, clang-cl-14, lld-link, winedump, ...) are external programs
that ``.ci/run`` installs. On a developer machine without them the tests that need
them are skipped with a reason; under ``CI=true`` a missing oracle fails the run.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str, *alternatives: str) -> str:
    """Path of the first of ``name``/``alternatives`` on PATH, or skip (fail under CI)."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate)
        if path:
            return path
    message = f"oracle {name!r} is not installed (.ci/run installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
