"""Command-line arguments shared by the benchmarks: counts and sizes that must be positive.

``positive_int`` is an argparse type that rejects zero, negative and non-integer
values with a message; ``BenchParser`` reports any argument error as one line
(``prog: error: ...``) and exit status 2, without a usage block. Not here: the
benchmarks themselves.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["BenchParser", "positive_int"]


def positive_int(text: str) -> int:
    """A whole number of at least 1, e.g. ``--count 200``."""
    try:
        value = int(text.replace("_", ""), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


class BenchParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)
