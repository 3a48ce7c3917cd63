"""The kernel pool: one page, a tag search, usage by tag, and what tags mean.

    !pool Address [Flags]       the pool page around Address, every block on it
    !poolfind Tag [PoolType]    every block with a tag: * and ? wildcards, or 0xValue
    !poolused [Flags [Tag]]     allocations and bytes in use by tag
    !pooltag [Tag | -f File]    what a tag means; -f chooses the pooltag.txt to use

``!pool`` lists the page's headers as WinDbg does, the block holding Address marked
``*`` (Flags 1: with each block's first bytes; 2: that block only; 0x80000000: no tag
description); an address in a big-page allocation gives that allocation instead. A
header that breaks the chain is reported as WinDbg reports it (``Bad previous
allocation size``), naming the block before it, which is what ran over it; where a
driver keeps Track records (the Track extensions), each block's guard bytes are checked
too, so an overrun that stays inside the pool block is named as well. Either fails the
command.

``!poolfind`` of an exact tag lets the target search the pool range (PoolType 0
nonpaged, the default; 1 paged) for the tag's bytes and reads only the pages it finds
them in. A pattern with * or ? must read the whole range: on a serial cable that is
slow (16 MB is about 25 minutes at 115200 baud), so it says what it will cost first,
reports progress, and stops when cancelled (Ctrl+C), saying how far it got. No page is
read twice while the target stays halted.

``!poolused`` reads the kernel's pool tracker table (``nt!PoolTrackTable``): Flags 1 adds
frees and differences, 2 sorts by nonpaged bytes, 4 by paged bytes; a Tag limits it.

Tags are described from a ``pooltag.txt`` (WinDbg's triage file, lines ``Tag - binary -
description``): the one ``!pooltag -f File`` chose for this session, else the one the
``KDCON_POOLTAG`` environment variable names. Layouts come from the kernel's PDB
(``nt!_POOL_HEADER``, ``_POOL_TRACKER_TABLE``, ``_POOL_TRACKER_BIG_PAGES``), or Windows 7
SP1 x64's when the PDB has none.
"""

from __future__ import annotations

import shlex
import struct
from pathlib import Path

from kdcon.api import Cancelled, ExtensionFailed, Target, bang, require

from ._kdata import Layout, cost_line, global_value, kernel_global, note_builtin
from ._pool import PAGE, Block, Pool, Problem, TagFile, exact_tag, tag_pattern, tag_text

require("1.0")

_SHOW_CONTENTS, _ONLY_MATCH, _NO_DESCRIPTION = 0x1, 0x2, 0x80000000
_SCAN_CHUNK = 16 * PAGE              # pages read per request burst; progress after each


def _words(args: str) -> list[str]:
    try:
        return shlex.split(args)
    except ValueError as exc:
        raise ExtensionFailed(f"Syntax error: {exc}") from None


def _number(target: Target, text: str, what: str) -> int:
    try:
        return target.evaluate(text)
    except Exception as exc:  # the evaluator's own one-line message
        raise ExtensionFailed(f"Bad {what} '{text}': {exc}") from None


def _state(block: Block) -> str:
    return "(Allocated)" if block.allocated else "(Free)"


def _block_line(block: Block, marked: bool) -> str:
    mark = "*" if marked else " "
    return (f"{mark}{block.address:016x} size: {block.size:4x} previous size: "
            f"{block.previous:4x}  {_state(block):<11} {mark}{tag_text(block.tag)}")


def _description(tags: TagFile | None, tag: int) -> str | None:
    if tags is None:
        return None
    found = tags.describe(tag)
    if found is None:
        return "\t\tOwning component : Unknown (update pooltag.txt)"
    binary, text = found
    return f"\t\tPooltag {tag_text(tag)} : {text}" + (f", Binary : {binary}" if binary else "")


def _contents(target: Target, block: Block, unit: int) -> list[str]:
    data = target.read(block.address + unit, min(block.size - unit, 0x20))
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data) - 3, 4)]
    lines = []
    for row in range(0, len(words), 4):
        at = block.address + unit + row * 4
        indent = " " if not row else "    "      # WinDbg indents all but the first line
        lines.append(f"{indent}{at:016x}  " + " ".join(f"{w:08x}" for w in words[row:row + 4]))
    return lines


