"""PE images: identity, sections, exports, debug directory, .pdata and FPO.

Headers are read with struct: the file header, the optional header's identity fields
and data directories, and the section table, after ``_check_headers`` refused what the
loader refuses (no directory is parsed eagerly; symbols.md §1.8, §6.3). pefile parses
far more than this per image, ten times the cost. Everything past the headers
is read by RVA through one callable ``read(rva, size) -> bytes | None``, so the
same code serves an image file (RVAs mapped through the section table to file
offsets) and an image read from target memory
(mapped layout, pages may be missing: a missing page only loses what lies on it).
For files, debug blobs are taken by ``PointerToRawData``; in memory by
``AddressOfRawData`` (§6.3).

Gives: ``SymbolId``; section headers; exports as ``SymbolRecord`` (the "export
symbols" fallback); MISC EXENAME; NB10/RSDS reference; x64 RUNTIME_FUNCTION
entries and their UNWIND_INFO (decoded by ``unwindinfo.py``); x86 FPO_DATA. Does
not disassemble, relocate or read resources. Every failure is ``SymbolFileError``.
"""

from __future__ import annotations

import bisect
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from .debugdir import (IMAGE_DEBUG_TYPE_CODEVIEW, IMAGE_DEBUG_TYPE_FPO, IMAGE_DEBUG_TYPE_MISC,
                       CodeViewRef, DebugEntry, FpoData, decode_name, parse_codeview_ref,
                       parse_debug_directory, parse_fpo, parse_misc_name, read_source)
from .errors import SymbolFileError
from .model import FileKind, SectionHeader, SymbolId, SymbolKind, SymbolRecord
from .unwindinfo import RuntimeFunction, UnwindInfo, parse_unwind_info, unwind_info_size

__all__ = ["Reader", "Searcher", "RuntimeFunction", "UnwindInfo", "PeImage", "read_image",
           "read_image_from_memory", "identify_from_memory", "IMAGE_FILE_DEBUG_STRIPPED", "IMAGE_FILE_DLL"]

log = logging.getLogger(__name__)

Reader = Callable[[int, int], "bytes | None"]
# ``search(rva, length, pattern)``: the RVA in [rva, rva+length) where ``pattern``
# begins, as the target finds it, or None.
Searcher = Callable[[int, int, bytes], "int | None"]

IMAGE_FILE_DEBUG_STRIPPED = 0x0200
IMAGE_FILE_DLL = 0x2000
_DIR_EXPORT, _DIR_EXCEPTION, _DIR_DEBUG = 0, 3, 6
_HEADER_PAGE = 0x1000
MAX_EXPORTS = 0x10000
MAX_RUNTIME_FUNCTIONS = 1 << 20
MAX_NAME = 512
MAX_BLOB = 1 << 24
MAX_SECTIONS = 96


