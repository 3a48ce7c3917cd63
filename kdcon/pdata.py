"""Exception-directory data of x64 PE images: RUNTIME_FUNCTION and UNWIND_INFO.

Spec: Microsoft's "x64 exception handling" (RUNTIME_FUNCTION, UNWIND_INFO, UNWIND_CODE
and its node counts, chained info) and the PE format (the exception directory, entry
3 of the data directories of a PE32+ optional header). UNWIND_INFO is decoded by
``kdcon.symbols.unwindinfo``, the one decoder the symbols layer's images use too;
this module turns its errors into ``UnwindError`` and keeps its names for the walker.

A ``FunctionTable`` reads one image's tables through a reader of absolute addresses:
a whole image given as bytes (a file, or as loaded) is parsed at once; an image in
target memory is read lazily: two small reads for the headers, then at the first
lookup the whole table and the span of its UNWIND_INFO when each fits one request,
else one 12-byte entry per binary-search probe and each UNWIND_INFO once. Nothing
here walks a stack (unwind.py does) or prints anything.
"""

from __future__ import annotations

import bisect
import logging
import struct
from collections.abc import Callable, Iterator

from kdcon.symbols import unwindinfo
from kdcon.symbols.unwindinfo import (GPRS, MAX_CHAIN, RUNTIME_FUNCTION_INDIRECT, UNW_FLAG_CHAININFO,
                                      UNW_FLAG_EHANDLER, UNW_FLAG_UHANDLER, UWOP_ALLOC_LARGE,
                                      UWOP_ALLOC_SMALL, UWOP_EPILOG, UWOP_PUSH_MACHFRAME,
                                      UWOP_PUSH_NONVOL, UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR,
                                      UWOP_SAVE_XMM128, UWOP_SAVE_XMM128_FAR, UWOP_SET_FPREG,
                                      UWOP_SPARE_CODE, RuntimeFunction, UnwindCode, UnwindDataError,
                                      UnwindInfo, unwind_info_size)

from .errors import KdconError

__all__ = [
    "FunctionTable", "GPRS", "MAX_CHAIN", "Reader", "RuntimeFunction", "UnwindCode", "UnwindError",
    "UnwindInfo", "parse_unwind_info", "unwind_info_size",
    "UNW_FLAG_CHAININFO", "UNW_FLAG_EHANDLER", "UNW_FLAG_UHANDLER", "UWOP_ALLOC_LARGE",
    "UWOP_ALLOC_SMALL", "UWOP_EPILOG", "UWOP_PUSH_MACHFRAME", "UWOP_PUSH_NONVOL", "UWOP_SAVE_NONVOL",
    "UWOP_SAVE_NONVOL_FAR", "UWOP_SAVE_XMM128", "UWOP_SAVE_XMM128_FAR", "UWOP_SET_FPREG",
    "UWOP_SPARE_CODE", "RUNTIME_FUNCTION_INDIRECT",
]

log = logging.getLogger(__name__)

Reader = Callable[[int, int], bytes]

_IMAGE_DIRECTORY_ENTRY_EXCEPTION = 3
_PE32_PLUS = 0x20B
# From target memory, at 178 bytes of packet overhead a request, a table is read
# whole at the first lookup when that one request costs less than the binary search's
# probes for two lookups (a walk seldom has fewer frames in a module), and fits one
# transfer (3,944 bytes). Its UNWIND_INFO then lie in a span of known bounds, read at
# once too when it is no longer than _UNWIND_SPAN (about three frames' own reads).
_REQUEST = 178
_MAX_TRANSFER = 3944
_UNWIND_SPAN = 0x180


class UnwindError(KdconError):
    """Unwind data or an image header that cannot be used."""


def parse_unwind_info(data: bytes, base: int) -> UnwindInfo:
    """Decode an UNWIND_INFO (``kdcon.symbols.unwindinfo`` does); ``base`` turns the
    chained entry's RVAs into addresses."""
    try:
        return unwindinfo.parse_unwind_info(data, base)
    except UnwindDataError as exc:
        raise UnwindError(str(exc)) from None


