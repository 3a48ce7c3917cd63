"""Microsoft Cabinet (CAB) files as symbol stores hold them: one folder, one file.

``symstore add /compress`` and copies of Microsoft's server cache store entries as
``name.pd_``, ``name.db_``, ``name.ex_``: a cabinet holding the one file
(symbols.md §3.2). This module reads the structures of the "Microsoft Cabinet
Format" specification and expands folders compressed with NONE (0), MSZIP (1)
or LZX (3, through ``lzx.py``; Microsoft's symbol server uses it).

Layout (all little-endian)::

    CFHEADER   "MSCF" res1 cbCabinet res2 coffFiles res3 verMinor verMajor
               cFolders cFiles flags setID iCabinet
               [cbCFHeader u16, cbCFFolder u8, cbCFData u8, abReserve]  flags & 4
               [szCabinetPrev, szDiskPrev]                              flags & 1
               [szCabinetNext, szDiskNext]                              flags & 2
    CFFOLDER   coffCabStart u32, cCFData u16, typeCompress u16, abReserve   x cFolders
    CFFILE     cbFile u32, uoffFolderStart u32, iFolder u16, date, time,
               attribs u16, szName (NUL-terminated)                      x cFiles, at coffFiles
    CFDATA     csum u32, cbData u16, cbUncomp u16, abReserve, ab[cbData] x cCFData, at coffCabStart

An MSZIP block is ``CK`` followed by a raw deflate stream whose window carries
over from the previous block of the same folder, so each block is inflated with
the last 32 KiB of output as its preset dictionary. An LZX folder is one
bitstream across its blocks, each block one 32 KiB frame of output;
``typeCompress`` bits 8-12 give the window size (2^15..2^21).

Not supported: Quantum (2) compression, which ends in one ``SymbolFileError``
naming the method; files spanning several cabinets. Every
size, offset, count and checksum is checked before it is used, output is capped,
and any inconsistency raises ``SymbolFileError`` and nothing else.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import SymbolFileError
from .lzx import FRAME_SIZE, LzxDecoder, LzxError

__all__ = ["CAB_SIGNATURE", "MAX_EXPANDED", "CabFile", "CabFolder", "Cabinet", "read_cabinet",
           "expand_file", "expand_single", "extract_single", "cab_checksum", "method_name"]

log = logging.getLogger(__name__)

CAB_SIGNATURE = b"MSCF"
MAX_EXPANDED = 1 << 30          # no store entry expands beyond 1 GiB
MAX_BLOCK = 32768               # cbUncomp of one CFDATA (spec: at most 32 KiB)
_MAX_NAME = 256                 # CB_MAX_FILENAME / CB_MAX_CABINET_NAME incl. the NUL
_MAX_HEADER_RESERVE = 60000     # cbCFHeader limit from the specification

_CFHEADER = struct.Struct("<4sIIIIIBBHHHHH")
_CFFOLDER = struct.Struct("<IHH")
_CFFILE = struct.Struct("<IIHHHH")
_CFDATA = struct.Struct("<IHH")

_FLAG_PREV_CABINET = 0x0001
_FLAG_NEXT_CABINET = 0x0002
_FLAG_RESERVE_PRESENT = 0x0004
_NAME_IS_UTF = 0x80
_IFOLD_CONTINUED = 0xFFFD       # 0xFFFD..0xFFFF: the file spans cabinets

_TCOMP_MASK_TYPE = 0x000F
_TCOMP_SHIFT_LZX_WINDOW = 8     # tcompLZX_WINDOW_LO..HI: bits 8-12 hold the window size
_LZX_WINDOWS = range(15, 22)
_METHODS = {0: "uncompressed", 1: "MSZIP", 2: "Quantum", 3: "LZX"}


def method_name(type_compress: int) -> str:
    """The name of a folder's compression method, from its ``typeCompress``."""
    return _METHODS.get(type_compress & _TCOMP_MASK_TYPE, f"unknown method {type_compress & _TCOMP_MASK_TYPE}")


@dataclass(frozen=True, slots=True)
class CabFolder:
    """One CFFOLDER: where its CFDATA blocks start, how many, and the method."""

    data_offset: int
    block_count: int
    type_compress: int

    @property
    def method(self) -> int:
        return self.type_compress & _TCOMP_MASK_TYPE


@dataclass(frozen=True, slots=True)
class CabFile:
    """One CFFILE entry."""

    name: str
    size: int
    folder_offset: int
    folder: int
    date: int
    time: int
    attribs: int


