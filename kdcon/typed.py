"""Typed views of target memory through PDB types: ``target.typed(addr, "mod!_TYPE").Field``.

What it does: ``TypedView`` reads a structure's bytes once, through the session's
per-stop cache, and decodes a field when it is asked for: integers, enums (an ``int``
that knows its enumerator's name), pointers and bitfields as numbers, nested
structures and unions as views, arrays as ``TypedArray`` (indexable; a ``char`` or
``wchar_t`` array reads as a string). ``containing_record`` is CONTAINING_RECORD and
``walk_list`` follows a LIST_ENTRY chain to the structures that hold it, stopping at
the head, a null link, a link seen before or a limit.
What it does not do: write memory, or know a layout: every offset, size and name
comes from the type table of the module the type was found in (``symbols.pdb``), or for
a kernel without its PDB from the built-in layout standing in for it (``layouts``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import CommandError

if TYPE_CHECKING:
    from .target import Target

__all__ = ["TypedView", "TypedArray", "EnumValue", "TypeNotFound", "resolve_type",
           "containing_record", "walk_list"]

# dt's names of the built-in types: (struct format, signed).
_BASE_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}
_SIGNED_PREFIXES = ("Int", "Char")
_FLOATS = {4: "<f", 8: "<d"}


class TypeNotFound(CommandError):
    """No loaded symbol file knows the type."""


class EnumValue(int):
    """An enum field's value; ``.name`` is its enumerator (None if none matches)."""

    enumerators: tuple[tuple[str, int], ...] = ()

    def __new__(cls, value: int, enumerators: tuple[tuple[str, int], ...] = ()) -> EnumValue:
        self = super().__new__(cls, value)
        self.enumerators = enumerators
        return self

    @property
    def name(self) -> str | None:
        return next((name for name, value in self.enumerators if value == int(self)), None)

    def __repr__(self) -> str:
        return f"{self.name or '?'} ({int(self)})"


def resolve_type(target: Target, type_name: str) -> tuple[Any, str]:
    """The TypeInfo of ``mod!Type`` (or a bare name) and the module it came from."""
    info = target.find_type(type_name)
    if info is None:
        raise TypeNotFound(target.missing_type_message(type_name))
    module = type_name.rpartition("!")[0]
    return info, module


def _strip(info: Any) -> Any:
    """The type under modifiers (const, volatile) and typedefs."""
    for _ in range(16):
        if info.kind not in ("modifier", "typedef") or info.type is None:
            break
        info = info.type
    return info


def _complete(target: Target, info: Any, module: str) -> Any:
    """A forward reference's complete definition, found by name in the same module."""
    if info.kind in ("struct", "union", "class") and (info.forward or not info.size) and info.name:
        found = target.find_type(f"{module}!{info.name}" if module else info.name)
        if found is not None:
            return found
    return info


def decode(target: Target, info: Any, module: str, address: int, data: bytes) -> Any:
    """The value of a ``info``-typed object at ``address`` whose bytes are ``data``."""
    info = _complete(target, _strip(info), module)
    kind = info.kind
    if kind in ("struct", "union", "class"):
        return TypedView(target, address, info, module, data[:info.size])
    if kind == "array":
        return TypedArray(target, address, info, module, data)
    if kind == "pointer":
        size = info.pointer_size or target.pointer_size
        return int.from_bytes(data[:size], "little")
    if kind == "enum":
        base = info.type
        size = info.size or (base.size if base is not None else 4) or 4
        return EnumValue(int.from_bytes(data[:size], "little"), tuple(info.enumerators))
    if kind == "bitfield":
        base = _strip(info.type) if info.type is not None else None
        size = base.size if base is not None and base.size else 4
        raw = int.from_bytes(data[:size], "little")
        return (raw >> (info.bit_position or 0)) & ((1 << (info.bit_width or 0)) - 1)
    if kind == "base":
        name = info.type_name
        if name == "Float" and info.size in _FLOATS:
            return struct.unpack(_FLOATS[info.size], data[:info.size])[0]
        if info.size not in _BASE_FORMATS:
            return int.from_bytes(data[:info.size], "little") if info.size else None
        signed = name.startswith(_SIGNED_PREFIXES)
        value = int.from_bytes(data[:info.size], "little", signed=signed)
        return bool(value) if name == "Bool" else value
    if kind == "procedure":
        return address
    return bytes(data[:info.size])