class FunctionTable:
    """One image's exception directory and its UNWIND_INFO, read through ``read``
    (absolute addresses) and kept once read."""

    def __init__(self, read: Reader, base: int, size: int, directory: tuple[int, int],
                 entries: list[tuple[int, int, int]] | None = None) -> None:
        self.base = base
        self.size = size
        self._read = read
        self._directory_rva, directory_size = directory
        self.count = directory_size // 12
        self._entries: dict[int, tuple[int, int, int]] = dict(enumerate(entries)) if entries else {}
        self._infos: dict[int, UnwindInfo | None] = {}
        self._whole = bool(entries)              # every entry is known
        self._span: tuple[int, bytes] | None = None
        self._found: list[RuntimeFunction] = []
        self._found_begins: list[int] = []

    # -- construction ----------------------------------------------------------------

    @classmethod
    def from_image(cls, image: bytes, base: int, *, mapped: bool = False) -> FunctionTable:
        """The table of a PE32+ image given whole: a file (``mapped=False``) or as loaded."""
        image = bytes(image)
        headers = _headers(lambda offset, size: image[offset:offset + size])
        if headers is None:
            raise UnwindError("not a PE32+ image")
        size_of_image, directory, sections = headers
        if mapped:
            to_offset = _identity
        else:
            to_offset = _file_offsets(sections)

        def read(address: int, size: int) -> bytes:
            offset = to_offset(address - base)
            return image[offset:offset + size] if offset is not None and offset >= 0 else b""

        raw = read(base + directory[0], directory[1]) if directory[1] else b""
        entries = [struct.unpack_from("<3I", raw, i) for i in range(0, len(raw) - 11, 12)]
        return cls(read, base, size_of_image, (directory[0], len(entries) * 12), entries)

    @classmethod
    def from_memory(cls, read: Reader, base: int) -> FunctionTable | None:
        """The table of the image loaded at ``base``, its headers read from target memory
        (two small reads); None when the headers cannot be read or are not PE32+."""
        headers = _headers(lambda offset, size: read(base + offset, size), sections=False)
        if headers is None:
            return None
        size_of_image, directory, _ = headers
        return cls(read, base, size_of_image, directory)

    # -- lookups ---------------------------------------------------------------------

    def contains(self, address: int) -> bool:
        return self.base <= address < self.base + self.size

    def _read_whole(self) -> None:
        """Every entry in one request, with the span of their UNWIND_INFO after it."""
        self._whole = True
        size = self.count * 12
        probes = 2 * self.count.bit_length() * (_REQUEST + 12)
        if not self.count or size > _MAX_TRANSFER or size + _REQUEST > probes:
            return
        raw = self._read(self.base + self._directory_rva, size)
        for index in range(len(raw) // 12):
            self._entries.setdefault(index, struct.unpack_from("<3I", raw, 12 * index))
        infos = [entry[2] for entry in self._entries.values() if not entry[2] & RUNTIME_FUNCTION_INDIRECT]
        if len(raw) == size and infos and max(infos) + 32 - min(infos) <= _UNWIND_SPAN:
            start = self.base + min(infos)
            self._span = (start, bytes(self._read(start, max(infos) + 32 - min(infos))))

    def _read_unwind(self, address: int, size: int) -> bytes:
        if self._span is not None:
            start, data = self._span
            if start <= address and address + size <= start + len(data):
                return data[address - start:address - start + size]
        return self._read(address, size)

    def _entry(self, index: int) -> tuple[int, int, int] | None:
        if not self._whole:
            self._read_whole()
        entry = self._entries.get(index)
        if entry is None:
            data = self._read(self.base + self._directory_rva + 12 * index, 12)
            if len(data) < 12:
                return None
            entry = struct.unpack("<3I", data)
            self._entries[index] = entry
        return entry

    def functions(self) -> Iterator[RuntimeFunction]:
        """Every entry in table order (from target memory: one read per entry not yet read)."""
        for index in range(self.count):
            entry = self._entry(index)
            if entry is None:
                return
            begin, end, unwind = entry
            yield RuntimeFunction(self.base + begin, self.base + end, self.base + unwind)

    def lookup(self, rip: int) -> RuntimeFunction | None:
        """The RUNTIME_FUNCTION whose range holds ``rip``; None for a leaf function."""
        position = bisect.bisect_right(self._found_begins, rip) - 1
        if position >= 0 and rip in self._found[position]:
            return self._found[position]
        rva = rip - self.base
        low, high = 0, self.count
        while low < high:
            middle = (low + high) // 2
            entry = self._entry(middle)
            if entry is None:
                return None
            begin, end, unwind = entry
            if rva < begin:
                high = middle
            elif rva >= end:
                low = middle + 1
            else:
                if unwind & RUNTIME_FUNCTION_INDIRECT:
                    data = self._read(self.base + (unwind & ~RUNTIME_FUNCTION_INDIRECT), 12)
                    if len(data) < 12:
                        return None
                    begin, end, unwind = struct.unpack("<3I", data)
                found = RuntimeFunction(self.base + begin, self.base + end, self.base + unwind)
                at = bisect.bisect_left(self._found_begins, found.begin)
                self._found.insert(at, found)
                self._found_begins.insert(at, found.begin)
                return found
        return None

    def unwind_info(self, address: int) -> UnwindInfo | None:
        """The UNWIND_INFO at ``address`` (read once: 32 bytes, more only if needed)."""
        if address in self._infos:
            return self._infos[address]
        info = None
        data = self._read_unwind(address, 32)
        if len(data) >= 4:
            size = unwind_info_size(data)
            if len(data) < size:
                data += self._read_unwind(address + len(data), size - len(data))
            try:
                info = parse_unwind_info(data[:size], self.base)
            except UnwindError as exc:
                log.warning("unwind data at %#x: %s", address, exc)
        self._infos[address] = info
        return info


def _identity(rva: int) -> int:
    return rva


def _file_offsets(sections: list[tuple[int, int, int, int]]) -> Callable[[int], int | None]:
    def to_offset(rva: int) -> int | None:
        for virtual_address, virtual_size, raw_size, raw_pointer in sections:
            if virtual_address <= rva < virtual_address + max(virtual_size, raw_size):
                if rva - virtual_address >= raw_size:
                    return None
                return raw_pointer + rva - virtual_address
        return rva if sections and rva < sections[0][0] else None
    return to_offset


def _headers(read: Callable[[int, int], bytes], sections: bool = True):
    """(SizeOfImage, (exception directory RVA, size), section table) of a PE32+ image."""
    dos = read(0x3C, 4)
    if len(dos) < 4:
        return None
    nt = struct.unpack("<I", dos)[0]
    fixed = read(nt, 24 + 112 + 8 * (_IMAGE_DIRECTORY_ENTRY_EXCEPTION + 1))
    if len(fixed) < 24 + 112 + 32 or fixed[:4] != b"PE\0\0":
        return None
    count, optional_size = struct.unpack_from("<H", fixed, 6)[0], struct.unpack_from("<H", fixed, 20)[0]
    magic, size_of_image = struct.unpack_from("<H", fixed, 24)[0], struct.unpack_from("<I", fixed, 24 + 56)[0]
    directories = struct.unpack_from("<I", fixed, 24 + 108)[0]
    if magic != _PE32_PLUS:
        return None
    directory = (0, 0)
    if directories > _IMAGE_DIRECTORY_ENTRY_EXCEPTION:
        directory = struct.unpack_from("<II", fixed, 24 + 112 + 8 * _IMAGE_DIRECTORY_ENTRY_EXCEPTION)
    table = []
    if sections:
        raw = read(nt + 24 + optional_size, 40 * count)
        for i in range(len(raw) // 40):
            vsize, vaddr, rsize, rptr = struct.unpack_from("<4I", raw, 40 * i + 8)
            table.append((vaddr, vsize, rsize, rptr))
    return size_of_image, directory, table
