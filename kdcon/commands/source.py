"""Source lines: ``.lines``, ``.srcpath[+]``, ``lsa`` and ``ls``, and the ``[file @ line]``
annotations the stop line, ``k``, ``ln`` and ``u`` add while line support is on.

Line support is SYMOPT_LOAD_LINES: off by default in KD and CDB (on in WinDbg), so
nothing changes until ``.lines`` (a toggle) or ``.lines -e``; then kd appends
`` [C:\\src\\a.c @ 120]`` to a location with a line record. The file is the path the
PDB records, escaped like all target and PDB text. ``lsa address`` prints the lines
around the address's line from a file found on the source path (the recorded path,
then its trailing components under each ``.srcpath`` directory), ``>`` marking the
address's line; ``ls`` goes on where the last listing ended.
What it does not do: source servers (``srv*`` in the source path), ``l+``/``l-``
options, ``lsf``/``lsc``, source-mode stepping.
Spec: the .lines, .srcpath, lsa and ls pages and "Source Line Syntax" of the debugger
documentation; windbg.md.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..output import printable
from ..registry import Category, command

__all__ = ["source_suffix", "frame_source_suffix", "find_source", "lines_", "srcpath",
           "lsa", "ls"]

log = logging.getLogger(__name__)

_S = Category.SYMBOLS
_SRCPATH = "source_path"
_NEXT = "source_next"        # (file, next line) where ``ls`` continues
_BEFORE, _AFTER = 4, 5       # lsa's default: four lines before, the line, and five after


def source_suffix(console: Any, address: int) -> str:
    """`` [file @ line]`` for the code at ``address`` while line support is on, else ""."""
    found = console.session.symbols.line_for(address)
    if found is None:
        return ""
    return f" [{printable(found[0], newlines=False)} @ {found[1]}]"


def frame_source_suffix(console: Any, frames: list, index: int) -> str:
    """A stack frame's ``[file @ line]``: a caller's return address is past its call,
    so its line is the one before the return address (not after an interrupt)."""
    frame = frames[index]
    address = frame.instruction_pointer
    if index and frames[index - 1].machine_frame is None:
        address -= 1
    return source_suffix(console, address)


@command(".lines", category=_S, usage=".lines [-e|-d|-t]", needs_halt=False)
def lines_(ctx: CommandContext, args: Args) -> None:
    """Turn source line support on (-e), off (-d) or over (-t, the default)."""
    text = args.rest().strip()
    symbols = ctx.session.symbols
    if text in ("", "-t"):
        symbols.load_lines = not symbols.load_lines
    elif text == "-e":
        symbols.load_lines = True
    elif text == "-d":
        symbols.load_lines = False
    else:
        raise CommandError(f"Syntax error at '{text}'")
    state = "will" if symbols.load_lines else "will not"
    ctx.out.line(f"Line number information {state} be loaded")
    ctx.out.row(lines=symbols.load_lines)


def _source_path(ctx: CommandContext) -> list[str]:
    return ctx.state.values.setdefault(_SRCPATH, [])


@command(".srcpath", category=_S, usage=".srcpath[+] [Directory [; ...]]", aliases=(".srcpath+",),
         needs_halt=False)
def srcpath(ctx: CommandContext, args: Args) -> None:
    """Show or set (``+``: extend) the directories searched for source files."""
    text = args.rest().strip()
    path = _source_path(ctx)
    if text:
        parts = [p.strip() for p in text.split(";") if p.strip()]
        if not ctx.text.lstrip().lower().startswith(".srcpath+"):
            path.clear()
        path += [p for p in parts if p not in path]
    joined = ";".join(path)
    ctx.out.line(f"Source search path is: {printable(joined, newlines=False) or '<empty>'}")
    ctx.out.row(source_path=list(path))


def find_source(recorded: str, path: list[str]) -> str | None:
    """The local file for a recorded path: itself, then its trailing components
    (longest first) under each source path directory."""
    if os.path.isfile(recorded):
        return recorded
    parts = [p for p in recorded.replace("\\", "/").split("/") if p and not p.endswith(":")]
    for directory in path:
        for start in range(len(parts)):
            candidate = os.path.join(directory, *parts[start:])
            if os.path.isfile(candidate):
                return candidate
    return None


def _list(ctx: CommandContext, recorded: str, first: int, last: int, current: int | None) -> None:
    local = find_source(recorded, _source_path(ctx))
    if local is None:
        raise CommandError(f"Couldn't find source file '{printable(recorded, newlines=False)}' "
                           "on the source path (.srcpath)")
    try:
        with open(local, encoding="utf-8", errors="replace") as handle:
            text = handle.read().splitlines()
    except OSError as exc:
        raise CommandError(f"Couldn't read source file '{local}': {exc.strerror}") from None
    first = max(first, 1)
    last = min(last, len(text))
    for number in range(first, last + 1):
        mark = ">" if number == current else " "
        ctx.out.line(f"{mark}{number:5}: {printable(text[number - 1])}")
        ctx.out.row(line=number, current=number == current)
    ctx.state.values[_NEXT] = (recorded, last + 1)


@command("lsa", category=_S, usage="lsa [address]")
def lsa(ctx: CommandContext, args: Args) -> None:
    """List the source lines around an address (rip by default)."""
    address = args.expression() if not args.empty() else ctx.session.registers.get("rip")
    args.expect_end()
    symbols = ctx.session.symbols
    if not symbols.load_lines:
        raise CommandError("Source line support is off: turn it on with .lines -e")
    found = symbols.line_for(address)
    if found is None:
        raise CommandError(f"No source line information for {ctx.console.format_address(address)}")
    recorded, line = found
    _list(ctx, recorded, line - _BEFORE, line + _AFTER, line)


@command("ls", category=_S, usage="ls", repeatable=True)
def ls(ctx: CommandContext, args: Args) -> None:
    """List the next ten source lines after the last listing."""
    args.expect_end()
    where = ctx.state.values.get(_NEXT)
    if where is None:
        raise CommandError("No current source file: list one with lsa first")
    recorded, first = where
    _list(ctx, recorded, first, first + 9, None)
