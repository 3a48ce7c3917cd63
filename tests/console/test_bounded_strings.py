"""Strings in dt/dv/kp values are bounded: a garbage Length or a huge char array shows
256 characters and ``...``, reads at most one page, and stays escaped."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from kdcon.render.types import TypeDisplay, derived_type
from kdcon.symbols.pdb.pdbfile import open_pdb

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"
PAGE = 0x1000


@pytest.fixture(scope="module")
def nt():
    with open_pdb(IMAGES / "ntoskrnl.pdb") as pdb:
        yield pdb.types


class Memory:
    """Sparse memory that remembers the size of every read asked of it."""

    def __init__(self) -> None:
        self.bytes: dict[int, int] = {}
        self.reads: list[int] = []

    def write(self, address: int, data: bytes) -> None:
        for index, byte in enumerate(data):
            self.bytes[address + index] = byte

    def read(self, address: int, size: int) -> bytes:
        self.reads.append(size)
        out = bytearray()
        for at in range(address, address + size):
            if at not in self.bytes:
                break
            out.append(self.bytes[at])
        return bytes(out)


def counted(length: int, maximum: int, buffer: int) -> bytes:
    return struct.pack("<HHIQ", length, maximum, 0, buffer)


@pytest.mark.parametrize("name, unit", [("_UNICODE_STRING", 2), ("_STRING", 1)])
def test_a_garbage_length_shows_256_characters_and_an_ellipsis(nt, name, unit):
    memory = Memory()
    memory.write(0x100, counted(0xFFFE, 0xFFFE, 0x10000))
    memory.write(0x10000, ("A" * 0x8000).encode("utf-16-le" if unit == 2 else "latin-1"))
    display = TypeDisplay(memory.read, 8)
    value = display.local_value(nt.find(name), 0x100)
    assert value == f'struct {name} "' + "A" * 256 + '"...'
    assert max(memory.reads) <= PAGE


def test_a_length_within_the_bound_shows_the_whole_string_without_an_ellipsis(nt):
    memory = Memory()
    text = "B" * 256
    memory.write(0x100, counted(512, 514, 0x10000))
    memory.write(0x10000, text.encode("utf-16-le"))
    assert TypeDisplay(memory.read, 8).local_value(nt.find("_UNICODE_STRING"), 0x100) == \
        f'struct _UNICODE_STRING "{text}"'


def test_a_bounded_string_keeps_control_characters_escaped(nt):
    memory = Memory()
    memory.write(0x100, counted(0xFFFE, 0xFFFE, 0x10000))
    memory.write(0x10000, ("\x1b[2J" * 0x1000).encode("utf-16-le"))
    value = TypeDisplay(memory.read, 8).local_value(nt.find("_UNICODE_STRING"), 0x100)
    assert "\x1b" not in value and value.count("\\x1b") == 64
    assert value.endswith('"...')


@pytest.mark.parametrize("element, encoding", [("Char", "latin-1"), ("Wchar", "utf-16-le")])
def test_a_huge_char_array_reads_and_shows_at_most_256_characters(nt, element, encoding):
    memory = Memory()
    memory.write(0x100, ("C" * 0x8000).encode(encoding))
    info = derived_type(f"[32768] {element}", nt.find)
    value = TypeDisplay(memory.read, 8)._value(info, 0x100)
    assert value == '[32768]  "' + "C" * 256 + '"...'
    assert max(memory.reads) <= PAGE


def test_a_short_char_array_shows_its_text_up_to_the_nul(nt):
    memory = Memory()
    memory.write(0x100, b"Tag\0" + b"x" * 0x1FC)
    info = derived_type("[512] Char", nt.find)
    assert TypeDisplay(memory.read, 8)._value(info, 0x100) == '[512]  "Tag"'


@pytest.mark.parametrize("pointee, encoding", [("Char", "latin-1"), ("Wchar", "utf-16-le")])
def test_a_string_pointer_without_a_nul_in_reach_ends_in_an_ellipsis(nt, pointee, encoding):
    memory = Memory()
    memory.write(0x100, struct.pack("<Q", 0x10000))
    memory.write(0x10000, ("D" * 0x4000).encode(encoding))
    info = derived_type(f"Ptr64 {pointee}", nt.find)
    value = TypeDisplay(memory.read, 8).local_value(info, 0x100)
    assert value == '0x00000000`00010000 "' + "D" * 256 + '"...'
    assert max(memory.reads) <= PAGE


def test_dt_of_a_garbage_unicode_string_on_the_target_costs_less_than_a_page():
    from .transcripts import batch

    text, status = batch(
        "f @rsp-0x1000 L0x400 41 00 1b 00", "eq @rsp-0x1100 fffefffe",
        "eq @rsp-0x1100+8 @rsp-0x1000", "dt nt!_UNICODE_STRING @rsp-0x1100", ".wirestats", "q")
    assert status == 0, text
    shown = text.split("kd> dt nt!_UNICODE_STRING @rsp-0x1100\n", 1)[1].splitlines()
    assert shown[0] == ' "' + "A\\x1b" * 128 + '"...'
    assert shown[1] == "   +0x000 Length           : 0xfffe"
    cost = re.search(r"Last command: dt .*\n  (\d+) round trips, (\d+) bytes", text)
    assert cost is not None and int(cost.group(2)) < PAGE, text
