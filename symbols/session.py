"""A symbol session: the module list, the symbol path, and lookups across modules.

Holds ``ModuleSymbols`` sorted by base so an address finds its module by
bisection (symbols.md §6.9), answers ``module!name`` and bare names,
``x``-style patterns whose module part may be a wildcard too (§6.10), and
``ln``'s nearest-symbol question. Changing the path forgets loaded symbols
(they load again on the next question, §3.4).

Answers are data (``NearSymbols``, ``SymbolMatch`` with its ``DataType`` or a
function's argument types, ``ModuleRow``) with absolute addresses; the console renders them as WinDbg
text (``kdcon.render.symbols``). Nothing here raises for a missing or corrupt
symbol file.
"""

from __future__ import annotations

import bisect
import fnmatch
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import SymbolError
from .index import has_wildcard
from .locate import SymbolLocator
from .model import SymbolKind, SymbolRecord
from .module import ModuleSymbols, SymbolState, module_name_for
from .path import SymbolPath
from .pe import PeImage, Reader

if TYPE_CHECKING:
    from .pdb.prototypes import Prototypes
    from .pdb.typeinfo import TypeInfo

__all__ = ["DataType", "ModuleRow", "NearSymbols", "SymbolMatch", "SymbolSession", "data_type_for"]

log = logging.getLogger(__name__)

# dt's names of the built-in types (symbols.md 2.8) -> (kind, C spelling, size).
_BASE_TYPES = {
    "Char": ("signed", "char", 1), "UChar": ("unsigned", "unsigned char", 1),
    "Int1B": ("signed", "char", 1), "Uint1B": ("unsigned", "unsigned char", 1),
    "Int2B": ("signed", "short", 2), "Uint2B": ("unsigned", "unsigned short", 2),
    "Int4B": ("signed", "long", 4), "Uint4B": ("unsigned", "unsigned long", 4),
    "Int8B": ("signed", "int64", 8), "Uint8B": ("unsigned", "unsigned int64", 8),
    "Wchar": ("unsigned", "wchar_t", 2), "Bool": ("bool", "bool", 1),
    "HRESULT": ("signed", "HRESULT", 4), "Float": ("float", "float", 4),
    "Void": ("unknown", "void", 0),
}


@dataclass(frozen=True, slots=True)
class DataType:
    """What ``x`` needs of a global's type.

    ``kind`` is ``aggregate`` (struct, union, class, array: shown by type),
    ``signed``, ``unsigned``, ``bool``, ``float``, ``pointer``, ``enum`` (shown by
    value) or ``unknown``; ``c_name`` is the C spelling (``struct _KSYSTEM_TIME``).
    """

    kind: str
    c_name: str
    size: int
    enumerators: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class SymbolMatch:
    """One symbol found, at its absolute address; ``data_type`` for typed globals,
    ``arguments`` for a function whose PDB gives its type: the ``TypeInfo`` of each
    argument in order (empty for ``(void)``; a last one of index 0 is C's ``...``)."""

    module: ModuleSymbols
    record: SymbolRecord
    address: int
    data_type: DataType | None = None
    arguments: tuple[TypeInfo, ...] | None = None

    @property
    def qualified(self) -> str:
        return f"{self.module.name}!{self.record.name}"


@dataclass(frozen=True, slots=True)
class ModuleRow:
    """One ``lm`` row: range, name, mismatch letter, symbol state and file."""

    base: int
    end: int
    name: str
    letter: str
    state: str
    symbol_file: str | None


@dataclass(frozen=True, slots=True)
class NearSymbols:
    """What ``ln`` reports for one address."""

    address: int
    before: SymbolMatch | None
    displacement: int
    past_end: bool
    after: SymbolMatch | None
    exact: tuple[SymbolMatch, ...]


