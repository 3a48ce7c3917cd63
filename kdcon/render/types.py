"""WinDbg's ``dt`` text: a type's layout, or its fields and values at an address.

What it does: ``TypeDisplay`` walks a ``TypeInfo`` (symbols/pdb/typeinfo.py) and
writes the lines ``dt`` prints, byte for byte where WinDbg's form is known::

       +0x000 ListEntry        : _LIST_ENTRY [ 0xfffffa80`00000c10 - 0xfffff800`01077000 ]
       +0x020 Allocator        : 1 ( TrackFnExAllocatePoolWithTag )
       +0x02c Source           : [41]  "d:\\dev\\trackdemo\\trackdemo.c"

Names are padded to 16 (to the longest one asked for when fields are selected),
nested fields are indented three more; a structure at an address first shows its
value line when it has one (``[ Flink - Blink ]``, a string). ``-r[N]`` expands
embedded structures and the structures pointers point to, N levels deep; ``-b``
expands embedded structures and arrays at any depth, never pointers; a field
selection (``Field``, ``Field.``, ``A.B``, ``Pre*``) shows only those fields, a parent
on a path without its type name, and ``Field[3]`` one element of an array field
(shown as ``Field[3]`` at that element's offset; ``Field[3].Sub`` goes on into it).
``-a[N]`` shows each array element on a line of its own (the first N), ``-c`` puts a
structure's fields on one line (``+0x000 Flink 0x... +0x008 Blink 0x...``), an
array element's with its index. Values come from ``render/values.py``;
``derived_type`` makes a type from the name the symbols layer gives a global.
What it does not do: find types, read memory, or parse the command line
(commands/types.py: ``-l`` lists, ``-p`` and instance arrays are shown from there).
Spec: windbg.md §0.5; the dt page of the debugger documentation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kdcon.symbols.pdb.typeinfo import builtin_info

from .values import AGGREGATES, Reader, Symbolizer, ValueFormatter, format_pointer, unwrap

__all__ = ["TypeDisplay", "DisplayOptions", "Selection", "derived_type", "unwrap",
           "format_pointer", "AGGREGATES", "subscript"]

_NAME_WIDTH = 16
_INDENT = "   "
_MAX_BLOCK_ELEMENTS = 0x1000
_SUBSCRIPT = re.compile(r"^(.*)\[(\d+)\]$")


def subscript(part: str) -> tuple[str, int | None]:
    """``Field[3]`` as (``Field``, 3); a part without a subscript as (part, None). The
    subscript is decimal whatever the radix, as the dt page says."""
    found = _SUBSCRIPT.match(part)
    return (found.group(1), int(found.group(2))) if found else (part, None)

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
    arrays: bool = False      # -a[N]: each array element on its own line
    array_count: int | None = None   # -aN: the first N elements (None: all)
    compact: bool = False     # -c: a structure's fields on one line
    size: int | None = None   # -s N: a pattern lists only the types of N bytes


class Selection:
    """The fields asked for on the command line, as paths (``A.B``, ``Pre*``, ``F.``)."""

    def __init__(self, texts: list[str]) -> None:
        self.paths = [text.split(".") for text in texts]
        self.width = max(len(text) for text in texts)

    @staticmethod
    def matches(part: str, name: str, more: bool) -> bool:
        part = subscript(part)[0]
        if part == "":
            return True
        if part.endswith("*"):
            return name.lower().startswith(part[:-1].lower())
        if more:
            return name.lower().startswith(part.lower())
        return name == part or name.lower() == part.lower()


def _reachable(info: Any, path: list[str], depth: int = 0) -> bool:
    """Whether the rest of a field path names fields under ``info`` (a structure, or a
    pointer to one); trailing periods (empty parts) always do."""
    if not any(path):
        return True
    info = unwrap(info)
    if info is not None and info.kind == "pointer":
        info = unwrap(info.type)
    if info is None or info.kind not in AGGREGATES or depth > 16:
        return False
    return any(Selection.matches(path[0], member.name, len(path) > 1)
               and _reachable(member.type, path[1:], depth + 1) for member in info.fields)


class TypeDisplay(ValueFormatter):
    """Lines of one ``dt``: ``show(info, address)`` then ``lines`` and ``rows``."""

    def __init__(self, read: Reader, pointer_size: int, symbolizer: Symbolizer | None = None,
                 options: DisplayOptions | None = None) -> None:
        super().__init__(read, pointer_size, symbolizer)
        self.options = options or DisplayOptions()
        self.lines: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.matched = 0
        self._pieces: list[str] = []      # -c: the fields of the line being built

    def _append(self, line: str) -> None:
        self._flush()
        self.lines.append(line)

    def _flush(self) -> None:
        if self._pieces:
            self.lines.append(_INDENT + " ".join(self._pieces))
            self._pieces = []

    # -- the whole display -----------------------------------------------------------------

    def show(self, info: Any, address: int | None, selection: Selection | None = None,
             header: str | None = None) -> None:
        """Lines for ``info`` (at ``address``, or its layout when None)."""
        top = unwrap(info)
        if top is None:
            return
        if self.options.verbose and top.kind in AGGREGATES:
            self._append(self._verbose_name(top))
        elif header:
            self._append(header)
        if top.kind in AGGREGATES:
            if address is not None and selection is None:
                special = self._special(top, address)
                if special:
                    self._append(special)
            self._members(top, address, 0, selection.paths if selection else None,
                          selection.width if selection else _NAME_WIDTH)
            self._flush()
            return
        if top.kind == "enum" and address is None:
            for name, value in top.enumerators:
                self._append(f"{_INDENT}{name} = 0n{value}")
            return
        self._append(top.type_name if address is None else self._value(top, address))

    def _members(self, agg: Any, base: int | None, level: int, paths: list[list[str]] | None,
                 width: int) -> None:
        for member in agg.fields:
            subpaths = None
            if paths is not None:
                for path in paths:
                    index = subscript(path[0])[1]
                    if index is not None and Selection.matches(path[0], member.name, len(path) > 1):
                        self._element_field(member, index, base, level, path[1:], width)
                subpaths = [path[1:] for path in paths
                            if subscript(path[0])[1] is None
                            and Selection.matches(path[0], member.name, len(path) > 1)
                            and _reachable(member.type, path[1:])]
                if not subpaths:
                    continue
                self.matched += 1
            self._member(member, base, level, subpaths, width)

    def _element_field(self, member: Any, index: int, base: int | None, level: int,
                       rest: list[str], width: int) -> None:
        """``Field[3]``: one element of an array field, at its own offset."""
        array = unwrap(member.type)
        if array is None or array.kind != "array" or index >= array.count:
            return
        element = unwrap(array.type)
        if element is None or not _reachable(element, rest):
            return
        self.matched += 1
        offset = member.offset + index * element.size
        address = None if base is None else base + offset
        wanted = [part for part in [rest] if any(rest)] or None
        if address is None:
            text = element.type_name
        else:
            text = self._value(element, address, named=not wanted)
        self._emit(level, offset, f"{member.name}[{index}]", text, width)
        if wanted and element.kind in AGGREGATES:
            self._members(element, address, level + 1, wanted, width)

    def _member(self, member: Any, base: int | None, level: int,
                subpaths: list[list[str]] | None, width: int) -> None:
        info = unwrap(member.type)
        address = None if base is None else base + member.offset
        wanted = [p for p in subpaths if p] if subpaths is not None else None
        by_selection = bool(wanted)
        expand_to, child_base = self._expansion(info, address, level, by_selection)
        if info is not None and info.kind == "array" and address is not None and \
                (self.options.arrays or
                 (self.options.blocks and not self._is_text(unwrap(info.type)))):
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
        count = array.count
        if self.options.arrays and self.options.array_count is not None:
            count = min(count, self.options.array_count)
        self._flush()
        for index in range(min(count, _MAX_BLOCK_ELEMENTS)):
            at = address + index * size
            if element is not None and element.kind in AGGREGATES:
                if self.options.compact:
                    self._pieces.append(f"{pad[len(_INDENT):]}[{index:02d}]")
                    self._members(element, at, level + 1, None, width)
                    self._flush()
                    continue
                self._append(f"{pad}[{index:02d}]")
                self._members(element, at, level + 1, None, width)
            else:
                self._append(f"{pad}[{index:02d}] {self._value(element, at)}")

    def _emit(self, level: int, offset: int, name: str, text: str, width: int) -> None:
        indent = _INDENT * (level + 1) if self.options.indent else _INDENT
        where = f"+0x{offset:03x} " if self.options.offsets else ""
        self.rows.append({"level": level, "offset": offset, "name": name, "value": text})
        if self.options.compact:
            self._pieces.append(f"{where}{name} {text.strip()}".rstrip())
            return
        self.lines.append(f"{indent}{where}{name:<{width}} : {text}")

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
