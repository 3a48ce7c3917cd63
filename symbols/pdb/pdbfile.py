"""``PdbFile``: one PDB 2.0 or 7.0 file, loaded in stages.

Opening reads the MSF directory, the info stream and the DBI header only:
``identity`` and ``sections`` never touch symbol records. ``publics()`` reads
the public-symbol address map and the records it points at (no types, no
module streams); ``globals()`` scans the symbol-record stream and renders type
names from TPI; ``procedures()``/``labels()``/``line_for()`` read the module
streams; ``types`` indexes TPI on first use. Each stage is computed once.

Addresses: segment:offset -> ``sections[seg-1].virtual_address + offset``,
then through OMAP_FROM_SRC when the PDB has it (symbols.md 2.4, 1.4). Every
failure surfaces as ``SymbolFileError``. Spec: symbols.md 2.1-2.9.
"""

from __future__ import annotations

import dataclasses
import logging
import mmap
import operator
import os
import struct
import traceback
from array import array
from collections import deque
from collections.abc import Callable
from itertools import repeat
from types import MemberDescriptorType
from typing import Any, TypeVar

from kdcon.symbols import codeview as cv
from kdcon.symbols.debugdir import parse_section_headers
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import FileKind, SectionHeader, SymbolId, SymbolKind, SymbolRecord
from kdcon.symbols.pdb.guard import guarded
from kdcon.symbols.pdb.lines import LineEntry, LineTable, parse_names
from kdcon.symbols.pdb.lines_c11 import read_c11_lines
from kdcon.symbols.pdb.msf import MsfFile
from kdcon.symbols.pdb.records import Located, decode_located, iter_records, read_name
from kdcon.symbols.pdb.streams import (
    NO_STREAM,
    DbiInfo,
    Omap,
    decode_pdb_name,
    parse_dbi,
    parse_info,
)
from kdcon.symbols.pdb.structs import (
    DBG_OMAP_FROM_SRC,
    DBG_OMAP_TO_SRC,
    DBG_SECTION_HDR,
    DBG_SECTION_HDR_ORIG,
    PSGSIHDR,
    parse_at,
)
from kdcon.symbols.pdb.tpi import TypeTable

__all__ = ["PdbFile", "open_pdb"]

_UDT_KINDS = frozenset({cv.S_UDT, cv.S_UDT_ST, cv.S_UDT_16t})

log = logging.getLogger(__name__)

STREAM_INFO = 1
STREAM_TPI = 2
STREAM_DBI = 3

_T = TypeVar("_T")


def open_pdb(path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview, *,
             name: str | None = None,
             image_sections: list[SectionHeader] | None = None) -> PdbFile:
    """Open a PDB 2.0 or 7.0 file from a path or from its bytes.

    ``name`` overrides the identity's file name (default: the path's base
    name, or "" for bytes). ``image_sections`` supplies section headers for
    PDBs that carry none (VC4-era files whose sections live in the image or
    DBG). Raises ``SymbolFileError`` for anything unreadable, missing or corrupt.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return PdbFile(memoryview(path_or_bytes), name or "", None, image_sections)
    path = os.fspath(path_or_bytes)
    try:
        with open(path, "rb") as fh:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise SymbolFileError(f"cannot read {path}: {exc}") from None
    view = memoryview(mapped)
    try:
        return PdbFile(view, name or os.path.basename(path), mapped, image_sections)
    except BaseException as exc:
        # The failed constructor's frames, kept alive by the traceback, hold
        # slices of the mapping; an mmap with live views cannot be closed.
        _clear_frames(exc)
        _unmap(view, mapped)
        raise


def _clear_frames(exc: BaseException) -> None:
    """Drop the locals of the finished frames of ``exc`` and the exceptions it chains to."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending += (current.__cause__, current.__context__)


def _unmap(view: memoryview, mapped: mmap.mmap) -> None:
    """Release ``view`` and close ``mapped``; with views still alive elsewhere,
    leave the unmapping to the last of them rather than fail on an error path."""
    try:
        view.release()
        mapped.close()
    except BufferError:
        log.debug("%s: mapping still viewed; it is released with its last view", mapped)


