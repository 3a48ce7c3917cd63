"""Small named argument types for WinDbg's command syntax.

What it does: ``Args`` walks one command's argument text the way kd reads it: an
expression ends where the next token cannot continue it (``dd rsp+8 L4``), a range
is ``start L count``, ``start L? count`` or ``start end``, options are ``/x`` or
``-x`` words, a command string is a double-quoted string with ``\\"`` inside.
Every failure raises ``CommandError`` with WinDbg's line (``Numeric expression
missing from '...'``, ``Syntax error at '...'``).
What it does not do: evaluate expressions (it is given ``evaluate_prefix``).
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import CommandError

__all__ = ["Args", "EvaluatePrefix", "MAX_RANGE", "unquote"]

EvaluatePrefix = Callable[[str], tuple[int, int]]

# Ranges above 256 MB need ``L?`` (kd refuses them as a likely typo otherwise).
MAX_RANGE = 0x10000000


def unquote(text: str) -> str:
    """A command string's text: the quotes removed, ``\\"`` and ``\\\\`` unescaped."""
    out: list[str] = []
    index = 0
    while index < len(text):
        if text[index] == "\\" and index + 1 < len(text) and text[index + 1] in "\"\\":
            out.append(text[index + 1])
            index += 2
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


class Args:
    """The argument text of one command, consumed from the left."""

    def __init__(self, text: str, evaluate_prefix: EvaluatePrefix, *, command: str = "") -> None:
        self.text = text
        self.pos = 0
        self._evaluate_prefix = evaluate_prefix
        self.command = command

    # -- looking ---------------------------------------------------------------------

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def empty(self) -> bool:
        self._skip()
        return self.pos >= len(self.text)

    def peek(self, count: int = 1) -> str:
        self._skip()
        return self.text[self.pos: self.pos + count]

    def rest(self) -> str:
        self._skip()
        out, self.pos = self.text[self.pos:], len(self.text)
        return out.strip()

    def remaining(self) -> str:
        return self.text[self.pos:]

    def expect_end(self) -> None:
        if not self.empty():
            raise CommandError(f"Syntax error at '{self.remaining().strip()}'")

    # -- words and options -------------------------------------------------------------

    def word(self) -> str:
        """The next whitespace-delimited word ('' at the end)."""
        self._skip()
        start = self.pos
        while self.pos < len(self.text) and not self.text[self.pos].isspace():
            self.pos += 1
        return self.text[start: self.pos]

    def option(self, *names: str) -> str | None:
        """Consume ``/name`` or ``-name`` if it comes next (case as given)."""
        self._skip()
        for name in sorted(names, key=len, reverse=True):
            for prefix in "/-":
                token = prefix + name
                end = self.pos + len(token)
                if self.text.startswith(token, self.pos) and (
                        end >= len(self.text) or self.text[end].isspace()):
                    self.pos = end
                    return name
        return None

    def options(self, *names: str) -> set[str]:
        found: set[str] = set()
        while (name := self.option(*names)) is not None:
            found.add(name)
        return found

    def quoted(self) -> str | None:
        """A double-quoted command string, unescaped; None if none comes next."""
        self._skip()
        if not self.text.startswith('"', self.pos):
            return None
        index = self.pos + 1
        while index < len(self.text):
            if self.text[index] == "\\" and index + 1 < len(self.text):
                index += 2
                continue
            if self.text[index] == '"':
                body = self.text[self.pos + 1: index]
                self.pos = index + 1
                return unquote(body)
            index += 1
        raise CommandError(f"Missing closing quote in '{self.text[self.pos:].strip()}'")

    # -- numbers -----------------------------------------------------------------------

    def expression(self, what: str = "") -> int:
        """The next expression's value; ``Numeric expression missing`` if none."""
        self._skip()
        if self.pos >= len(self.text):
            raise CommandError(f"Numeric expression missing from '{what or self.command}'"
                               if what or self.command else "Numeric expression missing")
        value, used = self._evaluate_prefix(self.text[self.pos:])
        if used == 0:
            raise CommandError(f"Syntax error at '{self.text[self.pos:].strip()}'")
        self.pos += used
        return value

    def optional_expression(self) -> int | None:
        if self.empty() or self.peek() in '"':
            return None
        return self.expression()

    def expression_text(self) -> str:
        """The text of the next expression, unevaluated (for ``bu``): everything up to
        the next whitespace outside parentheses or a quote."""
        self._skip()
        start, depth = self.pos, 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            elif (char.isspace() or char == '"') and depth <= 0:
                break
            self.pos += 1
        return self.text[start: self.pos]

    def length(self) -> tuple[int, bool] | None:
        """An ``L count`` / ``L? count`` length if one comes next: (count, forced)."""
        self._skip()
        if self.pos >= len(self.text) or self.text[self.pos] not in "lL":
            return None
        after = self.text[self.pos + 1: self.pos + 2]
        if after.isalpha() and after != "?" and not _is_hex_digit(after):
            return None
        self.pos += 1
        forced = False
        if self.text.startswith("?", self.pos):
            forced = True
            self.pos += 1
        return self.expression(), forced

    def checked_length(self, unit: int = 1) -> int | None:
        """An ``L count`` that comes next, refused above 256 MB unless written ``L?``."""
        found = self.length()
        if found is None:
            return None
        count, forced = found
        if count * unit > MAX_RANGE and not forced:
            raise CommandError(f"Range error: {count:#x} units is over 256 MB; "
                               "use L? to allow it")
        return count

    def range(self, default_count: int, unit: int = 1) -> tuple[int | None, int]:
        """``[start] [L count | end]``: (start or None, count in units)."""
        if self.empty():
            return None, default_count
        start = self.expression()
        count = self.checked_length(unit)
        if count is not None:
            return start, count
        if self.empty() or self.peek() == '"':
            return start, default_count
        end = self.expression()
        if end < start:
            raise CommandError("Range error: the end address is before the start")
        count = max(1, (end - start + unit) // unit)
        if count * unit > MAX_RANGE:
            raise CommandError("Range error: the range is over 256 MB; use L? to allow it")
        return start, count


def _is_hex_digit(char: str) -> bool:
    return char.lower() in "0123456789abcdef"
