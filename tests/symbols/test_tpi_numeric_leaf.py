"""The CodeView numeric leaf: every encoding, whole, cut short byte by byte, and with trailing bytes."""

from __future__ import annotations

import struct

import pytest

from kdcon.symbols import codeview as cv
from kdcon.symbols.codeview import numeric_bytes, read_numeric
from kdcon.symbols.errors import SymbolFileError

VALUES = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x10000, -1, -0x80, -0x81, -0x8000, -0x8001,
          0x7FFFFFFF, 0xFFFFFFFF, -0x80000000, 2**32, 2**63 - 1, -2**63, 2**64 - 1]


@pytest.mark.parametrize("value", VALUES)
def test_numeric_round_trip_whole_cut_and_trailing(value):
    encoded = numeric_bytes(value)
    assert read_numeric(encoded, 0) == (value, len(encoded))
    assert read_numeric(b"\xaa" + encoded + b"\x55" * 9, 1) == (value, 1 + len(encoded))
    for cut in range(len(encoded)):
        with pytest.raises(SymbolFileError):
            read_numeric(encoded[:cut], 0)
        with pytest.raises(SymbolFileError):
            read_numeric(encoded + b"\0" * 4, 0, end=cut)


def test_shortest_encoding_is_chosen():
    assert numeric_bytes(5) == b"\x05\x00"
    assert numeric_bytes(-1)[:2] == struct.pack("<H", cv.LF_CHAR)
    assert numeric_bytes(0x8000)[:2] == struct.pack("<H", cv.LF_USHORT)
    assert numeric_bytes(2**64 - 1)[:2] == struct.pack("<H", cv.LF_UQUADWORD)
    with pytest.raises(ValueError):
        numeric_bytes(2**64)


def test_reals_varstrings_and_octwords_decode_to_integers():
    real = struct.pack("<Hd", cv.LF_REAL64, 12.75)
    assert read_numeric(real, 0) == (12, 10)
    nan = struct.pack("<Hd", cv.LF_REAL64, float("nan"))
    assert read_numeric(nan, 0) == (0, 10)
    assert read_numeric(struct.pack("<HH", cv.LF_VARSTRING, 3) + b"abc", 0) == (3, 7)
    octword = struct.pack("<H", cv.LF_OCTWORD) + (-2).to_bytes(16, "little", signed=True)
    assert read_numeric(octword, 0) == (-2, 18)
    assert read_numeric(struct.pack("<H", cv.LF_REAL80) + b"\0" * 10, 0) == (0, 12)


def test_unknown_numeric_codes_are_refused():
    with pytest.raises(SymbolFileError, match="unknown numeric leaf"):
        read_numeric(struct.pack("<HI", 0x80FF, 0), 0)