@dataclass(frozen=True, slots=True)
class Cabinet:
    """A parsed cabinet directory (headers only, no data)."""

    size: int
    flags: int
    set_id: int
    index: int
    data_reserve: int
    folders: tuple[CabFolder, ...]
    files: tuple[CabFile, ...]


def cab_checksum(data: bytes | memoryview, seed: int = 0) -> int:
    """The CFDATA checksum: XOR of little-endian 32-bit words, the tail packed high-first."""
    view = memoryview(data)
    whole = len(view) - len(view) % 4
    # XOR of all words: fold the little-endian number onto itself, halving each time.
    words = whole // 4
    folded = int.from_bytes(view[:whole], "little")
    while words > 1:
        low = (words + 1) // 2
        folded = (folded & ((1 << (32 * low)) - 1)) ^ (folded >> (32 * low))
        words = low
    csum = seed ^ folded
    tail = bytes(view[whole:])
    value = 0
    for byte in tail:
        # The reference implementation shifts earlier tail bytes higher (spec, "Checksum").
        value = (value << 8) | byte
    return (csum ^ value) & 0xFFFFFFFF


class _Source:
    """Exact reads at absolute offsets within the cabinet's declared size."""

    def __init__(self, stream: BinaryIO, limit: int | None = None) -> None:
        self.stream = stream
        self.limit = limit

    def read_at(self, offset: int, count: int, what: str) -> bytes:
        if offset < 0 or count < 0 or (self.limit is not None and offset + count > self.limit):
            raise SymbolFileError(f"CAB {what} lies beyond the end of the cabinet")
        try:
            self.stream.seek(offset)
            chunks: list[bytes] = []
            remaining = count
            while remaining:
                chunk = self.stream.read(remaining)
                if not chunk:
                    raise SymbolFileError(f"CAB truncated in {what}")
                chunks.append(chunk)
                remaining -= len(chunk)
        except (OSError, ValueError) as exc:
            raise SymbolFileError(f"cannot read CAB {what}: {exc}") from None
        return b"".join(chunks)

    def read_string(self, offset: int, what: str) -> tuple[bytes, int]:
        """A NUL-terminated string at ``offset`` and the offset after its NUL."""
        available = _MAX_NAME if self.limit is None else min(_MAX_NAME, self.limit - offset)
        if available <= 0:
            raise SymbolFileError(f"CAB {what} lies beyond the end of the cabinet")
        raw = b""
        while len(raw) < available:
            piece = self.read_at(offset + len(raw), min(16, available - len(raw)), what)
            end = piece.find(b"\x00")
            if end >= 0:
                raw += piece[:end]
                return raw, offset + len(raw) + 1
            raw += piece
        raise SymbolFileError(f"CAB {what} is not terminated within {_MAX_NAME} bytes")


def _decode_name(raw: bytes, attribs: int) -> str:
    if not raw:
        raise SymbolFileError("CAB file entry has an empty name")
    if attribs & _NAME_IS_UTF:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SymbolFileError("CAB file name is not valid UTF-8") from None
    return raw.decode("latin-1")


