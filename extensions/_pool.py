"""The kernel pool as the pool extensions read it: headers, pages, the big-page table,
pool tags and their descriptions.

What it does: ``Pool(target)`` finds the pool's ranges and layouts (``nt!_POOL_HEADER``,
``_POOL_TRACKER_BIG_PAGES``, through ``_kdata.Layout``); ``walk_page`` splits
one small-pool page into its blocks, checking each header against its neighbour as
the allocator keeps them (the first block's previous size is 0, each previous size is
the block before it's size, the blocks end exactly at the page's end) and stopping at
the first header that breaks the chain; ``big_allocations`` reads the big-page table
once per command. ``TagFile`` reads a ``pooltag.txt`` (lines ``Tag - binary - description``,
``rem`` and ``//`` lines are comments) named by ``KDCON_POOLTAG`` or ``!pooltag -f``.
``tag_pattern`` turns ``!poolfind``'s and ``!poolused``'s tag argument (``*`` and ``?``
wildcards, or ``0x`` and the tag's value) into a matcher.
What it does not do: print (pool.py does).
"""

from __future__ import annotations

import fnmatch
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kdcon.api import ExtensionFailed, Target

from ._kdata import Layout, global_value, kernel_global

__all__ = ["Block", "Problem", "BigAllocation", "Pool", "TagFile", "tag_text", "tag_pattern", "exact_tag",
           "POOLTAG_VARIABLE"]

PAGE = 0x1000
POOLTAG_VARIABLE = "KDCON_POOLTAG"
_FREE_SLOT = 1                       # bit 0 of a big-page entry's Va: the slot is free


def tag_text(tag: int) -> str:
    """The four characters of a tag as they read in memory, '.' for the unprintable."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in struct.pack("<I", tag))


def tag_pattern(text: str) -> tuple[str, Callable[[int], bool]]:
    """(what to show, matcher) for a tag argument: ``0x`` and a value, or four characters
    with ``*`` (any run) and ``?`` (one character); case-sensitive."""
    if text.startswith("0x"):
        try:
            value = int(text, 16)
        except ValueError:
            raise ExtensionFailed(f"Bad tag value {text}: 0x and up to eight hex digits") from None
        if value > 0xFFFFFFFF:
            raise ExtensionFailed(f"Bad tag value {text}: a tag is 32 bits")
        return tag_text(value), lambda tag: tag == value
    if "*" not in text and len(text) != 4:
        raise ExtensionFailed(f"A tag is four characters (or a pattern with *): '{text}'")
    pattern = text.replace("[", "[[]")
    return text, lambda tag: fnmatch.fnmatchcase(struct.pack("<I", tag).decode("latin-1"), pattern)


def exact_tag(text: str) -> int | None:
    """The tag's value when ``text`` names exactly one (no wildcard), else None."""
    if text.startswith("0x"):
        return tag_pattern(text) and int(text, 16)
    if "*" in text or "?" in text or len(text) != 4:
        return None
    return struct.unpack("<I", text.encode("latin-1", "replace"))[0]


@dataclass(frozen=True)
class Block:
    """One small-pool block: its header's address, sizes in bytes, type and tag."""

    address: int
    size: int
    previous: int
    pool_type: int
    tag: int

    @property
    def allocated(self) -> bool:
        return self.pool_type != 0

    @property
    def paged(self) -> bool:
        return self.allocated and (self.pool_type - 1) & 1 == 1

    def holds(self, address: int) -> bool:
        return self.address <= address < self.address + self.size


@dataclass(frozen=True)
class Problem:
    """The first header of a page that breaks the chain, and why."""

    address: int
    kind: str                        # "previous" | "size"
    found: int                       # the header's value, in bytes
    expected: int                    # what the chain says it should be (bytes)
    previous: Block | None           # the block before it, if any