def _problem_lines(problem: Problem, unit: int) -> list[str]:
    """WinDbg's report of a broken header chain, then the block named."""
    if problem.kind == "previous":
        lines = [f"{problem.address:016x} doesn't look like a valid small pool allocation, "
                 "checking to see",
                 "if the entire page is actually part of a large page allocation...", "",
                 f"{problem.address:016x} is not a valid large pool allocation",
                 f"Bad previous allocation size @{problem.address:016x}, "
                 f"last size was {problem.expected // unit:x}"]
        before = problem.previous
        lines.append(f"Previous size of {problem.found:x} at {problem.address:016x} doesn't "
                     f"match the size {problem.expected:x} of the block before it" +
                     (f" ({before.address:016x}, tag {tag_text(before.tag)}): that block "
                      f"overran into this header" if before else ""))
    else:
        lines = [f"Bad allocation size @{problem.address:016x}, too large",
                 f"The header at {problem.address:016x} gives a size of {problem.found:x}; "
                 f"{problem.expected:x} bytes are left in the page"]
    return lines + ["", "***", "*** An error (or corruption) in the pool was detected;",
                    f"*** Pool page {problem.address & ~(PAGE - 1):016x} is corrupt.", "***"]


def _track_damage(target: Target, blocks: list[Block], unit: int) -> list[tuple[Block, dict]]:
    """Track records whose guard bytes changed, in the given blocks (Track's own check)."""
    if not any(block.allocated for block in blocks):
        return []
    out = target.run("!trackvalidate")
    damaged = []
    for row in out.rows:
        value = row.get("value")
        if not isinstance(value, int) or "overwrite" not in row:
            continue
        block = next((b for b in blocks if b.allocated and b.address + unit <= value
                      < b.address + b.size), None)
        if block is not None and (row.get("underwrite") != 0 or row.get("overwrite") != 0):
            damaged.append((block, row))
    return damaged


def _guard_text(target: Target, row: dict) -> str:
    guard_at = target.symbol(f"{row['module']}!TrackGuardSize")
    of = f" of the {target.u32(guard_at)}" if guard_at is not None else ""
    sides = []
    for key, where in (("underwrite", "before"), ("overwrite", "after")):
        count = row.get(key)
        if count is None:
            sides.append(f"the guard bytes {where} it are unreadable")
        elif count:
            sides.append(f"{count}{of} guard bytes {where} it changed")
    return " and ".join(sides)


@bang("pool", usage="!pool Address [Flags]")
def pool(target: Target, args: str) -> None:
    """Show the pool page around an address: every block, the one holding it marked *."""
    words = _words(args)
    if not 1 <= len(words) <= 2:
        raise ExtensionFailed("Usage: !pool Address [Flags]")
    address = _number(target, words[0], "address")
    flags = _number(target, words[1], "flags") if len(words) > 1 else 0
    note_builtin(target)
    heap = Pool(target)
    tags = None if flags & _NO_DESCRIPTION else TagFile.current()
    page = address & ~(PAGE - 1)
    region = heap.region(address)
    target.out(f"Pool page {address:016x} region is {region}")
    if region == "Unknown":
        raise ExtensionFailed(f"{address:016x} is not in the pool: nonpaged pool is "
                              f"{heap.nonpaged[0]:016x} - {heap.nonpaged[1]:016x}")
    data = target.read(page, PAGE)
    small = heap.looks_like_small_page(data) if len(data) == PAGE else False
    blocks, problem = heap.walk_page(page, data) if small else ([], None)
    # A page that is one whole chain of headers is small pool; anything else may be part
    # of a big-page allocation, which the big-page table says (read only then: 12 KB).
    big = heap.big_allocation_at(address) if not small or problem is not None else None
    if big is not None:
        target.out(f"*{big.address:016x} : large page allocation, tag is {tag_text(big.tag)}, "
                   f"size is {big.size:#x} bytes")
        line = _description(tags, big.tag)
        if line:
            target.out(line)
        target.row(address=big.address, size=big.size, allocated=True, tag=tag_text(big.tag),
                   large=True, holds=True)
        return
    if len(data) < PAGE:
        raise ExtensionFailed(f"Pool page {page:016x} could not be read: it may be freed "
                              f"or not present")
    if not small:
        target.out(f"{address:016x} is not a valid small pool allocation: page {page:016x} "
                   f"holds no pool headers")
        raise ExtensionFailed(f"{address:016x} is not valid pool (a free pool page, or memory "
                              f"the pool does not manage)")
    for block in blocks:
        marked = block.holds(address)
        target.row(address=block.address, size=block.size, previous=block.previous,
                   allocated=block.allocated, tag=tag_text(block.tag), holds=marked)
        if flags & _ONLY_MATCH and not marked:
            continue
        target.out(_block_line(block, marked))
        if marked and (line := _description(tags, block.tag)):
            target.out(line)
        if flags & _SHOW_CONTENTS:
            target.write("\n".join(_contents(target, block, heap.unit)) + "\n\n")
    failures = []
    if problem is not None:
        target.write("\n".join(_problem_lines(problem, heap.unit)) + "\n")
        before = problem.previous
        failures.append(f"the header at {problem.address:016x}" + (
            f" (after the block at {before.address:016x}, tag {tag_text(before.tag)})"
            if before else ""))
    for block, row in _track_damage(target, blocks, heap.unit):
        target.out(f"Track ({row['module']}): the block at {block.address:016x} holds "
                   f"{target.format_address(row['value'])}, {row['size']} bytes from "
                   f"{row['allocator']} at {row['source']} line {row['line']}: "
                   f"{_guard_text(target, row)}")
        failures.append(f"the block at {block.address:016x} ({tag_text(block.tag)})")
    if failures:
        raise ExtensionFailed(f"Pool corruption in page {page:016x}: {', '.join(failures)}")