@dataclass(slots=True)
class PeImage:
    """What the symbols layer needs from one image."""

    identity: SymbolId
    machine: int
    image_base: int
    characteristics: int
    sections: list[SectionHeader]
    debug_entries: list[DebugEntry]
    misc_name: str | None
    codeview: CodeViewRef | None
    _read: Reader = field(repr=False)
    _directories: list[tuple[int, int]] = field(repr=False, default_factory=list)
    _runtime: list[RuntimeFunction] | None = field(repr=False, default=None)
    _fpo: list[FpoData] | None = field(repr=False, default=None)
    _blob: Callable[[DebugEntry], bytes | None] | None = field(repr=False, default=None)
    _headers_from: Callable[[], PeImage] | None = field(repr=False, default=None)

    def read_headers(self) -> None:
        """Fill in what an image identified by its CodeView record alone lacks (machine,
        characteristics, debug entries, data directories), reading its headers now.
        Every method that needs them calls this; nothing is read twice."""
        if self._headers_from is None:
            return
        load, self._headers_from = self._headers_from, None
        try:
            full = load()
        except SymbolFileError as exc:
            log.info("%s: headers not usable: %s", self.identity.name, exc)
            return
        self.machine, self.image_base = full.machine, full.image_base
        self.characteristics = full.characteristics
        self.debug_entries, self.misc_name = full.debug_entries, full.misc_name
        self._read, self._directories, self._blob = full._read, full._directories, full._blob

    @property
    def stripped(self) -> bool:
        """Debug information split into a DBG file (IMAGE_FILE_DEBUG_STRIPPED)."""
        self.read_headers()
        return bool(self.characteristics & IMAGE_FILE_DEBUG_STRIPPED)

    @property
    def is_64bit(self) -> bool:
        self.read_headers()
        return self.machine in (0x8664, 0xAA64, 0x0200)

    def symbol_file_names(self) -> list[str]:
        """Names the image asks for: its CodeView PDB name, then its MISC DBG name."""
        names = []
        if self.codeview is not None and self.codeview.pdb_name:
            names.append(self.codeview.pdb_name)
        if self.misc_name:
            stem = _stem(self.misc_name)
            names.append(stem + ".dbg")
        return names

    def exports(self) -> list[SymbolRecord]:
        """Named exports with their RVAs (forwarders excluded), sorted by RVA."""
        self.read_headers()
        rva, size = self._directories[_DIR_EXPORT] if self._directories else (0, 0)
        if not rva:
            return []
        return _exports(self._read, rva, size)

    def runtime_functions(self) -> list[RuntimeFunction]:
        if self._runtime is None:
            self.read_headers()
            self._runtime = []
            if self._directories and self.is_64bit:
                rva, size = self._directories[_DIR_EXCEPTION]
                if rva and size:
                    self._runtime = _runtime_functions(self._read, rva, size)
        return self._runtime

    def runtime_function_for(self, rva: int) -> RuntimeFunction | None:
        functions = self.runtime_functions()
        position = bisect.bisect_right(functions, rva, key=lambda f: f.begin) - 1
        if position >= 0 and functions[position].begin <= rva < functions[position].end:
            return functions[position]
        return None

    def unwind_info(self, function: RuntimeFunction) -> UnwindInfo | None:
        """The function's UNWIND_INFO (handler RVA included; chained entry as RVAs);
        None when it is not readable."""
        return _unwind(self._read, function.unwind_info)

    def fpo(self) -> list[FpoData]:
        if self._fpo is None:
            self.read_headers()
            self._fpo = []
            for entry in self.debug_entries:
                if entry.type == IMAGE_DEBUG_TYPE_FPO and self._blob is not None:
                    blob = self._blob(entry)
                    if blob:
                        self._fpo = parse_fpo(blob)
        return self._fpo


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _read_cstring(read: Reader, rva: int) -> str | None:
    data = read(rva, MAX_NAME)
    if data is None:
        data = read(rva, (-rva) % _HEADER_PAGE or _HEADER_PAGE)
    if not data:
        return None
    end = data.find(b"\x00")
    if end < 0:
        return None
    return decode_name(data[:end])


def _exports(read: Reader, rva: int, size: int) -> list[SymbolRecord]:
    head = read(rva, 40)
    if head is None or len(head) < 40:
        log.debug("export directory at %#x not readable", rva)
        return []
    (_, _, _, _, _, _, n_functions, n_names, functions_rva, names_rva,
     ordinals_rva) = struct.unpack_from("<IIHHIIIIIII", head)
    if n_names > MAX_EXPORTS or n_functions > MAX_EXPORTS:
        raise SymbolFileError(f"export directory claims {n_names} names, {n_functions} functions")
    functions = read(functions_rva, 4 * n_functions) if n_functions else b""
    names = read(names_rva, 4 * n_names) if n_names else b""
    ordinals = read(ordinals_rva, 2 * n_names) if n_names else b""
    if functions is None or names is None or ordinals is None:
        log.debug("export tables not readable")
        return []
    if len(functions) < 4 * n_functions or len(names) < 4 * n_names or len(ordinals) < 2 * n_names:
        raise SymbolFileError("export tables truncated")
    addresses = struct.unpack_from(f"<{n_functions}I", functions)
    records = []
    for name_rva, ordinal in zip(struct.unpack_from(f"<{n_names}I", names),
                                 struct.unpack_from(f"<{n_names}H", ordinals)):
        if ordinal >= n_functions:
            continue
        target = addresses[ordinal]
        if target == 0 or rva <= target < rva + size:
            continue                      # unused slot or a forwarder string
        name = _read_cstring(read, name_rva)
        if name:
            records.append(SymbolRecord(name, target, SymbolKind.EXPORT))
    records.sort(key=lambda r: (r.rva, r.name))
    return records


