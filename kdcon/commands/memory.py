"""Memory display: d, db, dw, dW, dd, dc, dq, dp, da, du, dds/dqs/dps, the dereferencing
d{d,q,p}{a,u,p}, and the physical-memory extensions !db !dc !dd !dp !dq !du !dw.

Syntax and text are kd's (windbg.md §0.3): ``db [/c cols] [/p] [range]``, default
128 bytes (da/du: to the NUL, 32 characters a line, at most 256 characters),
``L count``, ``L? count`` and ``start end``; no range continues where the last
display ended (the first time: at the current instruction), ``d`` repeats the last
display format. Unreadable bytes show as ``??`` cells. Every display fetches its
range with one read through the per-stop cache before printing, so neighbouring
lines never cost a round trip each and a second display of the same bytes costs
none. ``/p`` reads physical memory with the usual address column; ``!d*`` print
kext's ``#`` column and stop at the first unreadable byte with its message.
What it does not do: floating-point (``dD``, ``df``) or binary (``dyb``) displays.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..memory import PAGE_SIZE
from ..registry import Category, command
from ..render.memory import (
    STRING_LINE_CHARS, characters, hex_line, physical_line, pointer_line, string_line,
    value_text,
)

__all__ = ["Reader", "display_range", "gather", "hex_lines", "not_this_command", "reader",
           "STRING_LIMIT"]

_M = Category.MEMORY
_TOP = 1 << 64
# A long display is fetched and printed this many bytes at a time.
_CHUNK = 0x10000
# da/du/dpa/dpu without a length stop after this many characters.
STRING_LIMIT = 0x100

Reader = Callable[[int, int], bytes]


def reader(ctx: CommandContext, physical: bool) -> Reader:
    return ctx.session.read_physical if physical else ctx.session.read_virtual


def gather(read: Reader, address: int, size: int) -> tuple[bytes, bytearray]:
    """``size`` bytes at ``address`` and a mask, 1 where the target answered.

    One read asks the cache for the whole range (it fetches every gap in merged
    requests, holes included); later reads after a hole come from the cache.
    """
    end = min(address + max(size, 0), _TOP)
    data = bytearray(end - address)
    mask = bytearray(end - address)
    at = address
    while at < end:
        got = read(at, end - at)
        offset = at - address
        data[offset:offset + len(got)] = got
        mask[offset:offset + len(got)] = b"\x01" * len(got)
        at += len(got)
        if at < end:
            # The cache marks an unreadable byte's page unreadable from there on.
            at = min(end, (at // PAGE_SIZE + 1) * PAGE_SIZE)
    return bytes(data), mask


@dataclass(frozen=True)
class _Options:
    physical: bool = False
    columns: int | None = None


_PHYSICAL = re.compile(r"/p(\[(c|uc|wc)\])?(?=\s|$)")
_COLUMNS = re.compile(r"/c\s*")


def _options(args: Args) -> _Options:
    """``/c cols`` and ``/p``, ``/p[c]``, ``/p[uc]``, ``/p[wc]`` before the range."""
    physical, columns = False, None
    while args.peek() == "/":
        rest = args.remaining()
        found = _PHYSICAL.match(rest)
        if found:
            physical = True
            args.pos += found.end()
            continue
        found = _COLUMNS.match(rest)
        if found and found.end() < len(rest):
            args.pos += found.end()
            columns = args.expression()
            if not 0 < columns <= 0x100:
                raise CommandError("Column count must be 1 to 0x100")
            continue
        raise CommandError(f"Syntax error at '{rest.strip()}'")
    return _Options(physical, columns)


def not_this_command(ctx: CommandContext, args: Args) -> None:
    """A word a one-letter command only starts (``dt``, ``dyb``, ``ef``, ``sq``...) is
    another command, not this one with arguments."""
    if args.text[:1].isalpha():
        raise CommandError(f"Couldn't resolve error at '{ctx.text}'")


_LEADING_LENGTH = re.compile(r"[lL](\?|\s|[0-9])")


def display_range(args: Args, default: int, size: int) -> tuple[int | None, int]:
    """``[address] [L count | end]``; a length alone (``dd L4``) continues the last display."""
    if _LEADING_LENGTH.match(args.remaining().lstrip()):
        count = args.checked_length(size)
        if count is not None:
            return None, count
    return args.range(default, size)


def _start(ctx: CommandContext, start: int | None, physical: bool) -> tuple[int, bool]:
    """Where a display without an address begins: after the last one, else at rip."""
    state = ctx.console.state
    if start is not None and not (state.repeating and state.next_dump is not None):
        return start, physical
    if state.next_dump is not None:
        return state.next_dump, physical or bool(state.values.get("dump_physical"))
    return ctx.session.registers.get("rip"), physical


def _finish(ctx: CommandContext, name: str, next_address: int, physical: bool) -> None:
    state = ctx.console.state
    state.next_dump = next_address % _TOP
    state.dump_format = name
    state.values["dump_physical"] = physical


def _clamp(start: int, count: int, size: int) -> int:
    """``count`` units, or fewer where the address space ends."""
    return min(count, (_TOP - start) // size)


# -- hex displays ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hex:
    size: int           # bytes a unit (0: the target's pointer size)
    columns: int        # units a line
    characters: bool    # the ASCII column


_HEX = {
    "db": _Hex(1, 16, True), "dw": _Hex(2, 8, False), "dW": _Hex(2, 8, True),
    "dd": _Hex(4, 4, False), "dc": _Hex(4, 4, True), "dq": _Hex(8, 2, False),
    "dp": _Hex(0, 0, False),
}


def show_hex(ctx: CommandContext, name: str, args: Args) -> None:
    spec = _HEX[name]
    size = spec.size or ctx.session.pointer_size
    columns = spec.columns or 16 // size
    options = _options(args)
    start, count = display_range(args, 0x80 // size, size)
    args.expect_end()
    start, physical = _start(ctx, start, options.physical)
    count = _clamp(start, count, size)
    lines_end = hex_lines(ctx, reader(ctx, physical), start, count * size, size,
                          options.columns or columns, characters=spec.characters)
    _finish(ctx, name, lines_end, physical)


def hex_lines(ctx: CommandContext, read: Reader, start: int, length: int, size: int,
              columns: int, *, characters: bool) -> int:
    """Print ``length`` bytes from ``start`` as hex lines; the address after them."""
    fmt = ctx.console.format_address
    line_bytes = columns * size
    chunk = max(line_bytes, _CHUNK // line_bytes * line_bytes)
    at, end = start, start + length
    while at < end:
        data, mask = gather(read, at, min(chunk, end - at))
        lines = []
        for offset in range(0, len(data), line_bytes):
            piece, valid = data[offset:offset + line_bytes], mask[offset:offset + line_bytes]
            address = at + offset
            lines.append(hex_line(fmt(address), piece, valid, size, columns,
                                  characters=characters))
            ctx.out.row(address=address, values=[
                int.from_bytes(piece[i:i + size], "little") if all(valid[i:i + size]) else None
                for i in range(0, len(piece) - size + 1, size)])
        ctx.out.lines(lines)
        at += len(data)
        if not data:
            break
    return end


def _hex_command(name: str, summary: str) -> None:
    def handler(ctx: CommandContext, args: Args) -> None:
        if name == "dd" and ctx.text.startswith("dD"):
            raise CommandError("dD (double-precision floats) is not supported here: use dq")
        show_hex(ctx, name, args)

    handler.__doc__ = summary
    handler.__name__ = f"display_{name}"
    command(name, category=_M, usage=f"{name} [/c cols] [/p] [address [L count | end]]",
            repeatable=True)(handler)
    _DISPLAYS[name] = handler


_DISPLAYS: dict[str, Callable[[CommandContext, Args], None]] = {}

_hex_command("db", "Display bytes and their ASCII characters (128 bytes by default).")
_hex_command("dw", "Display words (2 bytes).")
_hex_command("dW", "Display words (2 bytes) and their ASCII characters.")
_hex_command("dd", "Display double words (4 bytes).")
_hex_command("dc", "Display double words and their ASCII characters.")
_hex_command("dq", "Display quad words (8 bytes).")
_hex_command("dp", "Display pointer-sized values.")


# -- strings -------------------------------------------------------------------------------


def string_lines(ctx: CommandContext, read: Reader, start: int, count: int, char_size: int,
                 address_text: Callable[[int], str], gap: str = "  ") -> int:
    """``da``/``du``: up to ``count`` characters, 32 a line, ending at the NUL; an
    unreadable character ends the display with ``?``. The address after what was shown."""
    at, left, fetched_to = start, count, start
    while left > 0:
        take = min(STRING_LINE_CHARS, left)
        if at + take * char_size > fetched_to:
            # One read for many lines: the cache fetches them in one request.
            ahead = min(left * char_size, _CHUNK)
            gather(read, at, ahead)
            fetched_to = at + ahead
        data, mask = gather(read, at, take * char_size)
        values: list[int] = []
        ended = unreadable = False
        for offset in range(0, len(data) - char_size + 1, char_size):
            if not all(mask[offset:offset + char_size]):
                unreadable = True
                break
            value = int.from_bytes(data[offset:offset + char_size], "little")
            if value == 0:
                ended = True
                break
            values.append(value)
        text = characters(values, char_size)
        if unreadable:
            text += "?" * (take - len(values))
        ctx.out.line(string_line(address_text(at), text, gap))
        ctx.out.row(address=at, text=text)
        if ended:
            return at + (len(values) + 1) * char_size
        at += take * char_size
        if unreadable or len(data) < take * char_size:
            return at
        left -= take
    return at


def _show_string(ctx: CommandContext, name: str, args: Args, char_size: int) -> None:
    options = _options(args)
    start, count = display_range(args, STRING_LIMIT, char_size)
    args.expect_end()
    start, physical = _start(ctx, start, options.physical)
    count = _clamp(start, count, char_size)
    end = string_lines(ctx, reader(ctx, physical), start, count, char_size,
                       ctx.console.format_address)
    _finish(ctx, name, end, physical)


@command("da", category=_M, usage="da [/p] [address [L count | end]]", repeatable=True)
def display_da(ctx: CommandContext, args: Args) -> None:
    """Display an ASCII string (to its NUL, at most 256 characters by default)."""
    _show_string(ctx, "da", args, 1)


@command("du", category=_M, usage="du [/p] [address [L count | end]]", repeatable=True)
def display_du(ctx: CommandContext, args: Args) -> None:
    """Display a Unicode (UTF-16) string (to its NUL, at most 256 characters by default)."""
    _show_string(ctx, "du", args, 2)


_DISPLAYS["da"] = display_da
_DISPLAYS["du"] = display_du


# -- pointers: d*s and the dereferencing d{d,q,p}{a,u,p} -------------------------------------


def _string_at(ctx: CommandContext, read: Reader, address: int, char_size: int) -> str | None:
    """The string a pointer points to, quoted, or None if nothing there is readable."""
    data, mask = gather(read, address, STRING_LIMIT * char_size)
    values: list[int] = []
    for offset in range(0, len(data) - char_size + 1, char_size):
        if not all(mask[offset:offset + char_size]):
            break
        value = int.from_bytes(data[offset:offset + char_size], "little")
        if value == 0:
            break
        values.append(value)
    if not values and not all(mask[:char_size]):
        return None
    return f'"{characters(values, char_size)}"'


def _show_pointers(ctx: CommandContext, name: str, args: Args, size: int, kind: str) -> None:
    """``kind``: ``s`` symbol, ``a``/``u`` the string pointed to, ``p`` the value pointed to."""
    options = _options(args)
    start, count = display_range(args, 0x80 // size, size)
    args.expect_end()
    start, physical = _start(ctx, start, options.physical)
    count = _clamp(start, count, size)
    read = reader(ctx, physical)
    fmt = ctx.console.format_address
    at, end = start, start + count * size
    while at < end:
        data, mask = gather(read, at, min(_CHUNK, end - at))
        lines = []
        for offset in range(0, len(data) - size + 1, size):
            address = at + offset
            value = None
            if all(mask[offset:offset + size]):
                value = int.from_bytes(data[offset:offset + size], "little")
            suffix = "" if value is None else _pointer_suffix(ctx, read, value, size, kind)
            lines.append(pointer_line(fmt(address), value, size, suffix))
            ctx.out.row(address=address, value=value, text=suffix or None)
        ctx.out.lines(lines)
        at += len(data)
        if not data:
            break
    _finish(ctx, name, end, physical)


def _pointer_suffix(ctx: CommandContext, read: Reader, value: int, size: int, kind: str) -> str:
    if kind == "s":
        return ctx.console.symbolizer(value) or ""
    if kind in "au":
        return _string_at(ctx, read, value, 1 if kind == "a" else 2) or ""
    data, mask = gather(read, value, size)
    return value_text(int.from_bytes(data, "little"), size) if all(mask) else ""


_POINTER_SUMMARIES = {
    "s": "Display {what} and the symbol each one names.",
    "a": "Display {what} and the ASCII string each points to.",
    "u": "Display {what} and the Unicode string each points to.",
    "p": "Display {what} and the value each points to.",
}


def _pointer_command(name: str) -> None:
    width, kind = name[1], name[2]
    what = {"d": "double words", "q": "quad words", "p": "pointers"}[width]

    def handler(ctx: CommandContext, args: Args) -> None:
        size = {"d": 4, "q": 8}.get(width, ctx.session.pointer_size)
        _show_pointers(ctx, name, args, size, kind)

    handler.__doc__ = _POINTER_SUMMARIES[kind].format(what=what)
    handler.__name__ = f"display_{name}"
    command(name, category=_M, usage=f"{name} [/p] [address [L count | end]]",
            repeatable=True)(handler)
    _DISPLAYS[name] = handler


for _name in ("dds", "dqs", "dps", "dda", "dqa", "dpa", "ddu", "dqu", "dpu", "ddp", "dqp", "dpp"):
    _pointer_command(_name)


@command("d", category=_M, usage="d [options] [address [L count | end]]", repeatable=True)
def display(ctx: CommandContext, args: Args) -> None:
    """Display memory in the format of the last d* command (db at first)."""
    not_this_command(ctx, args)
    _DISPLAYS.get(ctx.console.state.dump_format, _DISPLAYS["db"])(ctx, args)


# -- physical memory: the kext !d* extensions -------------------------------------------------


@dataclass(frozen=True)
class _Physical:
    size: int
    columns: int
    characters: bool
    default_count: int


_PHYSICAL_FORMATS = {
    "!db": _Physical(1, 16, True, 0x80), "!dc": _Physical(4, 4, True, 0x20),
    "!dd": _Physical(4, 4, False, 0x20), "!dq": _Physical(8, 2, False, 0x10),
    "!dp": _Physical(0, 0, False, 0), "!dw": _Physical(2, 8, False, 0x40),
    "!du": _Physical(2, 0, False, 0x10),
}
_CACHING = re.compile(r"\[(c|uc|wc)\](?=\s|$)")


def _physical_range(ctx: CommandContext, args: Args, size: int, default: int) -> tuple[int, int]:
    """``[Caching] [-m] [PhysicalAddress] [L Size]``; the address continues the last one."""
    if args.peek() == "[":
        found = _CACHING.match(args.remaining())
        if not found:
            raise CommandError(f"Syntax error at '{args.remaining().strip()}'")
        args.pos += found.end()
    args.option("m")
    start, count = display_range(args, default, size)
    args.expect_end()
    if start is None:
        start = ctx.console.state.values.get("next_physical_dump", 0)
    return start, _clamp(start, count, size)


def _show_physical(ctx: CommandContext, name: str, args: Args) -> None:
    spec = _PHYSICAL_FORMATS[name]
    size = spec.size or ctx.session.pointer_size
    columns = spec.columns or 16 // size
    start, count = _physical_range(ctx, args, size, spec.default_count or 0x80 // size)
    read = ctx.session.read_physical
    if name == "!du":
        end = string_lines(ctx, read, start, count, 2, lambda address: f"#{address:8x}", " ")
        ctx.console.state.values["next_physical_dump"] = end
        return
    length = count * size
    data, mask = gather(read, start, length)
    readable = mask.find(0)
    shown = length if readable < 0 else readable // size * size
    line_bytes = columns * size
    lines = []
    for offset in range(0, shown, line_bytes):
        piece = data[offset:min(offset + line_bytes, shown)]
        lines.append(physical_line(start + offset, piece, size, characters=spec.characters))
        ctx.out.row(address=start + offset, values=[
            int.from_bytes(piece[i:i + size], "little") for i in range(0, len(piece), size)])
    ctx.out.lines(lines)
    ctx.console.state.values["next_physical_dump"] = start + shown
    if shown < length:
        raise CommandError(f"physical memory read at {start + shown:x} failed")


def _physical_command(name: str) -> None:
    what = {"!db": "bytes and ASCII", "!dc": "double words and ASCII", "!dd": "double words",
            "!dq": "quad words", "!dp": "pointer-sized values", "!dw": "words",
            "!du": "a Unicode string"}[name]

    def handler(ctx: CommandContext, args: Args) -> None:
        _show_physical(ctx, name, args)

    handler.__doc__ = f"Display physical memory as {what}."
    handler.__name__ = f"physical_{name[1:]}"
    command(name, category=_M, usage=f"{name} [[c|uc|wc]] [-m] [address] [L count]",
            repeatable=True)(handler)


for _name in _PHYSICAL_FORMATS:
    _physical_command(_name)
