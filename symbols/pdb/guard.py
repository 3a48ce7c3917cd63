"""One place that turns decoding accidents on damaged files into ``SymbolFileError``.

The decoders check offsets and sizes they depend on, but a hostile file can
still make ``struct`` or a slice see something impossible deep in a record;
every public entry point of the package is wrapped so that such a file is
reported as corrupt and never escapes as another exception type.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from construct import ConstructError

from kdcon.symbols.errors import SymbolFileError

__all__ = ["guarded", "CORRUPT"]

_T = TypeVar("_T")

CORRUPT = (struct.error, ValueError, IndexError, KeyError, OverflowError, ConstructError,
            RecursionError, UnicodeError)


def guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Re-raise decoding errors of a damaged file as ``SymbolFileError``."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return method(*args, **kwargs)
        except SymbolFileError:
            raise
        except CORRUPT as exc:
            raise SymbolFileError(f"corrupt PDB: {type(exc).__name__}: {exc}") from None

    return wrapper
