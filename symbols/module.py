"""One loaded module's symbols: finding, staged loading and the ``lm`` state.

A ``ModuleSymbols`` starts ``deferred`` (symbols.md §3.4, §6.8) and loads on the
first question: the image identity (an image on the symbol path matched by the
module list's timestamp and size; else from target memory through ``read(rva,
size)``, its CodeView record found by ``search(rva, length, pattern)`` when the
target can search; else from the facts passed in), then the symbol file, in this
order of candidate names (§3.1, §6.7): the image's CodeView PDB name, its MISC DBG
name, ``<module>.dbg``/``.pdb``, then the kernel and HAL aliases. A DBG with an NB10
record leads to its PDB 2.0 (looked for next to the DBG first). Without a matching
file the image's exports are used. The timestamp/GUID check decides, never the
name. A PDB gives its publics at once and the rest as questions need it
(``pdb.staged``): an address reads only the module streams whose section
contributions hold it, a name query reads everything; the answers are those of a
full load.

States: deferred, pdb symbols, private pdb symbols, codeview symbols, coff
symbols, export symbols, no symbols; ``letter`` holds the mismatch letter.
Corrupt files give a warning and the next candidate; this class never raises
``SymbolError`` to its caller. Session-wide lookups live in ``session.py``.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Callable

from .errors import SymbolError
from .index import AddressHit, SymbolIndex
from .locate import Located, SymbolLocator
from .match import wanted_pdb
from .model import FileKind, SymbolId, SymbolRecord
from .pe import PeImage, Reader, Searcher, identify_from_memory, read_image, read_image_from_memory

__all__ = ["SymbolState", "ModuleSymbols", "candidate_names", "module_name_for"]

log = logging.getLogger(__name__)

_KERNELS = ("ntoskrnl", "ntkrnlmp", "ntkrnlpa", "ntkrpamp")
_HALS = ("hal", "halmps", "halapic", "halaacpi", "halacpi", "halmacpi", "halsp", "halborg")


class SymbolState(enum.Enum):
    DEFERRED = "deferred"
    PDB = "pdb symbols"
    PRIVATE_PDB = "private pdb symbols"
    CODEVIEW = "codeview symbols"
    COFF = "coff symbols"
    EXPORT = "export symbols"
    NONE = "no symbols"


def module_name_for(image_name: str) -> str:
    """WinDbg's module name: the file stem, ``nt`` for kernels, ``hal`` for HALs."""
    stem = os.path.splitext(image_name.replace("\\", "/").rsplit("/", 1)[-1])[0]
    lowered = stem.lower()
    if lowered in _KERNELS:
        return "nt"
    if lowered in _HALS:
        return "hal"
    return stem


def candidate_names(image_name: str, image: PeImage | None) -> list[str]:
    """Symbol file names to try for an image, best first, aliases last."""
    names: list[str] = []
    if image is not None:
        names += image.symbol_file_names()
    stem = os.path.splitext(image_name.replace("\\", "/").rsplit("/", 1)[-1])[0]
    names += [stem + ".dbg", stem + ".pdb"]
    lowered = stem.lower()
    for family in (_KERNELS, _HALS):
        if lowered in family:
            names += [alias + ext for alias in family if alias != lowered for ext in (".dbg", ".pdb")]
    unique: dict[str, str] = {}
    for name in names:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        unique.setdefault(base.lower(), base)
    return list(unique.values())