class TypedView:
    """A structure, union or class at one address; fields are attributes.

    A field that shares its name with a member of the view (``address``, ``size``,
    ``fields``, ``raw``, ``field``, ``string``...) is read with ``view.field(name)``.
    """

    __slots__ = ("_target", "_module", "_info", "address", "_data")

    def __init__(self, target: Target, address: int, info: Any, module: str = "",
                 data: bytes | None = None) -> None:
        self._target = target
        self._module = module
        self._info = info
        self.address = address
        self._data = data

    # -- what it is --------------------------------------------------------------------

    @property
    def type_name(self) -> str:
        return f"{self._module}!{self._info.name}" if self._module else self._info.name

    @property
    def size(self) -> int:
        return self._info.size

    @property
    def fields(self) -> list[str]:
        return [f.name for f in self._info.fields]

    def raw(self) -> bytes:
        """The structure's bytes (read once)."""
        if self._data is None:
            self._data = self._target.read_exact(self.address, self._info.size)
        return self._data

    # -- fields ------------------------------------------------------------------------------

    def _field(self, name: str) -> Any:
        for item in self._info.fields:
            if item.name == name:
                return item
        raise AttributeError(f"{self.type_name} has no field {name}")

    def offset_of(self, path: str) -> int:
        """The offset of ``A.B.C`` from the start of this structure."""
        info = self._info
        offset = 0
        for part in path.split("."):
            if info is None or info.kind not in ("struct", "union", "class"):
                raise AttributeError(f"{path}: {part} is not inside a structure")
            item = next((f for f in info.fields if f.name == part), None)
            if item is None:
                raise AttributeError(f"{info.name} has no field {part}")
            offset += item.offset
            info = _complete(self._target, _strip(item.type), self._module)
        return offset

    def address_of(self, path: str) -> int:
        return self.address + self.offset_of(path)

    def field(self, name: str) -> Any:
        """The value of field ``name`` (also for names an attribute cannot spell)."""
        item = self._field(name)
        return decode(self._target, item.type, self._module, self.address + item.offset,
                      self.raw()[item.offset:])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.field(name)

    def __getitem__(self, path: str) -> Any:
        """``view["A.B"]``: a nested field by its dotted path."""
        value: Any = self
        for part in path.split("."):
            value = value.field(part)
        return value

    def string(self, limit: int = 0xFFFE) -> str:
        """A counted string structure (UNICODE_STRING, ANSI_STRING: ``Length`` bytes at
        ``Buffer``), as UTF-16 when ``Buffer`` points to 2-byte characters."""
        names = self.fields
        if "Length" not in names or "Buffer" not in names:
            raise AttributeError(f"{self.type_name} is not a counted string (Length, Buffer)")
        length, buffer = min(self.Length, limit), self.Buffer
        if not length or not buffer:
            return ""
        pointee = _strip(self._field("Buffer").type)
        wide = pointee.type is not None and _strip(pointee.type).size == 2
        data = self._target.read_exact(buffer, length)
        return data.decode("utf-16-le", "replace") if wide else data.decode("latin-1")

    def as_dict(self) -> dict[str, Any]:
        """Every field's value (nested structures as views)."""
        return {name: self.field(name) for name in self.fields}

    def __repr__(self) -> str:
        return f"<{self.type_name} at {self.address:#x}>"


class TypedArray:
    """A fixed-size array field: ``len``, indexing, ``bytes()`` and ``string()``."""

    __slots__ = ("_target", "_module", "_info", "_element", "address", "_data")

    def __init__(self, target: Target, address: int, info: Any, module: str, data: bytes) -> None:
        self._target = target
        self._module = module
        self._info = info
        self._element = _complete(target, _strip(info.type), module) if info.type is not None \
            else None
        self.address = address
        self._data = data

    def __len__(self) -> int:
        return self._info.count or 0

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self) or self._element is None:
            raise IndexError(index)
        size = self._element.size
        at = index * size
        return decode(self._target, self._element, self._module, self.address + at,
                      self._data[at: at + size])

    def __iter__(self) -> Iterator[Any]:
        return (self[index] for index in range(len(self)))

    def bytes(self) -> bytes:
        return bytes(self._data[: self._info.size])

    def string(self) -> str:
        """A char array up to its NUL as Latin-1, a wchar_t array as UTF-16."""
        data = self.bytes()
        if self._element is not None and self._element.size == 2:
            for index in range(0, len(data) - 1, 2):
                if data[index: index + 2] == b"\0\0":
                    data = data[:index]
                    break
            return data.decode("utf-16-le", "replace")
        return data.split(b"\0", 1)[0].decode("latin-1")

    def __repr__(self) -> str:
        return f"<array [{len(self)}] at {self.address:#x}>"


def _structure(target: Target, type_name: str) -> tuple[Any, str]:
    info, module = resolve_type(target, type_name)
    info = _complete(target, _strip(info), module)
    if info.kind not in ("struct", "union", "class"):
        raise TypeNotFound(f"{type_name} is not a structure, union or class")
    return info, module


def typed(target: Target, address: int, type_name: str) -> TypedView:
    info, module = _structure(target, type_name)
    return TypedView(target, address, info, module)


def containing_record(target: Target, address: int, type_name: str, field: str) -> TypedView:
    """CONTAINING_RECORD(address, type, field): the structure whose ``field`` is at ``address``."""
    info, module = _structure(target, type_name)
    offset = TypedView(target, 0, info, module).offset_of(field)
    return TypedView(target, address - offset, info, module)


def walk_list(target: Target, head: int, type_name: str, field: str, *,
              limit: int = 100_000) -> Iterator[TypedView]:
    """The structures linked through their ``field`` LIST_ENTRY from ``head`` (Flink order).

    Stops at the head, a null link, a link already seen (a damaged list) or ``limit``.
    """
    info, module = _structure(target, type_name)
    offset = TypedView(target, 0, info, module).offset_of(field)
    seen = {head}
    entry = target.pointer(head)
    while entry and entry not in seen and len(seen) <= limit:
        seen.add(entry)
        target.check_cancelled()
        yield TypedView(target, entry - offset, info, module)
        entry = target.pointer(entry)
