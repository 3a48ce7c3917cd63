"""Memory changes and searches: e, eb, ew, ed, eq, ep, ea, eu, eza, ezu, f, fp, c, m, s,
.readmem and .writemem.

Syntax and text are kd's (windbg.md §0.3): values in the current radix or as
character constants (``'A'``, ``'VUTS'``: the first character most significant),
strings in double quotes; ``e`` repeats the last e* format; ``/p`` writes physical
memory. Every write drops the per-stop cache (the session does), so a display after
``eb`` shows what the target now holds. ``f`` asks the target to fill (one request
whatever the size); ``c`` prints each differing byte pair; ``s`` reads its range
through the cache in 64 KB windows, finds overlapping matches (aligned ones for
-w/-d/-q) and prints each hit as a db, dW, dc or dq line, or only its address with
``-[1]``; ``.readmem``/``.writemem`` say ``Reading|Writing N bytes`` with a dot per 2 KB,
and ``.writemem`` writes a temporary file and renames it.
What it does not do: interactive entry (``eb address`` with no values prompts
``Input>`` in kd), floats (``eD``, ``ef``), ``s -sa``/``-su``/``-v`` or the saved-result flags.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..argtypes import MAX_RANGE, Args
from ..console import CommandContext
from ..errors import CommandError
from ..progress import Progress
from ..registry import Category, command
from ..render.memory import compare_line
from .memory import Reader, gather, hex_lines, not_this_command

__all__ = ["parse_values", "search"]

_M = Category.MEMORY
_MASK64 = (1 << 64) - 1
# s reads its range this many bytes at a time.
_WINDOW = 0x10000
# c, m, .readmem and .writemem move memory this many bytes at a time.
_BLOCK = 0x100000
# A fill request the target is asked for at once (a target may bound its work).
_FILL_BLOCK = 0x1000000
# .readmem/.writemem print one dot per this many bytes, as kd does.
_DOT_BYTES = 0x800


def _physical_option(args: Args) -> bool:
    rest = args.remaining().lstrip()
    found = re.match(r"/p(\[(c|uc|wc)\])?(?=\s|$)", rest)
    if found is None:
        return False
    args.peek()
    args.pos += found.end()
    return True


def _char_constant(args: Args) -> int | None:
    """``'A'`` or ``'VUTS'``; None if no character constant comes next."""
    if args.peek() != "'":
        return None
    rest = args.remaining()
    close = rest.find("'", 1)
    if close <= 1:
        raise CommandError(f"Syntax error at '{rest.strip()}'")
    args.pos += close + 1
    return int.from_bytes(rest[1:close].encode("latin-1", "replace"), "big")


def _encode(value: int, size: int, text: str) -> bytes:
    """``value`` as ``size`` little-endian bytes; a negative number sign-extends."""
    value &= _MASK64
    bits = size * 8
    if bits < 64 and value >> bits and value >> (bits - 1) != (1 << (65 - bits)) - 1:
        raise CommandError(f"Overflow error at '{text}'")
    return (value & ((1 << bits) - 1)).to_bytes(size, "little")


def parse_values(args: Args, size: int) -> bytes:
    """The rest of the arguments as numbers or character constants of ``size`` bytes."""
    out = bytearray()
    while not args.empty():
        text = args.remaining().strip()
        value = _char_constant(args)
        if value is None:
            value = args.expression()
        out += _encode(value, size, text)
    return bytes(out)


def _required_range(ctx: CommandContext, args: Args, default: int = 0x80) -> tuple[int, int]:
    start, count = args.range(default)
    if start is None:
        raise CommandError(f"Numeric expression missing from '{ctx.text}'")
    return start, count


def _write(ctx: CommandContext, address: int, data: bytes, physical: bool = False) -> None:
    write = ctx.session.write_physical if physical else ctx.session.write_virtual
    done = write(address, data)
    if done < len(data):
        raise CommandError(f"Memory access error at '{ctx.console.format_address(address + done)}'")


def _blocks(start: int, length: int, size: int = _BLOCK) -> Iterator[tuple[int, int]]:
    at, end = start, start + length
    while at < end:
        yield at, min(size, end - at)
        at += size


def _read_all(ctx: CommandContext, read: Reader, address: int, size: int) -> bytes:
    data, mask = gather(read, address, size)
    bad = mask.find(0)
    if bad >= 0 or len(data) < size:
        where = address + (bad if bad >= 0 else len(data))
        raise CommandError(f"Memory access error at '{ctx.console.format_address(where)}'")
    return data


# -- e* ---------------------------------------------------------------------------------------

_UNITS = {"eb": 1, "ew": 2, "ed": 4, "eq": 8, "ep": 0}
_STRINGS = {"ea": ("latin-1", False), "eza": ("latin-1", True),
            "eu": ("utf-16-le", False), "ezu": ("utf-16-le", True)}


def _enter(ctx: CommandContext, args: Args, name: str) -> None:
    physical = _physical_option(args)
    address = args.expression()
    if name in _STRINGS:
        encoding, terminated = _STRINGS[name]
        text = args.quoted()
        if text is None:
            raise CommandError(f"Syntax error at '{args.remaining().strip() or '<EOL>'}': "
                               f"{name} takes a string in double quotes")
        args.expect_end()
        data = text.encode(encoding, "replace") + (b"\0" * (1 if name == "eza" else 2)
                                                   if terminated else b"")
    else:
        data = parse_values(args, _UNITS[name] or ctx.session.pointer_size)
        if not data:
            raise CommandError(f"{name} needs the values to enter: interactive entry "
                               "(Input>) is not supported")
    _write(ctx, address, data, physical)
    ctx.console.state.values["enter_format"] = name
    ctx.out.row(address=address, size=len(data))


def _enter_command(name: str, summary: str) -> None:
    def handler(ctx: CommandContext, args: Args) -> None:
        if ctx.text.startswith("eD"):
            raise CommandError("eD (double-precision floats) is not supported here: use eq")
        _enter(ctx, args, name)

    handler.__doc__ = summary
    handler.__name__ = f"enter_{name}"
    usage = f'{name} [/p] address "string"' if name in _STRINGS else \
        f"{name} [/p] address value [value ...]"
    command(name, category=_M, usage=usage)(handler)


_enter_command("eb", "Enter byte values (or 'c' character constants) into memory.")
_enter_command("ew", "Enter word values into memory.")
_enter_command("ed", "Enter double-word values into memory.")
_enter_command("eq", "Enter quad-word values into memory.")
_enter_command("ep", "Enter pointer-sized values into memory.")
_enter_command("ea", "Enter an ASCII string (no NUL) into memory.")
_enter_command("eu", "Enter a Unicode string (no NUL) into memory.")
_enter_command("eza", "Enter a NUL-terminated ASCII string into memory.")
_enter_command("ezu", "Enter a NUL-terminated Unicode string into memory.")


@command("e", category=_M, usage="e address [values | \"string\"]")
def enter(ctx: CommandContext, args: Args) -> None:
    """Enter values in the format of the last e* command (eb at first)."""
    not_this_command(ctx, args)
    _enter(ctx, args, ctx.console.state.values.get("enter_format", "eb"))


# -- f, fp, c, m ----------------------------------------------------------------------------


def _fill(ctx: CommandContext, args: Args, physical: bool) -> None:
    start, length = _required_range(ctx, args)
    pattern = parse_values(args, 1)
    if not pattern:
        raise CommandError(f"Numeric expression missing from '{ctx.text}'")
    pattern = pattern[:length]
    session = ctx.session
    try:
        for at, size in _blocks(start, length, _FILL_BLOCK):
            phase = (at - start) % len(pattern)
            rotated = pattern[phase:] + pattern[:phase]
            done = session.host.fill_memory(at, size, rotated, physical=physical)
            if done < size:
                # A target that fills less (or not at all) gets the rest as writes.
                _write(ctx, at + done, _shifted(pattern, start, at + done, size - done),
                       physical)
    finally:
        session.memory.invalidate()
        session.physical.invalidate()
    ctx.out.row(address=start, size=length)


def _shifted(pattern: bytes, start: int, at: int, size: int) -> bytes:
    phase = (at - start) % len(pattern)
    return (pattern[phase:] + pattern * (size // len(pattern) + 1))[:size]


@command("f", category=_M, usage="f range pattern")
def fill(ctx: CommandContext, args: Args) -> None:
    """Fill a memory range with a repeating byte pattern."""
    not_this_command(ctx, args)
    _fill(ctx, args, physical=False)


@command("fp", category=_M, usage="fp [[c|uc|wc]] range pattern")
def fill_physical(ctx: CommandContext, args: Args) -> None:
    """Fill a physical memory range with a repeating byte pattern."""
    found = re.match(r"\s*\[(c|uc|wc)\](?=\s|$)", args.remaining())
    if found:
        args.pos += found.end()
    _fill(ctx, args, physical=True)


@command("c", category=_M, usage="c range address")
def compare(ctx: CommandContext, args: Args) -> None:
    """Compare two memory ranges and show every byte that differs."""
    not_this_command(ctx, args)
    start, length = _required_range(ctx, args)
    other = args.expression()
    args.expect_end()
    read, fmt = ctx.session.read_virtual, ctx.console.format_address
    for at, size in _blocks(start, length):
        second = other + (at - start)
        first_data, first_mask = gather(read, at, size)
        second_data, second_mask = gather(read, second, size)
        lines = []
        for index in range(size):
            if not (first_mask[index] and second_mask[index]):
                ctx.out.lines(lines)
                where = at + index if not first_mask[index] else second + index
                raise CommandError(f"Memory access error at '{fmt(where)}'")
            if first_data[index] != second_data[index]:
                lines.append(compare_line(fmt(at + index), first_data[index],
                                          fmt(second + index), second_data[index]))
                ctx.out.row(address=at + index, value=first_data[index],
                            other_address=second + index, other_value=second_data[index])
        ctx.out.lines(lines)


@command("m", category=_M, usage="m range address")
def move(ctx: CommandContext, args: Args) -> None:
    """Copy a memory range to another address (overlapping ranges copy correctly)."""
    not_this_command(ctx, args)
    start, length = _required_range(ctx, args)
    destination = args.expression()
    args.expect_end()
    data = b"".join(_read_all(ctx, ctx.session.read_virtual, at, size)
                    for at, size in _blocks(start, length))
    for at, size in _blocks(destination, length):
        _write(ctx, at, data[at - destination: at - destination + size])
    ctx.out.row(address=start, destination=destination, size=length)


# -- s -------------------------------------------------------------------------------------

_SEARCH_TYPE = re.compile(r"-(?:\[(?P<flags>[^\]]*)\])?(?P<type>[bwdqau])")
# A hit is shown as the display of its type: (unit, units a line, character column).
_HIT_LINES = {"b": (1, 16, True), "a": (1, 16, True), "u": (1, 16, True),
              "w": (2, 8, True), "d": (4, 4, True), "q": (8, 2, False)}
_SEARCH_UNITS = {"b": 1, "w": 2, "d": 4, "q": 8}


def search(read: Reader, start: int, length: int, pattern: bytes, align: int = 1,
           progress: Progress | None = None) -> Iterator[int]:
    """Every address in [start, start+length) where ``pattern`` lies wholly inside the
    range and in readable memory, overlapping matches included, in order."""
    tail, tail_at = b"", start
    keep = len(pattern) - 1
    for at, size in _blocks(start, length, _WINDOW):
        if progress is not None:
            progress.update(at - start)
        data, mask = gather(read, at, size)
        position = 0
        while position < len(data):
            bad = mask.find(0, position)
            run_end = len(data) if bad < 0 else bad
            run_at = at + position
            if tail and tail_at + len(tail) == run_at:
                buffer, buffer_at = tail + data[position:run_end], tail_at
            else:
                buffer, buffer_at = data[position:run_end], run_at
            found = buffer.find(pattern)
            while found >= 0:
                if (buffer_at + found) % align == 0:
                    yield buffer_at + found
                found = buffer.find(pattern, found + 1)
            tail = buffer[len(buffer) - keep:] if keep else b""
            tail_at = buffer_at + len(buffer) - len(tail)
            if bad < 0:
                break
            tail = b""
            readable = mask.find(1, bad)
            position = len(data) if readable < 0 else readable


@command("s", category=_M, usage='s [-[1]b|w|d|q|a|u] range pattern')
def search_memory(ctx: CommandContext, args: Args) -> None:
    """Search a memory range for bytes, words, double words, quad words or a string."""
    not_this_command(ctx, args)
    kind, addresses_only = "b", False
    if args.peek() == "-":
        word = args.word()
        found = _SEARCH_TYPE.fullmatch(word)
        if found is None:
            raise CommandError(f"Syntax error at '{word}': s takes -b, -w, -d, -q, -a or -u")
        flags = found.group("flags") or ""
        if flags.strip("1"):
            raise CommandError(f"Search flags [{flags}] are not supported: only [1]")
        kind, addresses_only = found.group("type"), "1" in flags
    start, length = _required_range(ctx, args)
    if kind in "au":
        text = args.quoted()
        if text is None:
            raise CommandError(f"Syntax error at '{args.remaining().strip() or '<EOL>'}': "
                               f"s -{kind} takes a string in double quotes")
        args.expect_end()
        pattern = text.encode("latin-1" if kind == "a" else "utf-16-le", "replace")
    else:
        pattern = parse_values(args, _SEARCH_UNITS[kind])
    if not pattern:
        raise CommandError(f"Numeric expression missing from '{ctx.text}'")
    read = ctx.session.read_virtual
    size, columns, characters = _HIT_LINES[kind]
    with Progress(ctx.console, "s", length) as progress:
        for hit in search(read, start, length, pattern, _SEARCH_UNITS.get(kind, 1), progress):
            if addresses_only:
                ctx.out.line(ctx.console.format_address(hit))
                ctx.out.row(address=hit)
            else:
                hex_lines(ctx, read, hit, size * columns, size, columns, characters=characters)


# -- .readmem and .writemem ---------------------------------------------------------------------


def _file_name(ctx: CommandContext, args: Args) -> Path:
    name = args.quoted()
    if name is None:
        name = args.word()
    if not name:
        raise CommandError(f"{ctx.command.name} needs a file name: {ctx.command.usage}")
    return Path(name).expanduser()


def _dots(count: int) -> str:
    return "." * max(1, -(-count // _DOT_BYTES))


@command(".writemem", category=_M, usage=".writemem file range")
def writemem(ctx: CommandContext, args: Args) -> None:
    """Write a memory range to a file (raw bytes)."""
    path = _file_name(ctx, args)
    start, length = _required_range(ctx, args)
    args.expect_end()
    try:
        handle = tempfile.NamedTemporaryFile(dir=path.parent, delete=False,
                                             prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CommandError(f"Unable to create '{path}': {exc.strerror}") from None
    try:
        with handle, Progress(ctx.console, ".writemem", length) as progress:
            for at, size in _blocks(start, length):
                handle.write(_read_all(ctx, ctx.session.read_virtual, at, size))
                progress.update(at + size - start)
        os.replace(handle.name, path)
    except OSError as exc:
        os.unlink(handle.name)
        raise CommandError(f"Unable to write '{path}': {exc.strerror}") from None
    except BaseException:
        os.unlink(handle.name)
        raise
    ctx.out.line(f"Writing {length:x} bytes{_dots(length)}")
    ctx.out.row(file=str(path), address=start, size=length)


@command(".readmem", category=_M, usage=".readmem file range")
def readmem(ctx: CommandContext, args: Args) -> None:
    """Copy a file's bytes into memory (the whole file when no length is given)."""
    path = _file_name(ctx, args)
    start, length = args.range(-1)
    if start is None:
        raise CommandError(f"Numeric expression missing from '{ctx.text}'")
    args.expect_end()
    try:
        with open(path, "rb") as handle:
            if length < 0:
                size = os.fstat(handle.fileno()).st_size
                if size > MAX_RANGE:
                    raise CommandError(f"{path} is over 256 MB: give a length with L?")
                length = size
            data = handle.read(length)
    except OSError as exc:
        raise CommandError(f"Unable to read '{path}': {exc.strerror}") from None
    with Progress(ctx.console, ".readmem", len(data)) as progress:
        for at, size in _blocks(start, len(data)):
            _write(ctx, at, data[at - start: at - start + size])
            progress.update(at + size - start)
    ctx.out.line(f"Reading {len(data):x} bytes{_dots(len(data))}")
    ctx.out.row(file=str(path), address=start, size=len(data))
