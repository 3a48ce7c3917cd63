"""C11 line numbers of VC5/6-era module streams: the CV4 ``sstSrcModule`` layout.

A module stream holds its symbols, then ``C11ByteSize`` bytes of C11 lines
(MODI ``cbLines``), then any C13 subsections. The C11 block, every offset in
it relative to its own start (symbols.md 2.4, 2.6)::

    module   u16 cFile, u16 cSeg, u32 baseSrcFile[cFile],
             {u32 start, u32 end}[cSeg], u16 seg[cSeg]
    file     u16 cSeg, u16 pad, u32 baseSrcLn[cSeg],
             {u32 start, u32 end}[cSeg], u8 cbName, name (code page)
    lines    u16 Seg, u16 cPair, u32 offset[cPair], u16 linenumber[cPair]

Each pair starts a line at ``Seg:offset``; it runs to the next pair's offset,
the last one to the inclusive ``end`` of its file's range for that block. This
module only decodes: segment:offset -> RVA is the caller's ``rva_of`` (the
PDB's sections and OMAP), and the entries join the C13 ones in ``LineTable``.
Names are decoded as cp1252 with replacement. Every count and offset is
checked; damage raises ``SymbolFileError``. The work is bounded by the block's
size: tables that point at each other repeatedly are reported as corrupt
rather than decoded many times over. Columns and 16-bit (CV4 ``sstSrcLnSeg``)
tables are not read.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb.lines import LineEntry
from kdcon.symbols.pdb.structs import (
    C11_FILE_HEADER,
    C11_LINE_BLOCK,
    C11_MODULE_HEADER,
    parse_at,
)

__all__ = ["read_c11_lines", "C11_NAME_ENCODING"]

C11_NAME_ENCODING = "cp1252"

_RANGE = 8          # {u32 start, u32 end}
_PAIR = 6           # u32 offset + u16 line


class _Budget:
    """How many file-segment references and line pairs a block of this size can hold."""

    def __init__(self, size: int) -> None:
        self.segments = size // (4 + _RANGE)
        self.pairs = size // _PAIR

    def spend(self, segments: int, pairs: int) -> None:
        self.segments -= segments
        self.pairs -= pairs
        if self.segments < 0 or self.pairs < 0:
            raise SymbolFileError("C11 line tables refer to more data than the block holds")


def _need(block: memoryview, at: int, size: int, what: str) -> None:
    if at < 0 or size < 0 or at + size > len(block):
        raise SymbolFileError(f"C11 {what} overruns its block")


def read_c11_lines(data: bytes | memoryview, start: int, end: int,
                   rva_of: Callable[[int, int], int | None]) -> list[LineEntry]:
    """Line entries of the C11 block ``data[start:end]``; pairs that map nowhere are dropped."""
    if not 0 <= start <= end <= len(data):
        raise SymbolFileError("C11 line block overruns its module stream")
    block = memoryview(data)[start:end]
    head = parse_at(C11_MODULE_HEADER, block, 0, "C11 module header")
    at = C11_MODULE_HEADER.size
    # The module's own segment table (ranges, then u16 segments) must be whole
    # even though the per-file tables are what locate the lines.
    _need(block, at, 4 * head.file_count + (_RANGE + 2) * head.segment_count, "module header")
    file_bases = struct.unpack_from(f"<{head.file_count}I", block, at)
    budget = _Budget(len(block))
    entries: list[LineEntry] = []
    for base in file_bases:
        _read_file(block, base, budget, rva_of, entries)
    return entries


def _read_file(block: memoryview, base: int, budget: _Budget,
               rva_of: Callable[[int, int], int | None], out: list[LineEntry]) -> None:
    head = parse_at(C11_FILE_HEADER, block, base, "C11 file header")
    count = head.segment_count
    budget.spend(count, 0)
    at = base + C11_FILE_HEADER.size
    _need(block, at, (4 + _RANGE) * count + 1, "file tables")
    line_bases = struct.unpack_from(f"<{count}I", block, at)
    ranges = struct.unpack_from(f"<{2 * count}I", block, at + 4 * count)
    name_at = at + (4 + _RANGE) * count
    name_length = block[name_at]
    _need(block, name_at + 1, name_length, "file name")
    name = bytes(block[name_at + 1:name_at + 1 + name_length]).decode(C11_NAME_ENCODING,
                                                                       errors="replace")
    for j, line_base in enumerate(line_bases):
        _read_block(block, line_base, ranges[2 * j + 1], name, budget, rva_of, out)


def _read_block(block: memoryview, at: int, range_end: int, name: str, budget: _Budget,
                rva_of: Callable[[int, int], int | None], out: list[LineEntry]) -> None:
    head = parse_at(C11_LINE_BLOCK, block, at, "C11 line block")
    count = head.pair_count
    budget.spend(0, count)
    at += C11_LINE_BLOCK.size
    _need(block, at, _PAIR * count, "line pairs")
    offsets = struct.unpack_from(f"<{count}I", block, at)
    numbers = struct.unpack_from(f"<{count}H", block, at + 4 * count)
    segment = head.segment
    for i, offset in enumerate(offsets):
        rva = rva_of(segment, offset)
        if rva is None:
            continue
        following = offsets[i + 1] if i + 1 < count else range_end + 1
        out.append(LineEntry(rva, max(0, following - offset), name, numbers[i]))
