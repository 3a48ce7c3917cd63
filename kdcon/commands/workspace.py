"""The connection and the workspace: .restart, .kdtrace, .wopen, .wsave.

``.restart`` resynchronises with the target as after a reconnect (kd's "quit and
attach again", windbg.md §0.7): module list, symbols, breakpoints, the ``-cfr``
script; with the link lost it makes the reconnecting loop try now (reconnect.py).
``.kdtrace on [file]`` records every byte of the wire for ``kdcon-kdtrace``, with a
``file.times`` of timestamps beside it (packettrace.py); ``.kdtrace off`` stops.
``.wopen file`` opens a workspace and applies it (it becomes the one saved when the
session ends); ``.wsave [/f] [file]`` writes the session's workspace, to its own file
or another one (workspace.py). ``/f`` replaces a file kdcon could not read.
"""

from __future__ import annotations

from datetime import datetime

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..packettrace import PacketTrace, times_path
from ..registry import Category, command
from ..workspace import WorkspaceError, WorkspaceFile
from ..workspace_state import KEPT_KINDS

_T = Category.TARGET
_M = Category.META


def _file_argument(args: Args) -> str:
    return args.quoted() if args.peek() == '"' else args.rest()


@command(".restart", category=_T, usage=".restart", needs_halt=False)
def restart(ctx: CommandContext, args: Args) -> None:
    """Resynchronise with the target and restore the session, as after a reconnect."""
    args.expect_end()
    healer = ctx.console.healer
    if healer is None:
        raise CommandError(".restart needs a console that owns its link")
    healer.restart()


@command(".kdtrace", category=_T, usage=".kdtrace [on [file] | off]", needs_halt=False)
def kdtrace(ctx: CommandContext, args: Args) -> None:
    """Record the wire to a file kdcon-kdtrace decodes, with timestamps (Ctrl+D in kd)."""
    port = ctx.session.port
    current = port.tap if isinstance(port.tap, PacketTrace) else None
    word = args.word().lower() if not args.empty() else ""
    if word == "":
        if current is None:
            ctx.out.line("Packet trace is off (.kdtrace on [file] starts one)")
        else:
            ctx.out.line(f"Packet trace on: {current.path}, {current.offset} bytes so far")
        return
    if word == "off":
        args.expect_end()
        if current is None:
            ctx.out.line("Packet trace is off")
            return
        port.tap = None
        current.close()
        ctx.out.line(f"Packet trace off: {current.path}, {current.bytes['sent']} bytes sent and "
                     f"{current.bytes['received']} received (times in "
                     f"{times_path(current.path)})")
        if current.error:
            ctx.out.line(f"The trace stopped early: {current.error}")
        return
    if word != "on":
        raise CommandError(f"Syntax error at '{word}': .kdtrace on [file] | off")
    name = _file_argument(args) or datetime.now().strftime("kdtrace-%Y%m%d-%H%M%S.bin")
    try:
        trace = PacketTrace(name)
    except OSError as exc:
        raise CommandError(f"Unable to open the packet trace '{name}': "
                           f"{exc.strerror or exc}") from None
    port.tap = trace
    if current is not None:
        current.close()
    ctx.out.line(f"Packet trace on: {trace.path} (kdcon-kdtrace decodes it; times in "
                 f"{times_path(trace.path)})")


@command(".wopen", category=_M, usage=".wopen [file]", needs_halt=False)
def wopen(ctx: CommandContext, args: Args) -> None:
    """Open a workspace and apply it, or say which one the session uses."""
    console = ctx.console
    name = _file_argument(args)
    current = console.workspace
    if not name:
        if current is None:
            ctx.out.line("No workspace: .wopen FILE opens one, .wsave FILE writes one")
        elif current.auto_save:
            ctx.out.line(f"Workspace {current.path} (an interactive session saves it when it "
                         "ends)")
        else:
            ctx.out.line(f"{current.failed}; it is not saved over (.wsave /f replaces it)")
        return
    workspace = WorkspaceFile(name, connection=current.connection if current else None)
    problem = workspace.load()
    if problem is not None:
        raise CommandError(problem.split("; starting with defaults")[0])
    if workspace.data is None:
        raise CommandError(f"No workspace {name}: .wsave {name} writes one")
    ctx.out.lines(workspace.apply(console, paths=True))
    console.workspace = workspace


@command(".wsave", category=_M, usage=".wsave [/f] [file]", needs_halt=False)
def wsave(ctx: CommandContext, args: Args) -> None:
    """Write the session's workspace (breakpoints, sx, aliases, paths, log, options)."""
    force = "f" in args.options("f")
    name = _file_argument(args)
    console = ctx.console
    workspace = console.workspace
    if workspace is None:
        if not name:
            raise CommandError("No workspace is open: .wsave FILE names one")
        workspace = WorkspaceFile(name)
        workspace.load()            # a file there that cannot be read needs /f
        workspace.applied = True
    try:
        path = workspace.save(console, path=name or None, force=force)
    except WorkspaceError as exc:
        raise CommandError(str(exc)) from None
    count = sum(1 for bp in ctx.session.breakpoints if bp.kind in KEPT_KINDS)
    aliases = len(console.scripts.aliases.values)
    ctx.out.line(f"Workspace saved to {path}: {count} breakpoint{'' if count == 1 else 's'}, "
                 f"{aliases} alias{'' if aliases == 1 else 'es'}")
