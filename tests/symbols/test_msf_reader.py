"""The MSF container reader: both generations, every page size, and hostile directories."""

from __future__ import annotations

import struct

import pytest

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb.msf import MsfFile
from kdcon.symbols.pdb.structs import MSF_DS_HEADER, MSF_JG_HEADER
from kdcon.symbols.pdb.writer import build_msf

STREAMS = [b"", b"info" * 100, None, bytes(range(256)) * 9, b"x"]


@pytest.mark.parametrize("small", [False, True])
@pytest.mark.parametrize("page_size", [512, 1024, 2048, 4096, 8192, 16384, 32768])
def test_streams_read_back_in_both_generations(small, page_size):
    msf = MsfFile(build_msf(STREAMS, small=small, page_size=page_size))
    assert (msf.is_small, msf.page_size, msf.stream_count) == (small, page_size, len(STREAMS))
    for index, data in enumerate(STREAMS):
        assert msf.stream(index) == (data or b"")
        assert msf.has_stream(index) == (data is not None)
    assert msf.stream(99) == b"" and not msf.has_stream(99) and msf.stream_size(-1) == 0


@pytest.mark.parametrize("small", [False, True])
def test_whole_file_byte_at_a_time_and_with_trailing_bytes(small):
    data = build_msf(STREAMS, small=small, page_size=512)
    assert MsfFile(data + b"\xcc" * 777).stream(3) == STREAMS[3]
    for cut in range(len(data)):
        with pytest.raises(SymbolFileError):
            MsfFile(data[:cut]).stream(3)


def _patch(data: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


@pytest.mark.parametrize("page_size", [0, 256, 500, 3000, 65536, 0xFFFFFFFF])
def test_bad_page_sizes_are_refused(page_size):
    big = build_msf(STREAMS, small=False, page_size=512)
    with pytest.raises(SymbolFileError, match="page size"):
        MsfFile(_patch(big, 0x20, "<I", page_size))
    small = build_msf(STREAMS, small=True, page_size=512)
    with pytest.raises(SymbolFileError, match="page size"):
        MsfFile(_patch(small, 0x2C, "<I", page_size))


def test_page_count_beyond_the_file_is_refused():
    data = build_msf(STREAMS, small=False, page_size=512)
    with pytest.raises(SymbolFileError):
        MsfFile(_patch(data, 0x28, "<I", len(data) // 512 + 1))
    with pytest.raises(SymbolFileError):
        MsfFile(_patch(data, 0x28, "<I", 0))


def test_absurd_directory_sizes_are_refused():
    data = build_msf(STREAMS, small=False, page_size=512)
    for size in (0, 3, 0x7FFFFFFF, 0xFFFFFFFF):
        with pytest.raises(SymbolFileError):
            MsfFile(_patch(data, 0x2C, "<I", size))


def _directory_page(msf_bytes: bytes, page_size: int) -> int:
    block_map_page = struct.unpack_from("<I", msf_bytes, MSF_DS_HEADER.size)[0]
    return struct.unpack_from("<I", msf_bytes, block_map_page * page_size)[0]


def test_absurd_stream_counts_and_sizes_are_refused():
    data = build_msf(STREAMS, small=False, page_size=512)
    at = _directory_page(data, 512) * 512
    with pytest.raises(SymbolFileError, match="streams"):
        MsfFile(_patch(data, at, "<I", 0xFFFFFFF0))
    with pytest.raises(SymbolFileError):
        MsfFile(_patch(data, at + 4 + 4 * 3, "<I", 0x7FFFFFFF))


def test_page_numbers_out_of_range_or_on_the_header_are_refused():
    data = build_msf([b"", b"a" * 600], small=False, page_size=512)
    at = _directory_page(data, 512) * 512
    first_page = at + 4 + 4 * 2           # directory: count, two sizes, then pages of stream 1
    for page in (0, len(data) // 512, 0xFFFFFFFF):
        msf = MsfFile(_patch(data, first_page, "<I", page))
        with pytest.raises(SymbolFileError, match="page number"):
            msf.stream(1)


def test_page_cycles_cannot_inflate_memory():
    # Every stream of a hostile directory points at the same page: the total
    # number of pages the streams claim is still capped by the file's pages.
    pages = 40
    count = 200
    directory = struct.pack("<I", count) + struct.pack("<I", 512) * count
    directory += struct.pack("<I", 3) * count
    data = bytearray(512 * pages)
    header = MSF_DS_HEADER.build(dict(block_size=512, fpm_block=1, block_count=pages,
                                      directory_size=len(directory), reserved=0))
    data[:len(header)] = header
    dir_pages = list(range(5, 5 + (len(directory) + 511) // 512))
    struct.pack_into("<I", data, MSF_DS_HEADER.size, 4)
    struct.pack_into(f"<{len(dir_pages)}I", data, 4 * 512, *dir_pages)
    for i, page in enumerate(dir_pages):
        chunk = directory[i * 512:(i + 1) * 512]
        data[page * 512:page * 512 + len(chunk)] = chunk
    with pytest.raises(SymbolFileError, match="more pages"):
        MsfFile(bytes(data))


def test_small_msf_refuses_too_many_streams():
    data = build_msf(STREAMS, small=True, page_size=512)
    dir_page = struct.unpack_from("<H", data, MSF_JG_HEADER.size)[0]
    with pytest.raises(SymbolFileError, match="streams"):
        MsfFile(_patch(data, dir_page * 512, "<H", 0x1000))


def test_unknown_signatures_are_refused():
    for blob in (b"", b"MZ" + b"\0" * 4000, b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0" + b"\0" * 64):
        with pytest.raises(SymbolFileError):
            MsfFile(blob)