@dataclass(frozen=True)
class BigAllocation:
    """A big-page table entry in use."""

    address: int
    size: int
    pool_type: int
    tag: int

    def holds(self, address: int) -> bool:
        end = self.address + max(PAGE, (self.size + PAGE - 1) // PAGE * PAGE)
        return self.address <= address < end


class Pool:
    """The pool's ranges, header layout and big-page table on one target."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.header = Layout.load(target, "nt", "_POOL_HEADER",
                                  ["PreviousSize", "BlockSize", "PoolType", "PoolTag"])
        self.unit = self.header.size           # sizes count in header-sized units
        self.nonpaged = (global_value(target, "MmNonPagedPoolStart"),
                         global_value(target, "MmNonPagedPoolEnd"))
        self.paged = (global_value(target, "MmPagedPoolStart"),
                      global_value(target, "MmPagedPoolEnd"))
        self._big: list[BigAllocation] | None = None
        self.big_table: tuple[int, int] = (0, 0)

    def region(self, address: int) -> str:
        for name, (start, end) in (("Nonpaged pool", self.nonpaged), ("Paged pool", self.paged)):
            if start <= address < end:
                return name
        return "Unknown"

    def in_pool(self, address: int) -> bool:
        return self.region(address) != "Unknown"

    # -- small pool ---------------------------------------------------------------------

    def walk_page(self, page: int, data: bytes) -> tuple[list[Block], Problem | None]:
        """The blocks of the small-pool page at ``page`` (its 4 KB in ``data``)."""
        blocks: list[Block] = []
        offset = 0
        header = self.header
        while offset < PAGE:
            size = header.get("BlockSize", data, offset) * self.unit
            previous = header.get("PreviousSize", data, offset) * self.unit
            expected = blocks[-1].size if blocks else 0
            last = blocks[-1] if blocks else None
            if previous != expected:
                return blocks, Problem(page + offset, "previous", previous, expected, last)
            if size == 0 or offset + size > PAGE:
                return blocks, Problem(page + offset, "size", size, PAGE - offset, last)
            blocks.append(Block(page + offset, size, previous,
                                header.get("PoolType", data, offset),
                                header.get("PoolTag", data, offset)))
            offset += size
        return blocks, None

    def looks_like_small_page(self, data: bytes) -> bool:
        """Whether the page starts with a header that could begin a chain."""
        size = self.header.get("BlockSize", data) * self.unit
        return self.header.get("PreviousSize", data) == 0 and 0 < size <= PAGE

    # -- big pool -------------------------------------------------------------------------

    def big_allocations(self) -> list[BigAllocation]:
        """Every big-page table entry in use (the table is read once)."""
        if self._big is None:
            layout = Layout.load(self.target, "nt", "_POOL_TRACKER_BIG_PAGES",
                                 ["Va", "Key", "PoolType", "NumberOfBytes"])
            table = self.target.pointer(kernel_global(self.target, "PoolBigPageTable"))
            count = global_value(self.target, "PoolBigPageTableSize")
            if count > 0x100000:
                raise ExtensionFailed(f"nt!PoolBigPageTableSize is {count}: not a table size")
            data = self.target.read(table, count * layout.size)
            self.big_table = (table, table + count * layout.size)
            found = []
            for at in range(0, len(data) - layout.size + 1, layout.size):
                va = layout.get("Va", data, at)
                if va and not va & _FREE_SLOT:
                    found.append(BigAllocation(va, layout.get("NumberOfBytes", data, at),
                                               layout.get("PoolType", data, at),
                                               layout.get("Key", data, at)))
            self._big = found
        return self._big

    def big_allocation_at(self, address: int) -> BigAllocation | None:
        return next((big for big in self.big_allocations() if big.holds(address)), None)


# -- pooltag.txt ----------------------------------------------------------------------------

_read: list = []                   # [(path, mtime, size), TagFile]: the last file read
_TAG_LINE = re.compile(r"^(?P<tag>.{1,4}?)\s*-\s*(?P<binary>[^-]*?)\s*-\s*(?P<text>.*?)\s*$")


class TagFile:
    """Descriptions of pool tags from a pooltag.txt."""

    chosen: Path | None = None       # set by !pooltag -f for this session

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tags: dict[str, tuple[str, str]] = {}
        try:
            text = path.read_text(encoding="latin-1")
        except OSError as exc:
            raise ExtensionFailed(f"Cannot read the pool tag file {path}: "
                                  f"{exc.strerror or exc}") from None
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped or stripped.lower().startswith("rem") or stripped.startswith("//"):
                continue
            found = _TAG_LINE.match(line)
            if found is not None:
                self.tags.setdefault(found.group("tag").rstrip(),
                                     (found.group("binary").strip(), found.group("text")))

    @classmethod
    def current(cls) -> TagFile | None:
        """The file ``!pooltag -f`` chose, else the one ``KDCON_POOLTAG`` names, else None;
        read again only when it changed (WinDbg's is half a megabyte)."""
        path = cls.chosen or (Path(os.environ[POOLTAG_VARIABLE]).expanduser()
                              if os.environ.get(POOLTAG_VARIABLE) else None)
        if path is None:
            return None
        try:
            info = path.stat()
            stamp = (str(path), info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None
        if stamp is None or not _read or _read[0] != stamp:
            _read[:] = [stamp, cls(path)]
        return _read[1]

    def describe(self, tag: int) -> tuple[str, str] | None:
        """(binary, description) of a tag, None if the file does not know it."""
        return self.tags.get(tag_text(tag).rstrip())
