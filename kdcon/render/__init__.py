"""WinDbg text for what the layers below return as data.

``symbols``: addresses, ``ln``, ``x`` and ``lm`` rows from the symbol session's
answers. Pure functions: data in, text out; nothing here reads the target
itself (a reader is passed in where a value must be shown).
"""

from __future__ import annotations

__all__: list[str] = []
