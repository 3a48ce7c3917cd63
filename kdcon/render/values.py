"""Values as WinDbg's ``dt`` and ``dv`` print them, read from target memory.

What it does: ``ValueFormatter`` turns the bytes at an address into the text after
``:`` in a ``dt`` line (or after ``=`` in a ``dv`` line), following the rules WinDbg's
own output shows: signed integers in decimal with ``0n``, unsigned ones below 10 as a
digit and others in hex (64-bit values over 32 bits with the backtick), characters
with their glyph, bit fields in binary (with their value from five bits up),
enumerations with their name, pointers with the type they point to (a string for
``char``/``wchar_t``, the pointee for a pointer, ``(null)`` for none, the symbol for
a function), ``LIST_ENTRY`` as ``[ Flink - Blink ]``, ``UNICODE_STRING`` and
``STRING`` as their text, ``LARGE_INTEGER`` as one number. Memory that cannot be
read shows ``??`` and the first failing address is kept (``failed_at``) for the
caller's message. Every text that comes from the target goes through ``printable``,
and none is longer than 256 characters: a string cut there (a garbage ``Length``, a
huge ``char`` array, no NUL in sight) ends in ``...`` after its closing quote.
What it does not do: lay out fields (render/types.py) or find types.
Spec: windbg.md §0.5; the dt and dv pages of the debugger documentation.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ..output import printable

__all__ = ["ValueFormatter", "unwrap", "format_pointer", "AGGREGATES"]

Reader = Callable[[int, int], bytes]
Symbolizer = Callable[[int], "str | None"]

AGGREGATES = ("struct", "union", "class")
# Characters of target text one value shows (a pointed-to string, a counted string, a
# char array). A garbage Length (an uninitialised local can claim 0xFFFE bytes) or a
# huge array costs at most this many characters' bytes on the wire: 0x200 for wchar_t.
_MAX_STRING = 0x100
_TRUNCATED = "..."

_SIGNED = {"Int1B", "Int2B", "Int4B", "Int8B", "Int16B", "HRESULT"}
_STRINGS = {"_UNICODE_STRING": True, "_STRING": False, "_ANSI_STRING": False,
            "_OEM_STRING": False}
_LISTS = {"_LIST_ENTRY", "LIST_ENTRY"}
_LARGE = {"_LARGE_INTEGER", "_ULARGE_INTEGER"}


def unwrap(info: Any) -> Any:
    """The type under const/volatile modifiers and typedefs."""
    seen = 0
    while info is not None and info.kind in ("modifier", "typedef") and seen < 32:
        inner = info.type
        if inner is None:
            break
        info, seen = inner, seen + 1
    return info


def format_pointer(value: int, size: int) -> str:
    """``0xfffff800`01000000`` (64-bit) or ``0x00d80000`` (32-bit)."""
    if size == 8:
        return f"0x{value >> 32:08x}`{value & 0xFFFFFFFF:08x}"
    return f"0x{value:08x}"


def _unsigned(value: int) -> str:
    if value < 10:
        return str(value)
    if value > 0xFFFFFFFF:
        return f"0x{value >> 32:08x}`{value & 0xFFFFFFFF:08x}"
    return f"0x{value:x}"


def _hex_or_zero(value: int) -> str:
    return "0" if value == 0 else f"0x{value:x}"


def _glyph(value: int) -> str:
    return chr(value) if 0x20 <= value < 0x7F else ""


