"""Type records as ``dt`` sees them: ``TypeInfo``, ``Field`` and name rendering.

``TypeInfo`` is what the type table hands out: kind, name, size, and lazily the
fields, enumerators and the type it refers to. ``type_name`` renders a type
the way WinDbg's ``dt`` prints a member's type ("Ptr64 _LIST_ENTRY",
"[16] Int4B", "Uint4B", "Pos 3, 2 Bits"). Built-in type indices (below
0x1000) are decoded here too. No record parsing: see ``tpi.py``. Spec:
symbols.md 2.8 (built-in indices, pointer modes); cvinfo.h ``TYPE_ENUM_e``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kdcon.symbols.pdb.tpi import TypeTable

__all__ = ["TypeInfo", "Field", "KINDS", "builtin_info"]

KINDS = ("struct", "union", "class", "enum", "pointer", "array", "bitfield", "modifier",
         "procedure", "base", "unknown")

# Built-in kinds (ti & 0xFF): (dt name, C name, size).
_BUILTINS: dict[int, tuple[str, str, int]] = {
    0x00: ("<NoType>", "<no type>", 0),
    0x03: ("Void", "void", 0),
    0x08: ("HRESULT", "HRESULT", 4),
    0x10: ("Char", "signed char", 1),
    0x11: ("Int2B", "short", 2),
    0x12: ("Int4B", "long", 4),
    0x13: ("Int8B", "__int64", 8),
    0x14: ("Int16B", "__int128", 16),
    0x20: ("UChar", "unsigned char", 1),
    0x21: ("Uint2B", "unsigned short", 2),
    0x22: ("Uint4B", "unsigned long", 4),
    0x23: ("Uint8B", "unsigned __int64", 8),
    0x24: ("Uint16B", "unsigned __int128", 16),
    0x30: ("Bool", "bool", 1),
    0x31: ("Bool", "bool", 2),
    0x32: ("Bool", "bool", 4),
    0x33: ("Bool", "bool", 8),
    0x40: ("Float", "float", 4),
    0x41: ("Float", "double", 8),
    0x42: ("Float", "long double", 10),
    0x68: ("Int1B", "__int8", 1),
    0x69: ("Uint1B", "unsigned __int8", 1),
    0x70: ("Char", "char", 1),
    0x71: ("Wchar", "wchar_t", 2),
    0x72: ("Int2B", "__int16", 2),
    0x73: ("Uint2B", "unsigned __int16", 2),
    0x74: ("Int4B", "int", 4),
    0x75: ("Uint4B", "unsigned int", 4),
    0x76: ("Int8B", "__int64", 8),
    0x77: ("Uint8B", "unsigned __int64", 8),
    0x7A: ("Wchar", "char16_t", 2),
    0x7B: ("Uint4B", "char32_t", 4),
    0x7C: ("Char", "char8_t", 1),
}

# Built-in pointer modes ((ti >> 8) & 0xF): pointer size in bytes.
_BUILTIN_POINTER_SIZE = {1: 2, 2: 4, 3: 4, 4: 4, 5: 6, 6: 8}


@dataclass(frozen=True, slots=True)
class Field:
    """One data member of a structure, union or class."""

    name: str
    offset: int
    type_name: str
    type: TypeInfo
    bit_position: int | None = None
    bit_width: int | None = None


class TypeInfo:
    """A type as the display needs it; ``fields``, ``enumerators`` and ``type`` load lazily."""

    __slots__ = ("index", "kind", "name", "size", "forward", "pointer_size", "count",
                 "bit_position", "bit_width", "_table", "_ref", "_field_list", "_fields",
                 "_enumerators", "_type_name")

    def __init__(self, index: int, kind: str, name: str = "", size: int = 0, *,
                 table: TypeTable | None = None, ref: int = 0, field_list: int = 0,
                 forward: bool = False, pointer_size: int = 0, bit_position: int | None = None,
                 bit_width: int | None = None) -> None:
        self.index = index
        self.kind = kind
        self.name = name
        self.size = size
        self.forward = forward
        self.pointer_size = pointer_size
        self.bit_position = bit_position
        self.bit_width = bit_width
        self.count = 0
        self._table = table
        self._ref = ref
        self._field_list = field_list
        self._fields: list[Field] | None = None
        self._enumerators: list[tuple[str, int]] | None = None
        self._type_name: str | None = None

    def __repr__(self) -> str:
        return f"TypeInfo(0x{self.index:x}, {self.kind}, {self.name or self.type_name!r}, size={self.size})"

    @property
    def type(self) -> TypeInfo | None:
        """The type this one refers to: pointee, element, modified, bitfield base,
        enum underlying type or procedure return type."""
        if self._table is None or not self._ref:
            return None if self.kind != "pointer" else builtin_info(0x0003)
        return self._table.by_index(self._ref)

    @property
    def fields(self) -> list[Field]:
        """Data members in declaration order (empty for non-aggregates)."""
        if self._fields is None:
            if self._table is not None and self.kind in ("struct", "union", "class"):
                self._fields = self._table.members_of(self._field_list)
            else:
                self._fields = []
        return self._fields

    @property
    def enumerators(self) -> list[tuple[str, int]]:
        """(name, value) pairs of an enum."""
        if self._enumerators is None:
            if self._table is not None and self.kind == "enum":
                self._enumerators = self._table.enumerators_of(self._field_list)
            else:
                self._enumerators = []
        return self._enumerators

    @property
    def type_name(self) -> str:
        """How ``dt`` prints a member of this type."""
        if self._type_name is None:
            self._type_name = _render(self, 0)
        return self._type_name

    @property
    def c_name(self) -> str:
        """A C-like name: the UDT name, or the built-in's C spelling."""
        if self.kind == "base":
            return _BUILTINS.get(self.index & 0xFF, ("", f"<type 0x{self.index:x}>", 0))[1]
        if self.kind == "modifier":
            inner = self.type
            return inner.c_name if inner is not None else "<unknown>"
        return self.name or self.type_name