def _runtime_functions(read: Reader, rva: int, size: int) -> list[RuntimeFunction]:
    count = size // 12
    if count > MAX_RUNTIME_FUNCTIONS:
        raise SymbolFileError(f"{count} runtime functions")
    data = read(rva, count * 12)
    if data is None:
        return []
    count = len(data) // 12
    entries = [RuntimeFunction(*struct.unpack_from("<III", data, i * 12)) for i in range(count)]
    entries = [e for e in entries if e.begin < e.end]
    entries.sort(key=lambda e: e.begin)
    return entries


def _unwind(read: Reader, rva: int) -> UnwindInfo | None:
    rva &= ~1                                 # bit 0 of UnwindData: an indirect entry
    head = read(rva, 4)
    if head is None or len(head) < 4:
        return None
    size = unwind_info_size(head, handler=True)
    data = read(rva, size) if size > 4 else head
    if data is None or len(data) < size:
        return None
    return parse_unwind_info(data)


def _check_headers(data: bytes) -> int:
    """Refuse what the Windows loader refuses; every header field read later lies
    within the length returned (up to the section table's end)."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        raise SymbolFileError("not a PE image: no MZ header")
    (e_lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if e_lfanew + 24 > len(data) or data[e_lfanew:e_lfanew + 4] != b"PE\x00\x00":
        raise SymbolFileError("not a PE image: no PE signature")
    sections, _, _, _, optional_size = struct.unpack_from("<HIIIH", data, e_lfanew + 6)
    if sections > MAX_SECTIONS:
        raise SymbolFileError(f"{sections} sections (the loader allows {MAX_SECTIONS})")
    end = e_lfanew + 24 + optional_size + 40 * sections
    if end > len(data):
        raise SymbolFileError("headers truncated")
    if optional_size < 2 or struct.unpack_from("<H", data, e_lfanew + 24)[0] not in (0x10B, 0x20B):
        raise SymbolFileError("not a PE image: no PE32 or PE32+ optional header")
    if optional_size < (112 if data[e_lfanew + 25] == 2 else 96):
        raise SymbolFileError(f"optional header of {optional_size} bytes is too short")
    return end


@dataclass(frozen=True, slots=True)
class _RawSection:
    name: bytes
    virtual_size: int
    virtual_address: int
    raw_size: int
    raw_pointer: int
    characteristics: int


@dataclass(frozen=True, slots=True)
class _Headers:
    """The header fields this layer uses (IMAGE_FILE_HEADER, IMAGE_OPTIONAL_HEADER32/64)."""

    machine: int
    characteristics: int
    timestamp: int
    image_base: int
    size_of_image: int
    size_of_headers: int
    checksum: int
    directories: list[tuple[int, int]]
    sections: list[_RawSection]


_FILE_HEADER = struct.Struct("<HHIIIHH")
_SECTION_ROW = struct.Struct("<8sIIIIIIHHI")
# Offsets in the optional header (winnt.h): ImageBase, then SizeOfImage, SizeOfHeaders
# and CheckSum, and the data directories after NumberOfRvaAndSizes.
_PE32 = (28, "<I", 92, 96)
_PE32_PLUS = (24, "<Q", 108, 112)


def _parse_headers(data: bytes) -> _Headers:
    """The file header, optional header and section table, within the bounds that
    ``_check_headers`` checked."""
    _check_headers(data)
    (e_lfanew,) = struct.unpack_from("<I", data, 0x3C)
    machine, count, timestamp, _, _, optional_size, characteristics = _FILE_HEADER.unpack_from(
        data, e_lfanew + 4)
    optional = e_lfanew + 24
    base_at, base_format, count_at, dirs_at = _PE32_PLUS if data[optional + 1] == 2 else _PE32
    (image_base,) = struct.unpack_from(base_format, data, optional + base_at)
    size_of_image, size_of_headers, checksum = struct.unpack_from("<III", data, optional + 56)
    (wanted,) = struct.unpack_from("<I", data, optional + count_at)
    room = (optional_size - dirs_at) // 8
    directories = [struct.unpack_from("<II", data, optional + dirs_at + 8 * i)
                   for i in range(min(wanted, 16, room))]
    table = optional + optional_size
    sections = []
    for i in range(count):
        name, vsize, vaddr, raw_size, raw_pointer, *_, flags = _SECTION_ROW.unpack_from(
            data, table + 40 * i)
        sections.append(_RawSection(name, vsize, vaddr, raw_size, raw_pointer, flags))
    return _Headers(machine, characteristics, timestamp, image_base, size_of_image,
                    size_of_headers, checksum, directories, sections)


def _file_reader(headers: _Headers, data: bytes) -> Reader:
    """``read(rva, size)`` over an image file: headers, then each section's raw data."""
    spans = []
    for section in headers.sections:
        start = section.virtual_address
        raw = min(section.raw_size, max(len(data) - section.raw_pointer, 0))
        spans.append((start, start + max(section.virtual_size, raw), section.raw_pointer, raw))
    headers_size = min(headers.size_of_headers, len(data))

    def read(rva: int, size: int) -> bytes | None:
        if rva < 0 or size < 0 or size > MAX_BLOB:
            return None
        if rva < headers_size:
            return data[rva:min(rva + size, headers_size)] or None
        for start, end, pointer, raw in spans:
            if start <= rva < end:
                offset = rva - start
                if offset >= raw:
                    return bytes(min(size, end - rva)) or None    # zero-filled tail of the section
                return data[pointer + offset:pointer + min(offset + size, raw)] or None
        return None

    return read


