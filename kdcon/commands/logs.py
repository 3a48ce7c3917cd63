"""Logs and the screen: .logopen, .logappend, .logclose, .logfile, .cls.

A log gets a copy of everything the command window shows from the line that says it
opened to the line that says it closed (kdcon/logfile.py); ``-logo``/``-loga`` open
one before the connection so it holds the session from its first line. ``.logopen``
overwrites, ``.logappend`` appends; ``/t`` puts the process id, date and time before
the extension, ``/u`` writes UTF-16, ``/d`` picks a name from the target and its
state. With no name the log is ``kdcon.log`` in the current directory.
Spec: WinDbg's ".logopen", ".logappend", ".logclose", ".logfile", ".cls" pages.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..logfile import CommandLog
from ..registry import Category, command

__all__ = ["open_log", "close_log", "stamped_name", "DEFAULT_LOG"]

_M = Category.META
DEFAULT_LOG = "kdcon.log"
# The screen-clearing sequence of ANSI terminals: home, then erase the display.
_CLEAR = "\x1b[H\x1b[2J"


def stamped_name(name: str, now: datetime | None = None, pid: int | None = None) -> str:
    """``name`` with ``_PID_YYYY-MM-DD_HH-MM-SS-mmm`` before its extension (``/t``)."""
    now = now or datetime.now()
    pid = os.getpid() if pid is None else pid
    stamp = (f"_{pid & 0xFFFF:04X}_{now:%Y-%m-%d}_{now:%H-%M-%S}-"
             f"{now.microsecond // 1000:03d}")
    path = Path(name)
    return str(path.with_name(path.stem + stamp + path.suffix))


def open_log(console: Any, name: str, *, append: bool = False, unicode: bool = False) -> CommandLog:
    """Close any open log, open ``name`` as the console's log, and say so in it."""
    close_log(console)
    try:
        log = CommandLog(name, append=append, unicode=unicode)
    except OSError as exc:
        raise CommandError(f"Unable to open log file '{name}': "
                           f"{exc.strerror or exc}") from None
    console.log = log
    console.output.add_tee(log.write)
    console.output.line(f"Opened log file '{name}'")
    return log


def close_log(console: Any) -> bool:
    """Close the console's log (its last line says so); False if none was open."""
    log = console.log
    if log is None:
        return False
    if not log.closed:
        console.output.line(f"Closing open log file {log.path}")
    console.output.remove_tee(log.write)
    log.close()
    console.log = None
    return True


def _file_name(args: Args) -> str:
    return args.quoted() if args.peek() == '"' else args.rest()


def _target_name(ctx: CommandContext) -> str:
    """``/d``: the target (its build) and its state, then the /t stamp."""
    session = ctx.session
    version = getattr(session, "version", None)
    build = getattr(version, "MinorVersion", None)
    state = "halted" if session.halted else "running"
    base = f"kernel_{build}_{state}.log" if build is not None else f"kernel_{state}.log"
    return stamped_name(base)


def _open(ctx: CommandContext, args: Args, *, append: bool) -> None:
    options = args.options("t", "u", "d")
    unicode = "u" in options
    if "d" in options:
        args.expect_end()
        name = _target_name(ctx)
    else:
        name = _file_name(args) or DEFAULT_LOG
        args.expect_end()
        if "t" in options:
            name = stamped_name(name)
    open_log(ctx.console, name, append=append, unicode=unicode)


@command(".logopen", category=_M, usage=".logopen [/t] [/u] [file]  |  .logopen /d",
         needs_halt=False)
def logopen(ctx: CommandContext, args: Args) -> None:
    """Open a log file (overwriting it) that gets everything the command window shows.

    /t adds the process id, date and time to the name, /u writes UTF-16, /d names
    the log after the target and its state. Escape codes never reach a log.
    """
    _open(ctx, args, append=False)


@command(".logappend", category=_M, usage=".logappend [/t] [/u] [file]", needs_halt=False)
def logappend(ctx: CommandContext, args: Args) -> None:
    """Open a log file and append everything the command window shows to it."""
    _open(ctx, args, append=True)


@command(".logclose", category=_M, usage=".logclose", needs_halt=False)
def logclose(ctx: CommandContext, args: Args) -> None:
    """Close the open log file."""
    args.expect_end()
    if not close_log(ctx.console):
        ctx.out.line("No log file open")


@command(".logfile", category=_M, usage=".logfile", needs_halt=False)
def logfile(ctx: CommandContext, args: Args) -> None:
    """Say which log file is open."""
    args.expect_end()
    log = ctx.console.log
    if log is None:
        ctx.out.line("No log file open")
    elif log.closed:
        ctx.out.line(f"Log '{log.path}' stopped: {log.error}")
    else:
        ctx.out.line(f"Log '{log.path}' open")
    ctx.out.row(path=str(log.path) if log is not None else None,
                open=log is not None and not log.closed)


@command(".cls", category=_M, usage=".cls", needs_halt=False)
def cls(ctx: CommandContext, args: Args) -> None:
    """Clear the screen (nothing happens when the output is not a terminal)."""
    args.expect_end()
    clear = getattr(ctx.console, "clear_screen", None)
    if callable(clear):
        clear()
        return
    # The escape goes to the terminal alone: never to a log, a capture or a pipe.
    stream = getattr(ctx.out, "_stream", None) or sys.stdout
    if not ctx.out.quiet and hasattr(stream, "isatty") and stream.isatty():
        stream.write(_CLEAR)
        stream.flush()
