"""A symbol session: the module list, the symbol path, and lookups across modules.

Holds ``ModuleSymbols`` sorted by base so an address finds its module by
bisection (symbols.md §6.9), answers ``module!name`` and bare names,
``x``-style patterns whose module part may be a wildcard too (§6.10), and
``ln``'s nearest-symbol question with the text WinDbg prints. Changing the
path forgets loaded symbols (they load again on the next question, §3.4).

Addresses here are absolute; the console formats them. Nothing here raises
for a missing or corrupt symbol file.
"""

from __future__ import annotations

import bisect
import fnmatch
import logging
from dataclasses import dataclass

from .errors import SymbolError
from .index import has_wildcard
from .locate import SymbolLocator
from .model import SymbolKind, SymbolRecord
from .module import ModuleSymbols, module_name_for
from .path import SymbolPath
from .pe import PeImage, Reader

__all__ = ["NearSymbols", "SymbolMatch", "SymbolSession", "format_address"]

log = logging.getLogger(__name__)


def format_address(address: int, pointer_size: int = 8) -> str:
    """WinDbg's address text: ``fffff803`1a2b3c40`` for 64-bit, ``8040a2b0`` for 32-bit."""
    if pointer_size == 8:
        return f"{address >> 32:08x}`{address & 0xFFFFFFFF:08x}"
    return f"{address & 0xFFFFFFFF:08x}"


@dataclass(frozen=True, slots=True)
class SymbolMatch:
    module: ModuleSymbols
    record: SymbolRecord
    address: int

    @property
    def qualified(self) -> str:
        return f"{self.module.name}!{self.record.name}"


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

    def near(self, address: int) -> NearSymbols | None:
        """``ln``: the symbol before ``address``, the next one, and exact matches."""
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
            exact = tuple(SymbolMatch(module, r, address) for r in module.index.at(address - module.base))
        return NearSymbols(address, before, hit.displacement, hit.past_end, after, exact)

    def name_for(self, address: int) -> str | None:
        """``module!name+0xdisp`` (or ``module+0xoffset`` without a symbol)."""
        found = self.near(address)
        if found is None:
            return None
        if found.before is None:
            module = self.module_for(address)
            assert module is not None
            offset = address - module.base
            return f"{module.name}+{offset:#x}" if offset else module.name
        text = found.before.qualified
        return f"{text}+{found.displacement:#x}" if found.displacement else text

    def match(self, pattern: str) -> list[SymbolMatch]:
        """``x``: ``mod!pat``, ``*!pat``, ``mo?!name`` or a bare pattern over every module."""
        module_part, _, name_part = pattern.rpartition("!")
        if "!" not in pattern:
            module_part = "*"
        modules = self.modules(module_part) if has_wildcard(module_part) else \
            [m for m in (self.module(module_part),) if m is not None]
        results: list[SymbolMatch] = []
        for module in modules:
            for record in module.match(name_part):
                results.append(SymbolMatch(module, record, module.address(record)))
        return results

    def address_of(self, name: str) -> int | None:
        """The address of ``mod!name`` or of a bare name (first module that has it)."""
        if has_wildcard(name):
            return None
        found = self.match(name)
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

    # -- WinDbg text ---------------------------------------------------------------------

    def ln_text(self, address: int) -> str:
        """The lines ``ln address`` prints."""
        found = self.near(address)
        if found is None:
            return ""
        fmt = lambda a: format_address(a, self.pointer_size)  # noqa: E731
        if found.before is None:
            left = ""
        else:
            name = found.before.qualified
            if found.displacement:
                name += f"+{found.displacement:#x}"
            left = f"({fmt(found.before.address)})   {name}"
        right = f"({fmt(found.after.address)})   {found.after.qualified}" if found.after else ""
        lines = [f"{left}   |  {right}".rstrip()]
        if found.past_end and found.before is not None:
            end = found.before.address + found.before.record.size
            lines.append(f"    {fmt(found.address)} is past the end of {found.before.qualified}"
                         f" ({fmt(found.before.address)}-{fmt(end)})")
        if found.exact:
            lines.append("Exact matches:")
            lines += [f"    {m.qualified} {_describe(m)}" for m in found.exact]
        return "\n".join(lines) + "\n"

    def x_text(self, pattern: str) -> str:
        """The lines ``x pattern`` prints."""
        fmt = lambda a: format_address(a, self.pointer_size)  # noqa: E731
        return "".join(f"{fmt(m.address)} {m.qualified} {_describe(m)}\n" for m in self.match(pattern))

    def lm_rows(self) -> list[tuple[ModuleSymbols, str]]:
        """(module, status column) rows for ``lm``."""
        return [(m, m.status()) for m in self._modules]


def _describe(match: SymbolMatch) -> str:
    record = match.record
    if record.kind is SymbolKind.DATA:
        return "= <no type information>" if record.type_name is None else f"= {record.type_name}"
    return "(<no parameter info>)"
