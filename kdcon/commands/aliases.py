"""Aliases: as, aS, ad, al.

``as name text`` takes the rest of the line as the alias's text, ``;`` and quotes
included; ``aS`` stops at the next ``;`` unless the text is quoted. ``/x`` stores an
expression's value as ``0x...``, ``/e`` an environment variable, ``/ma`` ``/mu``
``/msa`` ``/msu`` a string in target memory, ``/f`` a file's text, ``/c`` what
commands print. ``${/v:name}`` as the name stands for ``name``. Where aliases are
replaced, and when: kdcon/scripting.py (Rule 1).
Spec: WinDbg's "as, aS (Set Alias)", "ad (Delete Alias)", "al (List Aliases)".
"""

from __future__ import annotations

import os

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..printf import read_c_string, read_counted_string
from ..registry import Category, command
from ..scripting import Aliases, read_script
from .scripts import capture_commands

_M = Category.META
_AS_OPTIONS = ("x", "e", "ma", "mu", "msa", "msu", "f", "c")


def _set_alias(ctx: CommandContext, args: Args, *, phrase: bool) -> None:
    text = args.remaining().strip()
    option = None
    if text.startswith("/"):
        word, _, text = text.partition(" ")
        option = word[1:]
        if option not in _AS_OPTIONS:
            raise CommandError(f"Unknown option '{word}' of {ctx.command.name}")
        text = text.lstrip()
    parts = text.split(None, 1)
    if not parts:
        raise CommandError(f"An alias name is missing: {ctx.command.usage}")
    name = Aliases.check_name(parts[0])
    value = parts[1] if len(parts) > 1 else ""
    if not value:
        raise CommandError(f"No alias equivalent given for '{name}'")
    ctx.console.scripts.aliases.set(name, _alias_value(ctx, option, value, phrase=phrase))


def _alias_value(ctx: CommandContext, option: str | None, value: str, *, phrase: bool) -> str:
    if option is None:
        if phrase and value.startswith('"'):
            end = value.find('"', 1)
            if end < 0:
                raise CommandError(f"Missing closing quote in '{value}'")
            return value[1:end]
        return value
    if option == "x":
        return f"0x{ctx.evaluate(value):x}"
    if option == "e":
        found = os.environ.get(value.strip())
        if found is None:
            raise CommandError(f"Environment variable {value.strip()} is not set")
        return found
    if option == "f":
        return read_script(value.strip()).rstrip("\n")
    if option == "c":
        return capture_commands(ctx, value)
    target = ctx.target
    if target is None:
        from ..target import Target

        target = Target(ctx.console)
    address = ctx.evaluate(value)
    if option in ("ma", "mu"):
        return read_c_string(target, address, wide=option == "mu")
    return read_counted_string(target, address, wide=option == "msu")


@command("as", category=_M, needs_halt=False,
         usage="as name text  |  as /x|/e|/ma|/mu|/msa|/msu|/c name value")
def as_(ctx: CommandContext, args: Args) -> None:
    """Set an alias; its text is the rest of the line, ';' and quotes included.

    /x takes an expression's value (0x...), /e an environment variable, /ma /mu
    /msa /msu a string in target memory, /c the output of commands.
    """
    _set_alias(ctx, args, phrase=False)


@command("aS", category=_M, needs_halt=False,
         usage='aS name text  |  aS name "text"  |  aS /x|/e|/ma|/mu|/msa|/msu|/f|/c name value')
def as_phrase(ctx: CommandContext, args: Args) -> None:
    """Set an alias up to the next ';' (quote the text to keep a ';' in it).

    /x takes an expression's value (0x...), /f a file's text, and the rest as as.
    """
    _set_alias(ctx, args, phrase=True)


@command("ad", category=_M, usage="ad [/q] name ...  |  ad *", needs_halt=False)
def ad(ctx: CommandContext, args: Args) -> None:
    """Delete aliases: by name, or all with *; /q says nothing of a missing one."""
    quiet = args.option("q") is not None
    names = args.rest().split()
    aliases = ctx.console.scripts.aliases
    if not names:
        raise CommandError("An alias name is missing: ad name | ad *")
    if names == ["*"]:
        aliases.values.clear()
        return
    for name in names:
        if name.startswith("${/v:") and name.endswith("}"):
            name = name[5:-1]
        if not aliases.remove(name) and not quiet:
            raise CommandError(f"No alias named '{name}'")


@command("al", category=_M, usage="al", needs_halt=False)
def al(ctx: CommandContext, args: Args) -> None:
    """List the aliases and their text."""
    args.expect_end()
    values = ctx.console.scripts.aliases.values
    if not values:
        ctx.out.line("No aliases")
        return
    ctx.out.line("  Alias            Value")
    ctx.out.line(" -------          -------")
    for name in sorted(values):
        ctx.out.line(f" {name:<16} {values[name]}")
        ctx.out.row(name=name, value=values[name])
