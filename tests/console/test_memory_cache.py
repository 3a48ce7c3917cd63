"""The per-stop memory cache: what it asks the target for, and what it answers."""

from __future__ import annotations

from kdcon.memory import PAGE_SIZE, MemoryCache


class FakeTarget:
    """Readable memory from 0x10000 to 0x13000, and 0x20000 to 0x21000; logs requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int]] = []

    def fetch(self, address: int, size: int) -> bytes:
        self.requests.append((address, size))
        out = bytearray()
        for at in range(address, address + size):
            if not (0x10000 <= at < 0x13000 or 0x20000 <= at < 0x21000):
                break
            out.append(at * 7 & 0xFF)
        return bytes(out)


def expected(address: int, size: int) -> bytes:
    return bytes(at * 7 & 0xFF for at in range(address, address + size))


def test_second_read_of_the_same_bytes_asks_nothing():
    target = FakeTarget()
    cache = MemoryCache(target.fetch)
    assert cache.read(0x10010, 0x80) == expected(0x10010, 0x80)
    assert cache.read(0x10020, 0x10) == expected(0x10020, 0x10)
    assert target.requests == [(0x10010, 0x80)]


def test_only_the_missing_bytes_are_fetched_and_neighbours_merge():
    target = FakeTarget()
    cache = MemoryCache(target.fetch)
    cache.read(0x10100, 0x10)
    cache.read(0x10200, 0x10)
    assert cache.read(0x100f0, 0x200) == expected(0x100f0, 0x200)
    assert target.requests[2:] == [(0x100f0, 0x10), (0x10110, 0xF0), (0x10210, 0xE0)]


def test_reads_are_split_at_the_protocol_maximum():
    target = FakeTarget()
    cache = MemoryCache(target.fetch, max_transfer=3944)
    assert cache.read(0x10000, 0x3000) == expected(0x10000, 0x3000)
    assert [size for _, size in target.requests] == [3944, 3944, 3944, 0x3000 - 3 * 3944]


def test_a_hole_is_remembered_for_the_stop():
    target = FakeTarget()
    cache = MemoryCache(target.fetch)
    assert cache.read(0x12ff0, 0x20) == expected(0x12ff0, 0x10)
    count = len(target.requests)
    assert cache.read(0x13000, 8) == b""
    assert cache.read(0x12ff8, 0x10) == expected(0x12ff8, 8)
    assert len(target.requests) == count


def test_readable_memory_after_an_unmapped_page_is_still_fetched():
    target = FakeTarget()
    cache = MemoryCache(target.fetch)
    assert cache.read(0x1f800, 0x1000) == b""
    assert cache.read(0x20000, 0x10) == expected(0x20000, 0x10)


def test_invalidate_forgets_bytes_and_holes():
    target = FakeTarget()
    cache = MemoryCache(target.fetch)
    cache.read(0x10000, 0x10)
    cache.read(0x30000, 0x10)
    cache.invalidate()
    cache.read(0x10000, 0x10)
    cache.read(0x30000, 0x10)
    assert len(target.requests) == 4


def test_read_at_the_top_of_the_address_space_does_not_wrap():
    target = FakeTarget()
    cache = MemoryCache(target.fetch)
    assert cache.read((1 << 64) - 8, 16) == b""
    assert all(address + size <= 1 << 64 for address, size in target.requests)


def test_large_read_is_cheap_in_requests():
    target = FakeTarget()
    cache = MemoryCache(target.fetch, max_transfer=3944)
    data = cache.read(0x10000, 3 * PAGE_SIZE)
    assert data == expected(0x10000, 3 * PAGE_SIZE)
    assert cache.bytes_fetched == 3 * PAGE_SIZE