def _build(headers: _Headers, name: str, read: Reader,
           blob: Callable[[DebugEntry], bytes | None]) -> PeImage:
    directories = headers.directories + [(0, 0)] * (16 - len(headers.directories))
    sections = [SectionHeader(decode_name(s.name), s.virtual_address, s.virtual_size,
                              s.characteristics) for s in headers.sections]
    machine, image_base, characteristics = headers.machine, headers.image_base, headers.characteristics
    timestamp, size_of_image, checksum = headers.timestamp, headers.size_of_image, headers.checksum
    debug: list[DebugEntry] = []
    misc = None
    codeview = None
    debug_rva, debug_size = directories[_DIR_DEBUG]
    if debug_rva and debug_size:
        raw = read(debug_rva, min(debug_size, 28 * 64))
        if raw is None:
            log.debug("%s: debug directory not readable", name)
        else:
            debug = parse_debug_directory(raw)
    for entry in debug:
        if entry.type not in (IMAGE_DEBUG_TYPE_MISC, IMAGE_DEBUG_TYPE_CODEVIEW):
            continue
        data = blob(entry)
        if not data:
            continue
        try:
            if entry.type == IMAGE_DEBUG_TYPE_MISC:
                misc = misc or parse_misc_name(data)
            elif codeview is None:
                codeview = parse_codeview_ref(data)
        except SymbolFileError as exc:
            log.debug("%s: %s", name, exc)
    identity = SymbolId(
        kind=FileKind.PE, name=name, timestamp=timestamp, size_of_image=size_of_image,
        checksum=checksum,
        signature=codeview.signature if codeview else None,
        guid=codeview.guid if codeview else None,
        age=codeview.age if codeview else 0,
        pdb_name=codeview.pdb_name if codeview else None,
    )
    return PeImage(identity, machine, image_base, characteristics, sections, debug, misc, codeview,
                   read, directories, None, None, blob)


def read_image(source: str | bytes, name: str | None = None) -> PeImage:
    """Parse an image file (path or bytes) in file layout."""
    data, name = read_source(source, name, "image")
    headers = _parse_headers(data)
    read = _file_reader(headers, data)

    def blob(entry: DebugEntry) -> bytes | None:
        if entry.size > MAX_BLOB or entry.pointer + entry.size > len(data):
            return read(entry.rva, entry.size) if entry.rva else None
        return data[entry.pointer:entry.pointer + entry.size]

    return _build(headers, name, read, blob)


