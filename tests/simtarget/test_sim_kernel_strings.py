"""The simulated kernel's string routines (one comparison, search and copy for narrow
and wide strings alike) answer as the C runtime does, and the kernel's own sources
(ntoskrnl, hal, kdcom, their headers) say no run of statements twice: logic that is
the same lives in one routine."""

from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path

import pytest

from kdcon.tools.simtarget import layout
from tests.simtarget.simhelpers import boot_testdrv, run_until_quiet
from tests.simtarget.test_sim_machine_kernel import call_kernel

SOURCES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "src"
KERNEL_DIRS = ("ntoskrnl", "hal", "kdcom", "include")
RUN = 6                                  # statements in a row that may not stand twice
SCRATCH = layout.POOL_BASE + layout.POOL_SIZE - 0x800


@pytest.fixture(scope="module")
def machine():
    booted = boot_testdrv()
    run_until_quiet(booted)
    return booted


def put(machine, *texts: bytes) -> list[int]:
    """Each text NUL-terminated in the scratch page; their addresses."""
    addresses, at = [], SCRATCH
    for text in texts:
        machine.write_virtual(at, text)
        addresses.append(at)
        at += (len(text) + 0xF) & ~0xF
    return addresses


def signed(value: int) -> int:
    return struct.unpack("<i", struct.pack("<I", value & 0xFFFFFFFF))[0]


def wide(text: str) -> bytes:
    return (text + "\0").encode("utf-16-le")


@pytest.mark.parametrize(("routine", "a", "b", "n", "sign"), [
    ("strcmp", b"abc\0", b"abd\0", None, -1),
    ("strcmp", b"abc\0", b"abc\0", None, 0),
    ("strcmp", b"\xe9\0", b"a\0", None, 1),           # bytes compare unsigned
    ("strncmp", b"abcX\0", b"abcY\0", 3, 0),
    ("strncmp", b"ab\0", b"abc\0", 5, -1),
    ("_stricmp", b"HeLLo\0", b"hello\0", None, 0),
    ("_strnicmp", b"ABcx\0", b"abCy\0", 3, 0),
    ("_strnicmp", b"ABcx\0", b"abCy\0", 4, -1),
    ("wcscmp", wide("b"), wide("a"), None, 1),
    ("wcsncmp", wide("abX"), wide("abY"), 2, 0),
    ("_wcsicmp", wide("ÄBC"), wide("äbc"), None, -1),  # ASCII folding only
    ("_wcsnicmp", wide("ABC"), wide("abd"), 2, 0),
])
def test_comparisons_answer_as_the_c_runtime_does(machine, routine, a, b, n, sign):
    pa, pb = put(machine, a, b)
    args = (pa, pb) if n is None else (pa, pb, n)
    result = signed(call_kernel(machine, routine, *args))
    assert (result > 0) - (result < 0) == sign


@pytest.mark.parametrize(("routine", "text", "find", "at"), [
    ("strstr", b"kernel driver\0", b"driver\0", 7),
    ("strstr", b"kernel\0", b"\0", 0),
    ("strstr", b"kernel\0", b"nelx\0", None),
    ("wcsstr", wide("kernel driver"), wide("driver"), 14),
    ("wcsstr", wide("aab"), wide("ab"), 2),
])
def test_a_search_finds_the_first_place_or_nothing(machine, routine, text, find, at):
    ps, pf = put(machine, text, find)
    found = call_kernel(machine, routine, ps, pf)
    assert found == (0 if at is None else ps + at)


@pytest.mark.parametrize(("routine", "source", "n", "expected"), [
    ("strncpy", b"ab\0", 5, b"ab\0\0\0"),
    ("strncpy", b"abcdef\0", 3, b"abc"),
    ("wcsncpy", wide("ab"), 4, "ab".encode("utf-16-le") + b"\0" * 4),
])
def test_a_bounded_copy_stops_at_n_and_pads_with_nuls(machine, routine, source, n, expected):
    src, dest = put(machine, source, b"\xff" * 32)
    assert call_kernel(machine, routine, dest, src, n) == dest
    assert machine.read_virtual(dest, len(expected) + 2) == expected + b"\xff\xff"


def statements(path: Path) -> list[tuple[int, str]]:
    """(line number, text with spaces collapsed) of every line that says something:
    no blank lines, lone braces or comments."""
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = " ".join(line.split())
        if text and text not in ("{", "}", "};", "} else {") and not text.startswith(("/*", "*", "//")):
            kept.append((number, text))
    return kept


def test_the_kernel_sources_say_no_run_of_statements_twice():
    places: dict[tuple[str, ...], list[str]] = defaultdict(list)
    files = sorted(p for d in KERNEL_DIRS for p in (SOURCES / d).glob("*.[ch]"))
    assert len(files) > 20
    for path in files:
        kept = statements(path)
        for i in range(len(kept) - RUN + 1):
            places[tuple(text for _, text in kept[i:i + RUN])].append(
                f"{path.relative_to(SOURCES).as_posix()}:{kept[i][0]}")
    repeated = sorted(where for where in places.values() if len(where) > 1)
    assert repeated == []