class SymbolSession:
    """Module list plus symbol path; the symbols side of a debugging session."""

    def __init__(self, path: SymbolPath | str | None = None, *, pointer_size: int = 8) -> None:
        self.locator = SymbolLocator(path)
        self.pointer_size = pointer_size
        self._modules: list[ModuleSymbols] = []
        self._bases: list[int] = []
        self._data_types: dict[tuple[str, str | None, str], DataType] = {}
        self._prototypes: dict[str, Prototypes] = {}
        # SYMOPT_LOAD_LINES: off in KD and CDB until ``.lines`` turns it on.
        self.load_lines = False

    # -- module list ---------------------------------------------------------------------

    @property
    def path(self) -> SymbolPath:
        return self.locator.path

    def set_path(self, path: SymbolPath | str) -> None:
        """``.sympath``: new path; loaded modules go back to deferred."""
        self.locator = SymbolLocator(path)
        for module in self._modules:
            module.locator = self.locator
            module.unload()

    def add_module(self, image_name: str, base: int, size: int, *, timestamp: int = 0,
                   checksum: int = 0, read: Reader | None = None,
                   name: str | None = None, image: PeImage | None = None) -> ModuleSymbols:
        """Register a module (deferred). A module already at ``base`` is replaced."""
        self.remove_module(base)
        module_name = name or self._unique_name(module_name_for(image_name))
        module = ModuleSymbols(module_name, base, size, image_name=image_name, timestamp=timestamp,
                               checksum=checksum, read=read, locator=self.locator,
                               image=image)
        position = bisect.bisect_left(self._bases, base)
        self._modules.insert(position, module)
        self._bases.insert(position, base)
        return module

    def _unique_name(self, wanted: str) -> str:
        taken = {m.name.lower() for m in self._modules}
        if wanted.lower() not in taken:
            return wanted
        serial = 1
        while f"{wanted}_{serial}".lower() in taken:
            serial += 1
        return f"{wanted}_{serial}"

    def remove_module(self, base: int) -> None:
        for module in list(self._modules):
            if module.base == base:
                module.unload()
                self._modules.remove(module)
        self._bases = [m.base for m in self._modules]

    def modules(self, pattern: str | None = None) -> list[ModuleSymbols]:
        """Modules in address order, optionally those whose name matches a wildcard."""
        if pattern is None:
            return list(self._modules)
        folded = pattern.casefold()
        return [m for m in self._modules if fnmatch.fnmatchcase(m.name.casefold(), folded)]

    def module(self, name: str) -> ModuleSymbols | None:
        """By module name first, then by image name (as ``.reload /u`` does)."""
        folded = name.casefold()
        for module in self._modules:
            if module.name.casefold() == folded:
                return module
        for module in self._modules:
            if module.image_name.casefold() == folded:
                return module
        return None

    def module_for(self, address: int) -> ModuleSymbols | None:
        position = bisect.bisect_right(self._bases, address) - 1
        if position >= 0 and self._modules[position].contains(address):
            return self._modules[position]
        return None

    def reload(self, *, force: bool = False, load: bool = False) -> None:
        """``.reload`` (forget), ``.reload /f`` (load now), ``.reload /i`` (load, forced)."""
        for module in self._modules:
            if load or force:
                module.load(force=force)
            else:
                module.unload()

    # -- lookups -------------------------------------------------------------------------

    def near(self, address: int, *, typed: bool = True) -> NearSymbols | None:
        """``ln``: the symbol before ``address``, the next one, and exact matches (with
        their types and prototypes unless ``typed`` is False)."""
        module = self.module_for(address)
        if module is None:
            return None
        hit = module.lookup(address)
        if hit is None:
            following = module.index.next_after(address - module.base)
            after = SymbolMatch(module, following, module.address(following)) if following else None
            return NearSymbols(address, None, 0, False, after, ())
        before = SymbolMatch(module, hit.record, module.address(hit.record))
        after = SymbolMatch(module, hit.next, module.address(hit.next)) if hit.next else None
        exact: tuple[SymbolMatch, ...] = ()
        if hit.displacement == 0:
            records = module.index.at(address - module.base)
            exact = tuple(self._typed(module, r, address) if typed else SymbolMatch(module, r, address)
                          for r in records)
        return NearSymbols(address, before, hit.displacement, hit.past_end, after, exact)

    def name_for(self, address: int) -> str | None:
        """``module!name+0xdisp`` (or ``module+0xoffset`` without a symbol)."""
        found = self.near(address, typed=False)
        if found is None:
            return None
        if found.before is None:
            module = self.module_for(address)
            assert module is not None
            offset = address - module.base
            return f"{module.name}+{offset:#x}" if offset else module.name
        text = found.before.qualified
        return f"{text}+{found.displacement:#x}" if found.displacement else text

    def match(self, pattern: str, *, typed: bool = True) -> list[SymbolMatch]:
        """``x``: ``mod!pat``, ``*!pat``, ``mo?!name`` or a bare pattern over every module
        (with types and prototypes unless ``typed`` is False)."""
        module_part, _, name_part = pattern.rpartition("!")
        if "!" not in pattern:
            module_part = "*"
        modules = self.modules(module_part) if has_wildcard(module_part) else \
            [m for m in (self.module(module_part),) if m is not None]
        results: list[SymbolMatch] = []
        for module in modules:
            for record in module.match(name_part):
                address = module.address(record)
                results.append(self._typed(module, record, address) if typed
                               else SymbolMatch(module, record, address))
        return results

    def _typed(self, module: ModuleSymbols, record: SymbolRecord, address: int) -> SymbolMatch:
        data_type = None
        if record.kind is SymbolKind.DATA and record.type_name is not None:
            key = (module.name, module.symbol_file, record.type_name)
            data_type = self._data_types.get(key)
            if data_type is None:
                data_type = self._data_types[key] = data_type_for(record.type_name, module.types)
        return SymbolMatch(module, record, address, data_type, self._arguments(module, record))

    def _arguments(self, module: ModuleSymbols, record: SymbolRecord) -> tuple[TypeInfo, ...] | None:
        if record.kind is not SymbolKind.FUNCTION or module.state is not SymbolState.PRIVATE_PDB:
            return None
        from .pdb.prototypes import Prototypes      # the PDB reader loads with the first PDB

        pdb = module.pdb
        prototypes = self._prototypes.get(module.name)
        if prototypes is None or prototypes.pdb is not pdb:
            prototypes = self._prototypes[module.name] = Prototypes(pdb)
        try:
            found = prototypes.arguments(record.rva)
        except SymbolError as exc:
            log.warning("%s: procedure types unreadable: %s", module.name, exc)
            return None
        return tuple(found) if found is not None else None

    def address_of(self, name: str) -> int | None:
        """The address of ``mod!name`` or of a bare name (first module that has it)."""
        if has_wildcard(name):
            return None
        found = self.match(name, typed=False)
        return found[0].address if found else None

    def find_type(self, name: str):
        """``dt``'s type lookup: ``mod!Type`` or a bare type name (first module that has it)."""
        module_part, _, type_name = name.rpartition("!")
        modules = [self.module(module_part)] if module_part else self._modules
        for module in modules:
            if module is None:
                continue
            table = module.types
            if table is None:
                continue
            try:
                found = table.find(type_name)
            except SymbolError as exc:
                log.warning("%s: types unreadable: %s", module.name, exc)
                continue
            if found is not None:
                return found
        return None

    # -- source lines (answered only while ``load_lines`` is set) --------------------------

    def line_for(self, address: int) -> tuple[str, int] | None:
        """(file as the PDB records it, line) of the code at ``address``, or None."""
        module = self.module_for(address) if self.load_lines else None
        pdb = module.pdb if module is not None else None
        if pdb is None:
            return None
        try:
            return pdb.line_for(address - module.base)
        except SymbolError as exc:
            log.warning("%s: line table unreadable: %s", module.name, exc)
            return None

    def address_of_line(self, spec: str, pc: int | None = None) -> int | None:
        """The address of ``[[Module!]Filename][:LineNumber]`` (a source-line expression
        without its grave accents), or None.

        The file matches the recorded path whole or by its last components; without a
        file, the file of the code at ``pc``. A line without code resolves to the next
        line of that file that has some; without a line, the file's first code."""
        if not self.load_lines:
            return None
        module_part, bang, rest = spec.rpartition("!")
        if not bang:
            rest = spec
        name, colon, number = rest.rpartition(":")
        if not colon or (len(name) == 1 and name.isalpha() and not number.strip().isdigit()
                         and not number.lower().startswith("0x")):
            name, number = rest, ""      # "c:\\src\\a.c" is a file, not file:line
        number = number.strip()
        try:
            line = int(number, 16) if number.lower().startswith("0x") else \
                int(number, 10) if number else None
        except ValueError:
            return None
        if not name:
            here = self.line_for(pc) if pc is not None else None
            if here is None:
                return None
            name = here[0]
        modules = [self.module(module_part)] if module_part else self._modules
        for module in modules:
            found = self._line_in(module, name, line) if module is not None else None
            if found is not None:
                return found
        return None

    def _line_in(self, module: ModuleSymbols, name: str, line: int | None) -> int | None:
        pdb = module.pdb
        if pdb is None:
            return None
        try:
            entries = pdb.lines()
        except SymbolError as exc:
            log.warning("%s: line table unreadable: %s", module.name, exc)
            return None
        wanted = name.replace("/", "\\").casefold()
        files = [f for f in dict.fromkeys(e.file for e in entries)
                 if _same_file(f.replace("/", "\\").casefold(), wanted)]
        if not files:
            return None
        chosen = [e for e in entries if e.file == files[0]]
        if line is not None:
            chosen = [e for e in chosen if e.line >= line]
            if not chosen:
                return None
            best = min(e.line for e in chosen)
            chosen = [e for e in chosen if e.line == best]
        return module.base + min(e.rva for e in chosen)

    def lm_rows(self) -> list[ModuleRow]:
        """``lm``'s rows in address order."""
        return [ModuleRow(m.base, m.end, m.name, m.letter, m.state.value,
                          m.symbol_file if m.state is not SymbolState.DEFERRED else None)
                for m in self._modules]


