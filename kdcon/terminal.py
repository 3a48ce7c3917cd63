"""The terminal end of the console's output: colour rules, the stream, the key table.

What it does: ``TerminalStream`` is the stream ``Output`` writes to. It writes to
whatever ``sys.stdout`` is at that moment, so inside the REPL's ``patch_stdout`` the
text of commands, stops and DbgPrint lands above the prompt. When the REPL turns
``colour`` on it paints what helps a reader find things (``module!symbol`` names,
the ``module!function:`` line of a stop, ``Breakpoint N hit``, enabled and disabled
lines of ``bl``); the text itself never changes. ``gate`` is asked before each
write, so Ctrl+C can stop a command in the middle of long output. ``colour_wanted``
applies the rules that turn colour off: ``--no-color``, a non-empty ``NO_COLOR``
(no-color.org), ``TERM=dumb``, or output that is not a terminal. ``KEYS`` is the list
``.help keys`` prints, the ``-- more --`` pager's keys included.
What it does not do: read keys or draw the prompt (repl.py). Colour never reaches
``--batch`` text, JSON or logs: logs are tees of ``Output`` that see the text before
it gets here, and only the REPL turns colour on.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from .errors import KdconError

__all__ = ["TerminalStream", "Interrupted", "colour_wanted", "colourise", "KEYS"]

# Keys of the interactive console, kd's meaning where a Unix terminal allows it
# (windbg.md: Ctrl+C, Ctrl+R, Ctrl+B, Ctrl+K, and kd's Ctrl+D packet trace, which
# moves to F2 because Ctrl+D is end of input here).
KEYS: tuple[tuple[str, str], ...] = (
    ("Ctrl+C", "break into a running target; cancel a long command or its output "
               "while halted; clear the line at the prompt"),
    ("Ctrl+D", "quit at an empty prompt, leaving the target as it is"),
    ("Ctrl+B", "quit, leaving the target running (qd)"),
    ("Ctrl+R", "resynchronise with the target (KDTARGET: Refreshing KD connection); "
               "reopen a lost link (.restart)"),
    ("Ctrl+K", "cycle what happens when the target reboots: none, initial, first-load"),
    ("F2", "packet trace on or off: .kdtrace (kd's Ctrl+D)"),
    ("Tab", "complete commands, extensions, module!symbol, types, registers, breakpoint "
            "ids and file names"),
    ("Up, Down", "earlier and later commands starting with what is typed"),
    ("Ctrl+S", "search the history as you type"),
    ("Right, Ctrl+E", "take the greyed suggestion from the history"),
    # The pager's own keys (.more on): they answer -- more -- and reach no command line.
    ("Space", "at -- more --: show the next page"),
    ("Enter", "at -- more --: show one more line"),
    ("q, Ctrl+C", "at -- more --: stop the output and cancel the command"),
)

_RESET = "\x1b[0m"
_SYMBOL = "\x1b[36m"           # cyan
_LOCATION = "\x1b[1;36m"       # bold cyan
_HIT = "\x1b[1;33m"            # bold yellow
_ENABLED = "\x1b[32m"          # green
_DISABLED = "\x1b[2m"          # dim

# module!name with an optional +0x displacement; the module part must start a word
# so that ``!ext`` commands and ``a != b`` stay plain.
_SYMBOL_RE = re.compile(r"(?<![\w!`])([A-Za-z_][\w.]*![A-Za-z_?@$][\w@?$:<>~]*(?:\+0x[0-9a-fA-F]+)?)")
_LOCATION_RE = re.compile(r"(?m)^([A-Za-z_][\w.]*![^\s:]+(?:\+0x[0-9a-fA-F]+)?:)$")
_HIT_RE = re.compile(r"(?m)^(Breakpoint \d+ hit)$")
# A bl line: id, e/d (u when unresolved), then an address or the blank of one.
_BL_RE = re.compile(r"(?m)^( ?\d+ )([ed])(u?)( +(?:[0-9a-f]{8}`[0-9a-f]{8}|[0-9a-f]{8} | {17}))")


class Interrupted(KdconError):
    """Ctrl+C stopped a command while the target was halted."""


def colour_wanted(stream: TextIO, *, no_color: bool = False,
                  environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour ``stream``: a terminal, and nobody said no."""
    env = os.environ if environ is None else environ
    if no_color or env.get("NO_COLOR") or env.get("TERM", "") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:           # a closed stream
        return False


def _paint(code: str) -> Callable[[re.Match[str]], str]:
    return lambda match: f"{code}{match.group(1)}{_RESET}"


def _bl(match: re.Match[str]) -> str:
    code = _ENABLED if match.group(2) == "e" else _DISABLED
    return f"{match.group(1)}{code}{match.group(2)}{match.group(3)}{_RESET}{match.group(4)}"


def colourise(text: str) -> str:
    """``text`` with ANSI colour on symbols, stop locations, hits and ``bl`` states."""
    if "!" in text:
        if ":" in text and _LOCATION_RE.search(text):
            text = _LOCATION_RE.sub(_paint(_LOCATION), text)
            # Symbols outside the painted location lines.
            parts = re.split(r"(\x1b\[1;36m.*?\x1b\[0m)", text)
            text = "".join(part if part.startswith("\x1b") else _SYMBOL_RE.sub(_paint(_SYMBOL), part)
                           for part in parts)
        else:
            text = _SYMBOL_RE.sub(_paint(_SYMBOL), text)
    if "Breakpoint" in text:
        text = _HIT_RE.sub(_paint(_HIT), text)
    if " e " in text or " d " in text or " eu " in text or " du " in text:
        text = _BL_RE.sub(_bl, text)
    return text


class TerminalStream:
    """The stream behind ``Output``: the current ``sys.stdout``, coloured on request."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._fixed = stream
        self.colour = False
        # Asked before each write: False drops the text; it may raise Interrupted.
        self.gate: Callable[[], bool] | None = None

    @property
    def target(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stdout

    def write(self, text: str) -> int:
        if self.gate is not None and not self.gate():
            return len(text)
        self.target.write(colourise(text) if self.colour else text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        isatty = getattr(self.target, "isatty", None)
        return bool(isatty and isatty())
