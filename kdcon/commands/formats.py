""".formats: one expression's value in every number format kd shows.

The block itself is ``render.numbers.format_number_block``; this module evaluates the
expression in the current scope (registers, symbols, pseudo-registers) and prints it.
What it does not do: C++ expressions (``.formats`` takes MASM ones, as ``?`` does).
Spec: the .formats page of the debugger documentation.
"""

from __future__ import annotations

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..registry import Category, command
from ..render.numbers import format_number_block

__all__ = ["formats"]


@command(".formats", category=Category.SYMBOLS, usage=".formats expression", needs_halt=False)
def formats(ctx: CommandContext, args: Args) -> None:
    """Show a value in hex, decimal, octal, binary, characters, time and floating point."""
    text = args.rest()
    if not text:
        raise CommandError("Numeric expression missing from '<EOL>'")
    value = ctx.evaluate(text)
    pointer_size = ctx.session.pointer_size
    ctx.out.lines(format_number_block(value, pointer_size))
    ctx.out.row(value=value & ((1 << 8 * pointer_size) - 1))