def read_cabinet(stream: BinaryIO) -> Cabinet:
    """Parse CFHEADER, the CFFOLDERs and the CFFILEs of the cabinet in ``stream``."""
    source = _Source(stream)
    head = source.read_at(0, _CFHEADER.size, "header")
    (signature, _res1, cb_cabinet, _res2, coff_files, _res3, _minor, major,
     c_folders, c_files, flags, set_id, i_cabinet) = _CFHEADER.unpack(head)
    if signature != CAB_SIGNATURE:
        raise SymbolFileError("not a CAB file (no MSCF signature)")
    if major != 1:
        raise SymbolFileError(f"CAB format version {major} is not 1")
    if cb_cabinet < _CFHEADER.size:
        raise SymbolFileError(f"CAB size {cb_cabinet} is smaller than its header")
    source.limit = cb_cabinet
    if flags & ~(_FLAG_PREV_CABINET | _FLAG_NEXT_CABINET | _FLAG_RESERVE_PRESENT):
        raise SymbolFileError(f"CAB header has unknown flags {flags:#06x}")
    if c_folders == 0 or c_files == 0:
        raise SymbolFileError(f"CAB declares {c_folders} folders and {c_files} files")
    offset = _CFHEADER.size
    folder_reserve = data_reserve = 0
    if flags & _FLAG_RESERVE_PRESENT:
        header_reserve, folder_reserve, data_reserve = struct.unpack(
            "<HBB", source.read_at(offset, 4, "reserve sizes"))
        if header_reserve > _MAX_HEADER_RESERVE:
            raise SymbolFileError(f"CAB header reserve of {header_reserve} bytes exceeds {_MAX_HEADER_RESERVE}")
        offset += 4 + header_reserve
    for flag, what in ((_FLAG_PREV_CABINET, "previous cabinet name"), (_FLAG_NEXT_CABINET, "next cabinet name")):
        if flags & flag:
            _cabinet, offset = source.read_string(offset, what)
            _disk, offset = source.read_string(offset, what.replace("cabinet", "disk"))
    folders: list[CabFolder] = []
    entry = _CFFOLDER.size + folder_reserve
    for _ in range(c_folders):
        data_offset, blocks, type_compress = _CFFOLDER.unpack(source.read_at(offset, _CFFOLDER.size, "folder entry"))
        offset += entry
        if blocks and not _CFHEADER.size <= data_offset < cb_cabinet:
            raise SymbolFileError(f"CAB folder data at {data_offset:#x} lies outside the cabinet")
        folders.append(CabFolder(data_offset, blocks, type_compress))
    if offset > cb_cabinet:
        raise SymbolFileError("CAB folder table lies beyond the end of the cabinet")
    if not offset <= coff_files < cb_cabinet:
        raise SymbolFileError(f"CAB file table offset {coff_files:#x} is out of place")
    files: list[CabFile] = []
    offset = coff_files
    for _ in range(c_files):
        size, folder_offset, folder, date, time, attribs = _CFFILE.unpack(
            source.read_at(offset, _CFFILE.size, "file entry"))
        raw, offset = source.read_string(offset + _CFFILE.size, "file name")
        files.append(CabFile(_decode_name(raw, attribs), size, folder_offset, folder, date, time, attribs))
    return Cabinet(cb_cabinet, flags, set_id, i_cabinet, data_reserve, tuple(folders), tuple(files))


def _inflate_block(payload: bytes, expected: int, window: bytes) -> bytes:
    """One MSZIP block: ``CK`` + raw deflate, with the previous output as history."""
    if payload[:2] != b"CK":
        raise SymbolFileError("MSZIP block does not start with 'CK'")
    try:
        inflater = zlib.decompressobj(-15, zdict=window) if window else zlib.decompressobj(-15)
        out = inflater.decompress(payload[2:], expected + 1)
    except zlib.error as exc:
        raise SymbolFileError(f"MSZIP block does not inflate: {exc}") from None
    if not inflater.eof or len(out) != expected:
        raise SymbolFileError(f"MSZIP block inflates to {len(out)}{'' if inflater.eof else '+'} bytes, "
                              f"the header says {expected}")
    return out


def _data_blocks(source: _Source, cabinet: Cabinet, folder: CabFolder, cap: int) -> Iterator[tuple[bytes, int]]:
    """Each CFDATA block of ``folder`` as (payload, cbUncomp), in order; checks sums and sizes."""
    offset = folder.data_offset
    total = 0
    for number in range(folder.block_count):
        head = source.read_at(offset, _CFDATA.size + cabinet.data_reserve, f"data block {number} header")
        csum, cb_data, cb_uncomp = _CFDATA.unpack_from(head)
        if not 0 < cb_uncomp <= MAX_BLOCK:
            raise SymbolFileError(f"CAB data block {number} expands to {cb_uncomp} bytes (limit {MAX_BLOCK})")
        total += cb_uncomp
        if total > cap:
            raise SymbolFileError(f"CAB folder expands beyond {cap} bytes")
        payload = source.read_at(offset + len(head), cb_data, f"data block {number}")
        if csum and cab_checksum(head[4:] + payload) != csum:
            raise SymbolFileError(f"CAB data block {number} has a bad checksum")
        offset += len(head) + cb_data
        yield payload, cb_uncomp


