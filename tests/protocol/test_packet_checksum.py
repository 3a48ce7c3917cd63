"""The KD checksum (§1.3) is the plain byte sum modulo 2**32 for every length and
content, including the worst cases of the nibble-split computation."""

from __future__ import annotations

import random

import pytest

from kdcon.protocol.packet import checksum

LENGTHS = [0, 1, 2, 15, 16, 255, 256, 257, 3944, 4000, 4095, 4096, 4097, 8192, 8193, 70000]


@pytest.mark.parametrize("length", LENGTHS)
def test_checksum_is_the_byte_sum(length: int) -> None:
    rng = random.Random(length)
    for data in (rng.randbytes(length), b"\xff" * length, b"\xf0" * length,
                 b"\x0f" * length, bytes(length)):
        assert checksum(data) == sum(data) & 0xFFFFFFFF
        assert checksum(bytearray(data)) == checksum(memoryview(data)) == checksum(data)


def test_checksum_wraps_modulo_two_to_the_32() -> None:
    data = b"\xff" * ((1 << 24) + (1 << 17))
    assert sum(data) > 0xFFFFFFFF
    assert checksum(data) == sum(data) - (1 << 32)