# -- !poolfind --------------------------------------------------------------------------------


def _report_page(target: Target, heap: Pool, page: int, data: bytes, matches,
                 want_paged: bool | None) -> int:
    """Print the blocks of one small-pool page whose tag matches; how many."""
    if not heap.looks_like_small_page(data):
        return 0
    found = 0
    blocks, _ = heap.walk_page(page, data)
    for block in blocks:
        if not matches(block.tag) or (block.allocated and want_paged is not None
                                      and block.paged != want_paged):
            continue
        found += 1
        target.out(f"{block.address:016x} size: {block.size:4x} previous size: "
                   f"{block.previous:4x}  {_state(block):<11} {tag_text(block.tag)}")
        target.row(address=block.address, size=block.size, previous=block.previous,
                   allocated=block.allocated, tag=tag_text(block.tag))
    return found


def _scan(target: Target, heap: Pool, start: int, end: int, matches, want_paged: bool | None
          ) -> int:
    """Walk every readable small-pool page of [start, end); the number of blocks found."""
    found = 0
    at = start
    total = end - start
    try:
        while at < end:
            target.progress(at - start, total, "pool")
            want = min(_SCAN_CHUNK, end - at)
            data = target.read(at, want)
            usable = len(data) // PAGE * PAGE
            for offset in range(0, usable, PAGE):
                found += _report_page(target, heap, at + offset, data[offset: offset + PAGE],
                                      matches, want_paged)
            # A short read stops at an unreadable page: go on after it.
            at += want if len(data) == want else usable + PAGE
        target.progress(total, total, "pool")
    except Cancelled:
        target.out("")
        target.out(f"...terminating - searched pool to {at:016x}")
        raise
    return found


def _search(target: Target, heap: Pool, start: int, end: int, tag: int, matches,
            want_paged: bool | None) -> int:
    """An exact tag: the target finds its bytes (DbgKdSearchMemoryApi) and only the pages
    holding them are read and walked. Every header sits on a header-sized boundary with
    its tag at PoolTag's offset, so a hit anywhere else is data, not a header."""
    pattern = struct.pack("<I", tag)
    tag_at = heap.header["PoolTag"].offset
    found = 0
    at = start
    try:
        while at < end:
            target.progress(at - start, end - start, "pool")
            hit = target.search(at, end - at, pattern)
            if hit is None or hit >= end:
                break
            header = hit - tag_at
            page = header & ~(PAGE - 1)
            if header % heap.unit == 0:
                data = target.read(page, PAGE)
                if len(data) == PAGE:
                    found += _report_page(target, heap, page, data, matches, want_paged)
                at = page + PAGE
            else:
                at = hit + 1
        target.progress(end - start, end - start, "pool")
    except Cancelled:
        target.out("")
        target.out(f"...terminating - searched pool to {at:016x}")
        raise
    return found


