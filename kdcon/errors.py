"""Exceptions of the console layer.

Every one of them ends in one clear line at the prompt; a traceback is shown only
with ``--debug``.
"""

from __future__ import annotations

__all__ = ["KdconError", "CommandError"]


class KdconError(Exception):
    """Base class of the console's own errors."""


class CommandError(KdconError):
    """A command was given arguments it cannot use."""
