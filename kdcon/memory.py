"""The per-stop memory cache: no byte of target memory is read twice while halted.

What it does: answers virtual (or physical) reads from what this stop already fetched
and asks the target only for the bytes it lacks, merging neighbouring gaps into one
request of up to the protocol's maximum transfer. A short answer marks the rest of
that page as a hole, so unmapped memory costs one round trip per stop, not one per
command. Everything is forgotten when the target resumes and on every write (a write
can change more than the bytes written: a device register, an aliased page).
What it does not do: talk to the link (it is given a fetch function) or decide when
the target resumes.

Layout: one entry per 4 KiB page, the bytes and a validity mask (1 = fetched,
2 = hole) of the same length.
"""

from __future__ import annotations

from collections.abc import Callable

from kdcon.protocol.constants import MAX_TRANSFER_SIZE

__all__ = ["MemoryCache", "PAGE_SIZE"]

PAGE_SIZE = 0x1000
_VALID, _HOLE = 1, 2
_ADDRESS_MASK = (1 << 64) - 1

Fetch = Callable[[int, int], bytes]


class _Page:
    __slots__ = ("data", "mask")

    def __init__(self) -> None:
        self.data = bytearray(PAGE_SIZE)
        self.mask = bytearray(PAGE_SIZE)


class MemoryCache:
    """Reads through ``fetch(address, size)`` (which may return fewer bytes)."""

    def __init__(self, fetch: Fetch, *, max_transfer: int = MAX_TRANSFER_SIZE) -> None:
        self._fetch = fetch
        self._max_transfer = max_transfer
        self._pages: dict[int, _Page] = {}
        self.requests = 0
        self.bytes_fetched = 0

    def invalidate(self) -> None:
        """Forget everything: the target ran, or memory was written."""
        self._pages.clear()

    def read(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``address``: fewer if the memory stops being readable."""
        if size <= 0:
            return b""
        address &= _ADDRESS_MASK
        size = min(size, (1 << 64) - address)
        self._fill(address, size)
        out = bytearray()
        at, end = address, address + size
        while at < end:
            page = self._pages[at // PAGE_SIZE]
            offset = at % PAGE_SIZE
            stop = min(PAGE_SIZE, offset + end - at)
            hole = page.mask.find(_HOLE, offset, stop)
            if hole >= 0:
                out += page.data[offset:hole]
                break
            out += page.data[offset:stop]
            at += stop - offset
        return bytes(out)

    def _fill(self, address: int, size: int) -> None:
        """Fetch every byte of the range that is neither cached nor a known hole."""
        gaps = self._gaps(address, size)
        for start, length in gaps:
            self._fetch_range(start, length)

    def _gaps(self, address: int, size: int) -> list[tuple[int, int]]:
        gaps: list[tuple[int, int]] = []
        at, end = address, address + size
        while at < end:
            number = at // PAGE_SIZE
            page = self._pages.get(number)
            if page is None:
                page = self._pages[number] = _Page()
            offset = at % PAGE_SIZE
            stop = min(PAGE_SIZE, offset + end - at)
            if page.mask.find(_HOLE, offset, stop) >= 0 and not gaps:
                # Nothing past a known hole can be returned anyway.
                break
            index = offset
            while index < stop:
                missing = page.mask.find(0, index, stop)
                if missing < 0:
                    break
                present = _first_nonzero(page.mask, missing, stop)
                begin = number * PAGE_SIZE + missing
                if gaps and gaps[-1][0] + gaps[-1][1] == begin:
                    gaps[-1] = (gaps[-1][0], gaps[-1][1] + present - missing)
                else:
                    gaps.append((begin, present - missing))
                index = present
            at += stop - offset
        return gaps

    def _fetch_range(self, start: int, length: int) -> None:
        done = 0
        while done < length:
            count = min(length - done, self._max_transfer)
            at = start + done
            got = self._fetch(at, count)
            self.requests += 1
            self.bytes_fetched += len(got)
            self._store(at, got)
            if len(got) < count:
                self._mark_hole(at + len(got))
                # The rest of this request's range after the hole's page may be readable.
                next_page = (at + len(got)) // PAGE_SIZE * PAGE_SIZE + PAGE_SIZE
                skipped = next_page - start
                if skipped >= length:
                    return
                done = skipped
                continue
            done += count

    def _store(self, address: int, data: bytes) -> None:
        at, view = address, memoryview(data)
        while view:
            page = self._pages.setdefault(at // PAGE_SIZE, _Page())
            offset = at % PAGE_SIZE
            take = min(PAGE_SIZE - offset, len(view))
            page.data[offset:offset + take] = view[:take]
            page.mask[offset:offset + take] = b"\x01" * take
            view = view[take:]
            at += take

    def _mark_hole(self, address: int) -> None:
        page = self._pages.setdefault(address // PAGE_SIZE, _Page())
        offset = address % PAGE_SIZE
        page.mask[offset:] = bytes(page.mask[offset:]).replace(b"\0", bytes([_HOLE]))


def _first_nonzero(mask: bytearray, start: int, stop: int) -> int:
    """Index of the first byte in mask[start:stop] that is not 0, or ``stop``."""
    window = bytes(mask[start:stop])
    return stop - len(window.lstrip(b"\0"))
