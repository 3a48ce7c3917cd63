"""Exceptions of the symbols layer.

A corrupt or hostile file raises ``SymbolFileError`` inside the layer; the layer's
public loaders turn it into a warning and "no symbols", never an exception into
the console.
"""

from __future__ import annotations

__all__ = ["SymbolError", "SymbolFileError", "SymbolPathError", "UnsafeNameError"]


class SymbolError(Exception):
    """Base class of every error the symbols layer raises."""


class SymbolFileError(SymbolError):
    """A symbol file or image is truncated, corrupt, or of an unsupported kind."""


class SymbolPathError(SymbolError):
    """A symbol path string cannot be parsed, or names a store that cannot be used."""


class UnsafeNameError(SymbolError):
    """A name from an image or the target would lead outside a store's root."""
