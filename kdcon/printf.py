"""``.printf``'s formats: C's conversions over 64-bit debugger values, and WinDbg's own.

What it does: ``format_printf(fmt, arguments, target)`` applies a format string to
values as ``.printf`` does. ``%d %i %u %x %X %o %c`` take 32 bits unless a size says
otherwise (``I64``/``ll`` 64, ``h`` 16, ``hh`` 8), with C's flags, width and
precision; ``%e %f %g`` read the low 32 bits as a float, or all 64 as a double with
``l``; ``%p`` is a pointer in the target (its size in hex digits), ``%N`` one in the
host; ``%y`` (and ``%ly``) a symbol with its displacement and address; ``%ma``/``%mu``
NUL-terminated ASCII/UTF-16 strings in target memory, ``%msa``/``%msu`` the
ANSI_STRING/UNICODE_STRING structures there; ``%s`` a quoted string argument, or an
ASCII string in target memory. Everything read from the target goes through
``printable``. ``c_escapes`` turns the format's ``\\n``, ``\\t``, ``\\"``... into
characters; ``read_c_string`` and ``read_counted_string`` serve ``as /ma`` too.
What it does not do: read the command line (commands/scripts.py).
Spec: WinDbg's ".printf" page (conversion table, the I64 modifier, floats).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from typing import Protocol

from .errors import CommandError
from .output import printable

__all__ = ["format_printf", "c_escapes", "read_c_string", "read_counted_string",
           "PrintfTarget"]

_SPEC = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?"
                   r"(?P<size>I64|I32|ll|l|hh|h|L)?"
                   r"(?P<conv>msa|msu|ma|mu|[diouxXcspNyeEfgGaA%])")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "0": "\0"}
_SIZE_BITS = {"I64": 64, "ll": 64, "h": 16, "hh": 8}
_CHUNK = 0x100
_STRING_LIMIT = 0x4000      # bytes; a string longer than this is shown cut


class PrintfTarget(Protocol):
    """What the formats need of the target (``kdcon.target.Target`` has it)."""

    pointer_size: int

    def read(self, address: int, size: int) -> bytes: ...

    def name_for(self, address: int) -> str | None: ...

    def format_address(self, address: int) -> str: ...


def c_escapes(text: str) -> str:
    """``\\n``, ``\\t``, ``\\\\``, ``\\"``, ``\\xHH``... as the characters they stand for."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        code = text[index + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
        elif code == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[index + 2: index + 4]):
            out.append(chr(int(text[index + 2: index + 4], 16)))
            index += 4
        else:
            out.append(char)
            index += 1
    return "".join(out)


def read_c_string(target: PrintfTarget, address: int, *, wide: bool) -> str:
    """The NUL-terminated string at ``address``, read a chunk at a time."""
    unit = 2 if wide else 1
    data = bytearray()
    while len(data) < _STRING_LIMIT:
        got = target.read(address + len(data), _CHUNK)
        data += got
        end = _terminator(data, unit)
        if end >= 0:
            data = data[:end]
            break
        if len(got) < _CHUNK:
            if not data:
                raise MemoryError(f"Memory access error at {target.format_address(address)}")
            break
    return _decode(bytes(data), wide)


def read_counted_string(target: PrintfTarget, address: int, *, wide: bool) -> str:
    """An ANSI_STRING or UNICODE_STRING: USHORT Length (bytes), MaximumLength, Buffer."""
    size = target.pointer_size
    header = target.read(address, 2 * size)
    if len(header) < 2 * size:
        raise MemoryError(f"Memory access error at {target.format_address(address)}")
    length = struct.unpack_from("<H", header)[0]
    buffer = int.from_bytes(header[size: 2 * size], "little")
    if not length:
        return ""
    data = target.read(buffer, min(length, _STRING_LIMIT))
    if not data:
        raise MemoryError(f"Memory access error at {target.format_address(buffer)}")
    return _decode(data, wide)


def _terminator(data: bytearray, unit: int) -> int:
    for index in range(0, len(data) - unit + 1, unit):
        if not any(data[index: index + unit]):
            return index
    return -1