@bang("poolfind", usage="!poolfind Tag [PoolType]")
def poolfind(target: Target, args: str) -> None:
    """Find every pool block with a tag (* and ? wildcards, or 0xValue); the target searches an exact tag."""
    words = _words(args)
    if not 1 <= len(words) <= 2:
        raise ExtensionFailed("Usage: !poolfind Tag [PoolType]  (0 nonpaged, 1 paged)")
    shown, matches = tag_pattern(words[0])
    kind = _number(target, words[1], "pool type") if len(words) > 1 else 0
    if kind not in (0, 1):
        raise ExtensionFailed(f"Pool type {kind:#x} is not searched here: 0 (nonpaged) or 1 "
                              f"(paged); this target has no special or session pool")
    note_builtin(target)
    heap = Pool(target)
    big = heap.big_allocations()
    table_start, table_end = heap.big_table
    target.out(f"Scanning large pool allocation table for Tag: {shown} "
               f"({table_start:016x} : {table_end:016x})")
    target.out("")
    large = 0
    for allocation in big:
        if matches(allocation.tag) and (allocation.pool_type & 1) == kind:
            large += 1
            target.out(f"{allocation.address:016x} : large page allocation, tag is "
                       f"{tag_text(allocation.tag)}, size is {allocation.size:#x} bytes")
            target.row(address=allocation.address, size=allocation.size, allocated=True,
                       tag=tag_text(allocation.tag), large=True)
    if large:
        target.out("")
    name, (start, end) = ("NonPaged", heap.nonpaged) if kind == 0 else ("Paged", heap.paged)
    exact = exact_tag(words[0])
    if exact is None:
        target.out(cost_line(f"Searching {name} pool", end - start))
    target.out(f"Searching {name} pool ({start:016x} : {end:016x}) for Tag: {shown}")
    target.out("")
    # Where one range serves both kinds (as on the simulated kernel), the headers say which.
    shared = heap.nonpaged == heap.paged
    want_paged = (kind == 1) if shared else None
    if exact is not None:
        small = _search(target, heap, start, end, exact, matches, want_paged)
    else:
        small = _scan(target, heap, start, end, matches, want_paged)
    if small:
        target.out("")
    found = large + small
    target.out(f"{found} block{'s' if found != 1 else ''} with tag {shown}")


# -- !poolused --------------------------------------------------------------------------------

_TRACKER_FIELDS = ["Key", "NonPagedAllocs", "NonPagedFrees", "NonPagedBytes", "PagedAllocs",
                   "PagedFrees", "PagedBytes"]


def _tracker_rows(target: Target) -> list[dict]:
    layout = Layout.load(target, "nt", "_POOL_TRACKER_TABLE", _TRACKER_FIELDS)
    table = target.pointer(kernel_global(target, "PoolTrackTable"))
    count = global_value(target, "PoolTrackTableSize")
    if count > 0x100000:
        raise ExtensionFailed(f"nt!PoolTrackTableSize is {count}: not a table size")
    data = target.read_exact(table, count * layout.size)
    rows = []
    for at in range(0, len(data), layout.size):
        values = {name: layout.get(name, data, at) for name in _TRACKER_FIELDS}
        if values["Key"]:
            rows.append(values)
    return rows