class PdbFile:
    """A parsed PDB. Use ``open_pdb``; close it (or use ``with``) to release the file."""

    @guarded
    def __init__(self, data: memoryview, name: str, mapped: mmap.mmap | None,
                 image_sections: list[SectionHeader] | None) -> None:
        self._view = data
        self._mapped = mapped
        self._name = name
        self.msf = MsfFile(data)
        self.small = self.msf.is_small
        if not self.msf.has_stream(STREAM_INFO):
            raise SymbolFileError("PDB has no info stream")
        self.info = parse_info(self.msf.stream(STREAM_INFO))
        self.dbi: DbiInfo | None = parse_dbi(self.msf.stream(STREAM_DBI), small=self.small)
        self._sections, self._omap = self._load_sections(image_sections)
        self._bases = [s.virtual_address for s in self._sections]
        self._cache: dict[str, Any] = {}

    # -- identity and sections ---------------------------------------------------

    @property
    def identity(self) -> SymbolId:
        """Who the file is: PDB7 with GUID + age (DBI age first), or PDB2 with signature + age."""
        info = self.info
        if info.guid is not None:
            age = self.dbi.age if self.dbi is not None and self.dbi.age else info.age
            return SymbolId(kind=FileKind.PDB7, name=self._name, signature=info.signature,
                            guid=info.guid, age=age)
        return SymbolId(kind=FileKind.PDB2, name=self._name, signature=info.signature,
                        age=info.age)

    @property
    def sections(self) -> list[SectionHeader]:
        """Section headers addresses are based on (the original ones when OMAP is present)."""
        return list(self._sections)

    @property
    def machine(self) -> int:
        """IMAGE_FILE_MACHINE_* from the DBI header (0 when unknown)."""
        return self.dbi.machine if self.dbi is not None else 0

    def _load_sections(self, image_sections):
        dbi = self.dbi
        if dbi is None:
            return list(image_sections or []), None
        omap = None
        omap_stream = dbi.debug_stream(DBG_OMAP_FROM_SRC)
        original = dbi.debug_stream(DBG_SECTION_HDR_ORIG)
        if omap_stream != NO_STREAM and self.msf.has_stream(omap_stream):
            omap = Omap(self.msf.stream(omap_stream))
            if original != NO_STREAM and self.msf.has_stream(original):
                return parse_section_headers(self.msf.stream(original), limit=None), omap
        current = dbi.debug_stream(DBG_SECTION_HDR)
        if current != NO_STREAM and self.msf.has_stream(current):
            return parse_section_headers(self.msf.stream(current), limit=None), omap
        return list(image_sections or []), omap

    @guarded
    def symbol_space_rva(self, image_rva: int) -> int | None:
        """An image RVA taken back to the PDB's own (pre-optimisation) address
        space through OMAP_TO_SRC; the RVA itself when the PDB has no OMAP,
        None when the code has no origin there (symbols.md 1.4)."""
        if self._omap is None:
            return image_rva
        if "omap_to" not in self._cache:
            stream = self.dbi.debug_stream(DBG_OMAP_TO_SRC) if self.dbi is not None else NO_STREAM
            self._cache["omap_to"] = (Omap(self.msf.stream(stream))
                                      if stream != NO_STREAM and self.msf.has_stream(stream)
                                      else None)
        to_src = self._cache["omap_to"]
        return to_src.map(image_rva) if to_src is not None else None

    def rva(self, segment: int, offset: int) -> int | None:
        """RVA of segment:offset (after OMAP), None when it maps nowhere."""
        if not 0 < segment <= len(self._bases):
            return None
        rva = (self._bases[segment - 1] + offset) & 0xFFFFFFFF
        if self._omap is not None:
            return self._omap.map(rva)
        return rva

    # -- decoding helpers ------------------------------------------------------------

    def decode_name(self, raw: bytes) -> str:
        return decode_pdb_name(raw, self.small)

    def _stage(self, key: str, build: Callable[[], _T]) -> _T:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def symbol_records(self) -> bytes:
        """The symbol-record stream (publics, globals, references)."""
        if self.dbi is None or self.dbi.symrec_stream == NO_STREAM:
            return b""
        return self.msf.stream(self.dbi.symrec_stream)

    # -- publics -----------------------------------------------------------------------

    @guarded
    def publics(self) -> list[SymbolRecord]:
        """Public symbols (S_PUB32 in every form), sorted by RVA, names as stored."""
        return list(self._stage("publics", self._load_publics))

    def _public_offsets(self, symrec: bytes) -> array | None:
        dbi = self.dbi
        if dbi is None or not self.msf.has_stream(dbi.public_stream):
            return None
        psi = self.msf.stream(dbi.public_stream)
        if len(psi) < PSGSIHDR.size:
            return None
        hdr = parse_at(PSGSIHDR, psi, 0, "publics header")
        start = PSGSIHDR.size + hdr.sym_hash_size
        if hdr.sym_hash_size < 0 or hdr.addr_map_size < 0 or hdr.addr_map_size % 4 \
                or start + hdr.addr_map_size > len(psi):
            log.warning("public symbol address map is damaged; scanning all records")
            return None
        offsets = array("I")
        offsets.frombytes(psi[start:start + hdr.addr_map_size])
        return offsets

    def _load_publics(self) -> list[SymbolRecord]:
        symrec = self.symbol_records()
        offsets = self._public_offsets(symrec)
        if offsets is None:
            offsets = array("I", (at - 4 for kind, at, _ in iter_records(symrec, 0, len(symrec))
                                  if kind in cv.PUBLIC_KINDS))
        raws: list[bytes] = []
        rvas: list[int] = []
        add_raw, add_rva = raws.append, rvas.append
        unpack_head = struct.Struct("<HHIIH").unpack_from
        size = len(symrec)
        find = symrec.find
        bases = self._bases
        nbases = len(bases)
        omap = self._omap
        function_kind = cv.S_PUB32
        for off in offsets:
            if off + 14 > size:
                raise SymbolFileError(f"public symbol offset 0x{off:x} is outside the records")
            reclen, kind, _flags, offset, segment = unpack_head(symrec, off)
            end = off + 2 + reclen
            if end > size:
                raise SymbolFileError(f"public symbol at 0x{off:x} overruns the records")
            if kind == function_kind:
                nul = find(b"\0", off + 14, end)
                raw = symrec[off + 14:nul if nul >= 0 else end]
            elif kind in cv.PUBLIC_KINDS:
                loc = decode_located(symrec, kind, off + 4, end)
                segment, offset, raw = loc.segment, loc.offset, loc.name
            else:
                continue
            if not 0 < segment <= nbases:
                continue
            rva = (bases[segment - 1] + offset) & 0xFFFFFFFF
            if omap is not None:
                rva = omap.map(rva)
                if rva is None:
                    continue
            add_raw(raw)
            add_rva(rva)
        result = make_records(self._decode_all(raws), rvas, SymbolKind.PUBLIC)
        result.sort(key=_by_rva)
        return result

    def _decode_all(self, raws: list[bytes]) -> list[str]:
        """Decode many names with one decoder call (a tenth of the per-name cost)."""
        encoding = "cp1252" if self.small else "utf-8"
        names = b"\0".join(raws).decode(encoding, "replace").split("\0")
        if len(names) != len(raws):         # a length-prefixed name held a NUL byte
            names = [raw.decode(encoding, "replace") for raw in raws]
        return names

    # -- globals and types ---

    @guarded
    def globals(self) -> list[SymbolRecord]:
        """Global and file-static data (S_GDATA32/S_LDATA32), sorted by RVA, with type names."""
        return list(self._stage("globals", self._load_globals))

    def _load_globals(self) -> list[SymbolRecord]:
        symrec = self.symbol_records()
        found = []
        for kind, at, end in iter_records(symrec, 0, len(symrec)):
            if kind in cv.DATA_KINDS:
                found.append(decode_located(symrec, kind, at, end))
        types = self.types if found else None
        result = []
        for loc in found:
            rva = self.rva(loc.segment, loc.offset)
            if rva is None:
                continue
            type_name = types.type_name(loc.type_index) if types is not None else None
            result.append(SymbolRecord(self.decode_name(loc.name), rva, SymbolKind.DATA,
                                       type_name=type_name))
        result.sort(key=_by_rva)
        return result

    @property
    @guarded
    def types(self) -> TypeTable:
        """The TPI type table (indexed on first use), typedef names (S_UDT) included."""
        return self._stage("types", self._load_types)

    def _load_types(self) -> TypeTable:
        table = TypeTable(self.msf.stream(STREAM_TPI), small=self.small)
        symrec = self.symbol_records()
        aliases = {}
        for kind, at, end in iter_records(symrec, 0, len(symrec)):
            if kind in _UDT_KINDS:
                fmt = "<H" if kind == cv.S_UDT_16t else "<I"
                ti = struct.unpack_from(fmt, symrec, at)[0]
                raw = read_name(symrec, at + struct.calcsize(fmt), end, kind != cv.S_UDT)
                aliases[self.decode_name(raw)] = ti
        table.add_aliases(aliases)
        return table

    # -- module symbols ---------------------------------------------------------

    def _module_symbols(self) -> dict[str, list[SymbolRecord]]:
        procedures: list[SymbolRecord] = []
        labels: list[SymbolRecord] = []
        thunks: list[SymbolRecord] = []
        targets = (
            (cv.PROC_KINDS, procedures, SymbolKind.FUNCTION),
            (cv.LABEL_KINDS, labels, SymbolKind.LABEL),
            (cv.THUNK_KINDS, thunks, SymbolKind.FUNCTION),
        )
        for index, stream in enumerate(self.module_streams()):
            data, sym_end = stream
            for kind, at, end in iter_records(data, 4, sym_end):
                for kinds, into, sym_kind in targets:
                    if kind in kinds:
                        loc: Located = decode_located(data, kind, at, end)
                        rva = self.rva(loc.segment, loc.offset)
                        if rva is not None:
                            into.append(SymbolRecord(self.decode_name(loc.name), rva, sym_kind,
                                                     size=loc.length))
                        break
        for records in (procedures, labels, thunks):
            records.sort(key=_by_rva)
        return {"procedures": procedures, "labels": labels, "thunks": thunks}

    def module_streams(self) -> list[tuple[bytes, int]]:
        """(stream bytes, end of the symbol part) of every module that has a stream."""
        result = []
        if self.dbi is None:
            return result
        for module in self.dbi.modules:
            if module.stream == NO_STREAM or not self.msf.has_stream(module.stream):
                continue
            data = self.msf.stream(module.stream)
            result.append((data, min(module.sym_bytes, len(data))))
        return result

    @guarded
    def procedures(self) -> list[SymbolRecord]:
        """Functions from module streams (S_GPROC32/S_LPROC32 in every form), size = length."""
        return list(self._stage("modsyms", self._module_symbols)["procedures"])

    @guarded
    def labels(self) -> list[SymbolRecord]:
        """Code labels (S_LABEL32) from module streams."""
        return list(self._stage("modsyms", self._module_symbols)["labels"])

    @guarded
    def thunks(self) -> list[SymbolRecord]:
        """Thunks (S_THUNK32) from module streams, size = thunk length."""
        return list(self._stage("modsyms", self._module_symbols)["thunks"])

    # -- line numbers --------------------------------------------------------------------

    def _load_lines(self) -> LineTable:
        table = LineTable()
        if self.dbi is None:
            return table
        names_stream = self.info.named_streams.get("/names")
        names = b""
        if names_stream is not None and self.msf.has_stream(names_stream):
            names = parse_names(self.msf.stream(names_stream))
        for module in self.dbi.modules:
            if not (module.c11_bytes or module.c13_bytes) or not self.msf.has_stream(module.stream):
                continue
            data = self.msf.stream(module.stream)
            if module.c11_bytes:
                table.add_entries(read_c11_lines(data, module.sym_bytes,
                                                 module.sym_bytes + module.c11_bytes, self.rva))
            if module.c13_bytes:
                start = module.sym_bytes + module.c11_bytes
                table.add_module(data, start, start + module.c13_bytes, names, self.rva)
        table.finish()
        return table

    @guarded
    def line_for(self, rva: int) -> tuple[str, int] | None:
        """(source file, line) of the code at ``rva``, or None when no line covers it."""
        return self._stage("lines", self._load_lines).line_for(rva)

    @guarded
    def lines(self) -> list[LineEntry]:
        """Every line entry (rva, length, file, line), sorted by RVA."""
        return self._stage("lines", self._load_lines).entries()

    @property
    def has_private_symbols(self) -> bool:
        """True when module streams hold procedures ("private pdb symbols")."""
        try:
            return bool(self.procedures())
        except SymbolFileError:
            return False

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Release the file; the object is unusable afterwards."""
        self._cache.clear()
        self.msf.close()
        if self._mapped is not None:
            _unmap(self._view, self._mapped)
            self._mapped = None

    def __enter__(self) -> PdbFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_by_rva = operator.attrgetter("rva")

_RECORD_FIELDS = dataclasses.fields(SymbolRecord)


def _plain_slots_record() -> bool:
    """True when every field is a slot and all but name, rva and kind have defaults."""
    for f in _RECORD_FIELDS:
        if not isinstance(getattr(SymbolRecord, f.name, None), MemberDescriptorType):
            return False
        if f.name not in ("name", "rva", "kind") and f.default is dataclasses.MISSING:
            return False
    return not hasattr(SymbolRecord, "__post_init__")


_RECORD_SLOTS = _plain_slots_record()


def make_records(names: list[str], rvas: list[int], kind: SymbolKind) -> list[SymbolRecord]:
    """``SymbolRecord(name, rva, kind)`` for every pair, fast.

    A big PDB has 100,000 publics, and the frozen dataclass's ``__init__``
    costs a Python call and five ``object.__setattr__`` calls each. When the
    record is a plain slots dataclass (it is), the objects are made bare and
    each slot is filled by its descriptor in one C-level ``map`` per field:
    exactly what ``__init__`` stores, at a third of the cost. Anything else
    falls back to the constructor.
    """
    if not _RECORD_SLOTS:
        return [SymbolRecord(n, r, kind) for n, r in zip(names, rvas)]
    records = list(map(object.__new__, repeat(SymbolRecord, len(names))))
    columns = {"name": names, "rva": rvas, "kind": repeat(kind)}
    for f in _RECORD_FIELDS:
        column = columns.get(f.name, repeat(f.default))
        deque(map(getattr(SymbolRecord, f.name).__set__, records, column), maxlen=0)
    return records