def read_image_from_memory(read: Reader, name: str) -> PeImage:
    """Parse an image mapped in target memory; ``read(rva, size)`` may return None.

    Over a serial line every request costs about 180 bytes besides its data, so this
    reads what identification needs and no more: ``e_lfanew``, the headers up to the
    debug data directory, then the debug directory together with the bytes after it
    (where linkers put the CodeView record). The section table is read only if
    something asks for it (a PDB without section headers of its own).
    """
    dos = read(0x3C, 4)
    if not dos or len(dos) < 4:
        raise SymbolFileError(f"{name}: image headers are not readable")
    (e_lfanew,) = struct.unpack("<I", bytes(dos))
    if e_lfanew < 0x40 or e_lfanew > _HEADER_PAGE - _MEMORY_HEADERS:
        raise SymbolFileError(f"{name}: not a PE image: e_lfanew {e_lfanew:#x}")
    nt = read(e_lfanew, _MEMORY_HEADERS)
    if not nt or len(nt) < _MEMORY_HEADERS or bytes(nt[:4]) != b"PE\x00\x00":
        raise SymbolFileError(f"{name}: not a PE image: no PE signature")
    parsed, sections_at, section_count = _parse_memory_headers(bytes(nt), e_lfanew)

    def bounded(rva: int, size: int) -> bytes | None:
        if rva < 0 or size < 0 or size > MAX_BLOB:
            return None
        data = read(rva, size)
        return bytes(data) if data else None

    def blob(entry: DebugEntry) -> bytes | None:
        return bounded(entry.rva, entry.size) if entry.rva else None

    debug_rva, debug_size = (parsed.directories[_DIR_DEBUG] if len(parsed.directories) > _DIR_DEBUG
                             else (0, 0))
    if debug_rva and 0 < debug_size <= 28 * 64:
        # One request for the directory and what follows it: the CodeView record.
        read(debug_rva, debug_size + _CODEVIEW_READ_AHEAD)
    image = _build(parsed, name, bounded, blob)
    image.sections = _SectionsOnDemand(lambda: _memory_sections(read, sections_at, section_count))
    return image


def identify_from_memory(read: Reader, search: Searcher, name: str, *, size_of_image: int,
                         timestamp: int, checksum: int = 0) -> PeImage:
    """An image in target memory known by its CodeView record, found by the target.

    The module list already gave the timestamp and size, and a PDB is matched by the
    RSDS record's GUID and age alone, so the headers are not needed to find symbols:
    one SearchMemory request for ``RSDS`` over the image (its reply carries only the
    address) and one read of the record. The record is taken only if it is whole and
    plausible (a GUID that is not zero, an age, a NUL-terminated printable name ending
    in ``.pdb``); otherwise, or when the target refuses the search, this is
    ``read_image_from_memory``. A plausible record of another image (a string in a
    data section) is caught later by the PDB's GUID and age, which then do not match.
    Headers are read the first time something needs them (exports, ``.pdata``, the
    section table: ``PeImage.read_headers``).
    """
    record = _codeview_by_search(read, search, size_of_image)
    if record is None:
        return read_image_from_memory(read, name)
    log.debug("%s: CodeView record found by search: %s", name, record.pdb_name)
    identity = SymbolId(kind=FileKind.PE, name=name, timestamp=timestamp, size_of_image=size_of_image,
                        checksum=checksum, guid=record.guid, age=record.age, pdb_name=record.pdb_name)
    full: list[PeImage] = []

    def headers() -> PeImage:
        if not full:
            full.append(read_image_from_memory(read, name))
        return full[0]

    def sections() -> list[SectionHeader]:
        try:
            return list(headers().sections)
        except SymbolFileError as exc:
            log.info("%s: no section table: %s", name, exc)
            return []

    return PeImage(identity, 0, 0, 0, _SectionsOnDemand(sections), [], None, record,
                   lambda rva, size: None, [], _headers_from=headers)


