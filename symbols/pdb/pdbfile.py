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

import logging
import mmap
import operator
import os
import struct
import sys
import traceback
from array import array
from collections.abc import Callable
from typing import Any, TypeVar

from kdcon.symbols import codeview as cv
from kdcon.symbols.debugdir import parse_section_headers
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import FileKind, SectionHeader, SymbolId, SymbolRecord
from kdcon.symbols.pdb.guard import CORRUPT, guarded
from kdcon.symbols.pdb.lines import LineEntry, LineTable, parse_names
from kdcon.symbols.pdb.lines_c11 import read_c11_lines
from kdcon.symbols.pdb.msf import MsfFile
from kdcon.symbols.pdb.records import address_fields, compile_language, iter_records, read_name
from kdcon.symbols.pdb.staged import Contributions
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
from kdcon.symbols.pdb.symtab import (
    GLOBALS_ORDER,
    PdbTable,
    Reader,
    make_records,
    module_order,
)
from kdcon.symbols.pdb.tpi import TypeTable

__all__ = ["PdbFile", "open_pdb", "make_records"]

_UDT_KINDS = frozenset({cv.S_UDT, cv.S_UDT_ST, cv.S_UDT_16t})
_MODULE_KINDS = cv.PROC_KINDS | cv.LABEL_KINDS

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

    def _symrec_span(self):
        if self.dbi is None or self.dbi.symrec_stream == NO_STREAM:
            return b"", 0, 0
        return self.msf.stream_span(self.dbi.symrec_stream)

    @property
    def _reader(self) -> Reader:
        return self._stage("reader", lambda: Reader(self._bases, self._omap, self.small,
                                                     self._data_type_name))

    # -- publics -----------------------------------------------------------------------

    @guarded
    def publics(self) -> list[SymbolRecord]:
        """Public symbols (S_PUB32 in every form), sorted by RVA, names as stored."""
        return list(self._stage("publics", lambda: self.public_table().records()))

    @guarded
    def public_table(self) -> PdbTable:
        """The publics as a table (``symtab``): what ``publics()`` lists, made on demand."""
        return self._stage("public_table", self._load_public_table)

    def _load_public_table(self) -> PdbTable:
        buf, start, stop = self._symrec_span()
        return self._reader.publics(buf, start, stop, self._public_offsets())

    def _public_offsets(self) -> array | None:
        dbi = self.dbi
        if dbi is None or not self.msf.has_stream(dbi.public_stream):
            return None
        buf, start, stop = self.msf.stream_span(dbi.public_stream)
        if stop - start < PSGSIHDR.size:
            return None
        hdr = parse_at(PSGSIHDR, buf[start:start + PSGSIHDR.size], 0, "publics header")
        at = start + PSGSIHDR.size + hdr.sym_hash_size
        if hdr.sym_hash_size < 0 or hdr.addr_map_size < 0 or hdr.addr_map_size % 4 \
                or at + hdr.addr_map_size > stop:
            log.warning("public symbol address map is damaged; scanning all records")
            return None
        offsets = array("I")
        offsets.frombytes(buf[at:at + hdr.addr_map_size])
        if sys.byteorder == "big":
            offsets.byteswap()
        return offsets

    # -- globals and types ---

    @guarded
    def globals(self) -> list[SymbolRecord]:
        """Global and file-static data (S_GDATA32/S_LDATA32), sorted by RVA, with type names."""
        return list(self._stage("globals", lambda: self.global_table().records()))

    @guarded
    def global_table(self) -> PdbTable:
        """The globals as a table; type names are rendered when a record is made."""
        return self._stage("global_table", self._load_global_table)

    def _load_global_table(self) -> PdbTable:
        buf, start, stop = self._symrec_span()
        return self._reader.scan(buf, start, stop, cv.DATA_KINDS, GLOBALS_ORDER)

    def _data_type_name(self, type_index: int) -> str | None:
        """A global's type as ``x`` prints it; None when TPI cannot say (reported once)."""
        try:
            return self._stage("tpi", self._load_tpi).type_name(type_index)
        except SymbolFileError as exc:
            if "tpi_failed" not in self._cache:
                self._cache["tpi_failed"] = True
                log.warning("%s: type records unreadable (%s); globals shown without types",
                            self._name, exc)
            return None

    @property
    @guarded
    def types(self) -> TypeTable:
        """The TPI type table (indexed on first use), typedef names (S_UDT) included."""
        return self._stage("types", self._load_types)

    def _load_tpi(self) -> TypeTable:
        return TypeTable(self.msf.stream(STREAM_TPI), small=self.small)

    def _load_types(self) -> TypeTable:
        table = self._stage("tpi", self._load_tpi)
        buf, start, stop = self._symrec_span()
        aliases = {}
        head = struct.Struct("<HH").unpack_from
        pos = start
        while pos + 4 <= stop:
            reclen, kind = head(buf, pos)
            end = pos + 2 + reclen
            if reclen < 2 or end > stop:
                raise SymbolFileError(f"symbol record at 0x{pos - start:x} overruns its stream")
            if kind in _UDT_KINDS:
                fmt = "<H" if kind == cv.S_UDT_16t else "<I"
                ti = struct.unpack_from(fmt, buf, pos + 4)[0]
                raw = read_name(buf, pos + 4 + struct.calcsize(fmt), end, kind != cv.S_UDT)
                aliases[self.decode_name(raw)] = ti
            pos = end
        table.add_aliases(aliases)
        return table

    # -- module symbols ---------------------------------------------------------

    @guarded
    def module_table(self, index: int) -> PdbTable | None:
        """Procedures and labels of module ``index`` as a table; None without a stream."""
        return self._stage(f"module:{index}", lambda: self._scan_module(index, _MODULE_KINDS))

    def _scan_module(self, index: int, kinds: frozenset[int]) -> PdbTable | None:
        module = self.dbi.modules[index] if self.dbi is not None else None
        if module is None or module.stream == NO_STREAM or not self.msf.has_stream(module.stream):
            return None
        buf, start, stop = self.msf.stream_span(module.stream)
        end = start + min(module.sym_bytes, stop - start)
        return self._reader.scan(buf, start + 4, end, kinds, module_order(index))

    @guarded
    def module_language(self, index: int) -> int | None:
        """CV_CFL_* source language of module ``index`` (from its compile record)."""
        module = self.dbi.modules[index] if self.dbi is not None and index < len(self.dbi.modules) else None
        if module is None or module.stream == NO_STREAM or not self.msf.has_stream(module.stream):
            return None
        buf, start, stop = self.msf.stream_span(module.stream)
        return compile_language(buf, start + 4, start + min(module.sym_bytes, stop - start))

    def _module_records(self, kinds: frozenset[int], thunks: bool = False) -> list[SymbolRecord]:
        records: list[SymbolRecord] = []
        for index in range(len(self.dbi.modules) if self.dbi is not None else 0):
            table = self._scan_module(index, kinds) if thunks else self.module_table(index)
            if table is not None:
                records += table.records(kinds)
        records.sort(key=_by_rva)
        return records

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
        return list(self._stage("procedures", lambda: self._module_records(cv.PROC_KINDS)))

    @guarded
    def labels(self) -> list[SymbolRecord]:
        """Code labels (S_LABEL32) from module streams."""
        return list(self._stage("labels", lambda: self._module_records(cv.LABEL_KINDS)))

    @guarded
    def thunks(self) -> list[SymbolRecord]:
        """Thunks (S_THUNK32) from module streams, size = thunk length."""
        return list(self._stage("thunks", lambda: self._module_records(cv.THUNK_KINDS, thunks=True)))

    @guarded
    def contribution_map(self) -> Contributions | None:
        """Section contributions as RVA ranges (``staged``); None when they cannot
        place symbols: no DBI, no usable rows, or OMAP between the address spaces."""
        return self._stage("contributions", self._load_contributions)

    def _load_contributions(self) -> Contributions | None:
        if self.dbi is None or self._omap is not None:
            return None
        contributions = Contributions(self.dbi.contribution_bytes, self._sections)
        return contributions if len(contributions) else None

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
        """True when a module stream holds a procedure ("private pdb symbols").

        Reads module streams only up to the first procedure; a module that
        cannot be read counts as holding none."""
        return self._stage("private", self._find_procedure)

    def _find_procedure(self) -> bool:
        for module in self.dbi.modules if self.dbi is not None else ():
            if module.stream == NO_STREAM or not self.msf.has_stream(module.stream):
                continue
            try:
                buf, start, stop = self.msf.stream_span(module.stream)
                for kind, at, end in iter_records(buf, start + 4, start + min(module.sym_bytes,
                                                                              stop - start)):
                    if kind in cv.PROC_KINDS:
                        segment, offset = address_fields(buf, kind, at, end)
                        if self.rva(segment, offset) is not None:
                            return True
            except (SymbolFileError, *CORRUPT) as exc:
                log.debug("%s: module %s unreadable: %s", self._name, module.name, exc)
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
