"""SymbolSession's source lines: line_for and address_of_line on trackdemo's PDB (C13 lines)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kdcon.symbols.session import SymbolSession

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images" / "checked"
BASE = 0x10000
TICK_197 = BASE + 0x4539        # trackdemo.c line 197 (llvm-pdbutil: 197 at .text+0x3539)


@pytest.fixture()
def session() -> SymbolSession:
    data = (IMAGES / "trackdemo.sys").read_bytes()
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    timestamp = struct.unpack_from("<I", data, pe + 8)[0]
    size, checksum = struct.unpack_from("<I", data, pe + 24 + 56)[0], \
        struct.unpack_from("<I", data, pe + 24 + 64)[0]
    symbols = SymbolSession(str(IMAGES))
    symbols.add_module("trackdemo.sys", BASE, size, timestamp=timestamp, checksum=checksum)
    return symbols


def test_no_line_is_answered_until_lines_are_loaded(session):
    assert session.line_for(TICK_197) is None
    assert session.address_of_line("trackdemo.c:197") is None
    session.load_lines = True
    assert session.line_for(TICK_197) == ("C:\\src\\trackdemo\\trackdemo.c", 197)


def test_a_file_line_resolves_by_name_path_module_and_hex_line(session):
    session.load_lines = True
    assert session.address_of_line("trackdemo.c:197") == TICK_197
    assert session.address_of_line("trackdemo!C:\\src\\trackdemo\\trackdemo.c:197") == TICK_197
    assert session.address_of_line("trackdemo/trackdemo.c:0xc5") == TICK_197
    assert session.address_of_line(":197", TICK_197 + 2) == TICK_197


def test_a_line_without_code_is_the_next_line_with_code(session):
    session.load_lines = True
    assert session.address_of_line("trackdemo.c:196") == TICK_197


def test_unknown_files_lines_and_numbers_resolve_to_nothing(session):
    session.load_lines = True
    assert session.address_of_line("nosuch.c:1") is None
    assert session.address_of_line("trackdemo.c:99999") is None
    assert session.address_of_line("trackdemo.c:x") is None
    assert session.address_of_line("nosuch!trackdemo.c:197") is None