class ModuleSymbols:
    """Symbols of one module at ``base``; loading is lazy."""

    def __init__(self, name: str, base: int, size: int, *, image_name: str | None = None,
                 timestamp: int = 0, checksum: int = 0, read: Reader | None = None,
                 locator: SymbolLocator | None = None, image: PeImage | None = None,
                 search: Searcher | None = None) -> None:
        self.name = name
        self.base = base
        self.size = size
        self.image_name = image_name or f"{name}.sys"
        self.timestamp = timestamp
        self.checksum = checksum
        self._read = read
        # Where the target can search its own memory, the CodeView record is found by it
        # (pe.identify_from_memory): two requests instead of the header walk's three.
        self.search = search
        self.locator = locator or SymbolLocator()
        self.state = SymbolState.DEFERRED
        self.letter = ""
        self.symbol_file: str | None = None
        self._given_image = image
        self.image: PeImage | None = image
        self.searches: list[tuple[str, Located]] = []
        self._index: SymbolIndex | None = None
        self._pdb = None
        self._dbg = None

    # -- identity and loading ----------------------------------------------------------

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, address: int) -> bool:
        return self.base <= address < self.base + self.size

    def image_identity(self) -> SymbolId:
        if self.image is not None:
            return self.image.identity
        return SymbolId(kind=FileKind.PE, name=self.image_name, timestamp=self.timestamp,
                        size_of_image=self.size, checksum=self.checksum)

    def _load_image(self) -> None:
        """The image's headers: given, or the file on the symbol path that the module
        list's timestamp and size match (no target reads at all), or read from target
        memory as a last resort."""
        if self._given_image is not None:
            self.image = self._given_image
            return
        if self.timestamp:
            found = self.locator.find(self.image_name, self.image_identity(),
                                      image_ext=self._ext())
            self.searches.append((self.image_name, found))
            if found.found and found.match is not None and found.match.letter in ("", "C"):
                try:
                    self.image = read_image(found.path, self.image_name)
                    return
                except SymbolError as exc:
                    log.warning("%s: %s", found.path, exc)
        if self._read is not None:
            try:
                if self.search is not None and self.timestamp and self.size:
                    self.image = identify_from_memory(
                        self._guarded_read, self._guarded_search, self.image_name,
                        size_of_image=self.size, timestamp=self.timestamp, checksum=self.checksum)
                else:
                    self.image = read_image_from_memory(self._guarded_read, self.image_name)
            except SymbolError as exc:
                log.info("%s: image headers not usable (%s); using the module list facts", self.name, exc)

    def _guarded_read(self, rva: int, size: int) -> bytes | None:
        """The caller's reader; a failing read counts as a missing page."""
        assert self._read is not None
        try:
            return self._read(rva, size)
        except Exception as exc:  # a reader over a live target may time out or lose the link
            log.debug("%s: reading %#x bytes at +%#x failed: %s", self.name, size, rva, exc)
            return None

    def _guarded_search(self, rva: int, length: int, pattern: bytes) -> int | None:
        """The caller's search; a failing or refused search finds nothing."""
        assert self.search is not None
        try:
            return self.search(rva, length, pattern)
        except Exception as exc:  # a live target may refuse the request or lose the link
            log.debug("%s: searching +%#x for %r failed: %s", self.name, rva, pattern, exc)
            return None

    def _ext(self) -> str | None:
        return self.image_name.rsplit(".", 1)[1].lower() if "." in self.image_name else None

    def load(self, *, force: bool = False) -> ModuleSymbols:
        """Find and load the symbols now (``ld`` / ``.reload /f``; ``/i`` = ``force``)."""
        self.unload()
        try:
            self._load(force)
        except (SymbolError, OSError) as exc:
            log.warning("%s: %s; no symbols", self.name, exc)
            self._index = SymbolIndex([])
            self.state = SymbolState.NONE
        return self

    def _load(self, force: bool) -> None:
        self._load_image()
        want = self.image_identity()
        for file_name in candidate_names(self.image_name, self.image):
            if file_name.lower().endswith(".pdb"):
                target = wanted_pdb(want)
                if target is None and not force:
                    continue
                sections = self.image.sections if self.image is not None else None
                if self._try_pdb(file_name, target or want, force, near=None, sections=sections):
                    return
            elif file_name.lower().endswith(".dbg"):
                if self._try_dbg(file_name, want, force):
                    return
        self._use_exports()

    def _try_pdb(self, file_name: str, want: SymbolId, force: bool, near: str | None,
                 sections=None) -> bool:
        found = self.locator.find(file_name, want, image_ext=self._ext(), force=force, near=near)
        self.searches.append((file_name, found))
        if not found.found:
            return False
        from .pdb.staged import PdbSymbols      # the PDB reader loads with the first PDB
        try:
            pdb = self.locator.open_pdb(found.path, sections)
            symbols = PdbSymbols(pdb)
        except SymbolError as exc:
            log.warning("%s: %s", found.path, exc)
            return False
        self._pdb = pdb
        # Publics now; globals and module streams when an address or a name needs them.
        self._index = SymbolIndex(tables=[symbols.publics], source=symbols)
        self.state = SymbolState.PRIVATE_PDB if pdb.has_private_symbols else SymbolState.PDB
        self._settle(found)
        return True

    def _try_dbg(self, file_name: str, want: SymbolId, force: bool) -> bool:
        from .dbg import read_dbg
        found = self.locator.find(file_name, want, image_ext=self._ext(), force=force)
        self.searches.append((file_name, found))
        if not found.found:
            return False
        try:
            dbg = read_dbg(found.path)
        except SymbolError as exc:
            log.warning("%s: %s", found.path, exc)
            return False
        self._dbg = dbg
        self._settle(found)
        nb10 = wanted_pdb(dbg.identity)
        if nb10 is not None:
            letter = self.letter
            if self._try_pdb(nb10.name, nb10, force, near=os.path.dirname(found.path),
                             sections=dbg.sections):
                self.letter = self.letter or letter
                return True
        try:
            records = dbg.codeview_symbols()
            state = SymbolState.CODEVIEW
            if not records:
                records, state = dbg.coff_symbols(), SymbolState.COFF
        except SymbolError as exc:
            log.warning("%s: %s", found.path, exc)
            records, state = [], SymbolState.NONE
        if not records:
            self._settle(found)
            self._use_exports()
            return True
        self._index = SymbolIndex(records)
        self.state = state
        return True

    def _settle(self, found: Located) -> None:
        self.symbol_file = found.path
        self.letter = found.match.letter if found.match and found.match.letter in ("#", "T", "C", "M") else ""
        if self.letter == "C":
            self.letter = ""      # an unknown checksum is normal (lld, most DLLs): not shown

    def _use_exports(self) -> None:
        records: list[SymbolRecord] = []
        if self.image is not None:
            try:
                records = self.image.exports()
            except SymbolError as exc:
                log.warning("%s: export table unreadable: %s", self.name, exc)
        self._index = SymbolIndex(records)
        if records:
            self.state = SymbolState.EXPORT
            self.symbol_file = self.symbol_file or self.image_name
        else:
            self.state = SymbolState.NONE

    def unload(self) -> None:
        """Forget loaded symbols (``.reload`` without /f): back to deferred."""
        if self._pdb is not None:
            try:
                self._pdb.close()
            except SymbolError:
                pass
        self._pdb = self._dbg = self._index = None
        self.state = SymbolState.DEFERRED
        self.letter = ""
        self.symbol_file = None
        self.searches = []

    # -- questions ---------------------------------------------------------------------

    @property
    def index(self) -> SymbolIndex:
        if self._index is None:
            self.load()
        assert self._index is not None
        return self._index

    def lookup(self, address: int) -> AddressHit | None:
        """Nearest symbol at or before an absolute ``address`` inside the module."""
        if not self.contains(address):
            return None
        return self.index.lookup(address - self.base)

    def find(self, name: str) -> list[SymbolRecord]:
        return self.index.find(name)

    def match(self, pattern: str) -> list[SymbolRecord]:
        return self.index.match(pattern)

    def address(self, record: SymbolRecord) -> int:
        return self.base + record.rva

    @property
    def pdb(self):
        """The PDB the symbols came from (None without one): its types and module streams."""
        if self._index is None:
            self.load()
        return self._pdb

    @property
    def types(self):
        """The PDB's type table (``dt``), or None without a PDB that has types."""
        if self._index is None:
            self.load()
        return getattr(self._pdb, "types", None) if self._pdb is not None else None

    def fpo_for(self, address: int):
        """x86 FPO record covering ``address`` (from the DBG or the image), if any."""
        if self._index is None:
            self.load()
        rva = address - self.base
        sources: list[Callable[[], list]] = []
        if self._dbg is not None:
            sources.append(self._dbg.fpo)
        if self.image is not None:
            sources.append(self.image.fpo)
        for source in sources:
            try:
                for record in source():
                    if record.start <= rva < record.start + record.proc_size:
                        return record
            except SymbolError as exc:
                log.warning("%s: FPO data unreadable: %s", self.name, exc)
        return None

    def runtime_function_for(self, address: int):
        """x64 RUNTIME_FUNCTION (``.pdata``) covering ``address``, if the image is readable."""
        if self.image is None:
            return None
        try:
            return self.image.runtime_function_for(address - self.base)
        except SymbolError as exc:
            log.warning("%s: .pdata unreadable: %s", self.name, exc)
            return None

    def status(self) -> str:
        """``lm``'s symbol column: letter, ``(state)`` and the symbol file."""
        text = f"({self.state.value})"
        if self.letter:
            text = f"{self.letter} {text}"
        if self.symbol_file and self.state is not SymbolState.DEFERRED:
            text += f"  {self.symbol_file}"
        return text
