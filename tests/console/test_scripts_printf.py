""".printf's conversions against a small fake target."""

from __future__ import annotations

import struct

import pytest

from kdcon.errors import CommandError
from kdcon.printf import c_escapes, format_printf, read_c_string


class FakeTarget:
    """Readable bytes at a few addresses, and one symbol."""

    def __init__(self, pointer_size: int = 8) -> None:
        self.pointer_size = pointer_size
        self.memory: dict[int, bytes] = {}
        self.reads: list[tuple[int, int]] = []

    def put(self, address: int, data: bytes) -> None:
        self.memory[address] = data

    def read(self, address: int, size: int) -> bytes:
        self.reads.append((address, size))
        for base, data in self.memory.items():
            if base <= address < base + len(data):
                return data[address - base: address - base + size]
        return b""

    def name_for(self, address: int) -> str | None:
        return f"demo!Tick+{address - 0x1000:#x}" if 0x1000 < address < 0x1100 else \
            ("demo!Tick" if address == 0x1000 else None)

    def format_address(self, address: int) -> str:
        return f"{address >> 32:08x}`{address & 0xFFFFFFFF:08x}"


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.mark.parametrize("fmt, arguments, text", [
    ("%x|%X|%08x|%#x", [0x1_2345_abcd] * 4, "2345abcd|2345ABCD|2345abcd|0x2345abcd"),
    ("%I64x %llx", [-1 & (2**64 - 1), 0x1_0000_0000], "ffffffffffffffff 100000000"),
    ("%d %i %u", [0xFFFFFFFE] * 3, "-2 -2 4294967294"),
    ("%I64d %I64u", [2**64 - 2] * 2, "-2 18446744073709551614"),
    ("%hx %hhx %hd", [0x12345, 0x1FF, 0xFFFF], "2345 ff -1"),
    ("[%5d|%-5d|%05d|%+d|% d]", [42] * 5, "[   42|42   |00042|+42| 42]"),
    ("%o %#o %#o", [8, 8, 0], "10 010 0"),
    ("%c%c", [0x41, 0x142], "AB"),
    ("%.3d|%*d", [5, 6, 7], "005|     7"),
    ("%%d", [], "%d"),
    ("%p", [0xFFFFF80001074520], "fffff80001074520"),
    ("%N", [0x1234], "0000000000001234"),
    ("%s|%-6s|%.2s", ["abc", "ab", "abcdef"], "abc|ab    |ab"),
])
def test_c_conversions_over_debugger_values(target, fmt, arguments, text):
    assert format_printf(fmt, arguments, target) == text


def test_p_is_the_target_pointer_size(target):
    assert format_printf("%p", [0x1234], FakeTarget(pointer_size=4)) == "00001234"


def test_floats_are_32_bits_unless_l_says_64(target):
    single = struct.unpack("<I", struct.pack("<f", 1.5))[0]
    double = struct.unpack("<Q", struct.pack("<d", -2.25))[0]
    assert format_printf("%f %.1e %lf %g", [single, single, double, single], target) == \
        "1.500000 1.5e+00 -2.250000 1.5"


def test_y_names_the_symbol_with_its_address_or_gives_the_address(target):
    assert format_printf("%y|%y|%ly", [0x1010, 0x9000, 0x1000], target) == \
        "demo!Tick+0x10 (00000000`00001010)|00000000`00009000|demo!Tick (00000000`00001000)"


def test_strings_in_target_memory_stop_at_their_terminator(target):
    target.put(0x2000, b"hello\0world")
    target.put(0x3000, "wide\u00e9".encode("utf-16-le") + b"\0\0junk")
    assert format_printf("%ma|%mu|%s|%8ma|", [0x2000, 0x3000, 0x2000, 0x2000], target) == \
        "hello|wide\u00e9|hello|   hello|"


def test_counted_strings_use_length_not_a_terminator(target):
    target.put(0x4000, struct.pack("<HHIQ", 6, 10, 0, 0x5000))
    target.put(0x4100, struct.pack("<HHIQ", 3, 4, 0, 0x5100))
    target.put(0x5000, "abcdef".encode("utf-16-le"))
    target.put(0x5100, b"xyzw")
    assert format_printf("%msu %msa", [0x4000, 0x4100], target) == "abc xyz"


def test_a_long_string_is_read_in_chunks_and_cut(target):
    target.put(0x8000, b"A" * 0x5000)
    text = read_c_string(target, 0x8000, wide=False)
    assert text == "A" * 0x4000
    assert all(size <= 0x100 for _, size in target.reads)


def test_target_text_cannot_reach_the_terminal_raw(target):
    target.put(0x2000, b"red\x1b[31m\x07bell\r\0")
    assert format_printf("%ma", [0x2000], target) == "red\\x1b[31m\\x07bell\\x0d"


def test_unreadable_strings_are_a_memory_error(target):
    with pytest.raises(MemoryError, match="Memory access error at 00000000`00000010"):
        format_printf("%ma", [0x10], target)
    with pytest.raises(MemoryError):
        format_printf("%msu", [0x10], target)


@pytest.mark.parametrize("fmt, arguments, message", [
    ("%d %d", [1], "Too few arguments for '%d'"),
    ("%q", [1], "Unknown conversion '%q'"),
    ("100%", [], "Unknown conversion '%'"),
    ("%d", ["text"], "needs a number, not a string"),
])
def test_bad_formats_and_arguments_are_one_line(target, fmt, arguments, message):
    with pytest.raises(CommandError, match=message):
        format_printf(fmt, arguments, target)


def test_escapes_of_the_format_string():
    assert c_escapes(r"a\nb\tc\\d\"e\x41\q") == 'a\nb\tc\\d"eA\\q'