def _lzx_blocks(blocks: Iterator[tuple[bytes, int]], folder: CabFolder) -> Iterator[bytes]:
    """An LZX folder's output, one 32 KiB frame per CFDATA block.

    The compressed bits form one stream across the blocks (a frame may end in
    the next block's payload), so the decoder pulls payloads as it needs them.
    """
    window_bits = (folder.type_compress >> _TCOMP_SHIFT_LZX_WINDOW) & 0x1F
    if window_bits not in _LZX_WINDOWS:
        raise SymbolFileError(f"LZX-compressed store entry: window of 2^{window_bits} bytes "
                              "is outside 2^15..2^21")
    pending: deque[bytes] = deque()
    sizes: list[int] = []

    def pull() -> bool:
        item = next(blocks, None)
        if item is None:
            return False
        pending.append(item[0])
        sizes.append(item[1])
        return True

    def payloads() -> Iterator[bytes]:
        while pending or pull():
            yield pending.popleft()

    decoder = LzxDecoder(window_bits, payloads())
    for number in range(folder.block_count):
        while len(sizes) <= number and pull():
            pass
        size = sizes[number]
        if size != FRAME_SIZE and number != folder.block_count - 1:
            raise SymbolFileError(f"LZX data block {number} expands to {size} bytes; "
                                  f"only the last may be shorter than {FRAME_SIZE}")
        try:
            yield decoder.frame(size)
        except LzxError as exc:
            raise SymbolFileError(f"LZX-compressed store entry is damaged: {exc}") from None


def _folder_blocks(source: _Source, cabinet: Cabinet, folder: CabFolder, cap: int) -> Iterator[bytes]:
    """Each CFDATA block of ``folder`` expanded, in order."""
    method = folder.method
    if method not in (0, 1, 3):
        name = method_name(folder.type_compress)
        raise SymbolFileError(f"{name}-compressed store entry: not supported; "
                              "expand it with cabextract or expand.exe")
    blocks = _data_blocks(source, cabinet, folder, cap)
    if method == 3:
        yield from _lzx_blocks(blocks, folder)
        return
    window = b""
    for number, (payload, cb_uncomp) in enumerate(blocks):
        if method == 0:
            if len(payload) != cb_uncomp:
                raise SymbolFileError(f"stored CAB block {number} holds {len(payload)} bytes, "
                                      f"the header says {cb_uncomp}")
            block = payload
        else:
            block = _inflate_block(payload, cb_uncomp, window)
            window = (window + block)[-MAX_BLOCK:]
        yield block


def expand_file(stream: BinaryIO, cabinet: Cabinet, entry: CabFile, write: Callable[[bytes], object],
                *, cap: int = MAX_EXPANDED) -> None:
    """Expand ``entry`` of ``cabinet`` (read from ``stream``), passing its bytes to ``write``."""
    if entry.folder >= _IFOLD_CONTINUED:
        raise SymbolFileError(f"{entry.name}: spans several cabinets; not supported")
    if entry.folder >= len(cabinet.folders):
        raise SymbolFileError(f"{entry.name}: folder {entry.folder} does not exist")
    if entry.size > cap or entry.folder_offset + entry.size > cap:
        raise SymbolFileError(f"{entry.name}: {entry.size} bytes exceed the {cap}-byte limit")
    folder = cabinet.folders[entry.folder]
    if entry.folder_offset + entry.size > folder.block_count * MAX_BLOCK:
        raise SymbolFileError(f"{entry.name} lies beyond its folder")
    start, end = entry.folder_offset, entry.folder_offset + entry.size
    position = 0
    source = _Source(stream, cabinet.size)
    for block in _folder_blocks(source, cabinet, folder, cap):
        low, high = max(start, position), min(end, position + len(block))
        if low < high:
            write(block[low - position:high - position])
        position += len(block)
    if position < end:
        raise SymbolFileError(f"{entry.name} lies beyond its folder ({end} > {position} bytes)")


def expand_single(stream: BinaryIO, write: Callable[[bytes], object], *,
                  expect: str | None = None, cap: int = MAX_EXPANDED) -> CabFile:
    """Expand a one-file cabinet into ``write``; the entry is returned.

    With ``expect``, the name inside must equal it ignoring case, else
    ``SymbolFileError`` before anything is written.
    """
    cabinet = read_cabinet(stream)
    if len(cabinet.files) != 1:
        raise SymbolFileError(f"CAB holds {len(cabinet.files)} files, a store entry holds one")
    entry = cabinet.files[0]
    if expect is not None and entry.name.casefold() != expect.casefold():
        raise SymbolFileError(f"CAB holds {entry.name!r}, not {expect!r}")
    expand_file(stream, cabinet, entry, write, cap=cap)
    return entry


def extract_single(path: str) -> tuple[str, bytes]:
    """The name and bytes of the one file in the cabinet at ``path``."""
    out = io.BytesIO()
    try:
        with open(path, "rb") as handle:
            entry = expand_single(handle, out.write)
    except OSError as exc:
        raise SymbolFileError(f"cannot read {path}: {exc.strerror}") from None
    return entry.name, out.getvalue()