# The record (signature, GUID, age) and a PDB path of up to 103 bytes in one read;
# a longer path costs a second read.
_RSDS_HEAD = 24
_RSDS_READ = _RSDS_HEAD + 104


def _codeview_by_search(read: Reader, search: Searcher, size_of_image: int) -> CodeViewRef | None:
    at = search(0, size_of_image, b"RSDS")
    if at is None or not 0 <= at <= size_of_image - _RSDS_HEAD - 1:
        return None
    data = read(at, min(_RSDS_READ, size_of_image - at))
    if not data or len(data) < _RSDS_HEAD + 1:
        return None
    data = bytes(data)
    if data.find(b"\x00", _RSDS_HEAD) < 0 and len(data) == _RSDS_READ:
        more = read(at + len(data), min(MAX_NAME, size_of_image - at - len(data)))
        data += bytes(more or b"")
    return _plausible_rsds(data)


def _plausible_rsds(data: bytes) -> CodeViewRef | None:
    end = data.find(b"\x00", _RSDS_HEAD)
    name = data[_RSDS_HEAD:end]
    if data[:4] != b"RSDS" or end < 0 or not data[4:20].strip(b"\x00"):
        return None
    (age,) = struct.unpack_from("<I", data, 20)
    if age == 0 or len(name) > MAX_NAME or not name.lower().endswith(b".pdb") \
            or min(name) < 0x20 or b"\x7f" in name:
        return None
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return parse_codeview_ref(data[:end + 1])
    except SymbolFileError:
        return None


# From e_lfanew through the debug entry of the data directories (PE32+: 0x18 + 0xA8).
_MEMORY_HEADERS = 0xC0
_CODEVIEW_READ_AHEAD = 0x40


def _parse_memory_headers(nt: bytes, e_lfanew: int) -> tuple[_Headers, int, int]:
    machine, count, timestamp, _, _, optional_size, characteristics = _FILE_HEADER.unpack_from(nt, 4)
    magic = struct.unpack_from("<H", nt, 24)[0]
    if magic not in (0x10B, 0x20B):
        raise SymbolFileError("not a PE image: no PE32 or PE32+ optional header")
    if count > MAX_SECTIONS:
        raise SymbolFileError(f"{count} sections (the loader allows {MAX_SECTIONS})")
    optional = 24
    base_at, base_format, count_at, dirs_at = _PE32_PLUS if magic == 0x20B else _PE32
    (image_base,) = struct.unpack_from(base_format, nt, optional + base_at)
    size_of_image, size_of_headers, checksum = struct.unpack_from("<III", nt, optional + 56)
    (wanted,) = struct.unpack_from("<I", nt, optional + count_at)
    room = min((optional_size - dirs_at) // 8, (len(nt) - optional - dirs_at) // 8)
    directories = [struct.unpack_from("<II", nt, optional + dirs_at + 8 * i)
                   for i in range(max(0, min(wanted, 16, room)))]
    headers = _Headers(machine, characteristics, timestamp, image_base, size_of_image,
                       size_of_headers, checksum, directories, [])
    return headers, e_lfanew + 24 + optional_size, count


def _memory_sections(read: Reader, at: int, count: int) -> list[SectionHeader]:
    raw = read(at, 40 * count) if count else b""
    if not raw:
        return []
    out = []
    for i in range(len(raw) // 40):
        name, vsize, vaddr, *_, flags = _SECTION_ROW.unpack_from(bytes(raw), 40 * i)
        out.append(SectionHeader(decode_name(name), vaddr, vsize, flags))
    return out


class _SectionsOnDemand(list):
    """The section table of an image in target memory, read the first time it is used."""

    def __init__(self, load: Callable[[], list[SectionHeader]]) -> None:
        super().__init__()
        self._load: Callable[[], list[SectionHeader]] | None = load

    def _fill(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            self.extend(load())

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __getitem__(self, index):
        self._fill()
        return super().__getitem__(index)

    def __contains__(self, item: object) -> bool:
        self._fill()
        return super().__contains__(item)

    def __eq__(self, other: object) -> bool:
        self._fill()
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._fill()
        return super().__repr__()
