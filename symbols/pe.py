"""PE images: identity, sections, exports, debug directory, .pdata and FPO.

Headers are read with pefile (``fast_load`` over the header page only: no
directory is parsed eagerly; symbols.md §1.8, §6.3). Everything past the headers
is read by RVA through one callable ``read(rva, size) -> bytes | None``, so the
same code serves an image file (RVAs mapped through the section table to file
offsets) and an image read from target memory
(mapped layout, pages may be missing: a missing page only loses what lies on it).
For files, debug blobs are taken by ``PointerToRawData``; in memory by
``AddressOfRawData`` (§6.3).

Gives: ``SymbolId``; section headers; exports as ``SymbolRecord`` (the "export
symbols" fallback); MISC EXENAME; NB10/RSDS reference; x64 RUNTIME_FUNCTION
entries and their UNWIND_INFO; x86 FPO_DATA. Does not disassemble, relocate or
read resources. Every failure is ``SymbolFileError``.
"""

from __future__ import annotations

import bisect
import functools
import logging
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pefile

from .debugdir import (IMAGE_DEBUG_TYPE_CODEVIEW, IMAGE_DEBUG_TYPE_FPO, IMAGE_DEBUG_TYPE_MISC,
                       CodeViewRef, DebugEntry, FpoData, decode_name, parse_codeview_ref,
                       parse_debug_directory, parse_fpo, parse_misc_name, read_source)
from .errors import SymbolFileError
from .model import FileKind, SectionHeader, SymbolId, SymbolKind, SymbolRecord

__all__ = ["Reader", "RuntimeFunction", "UnwindInfo", "PeImage", "read_image",
           "read_image_from_memory", "IMAGE_FILE_DEBUG_STRIPPED", "IMAGE_FILE_DLL"]

log = logging.getLogger(__name__)

Reader = Callable[[int, int], "bytes | None"]

IMAGE_FILE_DEBUG_STRIPPED = 0x0200
IMAGE_FILE_DLL = 0x2000
_DIR_EXPORT, _DIR_EXCEPTION, _DIR_DEBUG = 0, 3, 6
_HEADER_PAGE = 0x1000
MAX_EXPORTS = 0x10000
MAX_RUNTIME_FUNCTIONS = 1 << 20
MAX_NAME = 512
MAX_BLOB = 1 << 24
MAX_SECTIONS = 96


@dataclass(frozen=True, slots=True)
class RuntimeFunction:
    """One x64 .pdata entry: [begin, end) and the RVA of its UNWIND_INFO."""

    begin: int
    end: int
    unwind: int


@dataclass(frozen=True, slots=True)
class UnwindInfo:
    """x64 UNWIND_INFO: header fields, the raw unwind codes, and a chained entry."""

    version: int
    flags: int
    prolog_size: int
    frame_register: int
    frame_offset: int
    codes: tuple[tuple[int, int, int], ...]      # (prolog offset, operation, info)
    chained: RuntimeFunction | None = None
    handler: int | None = None


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

    @property
    def stripped(self) -> bool:
        """Debug information split into a DBG file (IMAGE_FILE_DEBUG_STRIPPED)."""
        return bool(self.characteristics & IMAGE_FILE_DEBUG_STRIPPED)

    @property
    def is_64bit(self) -> bool:
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
        rva, size = self._directories[_DIR_EXPORT] if self._directories else (0, 0)
        if not rva:
            return []
        return _exports(self._read, rva, size)

    def runtime_functions(self) -> list[RuntimeFunction]:
        if self._runtime is None:
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
        return _unwind(self._read, function.unwind, 0)

    def fpo(self) -> list[FpoData]:
        if self._fpo is None:
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


