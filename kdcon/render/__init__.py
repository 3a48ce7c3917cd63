"""WinDbg text for what the layers below return as data.

``format_address`` here; ``symbols``: ``ln``, ``x`` and ``lm`` rows from the symbol session's
answers. Pure functions: data in, text out; nothing here reads the target
itself (a reader is passed in where a value must be shown).
"""

from __future__ import annotations

__all__ = ["format_address"]


def format_address(addr: int, pointer_size: int = 8) -> str:
    """WinDbg's address text: ``fffff803`1a2b3c40`` for 64-bit targets, ``8040a2b0``
    for 32-bit ones. The one definition every renderer, listing and stack uses."""
    if pointer_size == 8:
        addr &= 0xFFFFFFFFFFFFFFFF
        return f"{addr >> 32:08x}`{addr & 0xFFFFFFFF:08x}"
    return f"{addr & 0xFFFFFFFF:08x}"
