"""C13 line numbers of module streams: RVA -> (source file, line).

Reads the DEBUG_S_FILECHKSMS and DEBUG_S_LINES subsections that follow a
module's symbols and the ``/names`` string table they point into, and builds
one sorted table of line ranges for the whole PDB; entries decoded elsewhere
(C11 tables of VC5/6 files, ``lines_c11.py``) join it through ``add_entries``.
Columns and inlinee lines are skipped. Spec: symbols.md 2.6;
cvinfo.h ``CV_DebugSLinesHeader_t``, ``CV_DebugSLinesFileBlockHeader_t``,
``CV_Line_t``; LLVM ``docs/PDB/ModiStream.rst``.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass

from kdcon.symbols.errors import SymbolFileError

__all__ = ["LineEntry", "LineTable", "parse_names", "DEBUG_S_LINES", "DEBUG_S_FILECHKSMS"]

DEBUG_S_LINES = 0xF2
DEBUG_S_FILECHKSMS = 0xF4
_IGNORE = 0x80000000
_NAMES_SIGNATURE = 0xEFFEEFFE


@dataclass(frozen=True, slots=True)
class LineEntry:
    rva: int
    length: int
    file: str
    line: int


def parse_names(data: bytes) -> bytes:
    """The string buffer of a ``/names`` stream (offsets index into it)."""
    if len(data) < 12:
        raise SymbolFileError("/names stream is truncated")
    signature, _version, size = struct.unpack_from("<III", data, 0)
    if signature != _NAMES_SIGNATURE or 12 + size > len(data):
        raise SymbolFileError("/names stream header is damaged")
    return bytes(data[12:12 + size])


def _string_at(names: bytes, offset: int) -> str:
    if offset >= len(names):
        return "<unknown file>"
    end = names.find(b"\0", offset)
    return names[offset:end if end >= 0 else len(names)].decode("utf-8", errors="replace")


class LineTable:
    """Line ranges of every module, sorted by RVA, for ``line_for`` lookups."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._entries: list[LineEntry] = []
        self._pending: list[LineEntry] = []

    def add_module(self, data: bytes, start: int, end: int, names: bytes,
                   rva_of: Callable[[int, int], int | None]) -> None:
        """Read the C13 subsections in ``data[start:end]`` of one module stream."""
        end = min(end, len(data))
        checksums = b""
        line_blocks = []
        pos = start
        while pos + 8 <= end:
            kind, length = struct.unpack_from("<II", data, pos)
            body = pos + 8
            if length > end - body:
                raise SymbolFileError("C13 subsection overruns its module stream")
            kind &= ~_IGNORE
            if kind == DEBUG_S_FILECHKSMS:
                checksums = bytes(data[body:body + length])
            elif kind == DEBUG_S_LINES:
                line_blocks.append((body, body + length))
            pos = body + ((length + 3) & ~3)
        for body, body_end in line_blocks:
            self._read_lines(data, body, body_end, checksums, names, rva_of)

    def _read_lines(self, data, pos, end, checksums, names, rva_of) -> None:
        if pos + 12 > end:
            raise SymbolFileError("C13 line header is truncated")
        offset, segment, flags, code_size = struct.unpack_from("<IHHI", data, pos)
        pos += 12
        base = rva_of(segment, offset)
        while pos + 12 <= end:
            file_offset, count, block_size = struct.unpack_from("<III", data, pos)
            if block_size < 12 or pos + block_size > end or count > (block_size - 12) // 8:
                raise SymbolFileError("C13 line block is damaged")
            file = self._file_name(checksums, file_offset, names)
            entries = struct.unpack_from(f"<{2 * count}I", data, pos + 12)
            pos += block_size
            if base is None:
                continue
            for i in range(count):
                delta, bits = entries[2 * i], entries[2 * i + 1]
                following = entries[2 * i + 2] if i + 1 < count else code_size
                line = bits & 0xFFFFFF
                if line in (0xFEEFEE, 0xF00F00):      # hidden-line markers
                    continue
                self._pending.append(LineEntry(base + delta, max(0, following - delta),
                                               file, line))

    @staticmethod
    def _file_name(checksums: bytes, file_offset: int, names: bytes) -> str:
        if file_offset + 4 > len(checksums):
            return "<unknown file>"
        (name_offset,) = struct.unpack_from("<I", checksums, file_offset)
        return _string_at(names, name_offset)

    def add_entries(self, entries: list[LineEntry]) -> None:
        """Line entries already decoded (with their RVAs), merged at ``finish``."""
        self._pending.extend(entries)

    def finish(self) -> None:
        self._entries = sorted(self._pending, key=lambda e: e.rva)
        self._pending = []
        self._starts = [e.rva for e in self._entries]

    def entries(self) -> list[LineEntry]:
        return list(self._entries)

    def line_for(self, rva: int) -> tuple[str, int] | None:
        i = bisect.bisect_right(self._starts, rva) - 1
        if i < 0:
            return None
        entry = self._entries[i]
        if entry.rva + max(entry.length, 1) > rva:
            return entry.file, entry.line
        return None
