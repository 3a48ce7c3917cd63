"""The command registry: every command declared once, for dispatch, help and completion.

What it does: ``@command(...)`` declares a command with its name, aliases, category,
usage and whether it needs the target halted or resumes it; the docstring's first
line is the summary ``.help`` prints. ``split_commands`` cuts a line at the ``;``
that separate commands (not inside quotes or braces) and ``Registry.resolve`` finds
the command a word names the way kd reads it: ``dd`` exactly, ``bp1``/``lmv``/``kbn``
as the longest command name that starts the word, the rest being arguments.
What it does not do: run anything (console.py) or parse arguments (argtypes.py).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Category", "Command", "Registry", "REGISTRY", "command", "split_commands"]


class Category(enum.Enum):
    EXECUTION = "Execution"
    BREAKPOINTS = "Breakpoints"
    MEMORY = "Memory"
    REGISTERS = "Registers and stack"
    DISASSEMBLY = "Disassembly"
    SYMBOLS = "Symbols and types"
    TARGET = "Target and connection"
    META = "Console"
    EXTENSIONS = "Extensions"


Handler = Callable[..., Any]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    category: Category
    usage: str
    summary: str
    aliases: tuple[str, ...] = ()
    needs_halt: bool = True
    resumes: bool = False
    repeatable: bool = False
    suffixes: str = ""              # letters that may follow the name glued (kb, lmv, pr)
    details: str = field(default="", repr=False)


class Registry:
    """Commands by name; the first word of a command line picks one."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self._names: dict[str, Command] = {}

    def add(self, cmd: Command) -> Command:
        for name in (cmd.name, *cmd.aliases):
            if name in self._names:
                raise ValueError(f"command {name} declared twice")
            self._names[name] = cmd
        self._commands[cmd.name] = cmd
        return cmd

    def remove(self, name: str) -> Command | None:
        """Forget the command ``name`` and its aliases (an unloaded extension's)."""
        cmd = self._commands.pop(name, None)
        if cmd is not None:
            for alias in (cmd.name, *cmd.aliases):
                self._names.pop(alias, None)
        return cmd

    def copy(self) -> Registry:
        """A registry with the same commands, to which one console adds its own."""
        other = Registry()
        other._commands = dict(self._commands)
        other._names = dict(self._names)
        return other

    def __iter__(self) -> Iterator[Command]:
        return iter(sorted(self._commands.values(), key=lambda c: c.name.lower()))

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def get(self, name: str) -> Command | None:
        return self._names.get(name) or self._names.get(name.lower())

    def names(self) -> list[str]:
        return sorted(self._names)

    def resolve(self, text: str) -> tuple[Command, str] | None:
        """The command ``text`` starts with and the rest of ``text`` (its arguments)."""
        text = text.strip()
        if not text:
            return None
        if text[0] in ".!":
            end = 1
            while end < len(text) and not text[end].isspace() and text[end] not in "(\"":
                end += 1
            word = text[:end]
            cmd = self.get(word)
            return (cmd, text[end:]) if cmd else None
        if text[0] in "?~$":
            cmd = self.get(text[0])
            if text[:2] in self._names:
                cmd = self._names[text[:2]]
                return cmd, text[2:]
            return (cmd, text[1:]) if cmd else None
        end = 0
        while end < len(text) and text[end].isalpha():
            end += 1
        word = text[:end]
        if not word:
            return None
        for length in range(len(word), 0, -1):
            cmd = self.get(word[:length])
            if cmd is None:
                continue
            glued = word[length:]
            if glued and not (cmd.suffixes and set(glued) <= set(cmd.suffixes)):
                # ``nonsense`` is not ``n`` with arguments, nor ``dt`` a ``d``.
                continue
            return cmd, text[length:]
        return None


REGISTRY = Registry()


def command(name: str, *, category: Category, usage: str = "", aliases: tuple[str, ...] = (),
            needs_halt: bool = True, resumes: bool = False, repeatable: bool = False,
            suffixes: str = "", registry: Registry | None = None) -> Callable[[Handler], Handler]:
    """Declare ``handler(ctx, args)`` as the command ``name``; its docstring is its help."""

    def declare(handler: Handler) -> Handler:
        doc = inspect.cleandoc(handler.__doc__ or "")
        summary, _, details = doc.partition("\n")
        (registry or REGISTRY).add(Command(
            name=name, handler=handler, category=category, usage=usage or name,
            summary=summary.strip(), aliases=aliases, needs_halt=needs_halt, resumes=resumes,
            repeatable=repeatable, suffixes=suffixes, details=details.strip()))
        return handler

    return declare


def split_commands(line: str) -> list[str]:
    """Commands of one line, cut at ``;`` outside quotes and braces (windbg.md §0.2).

    A backslash-escaped quote inside quotes stays part of the string, so
    ``bp f "r; .echo \\"a;b\\"; g"`` is one command.
    """
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    depth = 0
    index = 0
    while index < len(line):
        char = line[index]
        if quoted and char == "\\" and index + 1 < len(line) and line[index + 1] in "\"\\":
            current.append(line[index: index + 2])
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "{":
            depth += 1
        elif not quoted and char == "}" and depth:
            depth -= 1
        elif char == ";" and not quoted and not depth:
            parts.append("".join(current).strip())
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    parts.append("".join(current).strip())
    return [part for part in parts if part]
