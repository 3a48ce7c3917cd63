"""WinDbg's ``dt`` text: a type's layout, or its value at an address.

What it does: ``TypeDisplay`` walks a ``TypeInfo`` (symbols/pdb/typeinfo.py) and
writes the lines ``dt`` prints, byte for byte where WinDbg's form is known::

       +0x000 ListEntry        : _LIST_ENTRY [ 0xfffffa80`00000c10 - 0xfffff800`01077000 ]
       +0x010 Value            : 0xfffffa80`00001100
       +0x020 Allocator        : 1 ( TrackFnExAllocatePoolWithTag )
       +0x02c Source           : [41]  "d:\\dev\\trackdemo\\trackdemo.c"
       +0x000 PoolIndex        : 0y00000000 (0)
       +0x008 DeviceObject     : (null) 
       +0x058 DriverInit       : 0xfffff802`3fbc1480     long  nt!Start+0

Values follow the rules WinDbg's own output shows: signed integers in decimal with
``0n``, unsigned ones below 10 as a digit and others in hex (64-bit values over 32
bits with the backtick), characters with their glyph, bit fields in binary (and
their value after five bits or more), enumerations with their name, pointers with
the type they point to (a string for ``char``/``wchar_t``, the pointee for a
pointer), ``LIST_ENTRY`` as ``[ Flink - Blink ]``, ``UNICODE_STRING`` and
``STRING`` as their text, ``LARGE_INTEGER`` as one number. Memory that cannot be
read shows ``??`` and the first failing address is kept for the caller's message.
Every text that comes from the target goes through ``printable``.

``-r[N]`` expands embedded structures and the structures pointers point to, N
levels deep; ``-b`` expands embedded structures and arrays at any depth, never
pointers; a field selection (``Field``, ``Field.``, ``A.B``, ``Pre*``) shows only
those fields, padded to the longest name asked for.
What it does not do: find types or parse the command line (commands/types.py).
Spec: windbg.md §0.5; the dt page of the debugger documentation.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kdcon.symbols.pdb.typeinfo import builtin_info

from ..output import printable

__all__ = ["TypeDisplay", "DisplayOptions", "Selection", "derived_type", "unwrap",
           "format_pointer", "AGGREGATES"]

Reader = Callable[[int, int], bytes]
Symbolizer = Callable[[int], "str | None"]

AGGREGATES = ("struct", "union", "class")
_NAME_WIDTH = 16
_INDENT = "   "
_MAX_STRING = 0x100
_MAX_COUNTED = 0xFFFE
_MAX_BLOCK_ELEMENTS = 0x1000

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


# -- types made from a name (a global's type as the symbols layer renders it) ---------------

_BUILTIN_BY_NAME: dict[str, int] = {}
for _ti in range(0x80):
    _info = builtin_info(_ti)
    if _info.kind == "base" and not _info.type_name.startswith("<"):
        _BUILTIN_BY_NAME.setdefault(_info.type_name, _ti)


@dataclass
class _Derived:
    """A pointer or array type built from its name, shaped like ``TypeInfo``."""

    kind: str
    type: Any = None
    count: int = 0
    pointer_size: int = 0
    name: str = ""
    size: int = 0
    bit_position: int | None = None
    bit_width: int | None = None
    fields: list = field(default_factory=list)
    enumerators: list = field(default_factory=list)
    rendered: str = ""

    @property
    def type_name(self) -> str:
        return self.rendered


def derived_type(text: str, find: Callable[[str], Any]) -> Any:
    """A ``TypeInfo``-like type for ``Ptr64 _LIST_ENTRY``, ``[29] Ptr64 Char``,
    ``Uint4B`` or a UDT name (looked up with ``find``); None if unknown."""
    text = text.strip()
    if text.startswith("Ptr") and " " in text:
        bits, rest = text[3:].split(" ", 1)
        size = int(bits) // 8 if bits.isdigit() else 8
        target = derived_type(rest, find) if rest.strip() not in ("long", "void") else \
            _Derived("procedure", rendered=rest)
        if target is None:
            return None
        return _Derived("pointer", target, pointer_size=size, size=size, rendered=text)
    if text.startswith("[") and "] " in text:
        count, rest = text[1:].split("] ", 1)
        target = derived_type(rest, find)
        if target is None or not count.isdigit():
            return None
        return _Derived("array", target, count=int(count), size=int(count) * target.size,
                        rendered=text)
    if text in _BUILTIN_BY_NAME:
        return builtin_info(_BUILTIN_BY_NAME[text])
    return find(text)


# -- what to show ------------------------------------------------------------------------------

@dataclass
class DisplayOptions:
    depth: int = 0            # -r[N]: levels of structures expanded
    blocks: bool = False      # -b: embedded structures and arrays at any depth
    verbose: bool = False     # -v: sizes and element counts
    offsets: bool = True      # -o turns them off
    indent: bool = True       # -i turns it off


class Selection:
    """The fields asked for on the command line, as paths (``A.B``, ``Pre*``, ``F.``)."""

    def __init__(self, texts: list[str]) -> None:
        self.paths = [text.split(".") for text in texts]
        self.width = max(len(text) for text in texts)

    @staticmethod
    def matches(part: str, name: str, more: bool) -> bool:
        if part == "":
            return True
        if part.endswith("*"):
            return name.lower().startswith(part[:-1].lower())
        if more:
            return name.lower().startswith(part.lower())
        return name == part or name.lower() == part.lower()

    def first_names(self) -> list[str]:
        return [path[0] for path in self.paths]


@dataclass
class _Line:
    level: int
    offset: int | None
    name: str
    text: str


class TypeDisplay:
    """Lines of one ``dt``: ``show(info, address)`` then ``lines`` and ``rows``."""

    def __init__(self, read: Reader, pointer_size: int, symbolizer: Symbolizer | None = None,
                 options: DisplayOptions | None = None) -> None:
        self._read = read
        self.pointer_size = pointer_size
        self._symbolizer = symbolizer
        self.options = options or DisplayOptions()
        self.lines: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.failed_at: int | None = None
        self.matched = 0

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

    # -- the whole display -----------------------------------------------------------------

    def show(self, info: Any, address: int | None, selection: Selection | None = None,
             header: str | None = None) -> None:
        """Lines for ``info`` (at ``address``, or its layout when None)."""
        top = unwrap(info)
        if top is None:
            return
        if self.options.verbose and top.kind in AGGREGATES:
            self.lines.append(self._verbose_name(top))
        elif header:
            self.lines.append(header)
        if top.kind in AGGREGATES:
            if address is not None and selection is None:
                special = self._special(top, address)
                if special:
                    self.lines.append(special)
            self._members(top, address, 0, selection.paths if selection else None,
                          selection.width if selection else _NAME_WIDTH)
            return
        if top.kind == "enum" and address is None:
            for name, value in top.enumerators:
                self.lines.append(f"{_INDENT}{name} = 0n{value}")
            return
        self.lines.append(top.type_name if address is None else self._value(top, address))

    def _members(self, agg: Any, base: int | None, level: int, paths: list[list[str]] | None,
                 width: int) -> None:
        for member in agg.fields:
            subpaths = None
            if paths is not None:
                subpaths = [path[1:] for path in paths
                            if Selection.matches(path[0], member.name, len(path) > 1)]
                if not subpaths:
                    continue
                self.matched += 1
            self._member(member, base, level, subpaths, width)

    def _member(self, member: Any, base: int | None, level: int,
                subpaths: list[list[str]] | None, width: int) -> None:
        info = unwrap(member.type)
        address = None if base is None else base + member.offset
        wanted = [p for p in subpaths if p] if subpaths is not None else None
        by_selection = bool(wanted)
        expand_to, child_base = self._expansion(info, address, level, by_selection)
        if self.options.blocks and info is not None and info.kind == "array" and \
                address is not None and not self._is_text(unwrap(info.type)):
            self._emit(level, member.offset, member.name, "", width)
            self._elements(info, address, level, width)
            return
        plain = by_selection or (self.options.blocks and expand_to is not None and
                                 info.kind in AGGREGATES)
        if address is None:
            text = "" if by_selection and expand_to is not None else \
                (self._verbose_name(info, member) if self.options.verbose else member.type_name)
        else:
            text = self._value(info, address, named=not plain)
        self._emit(level, member.offset, member.name, text, width)
        if expand_to is None:
            return
        child_width = width if by_selection or self.options.blocks else _NAME_WIDTH
        self._members(expand_to, child_base, level + 1, wanted if by_selection else None,
                      child_width)

    def _expansion(self, info: Any, address: int | None, level: int,
                   by_selection: bool) -> tuple[Any, int | None]:
        """The aggregate whose fields go under this field, and where it is."""
        if info is None:
            return None, None
        if info.kind in AGGREGATES:
            if by_selection or level < self.options.depth or self.options.blocks:
                return info, address
            return None, None
        if info.kind != "pointer" or self.options.blocks:
            return None, None
        target = unwrap(info.type)
        if target is None or target.kind not in AGGREGATES or not target.fields:
            return None, None
        if not (by_selection or level < self.options.depth):
            return None, None
        if address is None:
            return target, None
        pointer = self.pointer_at(address, info.pointer_size or info.size)
        if not pointer or self._read(pointer, 1) == b"":
            return None, None
        return target, pointer

    def _elements(self, array: Any, address: int, level: int, width: int) -> None:
        element = unwrap(array.type)
        size = element.size if element is not None else 0
        pad = (_INDENT * (level + 1) + " ") if self.options.indent else " "
        for index in range(min(array.count, _MAX_BLOCK_ELEMENTS)):
            at = address + index * size
            if element is not None and element.kind in AGGREGATES:
                self.lines.append(f"{pad}[{index:02d}]")
                self._members(element, at, level + 1, None, width)
            else:
                self.lines.append(f"{pad}[{index:02d}] {self._value(element, at)}")

    def _emit(self, level: int, offset: int, name: str, text: str, width: int) -> None:
        indent = _INDENT * (level + 1) if self.options.indent else _INDENT
        where = f"+0x{offset:03x} " if self.options.offsets else ""
        self.lines.append(f"{indent}{where}{name:<{width}} : {text}")
        self.rows.append({"level": level, "offset": offset, "name": name, "value": text})

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
        count = info.count
        if element is not None and self._is_text(element):
            if element.type_name == "Wchar":
                data = self._bytes(address, count * 2)
                return f"[{count}]  " + (self._quote(_wide_text(data)) if data is not None
                                         else "??")
            data = self._bytes(address, count)
            return f"[{count}]  " + (self._quote(data.split(b"\0", 1)[0].decode("latin-1"))
                                     if data is not None else "??")
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
        data = self._read(pointer, min(count, _MAX_COUNTED))
        if not data:
            return self._read_error(pointer)
        return self._quote(_wide_text(data) if wide else data.decode("latin-1"))

    def _c_string(self, address: int) -> str:
        data = self._read(address, _MAX_STRING)
        if not data:
            return self._read_error(address)
        return self._quote(data.split(b"\0", 1)[0].decode("latin-1"))

    def _wide_string(self, address: int) -> str:
        data = self._read(address, _MAX_STRING * 2)
        if len(data) < 2:
            return self._read_error(address)
        return self._quote(_wide_text(data))

    def _read_error(self, address: int) -> str:
        return f'"--- memory read error at address {format_pointer(address, self.pointer_size)} ---"'

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

    # -- -v ------------------------------------------------------------------------------------

    def _verbose_name(self, info: Any, member: Any = None) -> str:
        info = unwrap(info)
        if info is None:
            return member.type_name if member is not None else ""
        kind = info.kind
        if kind in AGGREGATES:
            return f"{kind} {info.name}, {len(info.fields)} elements, 0x{info.size:x} bytes"
        if kind == "enum":
            return f"Enum {info.name},  {len(info.enumerators)} total enums"
        if kind == "bitfield":
            return f"Bitfield {info.type_name}"
        if kind == "pointer":
            target = unwrap(info.type)
            size = (info.pointer_size or info.size or self.pointer_size) * 8
            inner = self._verbose_name(target) if target is not None else "Void"
            return f"Ptr{size} to {inner}"
        return info.type_name


def _wide_text(data: bytes) -> str:
    data = data[: len(data) // 2 * 2]
    for index in range(0, len(data), 2):
        if data[index: index + 2] == b"\0\0":
            data = data[:index]
            break
    return data.decode("utf-16-le", "replace")
