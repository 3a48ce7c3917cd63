"""Paging: ``.more`` turns kd's ``-- more --`` pause of long output on and off.

``.more on`` makes the interactive console stop a command's output every
terminal page at ``-- more --`` (space: the next page, Enter: one more line, q:
stop the output, as kd's q does, without a word; Ctrl+C: stop it and say the
command was cancelled); ``.more off`` (the default) lets
it run; ``.more`` says which. Output is never paged in ``--batch`` or ``--json``
runs, in logs, or when standard output is not a terminal: the setting only tells
the REPL's pager (kdcon/output.py ``Pager``, kdcon/repl.py) what to do.
Spec: kd's paging of long output (windbg.md §0: Ctrl+C stops it).
"""

from __future__ import annotations

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..registry import Category, command

__all__ = ["more"]

_ON = "Paging is on: output longer than the terminal stops at -- more -- " \
      "(space: a page, Enter: a line, q or Ctrl+C: stop)"
_OFF = "Paging is off (.more on pauses long output at -- more --)"


@command(".more", category=Category.META, usage=".more [on | off]", needs_halt=False)
def more(ctx: CommandContext, args: Args) -> None:
    """Pause long output at -- more -- in the interactive console, or say whether it does."""
    word = args.rest().strip()
    settings = ctx.console.settings
    if word.lower() in ("on", "off"):
        settings.more = word.lower() == "on"
    elif word:
        raise CommandError(f"Syntax error at '{word}': .more [on | off]")
    ctx.out.line(_ON if settings.more else _OFF)