def _unwind(read: Reader, rva: int, depth: int) -> UnwindInfo | None:
    if depth > 32:
        raise SymbolFileError("unwind chain too long")
    head = read(rva & ~1, 4)                  # bit 0 set: an indirect entry (chain)
    if head is None or len(head) < 4:
        return None
    version_flags, prolog, count, frame = head
    codes_raw = read((rva & ~1) + 4, 2 * count + 16) or b""
    if len(codes_raw) < 2 * count:
        return None
    codes = tuple((codes_raw[2 * i], codes_raw[2 * i + 1] & 0xF, codes_raw[2 * i + 1] >> 4)
                  for i in range(count))
    flags = version_flags >> 3
    tail = 2 * (count + (count & 1))
    chained = handler = None
    if flags & 4 and len(codes_raw) >= tail + 12:     # UNW_FLAG_CHAININFO
        chained = RuntimeFunction(*struct.unpack_from("<III", codes_raw, tail))
    elif flags & 3 and len(codes_raw) >= tail + 4:    # EHANDLER / UHANDLER
        (handler,) = struct.unpack_from("<I", codes_raw, tail)
    return UnwindInfo(version_flags & 7, flags, prolog, frame & 0xF, frame >> 4, codes, chained, handler)


def _check_headers(data: bytes) -> int:
    """Refuse what the Windows loader refuses before pefile spends time on it.

    Returns the length of the headers pefile has to see: up to the section table's end.
    """
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


@functools.lru_cache(maxsize=64)
def _parse_header_page(headers: bytes) -> pefile.PE | SymbolFileError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pefile.PE(data=headers, fast_load=True)
        except pefile.PEFormatError as exc:
            return SymbolFileError(f"not a PE image: {exc.value}")
        except Exception as exc:  # pefile raises assorted errors on hostile headers
            return SymbolFileError(f"unreadable PE headers: {exc!r}")


def _parse_headers(data: bytes) -> pefile.PE:
    """pefile over the headers only; the same headers (a module read again) are parsed once."""
    end = _check_headers(data)
    parsed = _parse_header_page(bytes(data[:end]))
    if isinstance(parsed, SymbolFileError):
        raise SymbolFileError(str(parsed))
    return parsed


def _file_reader(pe: pefile.PE, data: bytes) -> Reader:
    """``read(rva, size)`` over an image file: headers, then each section's raw data."""
    spans = []
    for section in pe.sections:
        start = section.VirtualAddress
        raw = min(section.SizeOfRawData, max(len(data) - section.PointerToRawData, 0))
        spans.append((start, start + max(section.Misc_VirtualSize, raw), section.PointerToRawData, raw))
    headers_size = min(pe.OPTIONAL_HEADER.SizeOfHeaders, len(data))

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


def _build(pe: pefile.PE, name: str, read: Reader,
           blob: Callable[[DebugEntry], bytes | None]) -> PeImage:
    try:
        file_header, optional = pe.FILE_HEADER, pe.OPTIONAL_HEADER
        directories = [(d.VirtualAddress, d.Size) for d in optional.DATA_DIRECTORY]
        sections = [SectionHeader(decode_name(s.Name), s.VirtualAddress, s.Misc_VirtualSize,
                                  s.Characteristics) for s in pe.sections]
        fields = (file_header.Machine, optional.ImageBase, file_header.Characteristics,
                  file_header.TimeDateStamp, optional.SizeOfImage, optional.CheckSum)
    except AttributeError:
        raise SymbolFileError("PE optional header missing") from None
    directories += [(0, 0)] * (16 - len(directories))
    machine, image_base, characteristics, timestamp, size_of_image, checksum = fields
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
    pe = _parse_headers(data)
    read = _file_reader(pe, data)

    def blob(entry: DebugEntry) -> bytes | None:
        if entry.size > MAX_BLOB or entry.pointer + entry.size > len(data):
            return read(entry.rva, entry.size) if entry.rva else None
        return data[entry.pointer:entry.pointer + entry.size]

    return _build(pe, name, read, blob)


def read_image_from_memory(read: Reader, name: str) -> PeImage:
    """Parse an image mapped in target memory; ``read(rva, size)`` may return None."""
    headers = read(0, _HEADER_PAGE)
    if not headers:
        raise SymbolFileError(f"{name}: image headers are not readable")
    pe = _parse_headers(bytes(headers))

    def bounded(rva: int, size: int) -> bytes | None:
        if rva < 0 or size < 0 or size > MAX_BLOB:
            return None
        data = read(rva, size)
        return bytes(data) if data else None

    def blob(entry: DebugEntry) -> bytes | None:
        return bounded(entry.rva, entry.size) if entry.rva else None

    return _build(pe, name, bounded, blob)
