"""The built-in extensions' argument expressions: one rule for all of them.

What it does: ``argument`` evaluates an extension's argument with the console's
evaluator (MASM, symbols, registers) and gives it as a 64-bit number, or fails with one
line that names the argument and the evaluator's reason. What it does not do: split
arguments or know what a number means to a command.

Not an extension itself (the leading underscore keeps the loader away); the built-ins
import it relatively.
"""

from __future__ import annotations

from kdcon.api import ExtensionFailed, Target, printable

__all__ = ["argument"]

_MASK = (1 << 64) - 1


def argument(target: Target, text: str, what: str = "argument") -> int:
    """``text``'s value as an unsigned 64-bit number (``-1`` is 0xffffffff`ffffffff);
    ExtensionFailed ``Bad {what} '{text}': {reason}`` when it has none."""
    try:
        return target.evaluate(text) & _MASK
    except Exception as exc:  # noqa: BLE001 - the evaluator's message is the line to give
        raise ExtensionFailed(f"Bad {what} '{printable(text, newlines=False)}': {exc}") from None
