"""WinDbg's text for memory displays: ``d*``, ``d*s``, ``da``/``du``, ``!d*`` and ``c``.

Pure functions over bytes and a readability mask (one byte per data byte, nonzero
where the target answered), so a display that runs into an unmapped page shows
WinDbg's ``??`` / ``????????`` cells for exactly the bytes it could not read::

    fffff800`01007ff8  48 8b c4 48 89 58 08 48-?? ?? ?? ?? ?? ?? ?? ??  H..H.X.H????????
    fffff800`010078e0  00000000`00010400 00000000`00010488
    fffff800`010078e0  00000000`00010400 nt!Foo+0x10
    fffff800`01005116  "KSIM: unknown KiSimRequest %lu i"
    #   e9000 000ea002 000ea002 000ea002 000ea002 ................

Lines start at the address given, not at a 16-byte boundary; a short last line is
padded so that its character column stays under the others (``!d*`` does not pad).
Target text never reaches the terminal raw: a byte outside printable ASCII is a
``.``, a UTF-16 unit that is a control, format, surrogate, private or unassigned
character is a ``.``, as WinDbg shows non-printables.
What it does not do: read memory, pick lengths or parse commands (commands/memory*).
Spec: windbg.md §0.3; the d*, dds/dps/dqs, !db and s pages of the debugger docs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from . import format_address

__all__ = [
    "ascii_char", "ascii_column", "characters", "compare_line", "hex_line", "physical_line",
    "pointer_line", "string_line", "unicode_char", "unreadable_text", "value_text",
    "STRING_LINE_CHARS",
]

# da/du print 32 characters a line; the next line starts 32 characters on (observed in
# real kd output: a 32-character string is followed by a line holding "").
STRING_LINE_CHARS = 32

_HIDDEN_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def ascii_column(data: bytes, mask: bytes) -> str:
    """The character column of ``db``/``dc``: printable ASCII, ``.`` or ``?``."""
    return "".join(
        ("?" if not ok else chr(b) if 0x20 <= b < 0x7F else ".") for b, ok in zip(data, mask))


def ascii_char(value: int) -> str:
    return chr(value) if 0x20 <= value < 0x7F else "."


def unicode_char(value: int) -> str:
    """One UTF-16 unit as ``du`` shows it; anything that could act on a terminal is ``.``."""
    if value < 0x80:
        return ascii_char(value)
    char = chr(value)
    return "." if unicodedata.category(char) in _HIDDEN_CATEGORIES else char


def value_text(value: int, size: int) -> str:
    """A unit in hex; a quadword with WinDbg's backtick."""
    if size == 8:
        return format_address(value)
    return f"{value:0{size * 2}x}"


def unreadable_text(size: int) -> str:
    return "????????`????????" if size == 8 else "?" * (size * 2)


def _cells(data: bytes, mask: bytes, size: int) -> list[str]:
    cells = []
    for at in range(0, len(data) - size + 1, size):
        if all(mask[at:at + size]):
            cells.append(value_text(int.from_bytes(data[at:at + size], "little"), size))
        else:
            cells.append(unreadable_text(size))
    return cells


def _hex_area(cells: list[str], size: int, columns: int, pad: bool) -> str:
    parts: list[str] = []
    for index, cell in enumerate(cells):
        if index:
            # db separates its 8th and 9th byte with a hyphen.
            parts.append("-" if size == 1 and index == 8 else " ")
        parts.append(cell)
    text = "".join(parts)
    if pad and len(cells) < columns:
        width = len(value_text(0, size))
        text += " " * ((columns - len(cells)) * (width + 1))
    return text


def hex_line(address: str, data: bytes, mask: bytes, size: int, columns: int, *,
             characters: bool) -> str:
    """One ``db``/``dw``/``dW``/``dd``/``dc``/``dq`` line (``characters``: the ASCII column)."""
    cells = _cells(data, mask, size)
    area = _hex_area(cells, size, columns, pad=characters)
    if not characters:
        return f"{address}  {area}"
    return f"{address}  {area}  {ascii_column(data, mask)}"


def physical_line(address: int, data: bytes, size: int, *, characters: bool) -> str:
    """One ``!db``/``!dd``/``!dq``/... line: ``#`` and the address in 8 columns."""
    mask = b"\x01" * len(data)
    area = _hex_area(_cells(data, mask, size), size, 0, pad=False)
    line = f"#{address:8x} {area}"
    return f"{line} {ascii_column(data, mask)}" if characters else line


def pointer_line(address: str, value: int | None, size: int, suffix: str = "") -> str:
    """``dps``/``dpa``/``dpp``: the pointer, then its symbol, string or target."""
    text = unreadable_text(size) if value is None else value_text(value, size)
    return f"{address}  {text} {suffix}" if suffix else f"{address}  {text}"


def string_line(address: str, text: str, gap: str = "  ") -> str:
    return f'{address}{gap}"{text}"'


def compare_line(first: str, first_value: int, second: str, second_value: int) -> str:
    """``c``: one byte that differs, from each range."""
    return f"{first}  {first_value:02x} - {second}  {second_value:02x}"


def characters(values: list[int], size: int) -> str:
    show: Callable[[int], str] = ascii_char if size == 1 else unicode_char
    return "".join(show(value) for value in values)