@bang("poolused", usage="!poolused [Flags [Tag]]")
def poolused(target: Target, args: str) -> None:
    """Show pool use by tag from the pool tracker table; sortable by nonpaged or paged bytes."""
    words = _words(args)
    if len(words) > 2:
        raise ExtensionFailed("Usage: !poolused [Flags [Tag]]")
    flags = _number(target, words[0], "flags") if words else 0
    if flags & 0x6 == 0x6:
        raise ExtensionFailed("!poolused: flags 2 (nonpaged) and 4 (paged) sort differently; "
                              "give one")
    if flags & 0x8:
        raise ExtensionFailed("!poolused 8: this target has no session pool")
    matches = tag_pattern(words[1])[1] if len(words) > 1 else (lambda tag: True)
    tags = TagFile.current()
    note_builtin(target)
    rows = [r for r in _tracker_rows(target) if matches(r["Key"])]
    rows.sort(key=lambda r: tag_text(r["Key"]))
    if flags & 0x2:
        order, rows = "NonPaged Pool Consumed", sorted(rows, key=lambda r: -r["NonPagedBytes"])
    elif flags & 0x4:
        order, rows = "Paged Pool Consumed", sorted(rows, key=lambda r: -r["PagedBytes"])
    else:
        order = "Tag"
    verbose = bool(flags & 0x1)
    lines = [f"   Sorting by  {order}", "", "  Pool Used:"]
    if verbose:
        lines += ["            NonPaged                                    Paged",
                  " Tag    Allocs     Frees      Diff     Used    Allocs     Frees      Diff"
                  "     Used"]
    else:
        lines += ["            NonPaged            Paged",
                  " Tag    Allocs     Used    Allocs     Used"]
    totals = [0] * 8
    for r in rows:
        np_live = r["NonPagedAllocs"] - r["NonPagedFrees"]
        p_live = r["PagedAllocs"] - r["PagedFrees"]
        tag = tag_text(r["Key"])
        values = [r["NonPagedAllocs"], r["NonPagedFrees"], np_live, r["NonPagedBytes"],
                  r["PagedAllocs"], r["PagedFrees"], p_live, r["PagedBytes"]]
        totals = [total + value for total, value in zip(totals, values)]
        if verbose:
            line = (f" {tag:4} {values[0]:9d} {values[1]:9d} {values[2]:9d} {values[3]:8d} "
                    f"{values[4]:9d} {values[5]:9d} {values[6]:9d} {values[7]:8d}")
        else:
            line = f" {tag:4} {np_live:8d} {r['NonPagedBytes']:8d} {p_live:9d} {r['PagedBytes']:8d}"
        if tags is not None:
            found = tags.describe(r["Key"])
            line += (f"UNKNOWN pooltag '{tag}', please update pooltag.txt" if found is None
                     else found[1] + (f" , Binary: {found[0]}" if found[0] else ""))
        lines.append(line)
        target.row(tag=tag, nonpaged_allocs=r["NonPagedAllocs"], nonpaged_frees=r["NonPagedFrees"],
                   nonpaged_bytes=r["NonPagedBytes"], paged_allocs=r["PagedAllocs"],
                   paged_frees=r["PagedFrees"], paged_bytes=r["PagedBytes"])
    if verbose:
        lines.append(f" TOTAL{totals[0]:9d} {totals[1]:9d} {totals[2]:9d} {totals[3]:8d} "
                     f"{totals[4]:9d} {totals[5]:9d} {totals[6]:9d} {totals[7]:8d}")
    else:
        lines.append(f" TOTAL{totals[2]:12d} {totals[3]:9d} {totals[6]:9d} {totals[7]:8d}")
    target.write("\n".join(lines) + "\n")


# -- !pooltag ---------------------------------------------------------------------------------


@bang("pooltag", usage="!pooltag [Tag | -f File]")
def pooltag(target: Target, args: str) -> None:
    """Say what a pool tag means, or choose the pooltag.txt that describes tags (-f)."""
    words = _words(args)
    if words and words[0] in ("-f", "/f"):
        if len(words) != 2:
            raise ExtensionFailed("Usage: !pooltag -f File")
        path = Path(words[1]).expanduser()
        TagFile(path)                    # one line now if it cannot be read
        TagFile.chosen = path
        target.out(f"Pool tags are described from {path}")
        return
    if len(words) != 1:
        raise ExtensionFailed("Usage: !pooltag Tag  |  !pooltag -f File")
    tags = TagFile.current()
    if tags is None:
        raise ExtensionFailed("No pooltag.txt: set KDCON_POOLTAG or use !pooltag -f File")
    shown, matches = tag_pattern(words[0])
    hits = [(tag, binary, text) for tag, (binary, text) in sorted(tags.tags.items())
            if matches(int.from_bytes(tag.ljust(4).encode("latin-1")[:4], "little"))]
    if not hits:
        raise ExtensionFailed(f"Pooltag {shown}: not in {tags.path}")
    for tag, binary, text in hits:
        target.out(f"Pooltag {tag} : {text}" + (f", Binary : {binary}" if binary else ""))
        target.row(tag=tag, binary=binary, description=text)
