"""!dl, !dlb and !lookaside: linked lists and lookaside lists, as kd shows them.

    !dl Address [MaxCount [Size]]   a LIST_ENTRY or SINGLE_LIST_ENTRY list from Address,
                                    following the Flinks: each node's address and its
                                    first Size pointers (default 2), up to MaxCount nodes
                                    (default 0x100)
    !dlb Address [MaxCount [Size]]  the same following the Blinks (LIST_ENTRY only)
    !lookaside Address              a GENERAL_LOOKASIDE (the first member of
                                    PAGED_LOOKASIDE_LIST, NPAGED_LOOKASIDE_LIST and
                                    LOOKASIDE_LIST_EX): its tag, pool type, depths, entry
                                    size, allocation and free counts and hit rates

kd's ``dl`` is a debugger command; extensions give ``!`` commands only, so here it is
``!dl``. As kd's, the display begins with Address itself and stops where the list
comes back to it, at a null pointer, at a node already shown (a list that loops
elsewhere) or after MaxCount nodes; numbers are in the current radix.

``!lookaside`` reads ``nt!_GENERAL_LOOKASIDE`` from the kernel's PDB when it has the
type; otherwise the x64 layout all Windows versions since Vista share (ListHead at 0,
Depth 0x10, MaximumDepth 0x12, TotalAllocates 0x14, AllocateMisses 0x18, TotalFrees
0x1c, FreeMisses 0x20, Type 0x24, Tag 0x28, Size 0x2c), said in a warning line.
Current Depth is the entries the list's SLIST_HEADER holds (its low 16 bits); Max Depth
is the depth the list keeps (``Depth``), Max Alloc that many entries of Size bytes; a
hit rate is the share of allocations (frees) that did not miss, rounded down.

Spec: the dl (Display Linked List) and !lookaside pages of the debugger documentation.
Not done: ``!lookaside`` with no address (the system's well-known lists), ``-all``,
Options 1 and 2 (resetting counters, changing the depth), 32-bit lookaside lists, and
kd's ``!list`` (a command run for each entry).
"""

from __future__ import annotations

from kdcon.api import ExtensionFailed, Target, bang, require

from ._args import argument

require("1.0")

_DEFAULT_COUNT = 0x100
_DEFAULT_SIZE = 2
_MAX_SIZE = 0x100

# GENERAL_LOOKASIDE on x64 (wdm.h; the same from Vista to Windows 11): field -> (offset, size).
_X64_LOOKASIDE = {
    "ListHead": (0x00, 8), "Depth": (0x10, 2), "MaximumDepth": (0x12, 2),
    "TotalAllocates": (0x14, 4), "AllocateMisses": (0x18, 4), "TotalFrees": (0x1C, 4),
    "FreeMisses": (0x20, 4), "Type": (0x24, 4), "Tag": (0x28, 4), "Size": (0x2C, 4),
}
_LOOKASIDE_BYTES = 0x30

# POOL_TYPE (wdm.h): the base types, then the flags kd names after them.
_POOL_BASES = {0: "NonPagedPool", 1: "PagedPool", 2: "NonPagedPoolMustSucceed",
               3: "DontUseThisType", 4: "NonPagedPoolCacheAligned",
               5: "PagedPoolCacheAligned", 6: "NonPagedPoolCacheAlignedMustS"}
_POOL_NX = 0x200
_POOL_SESSION = 0x20
_POOL_RAISE = 0x10
_POOL_QUOTA_FAIL_NO_RAISE = 0x8


# -- !dl, !dlb ---------------------------------------------------------------------------------


def _dump_list(target: Target, args: str, backwards: bool) -> None:
    name = "!dlb" if backwards else "!dl"
    words = args.split()
    if not 1 <= len(words) <= 3:
        raise ExtensionFailed(f"Usage: {name} Address [MaxCount [Size]]")
    start = argument(target, words[0], "address")
    count = argument(target, words[1], "count") if len(words) > 1 else _DEFAULT_COUNT
    size = argument(target, words[2], "size") if len(words) > 2 else _DEFAULT_SIZE
    if not count:
        return
    if not 1 <= size <= _MAX_SIZE:
        raise ExtensionFailed(f"{name}: Size is 1 to 0x{_MAX_SIZE:x} pointers")
    width = target.pointer_size
    link = 1 if backwards else 0              # Blink is the second pointer
    wanted = max(size, link + 1)
    node, seen, lines = start, set(), []
    while node and node not in seen and len(seen) < count:
        target.check_cancelled()
        data = target.read(node, wanted * width)
        if len(data) < wanted * width:
            target.write("".join(lines))
            raise ExtensionFailed(f"Memory read error {target.format_address(node)}")
        values = [int.from_bytes(data[i * width:(i + 1) * width], "little")
                  for i in range(wanted)]
        lines.append(f"{target.format_address(node)}  "
                     f"{' '.join(target.format_address(v) for v in values[:size])}\n")
        target.row(address=node, values=values[:size])
        seen.add(node)
        node = values[link]
        if node == start:
            break
    target.write("".join(lines))