def _decode(data: bytes, wide: bool) -> str:
    text = data[: len(data) // 2 * 2].decode("utf-16-le", "replace") if wide else \
        data.decode("latin-1")
    return printable(text)


def format_printf(fmt: str, arguments: Sequence[int | str], target: PrintfTarget) -> str:
    """``fmt`` (escapes already turned into characters) applied to ``arguments``."""
    out: list[str] = []
    remaining = list(arguments)
    position = 0

    def take(spec: str) -> int | str:
        if not remaining:
            raise CommandError(f"Too few arguments for '{spec}' in the .printf format")
        return remaining.pop(0)

    while True:
        index = fmt.find("%", position)
        if index < 0:
            out.append(fmt[position:])
            break
        out.append(fmt[position:index])
        match = _SPEC.match(fmt, index)
        if match is None:
            bad = fmt[index:].split()[0] if fmt[index:].strip() else "%"
            raise CommandError(f"Unknown conversion '{bad}' in the .printf format")
        position = match.end()
        out.append(_convert(match, take, target))
    return "".join(out)


def _convert(match: re.Match[str], take, target: PrintfTarget) -> str:
    spec = match.group()
    conv = match.group("conv")
    if conv == "%":
        return "%"
    flags = match.group("flags")
    width = match.group("width") or ""
    precision = match.group("precision")
    if width == "*":
        width = str(_number(take(spec), spec) & 0xFFFFFFFF)
    if precision == "*":
        precision = str(_number(take(spec), spec) & 0xFFFFFFFF)
    dot = "" if precision is None else f".{precision}"
    size = match.group("size") or ""
    value = take(spec)
    if conv == "s" and isinstance(value, str):
        return f"%{flags}{width}{dot}s" % value
    number = _number(value, spec)
    if conv in "diouxXc":
        return _integer(conv, flags, width, dot, _SIZE_BITS.get(size, 32), number)
    if conv in "eEfgGaA":
        return _floating(conv, flags, width, dot, size, number)
    if conv == "p":
        digits = 2 * target.pointer_size
        return f"{number & ((1 << (8 * target.pointer_size)) - 1):0{digits}x}"
    if conv == "N":
        return f"{number & 0xFFFFFFFFFFFFFFFF:016x}"
    if conv == "y":
        name = target.name_for(number)
        address = target.format_address(number)
        return f"{name} ({address})" if name else address
    if conv in ("ma", "s"):
        text = read_c_string(target, number, wide=False)
    elif conv == "mu":
        text = read_c_string(target, number, wide=True)
    else:
        text = read_counted_string(target, number, wide=conv == "msu")
    return f"%{flags}{width}{dot}s" % text


def _number(value: int | str, spec: str) -> int:
    if isinstance(value, str):
        raise CommandError(f"'{spec}' in the .printf format needs a number, not a string")
    return value


def _integer(conv: str, flags: str, width: str, dot: str, bits: int, value: int) -> str:
    value &= (1 << bits) - 1
    if conv == "c":
        return f"%{flags.replace('0', '')}{width}c" % chr(value & 0xFF)
    if conv in "di":
        if value >> (bits - 1):
            value -= 1 << bits
        conv = "d"
    elif conv == "u":
        conv = "d"
    if conv == "o" and "#" in flags:
        # C's alternate octal form is a leading 0, not Python's 0o.
        text = f"%{flags.replace('#', '')}{dot}o" % value
        text = text if text.startswith("0") else "0" + text
        return f"%{flags.replace('#', '').replace('0', '')}{width}s" % text
    return f"%{flags}{width}{dot}{conv}" % value


def _floating(conv: str, flags: str, width: str, dot: str, size: str, value: int) -> str:
    if size in ("l", "L", "ll", "I64"):
        number = struct.unpack("<d", struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF))[0]
    else:
        number = struct.unpack("<f", struct.pack("<I", value & 0xFFFFFFFF))[0]
    if conv in "aA":
        text = number.hex()
        return f"%{flags}{width}s" % (text.upper() if conv == "A" else text)
    return f"%{flags}{width}{dot}{conv}" % number
