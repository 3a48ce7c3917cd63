"""MSF container reader for both generations: small ("JG", PDB 2.0) and big ("DS", 7.0).

Pages come from a buffer (an ``mmap`` of the file or bytes); streams are
assembled on first use and cached. Every page number, stream size and count is
checked against the file before anything is allocated, so a hostile directory
can neither read outside the file nor make us allocate more than the file's
own size in stream data. Knows nothing of what the streams hold.

Layouts (symbols.md 2.1)::

    JG: magic[44] | u32 page_size | u16 fpm | u16 pages | u32 dir_size | u32 junk
        | u16 dir_pages[ceil(dir_size/page_size)]
        directory: u16 count, u16 pad, {u32 size, u32 junk}[count], u16 pages...
    DS: magic[32] | u32 block_size | u32 fpm | u32 blocks | u32 dir_size | u32 junk
        | u32 block_map[m]  (pages holding the directory's u32 page list)
        directory: u32 count, u32 sizes[count], u32 pages...

Size 0xFFFFFFFF marks a nil (deleted) stream. ``stream_span`` reads a stream
whose pages run back to back in place, from the file's own buffer, so the big
record streams are never copied. Spec: microsoft-pdb
``PDB/msf/msf.cpp``, LLVM ``docs/PDB/MsfFile.rst``.
"""

from __future__ import annotations

import logging
import mmap
import struct
import sys
from array import array

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb.structs import (
    MSF_DS_HEADER,
    MSF_DS_MAGIC,
    MSF_JG_HEADER,
    MSF_JG_MAGIC,
    parse_at,
)

__all__ = ["MsfFile", "NIL_STREAM_SIZE", "MIN_PAGE_SIZE", "MAX_PAGE_SIZE"]

log = logging.getLogger(__name__)

NIL_STREAM_SIZE = 0xFFFFFFFF
MIN_PAGE_SIZE = 512
MAX_PAGE_SIZE = 32768
# microsoft-pdb snMax: a small MSF holds fewer than 0x1000 streams; the big
# format has no hard limit, the directory size bounds it.
_JG_MAX_STREAMS = 0x1000


def _page_count(size: int, page_size: int) -> int:
    return (size + page_size - 1) // page_size


def _le_array(code: str, raw: bytes) -> array:
    """Little-endian page numbers as an array of ``code`` ("H" or "I")."""
    pages = array(code)
    pages.frombytes(raw)
    if sys.byteorder == "big":
        pages.byteswap()
    return pages


