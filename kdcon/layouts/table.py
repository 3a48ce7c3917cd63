"""Built-in layout tables: structures written the way ``dt`` prints them, served as types.

What it does: ``parse`` reads a layout text, one structure after another::

    _KAPC_STATE (0x30)
        +0x000 ApcListHead      : [2] _LIST_ENTRY
        +0x020 Process          : Ptr64 _KPROCESS
    union _LARGE_INTEGER (0x8)
        +0x000 QuadPart         : Int8B

Member types are ``dt``'s names: the built-ins (``UChar``, ``Char``, ``Uint2B``,
``Int2B``, ``Uint4B``, ``Int4B``, ``Uint8B``, ``Int8B``, ``Wchar``, ``Void``), another
structure of the same table, ``Ptr64 X`` (X may be a structure the table does not
define: it stays a forward reference), ``[N] X``, and ``Pos P, W Bits of Uint4B`` for a
bitfield (``dt`` leaves out the storage unit; the table needs it to read the bits).
``#`` starts a comment. ``LayoutTable`` serves the parsed structures through the
interface of a PDB type table (``find``, ``names``, ``by_index``, ``members_of``,
``enumerators_of``), so what it hands out are the same ``TypeInfo`` records a PDB
gives, and typed views, field offsets and ``dt``'s renderer read them unchanged.
``revised`` puts one version's differences into the table of another, so that a version
is written as what it changes (``WindowsLayout.base``). ``moved`` applies offsets and
sizes the target itself reports (``KDDEBUGGER_DATA64``).
What it does not do: know an offset (the per-version modules do), or describe anything
the extensions do not read: a built-in structure names only some of its fields.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import re
from dataclasses import dataclass, field, replace

from kdcon.symbols.pdb.typeinfo import Field, TypeInfo, builtin_info

__all__ = ["LayoutError", "MemberSpec", "StructSpec", "WindowsLayout", "parse", "LayoutTable",
           "moved", "revised"]

log = logging.getLogger(__name__)

# dt's names of the built-in types and their CodeView indices (cvinfo.h TYPE_ENUM_e).
BASE_TYPES = {
    "Void": 0x03, "Char": 0x70, "UChar": 0x20, "Int2B": 0x11, "Uint2B": 0x21,
    "Int4B": 0x12, "Uint4B": 0x22, "Int8B": 0x13, "Uint8B": 0x23, "Wchar": 0x71,
}
_FIRST_INDEX = 0x1000          # below are the built-ins, as in a PDB

_HEADER = re.compile(r"(?:(struct|union)\s+)?(\S+)\s+\((0x[0-9a-fA-F]+)\)$")
_MEMBER = re.compile(r"\+(0x[0-9a-fA-F]+)\s+(\w+)\s*:\s*(.+)$")
_BITFIELD = re.compile(r"Pos (\d+), (\d+) Bits? of (\w+)$")
_ARRAY = re.compile(r"\[(\d+)\]\s+(.+)$")


class LayoutError(ValueError):
    """A layout text that does not say what a layout must."""


@dataclass(frozen=True)
class MemberSpec:
    name: str
    offset: int
    type: str


@dataclass(frozen=True)
class StructSpec:
    name: str
    kind: str                  # "struct" or "union"
    size: int
    members: tuple[MemberSpec, ...] = field(default=())

    def member(self, name: str) -> MemberSpec | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True)
class WindowsLayout:
    """One Windows version's table: what it is, the builds it serves, where its offsets
    come from, and the layout text; with a ``base``, the text holds only where this
    version differs from that one (``revised``)."""

    name: str
    builds: tuple[int, ...]
    source: str
    text: str
    pointer_size: int = 8
    base: WindowsLayout | None = None

    def specs(self) -> dict[str, StructSpec]:
        own = dict(_parse_cached(self.text))
        return own if self.base is None else revised(self.base.specs(), own)


@functools.lru_cache(maxsize=16)
def _parse_cached(text: str) -> tuple[tuple[str, StructSpec], ...]:
    return tuple(parse(text).items())


def parse(text: str) -> dict[str, StructSpec]:
    """The structures of a layout text, by name, in the order written."""
    specs: dict[str, StructSpec] = {}
    current: StructSpec | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        member = _MEMBER.match(line)
        if member is not None:
            if current is None:
                raise LayoutError(f"line {number}: a member before any structure")
            offset, name, kind = int(member.group(1), 16), member.group(2), member.group(3)
            if current.member(name) is not None:
                raise LayoutError(f"line {number}: {current.name}.{name} given twice")
            current = replace(current, members=current.members + (
                MemberSpec(name, offset, kind.strip()),))
            specs[current.name] = current
            continue
        header = _HEADER.match(line)
        if header is None:
            raise LayoutError(f"line {number}: neither '_NAME (0xSIZE)' nor "
                              f"'+0xOFF Name : Type': {line!r}")
        name = header.group(2)
        if name in specs:
            raise LayoutError(f"line {number}: {name} defined twice")
        current = StructSpec(name, header.group(1) or "struct", int(header.group(3), 16))
        specs[name] = current
    return specs


def revised(base: dict[str, StructSpec], changes: dict[str, StructSpec]) -> dict[str, StructSpec]:
    """``base`` with ``changes`` put in. A structure of ``changes`` takes its kind and size
    from there, and each member it names replaces the base's member of that name where
    that one stands (a member the base lacks follows the base's); a structure the base
    lacks is added after the base's. Nothing is removed."""
    result = dict(base)
    for name, change in changes.items():
        spec = result.get(name)
        if spec is None:
            result[name] = change
            continue
        given = {member.name: member for member in change.members}
        members = tuple(given.pop(member.name, member) for member in spec.members)
        result[name] = replace(spec, kind=change.kind, size=change.size,
                               members=members + tuple(given.values()))
    return result


def moved(specs: dict[str, StructSpec], offsets: dict[tuple[str, str], int],
          sizes: dict[str, int]) -> dict[str, StructSpec]:
    """``specs`` with the offsets and sizes a kernel reports put in.

    ``offsets`` maps (structure, ``A.B``) to where ``A.B`` lies in that structure: the
    first member of the path moves so that the whole path lands there (``ApcState`` moves
    for ``_KTHREAD``'s ``ApcState.Process``). A path the table does not have, or a value
    that would put a member outside its structure, is left as the table says. A size
    that would cut a member off is ignored too.
    """
    result = dict(specs)
    for (struct_name, path), where in offsets.items():
        spec = result.get(struct_name)
        first, _, rest = path.partition(".")
        member = spec.member(first) if spec is not None else None
        if spec is None or member is None:
            continue
        inner = _path_offset(result, member.type, rest) if rest else 0
        if inner is None or not 0 <= where - inner < spec.size:
            log.info("kernel-reported offset %#x of %s.%s ignored: outside the layout",
                        where, struct_name, path)
            continue
        if where - inner != member.offset:
            log.info("%s.%s at %#x as the kernel reports (the table says %#x)",
                     struct_name, path, where, member.offset + inner)
        members = tuple(replace(m, offset=where - inner) if m.name == first else m
                        for m in spec.members)
        result[struct_name] = replace(spec, members=members)
    for struct_name, size in sizes.items():
        spec = result.get(struct_name)
        if spec is None or not size:
            continue
        needed = max((m.offset + _spec_size(result, m.type) for m in spec.members), default=0)
        if size < needed:
            log.info("kernel-reported size %#x of %s ignored: a member ends at %#x",
                        size, struct_name, needed)
            continue
        result[struct_name] = replace(spec, size=size)
    return result


def _path_offset(specs: dict[str, StructSpec], type_text: str, path: str) -> int | None:
    offset = 0
    for part in path.split("."):
        spec = specs.get(type_text)
        member = spec.member(part) if spec is not None else None
        if member is None:
            return None
        offset += member.offset
        type_text = member.type
    return offset


def _spec_size(specs: dict[str, StructSpec], type_text: str) -> int:
    """The size of a member type, for the size check (a bitfield counts its unit)."""
    if type_text.startswith("Ptr64 "):
        return 8
    bits = _BITFIELD.match(type_text)
    if bits is not None:
        return _spec_size(specs, bits.group(3))
    array = _ARRAY.match(type_text)
    if array is not None:
        return int(array.group(1)) * _spec_size(specs, array.group(2))
    if type_text in BASE_TYPES:
        return builtin_info(BASE_TYPES[type_text]).size
    spec = specs.get(type_text)
    return spec.size if spec is not None else 0


class LayoutTable:
    """Parsed structures as a type table: ``find("_EPROCESS")`` gives a ``TypeInfo``."""

    def __init__(self, specs: dict[str, StructSpec], *, name: str = "") -> None:
        self.name = name
        self._specs = specs
        self._index = {spec_name: _FIRST_INDEX + n for n, spec_name in enumerate(specs)}
        self._folded = {spec_name.lower(): spec_name for spec_name in specs}
        self._records: dict[int, TypeInfo] = {}
        self._by_text: dict[str, int] = {}
        self._members: dict[int, list[Field]] = {}
        self._next = _FIRST_INDEX + len(specs)
        for spec in specs.values():
            index = self._index[spec.name]
            self._records[index] = TypeInfo(index, spec.kind, spec.name, spec.size, table=self,
                                            field_list=index)
        for spec in specs.values():          # every member type must resolve now
            self.members_of(self._index[spec.name])

    # -- the type table interface ---------------------------------------------------------

    def find(self, name: str) -> TypeInfo | None:
        """The structure named ``name`` (exact, then case-insensitive)."""
        found = name if name in self._specs else self._folded.get(name.lower())
        return self._records[self._index[found]] if found is not None else None

    def names(self, pattern: str = "*") -> list[str]:
        folded = pattern.lower()
        return sorted(n for n in self._specs if fnmatch.fnmatchcase(n.lower(), folded))

    def by_index(self, ti: int) -> TypeInfo | None:
        if ti < _FIRST_INDEX:
            return builtin_info(ti)
        return self._records.get(ti)

    def members_of(self, field_list: int) -> list[Field]:
        members = self._members.get(field_list)
        if members is None:
            spec = self._specs[self._records[field_list].name]
            members = []
            for member in spec.members:
                info = self._records_for(member.type, spec.name)
                members.append(Field(member.name, member.offset, info.type_name, info,
                                     info.bit_position, info.bit_width))
            self._members[field_list] = members
        return members

    def enumerators_of(self, field_list: int) -> list[tuple[str, int]]:
        return []

    # -- member types -----------------------------------------------------------------------

    def _records_for(self, type_text: str, owner: str) -> TypeInfo:
        index = self._by_text.get(type_text)
        if index is None:
            index = self._by_text[type_text] = self._resolve(type_text, owner)
        info = self.by_index(index)
        assert info is not None
        return info

    def _resolve(self, text: str, owner: str) -> int:
        if text in BASE_TYPES:
            return BASE_TYPES[text]
        if text in self._index:
            return self._index[text]
        if text.startswith("Ptr64 "):
            target = text[6:].strip()
            ref = self._pointee(target, owner)
            return self._add(TypeInfo(0, "pointer", size=8, table=self, ref=ref, pointer_size=8))
        bits = _BITFIELD.match(text)
        if bits is not None:
            unit = BASE_TYPES.get(bits.group(3))
            if unit is None:
                raise LayoutError(f"{owner}: a bitfield's unit must be a built-in: {text!r}")
            return self._add(TypeInfo(0, "bitfield", size=builtin_info(unit).size, table=self,
                                      ref=unit, bit_position=int(bits.group(1)),
                                      bit_width=int(bits.group(2))))
        array = _ARRAY.match(text)
        if array is not None:
            element = self._records_for(array.group(2).strip(), owner)
            count = int(array.group(1))
            info = TypeInfo(0, "array", size=count * element.size, table=self,
                            ref=self._by_text[array.group(2).strip()])
            info.count = count
            return self._add(info)
        raise LayoutError(f"{owner}: unknown member type {text!r}")

    def _pointee(self, target: str, owner: str) -> int:
        if target in BASE_TYPES or target in self._index or target.startswith(("Ptr64 ", "[")):
            return self._records_for(target, owner).index
        # A structure the table leaves out: a pointer to it is still a pointer.
        return self._add(TypeInfo(0, "struct", target, 0, forward=True))

    def _add(self, info: TypeInfo) -> int:
        index = self._next
        self._next += 1
        info.index = index
        self._records[index] = info
        return index