_MAX_RENDER_DEPTH = 32


def _render(info: TypeInfo, depth: int) -> str:
    if depth > _MAX_RENDER_DEPTH:
        return "<recursion>"
    kind = info.kind
    if kind in ("struct", "union", "class", "enum"):
        return info.name
    if kind == "base":
        return _BUILTINS.get(info.index & 0xFF, (f"<type 0x{info.index:x}>", "", 0))[0]
    if kind == "bitfield":
        width = info.bit_width or 0
        return f"Pos {info.bit_position}, {width} Bit{'s' if width != 1 else ''}"
    inner = info.type
    if kind == "modifier":
        return _render(inner, depth + 1) if inner is not None else "<unknown>"
    if kind == "pointer":
        target = _render(inner, depth + 1) if inner is not None else "Void"
        return f"Ptr{info.pointer_size * 8} {target}"
    if kind == "array":
        target = _render(inner, depth + 1) if inner is not None else "<unknown>"
        return f"[{info.count}] {target}"
    if kind == "procedure":
        # dt prints a function pointer as "Ptr64     long " (the return type's C name).
        return f"    {inner.c_name if inner is not None else 'void'} "
    return "<unknown>"


def builtin_info(ti: int) -> TypeInfo:
    """TypeInfo of a built-in type index (< 0x1000), pointer modes included."""
    mode = (ti >> 8) & 0xF
    if mode and ti & 0xFF in _BUILTINS:
        size = _BUILTIN_POINTER_SIZE.get(mode, 8)
        return TypeInfo(ti, "pointer", size=size, pointer_size=size,
                        table=_BuiltinTable(), ref=ti & 0xFF)
    _, _, size = _BUILTINS.get(ti & 0xFF, ("", "", 0))
    return TypeInfo(ti, "base", size=size)


class _BuiltinTable:
    """Stands in for a type table when only built-ins are involved."""

    def by_index(self, ti: int) -> TypeInfo:
        return builtin_info(ti)