@bang("dl", usage="!dl Address [MaxCount [Size]]")
def dl(target: Target, args: str) -> None:
    """Display a linked list (LIST_ENTRY or SINGLE_LIST_ENTRY) from an address, as kd's dl."""
    _dump_list(target, args, backwards=False)


@bang("dlb", usage="!dlb Address [MaxCount [Size]]")
def dlb(target: Target, args: str) -> None:
    """Display a LIST_ENTRY list backwards (following the Blinks), as kd's dlb."""
    _dump_list(target, args, backwards=True)


# -- !lookaside --------------------------------------------------------------------------------


def _lookaside_fields(target: Target, address: int) -> tuple[dict[str, int], bool]:
    """The GENERAL_LOOKASIDE's counters, and whether the kernel's PDB gave the layout."""
    layout = dict(_X64_LOOKASIDE)
    from_pdb = False
    info = target.find_type("nt!_GENERAL_LOOKASIDE")
    if info is not None and getattr(info, "size", 0) and not target.type_layout(
            "nt!_GENERAL_LOOKASIDE"):
        for field in layout:
            offset = target.field_offset("nt!_GENERAL_LOOKASIDE", field)
            if offset is not None:
                layout[field] = (offset, layout[field][1])
        from_pdb = True
    elif target.pointer_size != 8:
        raise ExtensionFailed("!lookaside: the kernel's PDB has no _GENERAL_LOOKASIDE and "
                              "only the x64 layout is known without it")
    end = max(offset + size for offset, size in layout.values())
    data = target.read(address, max(end, _LOOKASIDE_BYTES))
    if len(data) < end:
        raise ExtensionFailed(f"Cannot read the lookaside list at "
                              f"{target.format_address(address)}")
    return ({field: int.from_bytes(data[offset:offset + size], "little")
             for field, (offset, size) in layout.items()}, from_pdb)


def pool_type_text(pool_type: int) -> str:
    """kd's words for a POOL_TYPE: the base type, then its flags."""
    base = pool_type & 0x7
    words = [_POOL_BASES.get(base, f"PoolType{base}")]
    if pool_type & _POOL_NX and base == 0:
        words[0] = "NonPagedPoolNx"
    if pool_type & _POOL_SESSION:
        words.insert(0, "Session")
    if pool_type & _POOL_QUOTA_FAIL_NO_RAISE:
        words.append("QuotaFailInsteadOfRaise")
    if pool_type & _POOL_RAISE:
        words.append("RaiseIfAllocationFailure")
    return " ".join(words)


def _tag_text(tag: int) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in tag.to_bytes(4, "little"))


def _hit_rate(total: int, misses: int) -> int:
    return (total - misses) * 100 // total if total and misses <= total else 0


@bang("lookaside", usage="!lookaside Address")
def lookaside(target: Target, args: str) -> None:
    """Show a lookaside list: tag, pool type, depths, size, allocations, frees, hit rates."""
    words = args.split()
    if len(words) != 1:
        raise ExtensionFailed("Usage: !lookaside Address (the system's lists, -all and "
                              "Options are not supported)")
    address = argument(target, words[0], "address")
    if not address:
        raise ExtensionFailed("!lookaside 0 (the system's well-known lists) is not "
                              "supported: give a list's address")
    fields, from_pdb = _lookaside_fields(target, address)
    if not from_pdb:
        target.warn("nt!_GENERAL_LOOKASIDE is not in the kernel's symbols: using the x64 "
                    "layout of wdm.h")
    current = fields["ListHead"] & 0xFFFF
    depth, size = fields["Depth"], fields["Size"]
    allocs, alloc_misses = fields["TotalAllocates"], fields["AllocateMisses"]
    frees, free_misses = fields["TotalFrees"], fields["FreeMisses"]
    name = target.name_for(address) or ""
    if name and "+" in name:
        name = ""                    # kd names a list only by a symbol of its own
    pool_type = fields["Type"]

    def pair(left: str, a: object, right: str, b: object, percent: bool = False) -> str:
        mark = "%" if percent else " "
        return f"    {left:<15}= {a!s:>10}{mark} {right:<11}= {b!s:>10}{mark if percent else ''}"

    lines = [
        f'Lookaside "{name}" @ 0x{address:x}  Tag(hex): 0x{fields["Tag"]:08x} '
        f'"{_tag_text(fields["Tag"])}"',
        f"    {'Type':<15}= {f'{pool_type:04x}':>10}  {pool_type_text(pool_type)}",
        pair("Current Depth", current, "Max Depth", depth),
        pair("Size", size, "Max Alloc", size * depth),
        pair("AllocateMisses", alloc_misses, "FreeMisses", free_misses),
        pair("TotalAllocates", allocs, "TotalFrees", frees),
        pair("Hit Rate", _hit_rate(allocs, alloc_misses), "Hit Rate",
             _hit_rate(frees, free_misses), percent=True),
    ]
    target.row(address=address, tag=_tag_text(fields["Tag"]), type=pool_type,
               current_depth=current, depth=depth, maximum_depth=fields["MaximumDepth"],
               size=size, total_allocates=allocs, allocate_misses=alloc_misses,
               total_frees=frees, free_misses=free_misses)
    target.write("\n".join(lines) + "\n")
