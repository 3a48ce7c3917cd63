"""Extensions: .load, .unload, .chain, .extmatch, .extpath.

As WinDbg manages extension DLLs (windbg.md §0.9), for Python modules: ``.load`` takes
a file, a name on the extension path, a built-in or an importable module; ``.chain``
lists the chain in search order (the last loaded first) with each one's commands or
why it failed to import; ``.extmatch [/e name] pattern`` lists matching commands as
``!module.command``; ``.extpath[+] [dir;dir]`` shows or sets the directories whose
``*.py`` files are loaded. The loading itself is ``kdcon.extload``.
"""

from __future__ import annotations

import fnmatch

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..output import printable
from ..registry import Category, command

_X = Category.EXTENSIONS


def _manager(ctx: CommandContext):
    manager = ctx.console.extensions
    if manager is None:
        raise CommandError("This console has no extension loader")
    return manager


@command(".load", category=_X, usage=".load file.py | name | package.module", needs_halt=False)
def load(ctx: CommandContext, args: Args) -> None:
    """Load an extension module (again, if it is loaded from the same place)."""
    what = args.rest()
    if not what:
        raise CommandError("Usage: .load file.py | name | package.module")
    _manager(ctx).load(what.strip('"'))


@command(".unload", category=_X, usage=".unload name", needs_halt=False)
def unload(ctx: CommandContext, args: Args) -> None:
    """Unload an extension: its commands, hooks and breakpoints go with it."""
    name = args.rest()
    if not name:
        raise CommandError("Usage: .unload name (.chain lists the loaded extensions)")
    _manager(ctx).unload(name)


@command(".chain", category=_X, usage=".chain", needs_halt=False)
def chain(ctx: CommandContext, args: Args) -> None:
    """List the loaded extensions in search order, with their commands."""
    args.expect_end()
    manager = _manager(ctx)
    ctx.out.line(f"Extension search path is: {';'.join(manager.path) or '(none)'}")
    ctx.out.line("Extension chain (searched first to last):")
    for ext in manager.chain:
        ctx.out.line(f"  {ext.name}: {printable(ext.origin, newlines=False)}")
        if ext.error is not None:
            ctx.out.line(f"      failed to import: {printable(ext.error, newlines=False)}")
        else:
            ctx.out.line(f"      {', '.join(manager.commands(ext)) or '(no commands)'}")
        ctx.out.row(name=ext.name, origin=ext.origin, commands=manager.commands(ext),
                    error=ext.error)


@command(".extmatch", category=_X, usage=".extmatch [/e name] pattern", needs_halt=False)
def extmatch(ctx: CommandContext, args: Args) -> None:
    """List the extension commands that match a pattern (wildcards * and ?)."""
    words = args.rest().split()
    only = None
    if len(words) >= 2 and words[0].lower() in ("/e", "-e"):
        only = words[1]
        words = words[2:]
    if len(words) > 1:
        raise CommandError(f"Syntax error at '{words[1]}'")
    pattern = (words[0] if words else "*").lstrip("!").lower()
    manager = _manager(ctx)
    if only is not None and manager.find(only) is None:
        raise CommandError(f"No extension {only} is loaded (.chain lists them)")
    for ext in manager.chain:
        if only is not None and ext.name.casefold() != only.casefold():
            continue
        for name in sorted(ext.bangs):
            if fnmatch.fnmatchcase(name.lower(), pattern):
                ctx.out.line(f"!{ext.name}.{name}")
                ctx.out.row(extension=ext.name, command=name)


@command(".extpath", category=_X, usage=".extpath[+] [dir;dir]", needs_halt=False,
         aliases=(".extpath+",))
def extpath(ctx: CommandContext, args: Args) -> None:
    """Show or set the extension path; the .py files in its directories are loaded."""
    from ..extload import split_path

    manager = _manager(ctx)
    text = args.rest()
    if text:
        directories = split_path(text)
        if ctx.text.startswith(".extpath+"):
            directories = manager.path + [d for d in directories if d not in manager.path]
        try:
            manager.set_path(directories)
        finally:
            ctx.out.line(f"Extension search path is: {';'.join(manager.path) or '(none)'}")
        return
    ctx.out.line(f"Extension search path is: {';'.join(manager.path) or '(none)'}")
