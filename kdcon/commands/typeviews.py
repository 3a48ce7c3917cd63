"""dt's displays once the command line is understood: one structure (or value), N
instances one after another (``-a``), and a linked list (``-l``); ``-p`` reads the
structure itself from physical memory.

What it does: ``display`` shows a type at an address (or its layout) through
``render.types.TypeDisplay``; ``display_instances`` shows ``[0] @ address``, a rule of
45 dashes and each instance, or ``[0] value`` a line with ``-c``; ``display_list``
shows ``ListField at 0x...`` and a rule above each structure of the list, following
the field (a LIST_ENTRY, its Flink, or a pointer to the same type) until the list
comes back to the first structure, reaches NULL or unreadable memory, or 0x10000
structures. What it does not do: parse dt's words or find types (commands/types.py).
Spec: the dt page of the debugger documentation (its ``-ca10 ULONG`` and ``-l
ActiveProcessLinks.Flink`` examples).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..console import CommandContext
from ..errors import CommandError
from ..render.types import AGGREGATES, DisplayOptions, Selection, TypeDisplay, format_pointer, unwrap

__all__ = ["Named", "display", "display_instances", "display_list", "has_instances"]

_RULE = "-" * 45
_MAX_LIST = 0x10000


@dataclass
class Named:
    """What a name on the command line turned out to be."""

    info: Any
    header: str | None          # ``module!Type`` when the module was not given
    address: int | None = None  # a global variable's address
    is_global: bool = False


def _reader(ctx: CommandContext, start: int | None, size: int, physical: bool) -> Any:
    """Reads for one display: the structure's own bytes from physical memory with -p,
    everything else (what its pointers point to) from virtual memory."""
    session = ctx.session
    if not physical or start is None:
        return session.read_virtual

    def read(address: int, length: int) -> bytes:
        if start <= address < start + max(size, 1):
            return session.read_physical(address, length)
        return session.read_virtual(address, length)
    return read


def display(ctx: CommandContext, named: Named, address: int | None, fields: list[str],
             options: DisplayOptions, *, physical: bool = False, report: bool = True) -> TypeDisplay:
    session = ctx.session
    top = unwrap(named.info)
    size = top.size if top is not None else 0
    display = TypeDisplay(_reader(ctx, address, size, physical), session.pointer_size,
                          symbolizer=ctx.console.symbolizer, options=options)
    selection = Selection(fields) if fields else None
    if selection is not None and top is not None and top.kind == "pointer" and \
            address is not None:
        # Fields asked of a pointer-typed global are those of the structure it points to.
        target = display.pointer_at(address, top.pointer_size or top.size)
        top, address = unwrap(top.type), target
    display.show(top, address, selection, header=named.header)
    ctx.out.lines(display.lines)
    for row in display.rows:
        ctx.out.row(**row)
    if selection is not None and not display.matched:
        raise CommandError("Cannot find specified field members.")
    if report and display.failed_at is not None:
        raise CommandError(f"Memory read error {ctx.console.format_address(display.failed_at)}")
    return display


def has_instances(top: Any) -> bool:
    return top is not None and top.kind != "enum"


def display_instances(ctx: CommandContext, named: Named, address: int, options: DisplayOptions,
                       *, physical: bool) -> None:
    """``dt -aN Type Address``: N instances one after another (an array global: its elements)."""
    top = unwrap(named.info)
    element, count = top, options.array_count or 1
    if top.kind == "array":
        element = unwrap(top.type)
        count = min(top.count, options.array_count or top.count)
    if element is None or not element.size:
        raise CommandError(f"dt: {element.type_name if element else 'this type'} has no size")
    if named.header:
        ctx.out.line(named.header)
    single = Named(element, None)
    options = replace(options, arrays=False)
    for index in range(count):
        at = address + index * element.size
        ctx.out.row(index=index, address=at)
        if options.compact:
            # -c with -a: each instance on one line, its value line and fields joined.
            value = TypeDisplay(_reader(ctx, at, element.size, physical), ctx.session.pointer_size,
                                symbolizer=ctx.console.symbolizer, options=options)
            value.show(element, at)
            text = " ".join(line.strip() for line in value.lines) or "??"
            ctx.out.line(f"[{index}] {text}")
            if value.failed_at is not None:
                raise CommandError(f"Memory read error {ctx.console.format_address(value.failed_at)}")
            continue
        ctx.out.lines([f"[{index}] @ {ctx.console.format_address(at)} ", _RULE])
        display(ctx, single, at, [], options, physical=physical)
        ctx.out.line("")


def _list_step(top: Any, path: str) -> tuple[int, int, bool]:
    """Where ``path`` is in the structure (offset, pointer size), and whether the pointer
    there points at the next structure itself (else at the same field in it)."""
    info, offset = top, 0
    for part in path.split("."):
        info = unwrap(info)
        if info is None or info.kind not in AGGREGATES:
            raise CommandError(f"dt: -l {path}: no such field")
        member = next((m for m in info.fields if m.name == part), None) or \
            next((m for m in info.fields if m.name.lower() == part.lower()), None)
        if member is None:
            raise CommandError(f"dt: -l {path}: no such field")
        info, offset = member.type, offset + member.offset
    info = unwrap(info)
    if info is not None and info.kind in AGGREGATES and info.fields:
        # A LIST_ENTRY named whole: its first pointer (Flink) links the list.
        first = info.fields[0]
        info = unwrap(first.type)
        offset += first.offset
    if info is None or info.kind != "pointer":
        raise CommandError(f"dt: -l {path} is not a pointer or a list entry")
    target = unwrap(info.type)
    to_itself = target is not None and top.name and target.name == top.name
    return offset, info.pointer_size or info.size or 8, bool(to_itself)


def display_list(ctx: CommandContext, named: Named, address: int, fields: list[str],
                  options: DisplayOptions, list_field: str, *, physical: bool) -> None:
    top = unwrap(named.info)
    if top is None or top.kind not in AGGREGATES:
        raise CommandError("dt: -l needs a structure type")
    offset, size, to_itself = _list_step(top, list_field)
    single = Named(named.info, None)
    if named.header:
        ctx.out.line(named.header)
    at, seen = address, set()
    while at and at not in seen and len(seen) < _MAX_LIST:
        seen.add(at)
        ctx.out.lines([f"{list_field} at {format_pointer(at, ctx.session.pointer_size)}", _RULE])
        ctx.out.row(address=at)
        # With -p only the first structure is at a physical address: links are virtual.
        here = physical and at == address
        shown = display(ctx, single, at, fields, options, physical=here, report=False)
        ctx.out.line("")
        if shown.failed_at is not None:
            raise CommandError(f"Memory read error {ctx.console.format_address(shown.failed_at)}")
        data = _reader(ctx, at, top.size, here)(at + offset, size)
        if len(data) < size:
            raise CommandError(f"Memory read error {ctx.console.format_address(at + offset)}")
        link = int.from_bytes(data, "little")
        at = link if to_itself else (link - offset) & ((1 << 8 * size) - 1) if link else 0