class MsfFile:
    """Streams of an MSF file held in ``data`` (bytes, memoryview or mmap).

    ``is_small`` tells the generation (True for "JG"). ``stream(i)`` returns the
    stream's bytes (``b""`` for nil or missing streams); ``has_stream(i)``
    tells them apart. Raises ``SymbolFileError`` on anything malformed.
    """

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
        self._cache: dict[int, bytes] = {}
        self._spans: dict[int, tuple[bytes | bytearray | mmap.mmap, int, int]] = {}
        self._base = _whole_buffer(self._data)
        head = bytes(self._data[:len(MSF_JG_MAGIC)])
        if head.startswith(MSF_DS_MAGIC):
            self.is_small = False
            self._open_big()
        elif head == MSF_JG_MAGIC:
            self.is_small = True
            self._open_small()
        else:
            raise SymbolFileError("not an MSF file (no PDB 2.0 or 7.0 signature)")

    # -- opening ----------------------------------------------------------------

    def _check_page_size(self, page_size: int) -> None:
        if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE or page_size & (page_size - 1):
            raise SymbolFileError(f"MSF page size {page_size} is not a power of two in 512..32768")

    def _set_geometry(self, page_size: int, page_count: int, dir_size: int) -> int:
        """Check the header's geometry; returns the directory's page count."""
        self._check_page_size(page_size)
        available = len(self._data) // page_size
        if page_count == 0 or page_count > available:
            # A file shorter than its page count is truncated; the pages that
            # are present cannot be trusted to be the ones the directory means.
            raise SymbolFileError(
                f"MSF claims {page_count} pages of {page_size} bytes, file holds {available}")
        self.page_size = page_size
        self.page_count = page_count
        if dir_size < 4 or dir_size > page_count * page_size:
            raise SymbolFileError(f"MSF directory size {dir_size} is impossible")
        return _page_count(dir_size, page_size)

    def _open_big(self) -> None:
        hdr = parse_at(MSF_DS_HEADER, self._data, 0, "MSF 7.0 header")
        dir_pages = self._set_geometry(hdr.block_size, hdr.block_count, hdr.directory_size)
        ps = self.page_size
        map_pages = _page_count(dir_pages * 4, ps)
        map_at = MSF_DS_HEADER.size
        if map_at + 4 * map_pages > ps:
            raise SymbolFileError("MSF 7.0 block map does not fit in the header page")
        block_map = self._pages_array("I", map_at, map_pages)
        page_list = _le_array("I", self._assemble(block_map, dir_pages * 4))
        self._directory = self._assemble(page_list, hdr.directory_size)
        self._parse_directory(wide=True)

    def _open_small(self) -> None:
        hdr = parse_at(MSF_JG_HEADER, self._data, 0, "MSF 2.0 header")
        dir_pages = self._set_geometry(hdr.page_size, hdr.page_count, hdr.directory_size)
        at = MSF_JG_HEADER.size
        if at + 2 * dir_pages > self.page_size:
            raise SymbolFileError("MSF 2.0 directory page list does not fit in the header page")
        page_list = self._pages_array("H", at, dir_pages)
        self._directory = self._assemble(page_list, hdr.directory_size)
        self._parse_directory(wide=False)

    def _pages_array(self, code: str, offset: int, count: int) -> array:
        width = 4 if code == "I" else 2
        raw = bytes(self._data[offset:offset + width * count])
        if len(raw) != width * count:
            raise SymbolFileError("MSF header page list is truncated")
        return _le_array(code, raw)

    def _parse_directory(self, *, wide: bool) -> None:
        d = self._directory
        ps = self.page_size
        if wide:
            count = struct.unpack_from("<I", d, 0)[0]
            at = 4
            if count > (len(d) - 4) // 4:
                raise SymbolFileError(f"MSF directory lists {count} streams, too many for its size")
            sizes = list(struct.unpack_from(f"<{count}I", d, at))
            at += 4 * count
            page_code, width = "I", 4
        else:
            count = struct.unpack_from("<H", d, 0)[0]
            at = 4
            if count >= _JG_MAX_STREAMS or count > (len(d) - 4) // 8:
                raise SymbolFileError(f"MSF 2.0 directory lists {count} streams, too many")
            sizes = list(struct.unpack_from(f"<{2 * count}I", d, at)[0::2])
            at += 8 * count
            page_code, width = "H", 2
        total_pages = 0
        self._stream_pages: list[array | None] = []
        self._stream_sizes: list[int] = []
        for size in sizes:
            if size == NIL_STREAM_SIZE:
                self._stream_pages.append(None)
                self._stream_sizes.append(0)
                continue
            n = _page_count(size, ps)
            total_pages += n
            # A well-formed MSF never gives two streams the same page, so the
            # streams together cannot need more pages than the file has: this
            # bounds the memory any directory can make us allocate.
            if total_pages > self.page_count:
                raise SymbolFileError("MSF streams need more pages than the file holds")
            if at + width * n > len(d):
                raise SymbolFileError("MSF directory page lists are truncated")
            pages = _le_array(page_code, d[at:at + width * n])
            at += width * n
            self._stream_pages.append(pages)
            self._stream_sizes.append(size)
        self.stream_count = count

    def _assemble(self, pages: array, size: int) -> bytes:
        ps = self.page_size
        if size > len(pages) * ps:
            raise SymbolFileError("MSF stream is longer than its pages")
        limit = self.page_count
        data = self._data
        parts = []
        remaining = size
        for page in pages:
            if remaining <= 0:
                break
            if page >= limit or page == 0:
                # Page 0 is the header; no stream may live there.
                raise SymbolFileError(f"MSF page number {page} is out of range")
            take = min(ps, remaining)
            parts.append(data[page * ps:page * ps + take])
            remaining -= take
        if remaining > 0:
            raise SymbolFileError("MSF stream is longer than its pages")
        return b"".join(parts)

    # -- streams ----------------------------------------------------------------

    def has_stream(self, index: int) -> bool:
        """True when stream ``index`` exists and is not nil."""
        return 0 <= index < self.stream_count and self._stream_pages[index] is not None

    def stream_size(self, index: int) -> int:
        """Byte size of stream ``index`` (0 for nil or missing streams)."""
        if not 0 <= index < self.stream_count:
            return 0
        return self._stream_sizes[index]

    def stream(self, index: int) -> bytes:
        """The bytes of stream ``index``, assembled once and cached; ``b""`` if nil or missing."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        if not self.has_stream(index):
            return b""
        pages = self._stream_pages[index]
        assert pages is not None
        data = self._assemble(pages, self._stream_sizes[index])
        self._cache[index] = data
        return data

    def stream_span(self, index: int) -> tuple[bytes | bytearray | mmap.mmap, int, int]:
        """Where stream ``index`` lies: ``(buffer, start, end)``, byte ``i`` of the
        stream being ``buffer[start + i]``.

        A stream on consecutive pages is the file's own buffer (the mmap or the
        bytes given: no copy, and no exported memoryview that would keep an mmap
        from closing); any other is assembled and cached as ``stream`` does.
        ``(b"", 0, 0)`` for nil or missing streams.
        """
        span = self._spans.get(index)
        if span is not None:
            return span
        if not self.has_stream(index):
            return b"", 0, 0
        pages = self._stream_pages[index]
        assert pages is not None
        size = self._stream_sizes[index]
        first = pages[0] if pages else 0
        if (self._base is not None and pages and 0 < first and first + len(pages) <= self.page_count
                and pages == array(pages.typecode, range(first, first + len(pages)))):
            span = (self._base, first * self.page_size, first * self.page_size + size)
        else:
            span = (self.stream(index), 0, size)
        self._spans[index] = span
        return span

    def close(self) -> None:
        """Drop cached streams and the reference to the file data."""
        self._cache.clear()
        self._spans.clear()
        self._base = None
        self._data = memoryview(b"")


def _whole_buffer(view: memoryview) -> bytes | bytearray | mmap.mmap | None:
    """The object ``view`` shows all of, when it is one that slices to bytes and has ``find``."""
    base = view.obj
    if (isinstance(base, (bytes, bytearray, mmap.mmap)) and view.format == "B" and view.contiguous
            and view.nbytes == len(base)):
        return base
    return None
