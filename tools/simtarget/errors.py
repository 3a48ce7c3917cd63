"""Exceptions of the simulated target.

The machine raises these for caller mistakes and for images it cannot load; a CLI
turns each into one line.  Guest faults are never exceptions: they are stop events.
"""

from __future__ import annotations

__all__ = ["SimTargetError", "ImageLoadError", "MissingImportsError", "MachineStateError"]


class SimTargetError(Exception):
    """Base class of the simulated target's errors."""


class ImageLoadError(SimTargetError):
    """An image file cannot be loaded (not a PE, wrong machine, no room, ...)."""


class MissingImportsError(ImageLoadError):
    """A driver imports routines no loaded module exports; ``missing`` names every one."""

    def __init__(self, image: str, missing: list[str]) -> None:
        self.image = image
        self.missing = list(missing)
        super().__init__(f"{image} imports what the kernel does not export: {', '.join(self.missing)}")


class MachineStateError(SimTargetError):
    """A call that the machine's current state does not allow (e.g. run() with a prompt unanswered)."""