def _same_file(recorded: str, wanted: str) -> bool:
    """The recorded path is the wanted one, or ends with it at a directory boundary."""
    return recorded == wanted or recorded.endswith("\\" + wanted.lstrip("\\"))


def data_type_for(type_name: str, types) -> DataType:
    """A global's ``DataType`` from its type as ``dt`` names it (``_OBJ``,
    ``Uint4B``, ``Ptr64 _LIST_ENTRY``, ``[16] Int4B``) and the module's type table."""
    if type_name.startswith("Ptr"):
        bits = type_name[3:].split(" ", 1)[0]
        size = int(bits) // 8 if bits.isdigit() else 8
        return DataType("pointer", f"{_c_name(type_name.split(' ', 1)[-1], types)} *", size)
    if type_name.startswith("[") and "] " in type_name:
        count, element = type_name[1:].split("] ", 1)
        return DataType("aggregate", f"{_c_name(element, types)} [{count}]", 0)
    if type_name in _BASE_TYPES:
        kind, c_name, size = _BASE_TYPES[type_name]
        return DataType(kind, c_name, size)
    info = None
    if types is not None:
        try:
            info = types.find(type_name)
        except SymbolError as exc:
            log.warning("types unreadable: %s", exc)
    if info is None:
        return DataType("unknown", type_name, 0)
    if info.kind == "enum":
        return DataType("enum", f"enum {info.name}", info.size or 4, tuple(info.enumerators))
    if info.kind in ("struct", "union", "class"):
        return DataType("aggregate", f"{info.kind} {info.name}", info.size)
    return DataType("unknown", type_name, info.size)


def _c_name(type_name: str, types) -> str:
    if type_name in _BASE_TYPES:
        return _BASE_TYPES[type_name][1]
    return data_type_for(type_name, types).c_name
