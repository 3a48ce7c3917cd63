"""Symbol names as ``x`` and ``bp`` look them up: forms, exact and wildcard indexes.

A name is found by its case-folded raw form and, for x86 C names, by its
undecorated form (leading ``_``/``@`` and trailing ``@N`` removed; C++ ``?``
names kept; symbols.md §6.10). The indexes here are built once from the
names of all rows, given a slice of rows at a time, and keep no string per
name:

- ``NameHashes``: one sorted ``array('Q')`` of ``hash << 32 | position`` for
  every form; a query bisects to its hash and the caller checks the few
  candidates against their records.
- ``NameLines``: all raw forms joined into one string, one line a row, and
  the undecorated forms in a second one with the row of each; a wildcard
  pattern (``*``, ``?``, case-insensitive) is one compiled regular expression
  over each, and a match's row is the number of its line.

What is not here: which record survives at an address (``index``).
"""

from __future__ import annotations

import bisect
import re
from array import array
from collections.abc import Iterable, Iterator
from itertools import count, repeat
from operator import and_, lshift, or_

__all__ = ["undecorate", "has_wildcard", "wildcard_regex", "name_forms", "NameHashes", "NameLines"]

_DECORATION = re.compile(r"^[_@]?(?P<core>[^@]+?)(?:@\d+)?$")
_TAG = 0xFFFFFFFF


def undecorate(name: str) -> str:
    """x86 C decoration removed: ``_KeBugCheck@4`` -> ``KeBugCheck``; C++ names as-is."""
    if not name or name[0] == "?" or (name[0] not in "_@" and "@" not in name):
        return name
    found = _DECORATION.match(name)
    return found.group("core") if found else name


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def wildcard_regex(pattern: str) -> str:
    """Regular-expression text for an ``x``-style pattern over one name per line."""
    out = []
    for char in pattern:
        if char == "*":
            out.append("[^\n]*")
        elif char == "?":
            out.append("[^\n]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def name_forms(name: str) -> tuple[str, str | None]:
    """The case-folded name and, when it differs, its case-folded undecorated form."""
    raw = name.casefold()
    if name[:1] in ("_", "@") or "@" in name:
        plain = undecorate(name).casefold()
        if plain != raw:
            return raw, plain
    return raw, None


def _decorated(names: list[str], first: int) -> Iterator[tuple[int, str]]:
    """(position, undecorated form) of the names that have one."""
    for position, name in enumerate(names, first):
        if name[:1] in ("_", "@") or "@" in name:
            plain = name_forms(name)[1]
            if plain is not None:
                yield position, plain


class NameHashes:
    """Positions whose raw or undecorated form may equal a case-folded key."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[int] | array = []

    def add(self, first: int, names: list[str]) -> None:
        """Names of positions ``first``, ``first + 1``, ... (in position order)."""
        entries = self._entries
        assert isinstance(entries, list)
        tags = map(and_, map(hash, map(str.casefold, names)), repeat(_TAG))
        entries += map(or_, map(lshift, tags, repeat(32)), count(first))
        entries += ((hash(plain) & _TAG) << 32 | position for position, plain in _decorated(names, first))

    def finish(self) -> NameHashes:
        """Sort once every name is in; the list of ints becomes a compact array."""
        entries = self._entries
        assert isinstance(entries, list)
        entries.sort()
        self._entries = array("Q", entries)
        return self

    def candidates(self, key: str) -> Iterator[int]:
        """Positions whose form may be ``key`` (case-folded); check each one."""
        entries = self._entries
        tag = hash(key) & _TAG
        end = (tag + 1) << 32
        at = bisect.bisect_left(entries, tag << 32)
        while at < len(entries) and entries[at] < end:
            yield entries[at] & _TAG
            at += 1


class NameLines:
    """Rows whose raw or undecorated name matches a wildcard pattern."""

    __slots__ = ("_raw", "_plain", "_owners", "_parts", "_plains")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._plains: list[str] = []
        self._owners = array("I")
        self._raw = self._plain = ""

    def add(self, first: int, names: list[str]) -> None:
        """Names of positions ``first``, ``first + 1``, ... (every position, in order)."""
        text = "\n".join(names)
        if text.count("\n") != len(names) - 1:        # a name with a line break in it
            text = "\n".join(n.replace("\n", " ") for n in names)
        self._parts.append(text.casefold())
        for position, plain in _decorated(names, first):
            self._plains.append(plain.replace("\n", " "))
            self._owners.append(position)

    def finish(self) -> NameLines:
        self._raw = "\n".join(self._parts)
        self._plain = "\n".join(self._plains)
        self._parts, self._plains = [], []
        return self

    def positions(self, pattern: str) -> set[int]:
        regex = re.compile(r"(?m)^" + wildcard_regex(pattern.casefold()) + r"$")
        found = set(_lines_matching(regex, self._raw))
        found.update(self._owners[line] for line in _lines_matching(regex, self._plain))
        return found


def _lines_matching(regex: re.Pattern, text: str) -> Iterable[int]:
    """Line numbers of the matches of ``regex`` in ``text``, counted as they come."""
    line = last = 0
    for found in regex.finditer(text):
        at = found.start()
        line += text.count("\n", last, at)
        last = at
        yield line