class ValueFormatter:
    """Values at addresses; ``failed_at`` is the first address that could not be read."""

    def __init__(self, read: Reader, pointer_size: int,
                 symbolizer: Symbolizer | None = None) -> None:
        self._read = read
        self.pointer_size = pointer_size
        self._symbolizer = symbolizer
        self.failed_at: int | None = None

    # -- memory ----------------------------------------------------------------------------

    def _bytes(self, address: int, size: int) -> bytes | None:
        data = self._read(address & 0xFFFFFFFFFFFFFFFF, size) if size else b""
        if len(data) < size:
            if self.failed_at is None:
                self.failed_at = address + len(data)
            return None
        return data

    def _int(self, address: int, size: int, signed: bool = False) -> int | None:
        data = self._bytes(address, size)
        if data is None:
            return None
        return int.from_bytes(data, "little", signed=signed)

    def pointer_at(self, address: int, size: int | None = None) -> int | None:
        return self._int(address, size or self.pointer_size)

    # -- values ----------------------------------------------------------------------------

    def _value(self, info: Any, address: int, named: bool = True) -> str:
        info = unwrap(info)
        if info is None:
            return "??"
        kind = info.kind
        if kind == "base":
            return self._base(info, address)
        if kind == "enum":
            return self._enum(info, address)
        if kind == "bitfield":
            return self._bitfield(info, address)
        if kind == "pointer":
            return self._pointer(info, address, named)
        if kind == "array":
            return self._array(info, address)
        if kind in AGGREGATES:
            special = self._special(info, address)
            return (info.name if named else "") + special
        return info.type_name

    def _base(self, info: Any, address: int) -> str:
        name = info.type_name
        size = info.size
        if name in ("Void", "<NoType>") or not size:
            return "??"
        value = self._int(address, size, signed=name in _SIGNED or name == "Char")
        if value is None:
            return "??"
        if name == "Char":
            return f"{value} '{_glyph(value)}'"
        if name == "UChar":
            return f"{_hex_or_zero(value)} '{_glyph(value)}'"
        if name == "Wchar":
            return f"{_hex_or_zero(value)} '{printable(chr(value), newlines=False)}'" \
                if 0x20 <= value and not 0xD800 <= value < 0xE000 else f"{_hex_or_zero(value)} ''"
        if name in _SIGNED:
            return f"0n{value}"
        if name == "Float":
            fmt = {4: "<f", 8: "<d"}.get(size)
            if fmt is None:
                return f"0x{value:x}"
            number = struct.unpack(fmt, value.to_bytes(size, "little"))[0]
            return f"{number:g}"
        return _unsigned(value)

    def _enum(self, info: Any, address: int) -> str:
        size = info.size or 4
        value = self._int(address, size, signed=True)
        if value is None:
            return "??"
        names = [name for name, number in info.enumerators
                 if number == value or number == value & ((1 << size * 8) - 1)]
        text = _unsigned(value) if value >= 0 else f"0n{value}"
        return f"{text} ( {names[0]} )" if names else text

    def _bitfield(self, info: Any, address: int) -> str:
        base = unwrap(info.type)
        size = base.size if base is not None and base.size else 4
        raw = self._int(address, size)
        if raw is None:
            return "??"
        width = info.bit_width or 1
        value = (raw >> (info.bit_position or 0)) & ((1 << width) - 1)
        text = f"0y{value:0{width}b}"
        return f"{text} ({_hex_or_zero(value)})" if width >= 5 else text

    def _pointer(self, info: Any, address: int, named: bool = True) -> str:
        size = info.pointer_size or info.size or self.pointer_size
        value = self.pointer_at(address, size)
        if value is None:
            return "??"
        if value == 0:
            return "(null) "
        text = format_pointer(value, size)
        if not named:
            return text
        target = unwrap(info.type)
        if target is None:
            return text + " Void"
        kind = target.kind
        if kind == "base":
            name = target.type_name
            if name in ("Void", "<NoType>"):
                return text + " Void"
            if name in ("Char", "UChar"):
                return f"{text}  {self._c_string(value)}"
            if name == "Wchar":
                return f"{text}  {self._wide_string(value)}"
            return f"{text}  -> {self._value(target, value)}"
        if kind in AGGREGATES:
            return f"{text} {target.name}{self._special(target, value)}"
        if kind == "enum":
            return f"{text} {target.name}"
        if kind == "procedure":
            return f"{text} {target.type_name} {self._code_symbol(value)}"
        return f"{text}  -> {self._value(target, value)}"

    def _array(self, info: Any, address: int) -> str:
        element = unwrap(info.type)
        count = info.count or 0
        if element is not None and self._is_text(element):
            width = 2 if element.type_name == "Wchar" else 1
            shown = min(count, _MAX_STRING)
            data = self._bytes(address, shown * width)
            if data is None:
                return f"[{count}]  ??"
            text = _wide_text(data) if width == 2 else \
                data.split(b"\0", 1)[0].decode("latin-1")
            cut = count > shown and len(text) == shown
            return f"[{count}]  " + self._quote(text) + (_TRUNCATED if cut else "")
        return f"[{count}] " + self._value(element, address)

    @staticmethod
    def _is_text(info: Any) -> bool:
        return info is not None and info.kind == "base" and \
            info.type_name in ("Char", "UChar", "Wchar")

    # -- structures WinDbg shows by value ------------------------------------------------------

    def _special(self, info: Any, address: int) -> str:
        name = info.name.rpartition("!")[2]
        if name in _LISTS:
            return self._list_entry(info, address)
        if name in _STRINGS:
            return " " + self._counted_string(info, address, wide=_STRINGS[name])
        if name in _LARGE:
            value = self._int(address, 8)
            return "" if value is None else " " + (
                format_pointer(value, 8) if value > 0xFFFFFFFF else f"0x{value:x}")
        return ""

    def _field(self, info: Any, name: str) -> Any:
        return next((f for f in info.fields if f.name == name), None)

    def _list_entry(self, info: Any, address: int) -> str:
        flink, blink = self._field(info, "Flink"), self._field(info, "Blink")
        size = self.pointer_size
        if flink is None or blink is None:
            return ""
        forward = self.pointer_at(address + flink.offset, size)
        backward = self.pointer_at(address + blink.offset, size)
        if forward is None or backward is None:
            return ""
        return f" [ {self._list_pointer(forward)} - {self._list_pointer(backward)} ]"

    def _list_pointer(self, value: int) -> str:
        return format_pointer(value, 8) if self.pointer_size == 8 else f"0x{value:x}"

    def _counted_string(self, info: Any, address: int, wide: bool) -> str:
        length, buffer = self._field(info, "Length"), self._field(info, "Buffer")
        if length is None or buffer is None:
            return '""'
        count = self._int(address + length.offset, 2)
        pointer = self.pointer_at(address + buffer.offset)
        if count is None or pointer is None:
            return "??"
        if not count:
            return '""'
        limit = _MAX_STRING * (2 if wide else 1)
        data = self._read(pointer, min(count, limit))
        if not data:
            return self._read_error(pointer)
        text = self._quote(_wide_text(data) if wide else data.decode("latin-1"))
        return text + (_TRUNCATED if count > limit else "")

    def _c_string(self, address: int) -> str:
        data = self._read(address, _MAX_STRING)
        if not data:
            return self._read_error(address)
        text = data.split(b"\0", 1)[0]
        cut = len(text) == _MAX_STRING
        return self._quote(text.decode("latin-1")) + (_TRUNCATED if cut else "")

    def _wide_string(self, address: int) -> str:
        data = self._read(address, _MAX_STRING * 2)
        if len(data) < 2:
            return self._read_error(address)
        text = _wide_text(data)
        cut = len(data) == _MAX_STRING * 2 and len(text.encode("utf-16-le", "replace")) \
            == len(data)
        return self._quote(text) + (_TRUNCATED if cut else "")

    def _read_error(self, address: int) -> str:
        where = format_pointer(address, self.pointer_size)
        return f'"--- memory read error at address {where} ---"'

    @staticmethod
    def _quote(text: str) -> str:
        return '"' + printable(text, newlines=False) + '"'

    def _code_symbol(self, address: int) -> str:
        """``nt!IopInvalidDeviceRequest+0`` as dt prints a function pointer's target."""
        name = self._symbolizer(address) if self._symbolizer else None
        if not name:
            return "+0"
        text, plus, displacement = name.partition("+0x")
        return f"{text}+{displacement}" if plus else f"{name}+0"

    # -- dv's forms -----------------------------------------------------------------------------

    def local_value(self, info: Any, address: int) -> str:
        """A variable as ``dv`` shows it: pointers always as numbers (a string after
        ``char *``), enumerations as ``Name (0nN)``, structures as ``struct _NAME``."""
        info = unwrap(info)
        if info is None:
            return "??"
        kind = info.kind
        if kind == "pointer":
            size = info.pointer_size or info.size or self.pointer_size
            value = self.pointer_at(address, size)
            if value is None:
                return "??"
            text = format_pointer(value, size)
            target = unwrap(info.type)
            if value and target is not None and target.kind == "base":
                if target.type_name in ("Char", "UChar"):
                    return f"{text} {self._c_string(value)}"
                if target.type_name == "Wchar":
                    return f"{text} {self._wide_string(value)}"
            return text
        if kind == "enum":
            value = self._int(address, info.size or 4, signed=True)
            if value is None:
                return "??"
            names = [name for name, number in info.enumerators if number == value]
            return f"{names[0]} (0n{value})" if names else f"0n{value}"
        if kind in AGGREGATES:
            return f"{kind} {info.name}{self._special(info, address)}"
        return self._value(info, address)


def _wide_text(data: bytes) -> str:
    data = data[: len(data) // 2 * 2]
    for index in range(0, len(data), 2):
        if data[index: index + 2] == b"\0\0":
            data = data[:index]
            break
    return data.decode("utf-16-le", "replace")
