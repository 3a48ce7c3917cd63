"""The breakpoint table: what the user asked for, and what is in the target now.

What it does: keeps every breakpoint (``bp``, ``bu``, ``bm`` matches, ``ba``) with its
id, the expression it was set with, its resolved address, pass count, command string
and state; gives ids the way WinDbg does (lowest free, or the one asked for); formats
``bl`` and ``.bpcmds`` lines. Which software breakpoints are written into the target
is tracked here (``handle``); the session does the writing.
What it does not do: talk to the target or resolve expressions.
Spec: windbg.md §0.2 (bp/bu/bm/ba, bl columns, passes, the 32-breakpoint limit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["Breakpoint", "BreakpointTable", "KERNEL_BREAKPOINT_LIMIT", "HARDWARE_SLOTS",
           "parse_id_list"]

# Kernel mode allows 32 software breakpoints (KdpBreakpointTable's size).
KERNEL_BREAKPOINT_LIMIT = 32
# x64 has four debug-address registers for ``ba``.
HARDWARE_SLOTS = 4


@dataclass(slots=True, eq=False)
class Breakpoint:
    id: int
    kind: str                          # "bp", "bu" or "ba"
    expression: str                    # as typed: what a bu resolves again after a load
    address: int | None = None         # None while unresolved
    enabled: bool = True
    passes: int = 1                    # hits left before it breaks
    initial_passes: int = 1
    command: str | None = None
    one_shot: bool = False
    module: str | None = None          # a bp disappears with this module
    access: str = "e"                  # ba: e, r, w (or i)
    size: int = 1                      # ba: 1, 2, 4, 8
    handle: int | None = None          # set while written into the target
    stale_handle: int | None = None    # a handle the target may have dropped at a stop
    slot: int | None = None            # ba: the debug register it uses
    hits: int = 0
    # An extension's Python callback: called at each hit, False lets the target go on.
    callback: Callable[[Breakpoint], bool] | None = None

    @property
    def resolved(self) -> bool:
        return self.address is not None

    @property
    def hardware(self) -> bool:
        return self.kind == "ba"


class BreakpointTable:
    """Breakpoints by id."""

    def __init__(self) -> None:
        self._by_id: dict[int, Breakpoint] = {}

    def __iter__(self):
        return iter(sorted(self._by_id.values(), key=lambda bp: bp.id))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, bp_id: int) -> Breakpoint | None:
        return self._by_id.get(bp_id)

    def next_id(self) -> int:
        bp_id = 0
        while bp_id in self._by_id:
            bp_id += 1
        return bp_id

    def add(self, bp: Breakpoint) -> Breakpoint:
        self._by_id[bp.id] = bp
        return bp

    def remove(self, bp: Breakpoint) -> None:
        self._by_id.pop(bp.id, None)

    def at(self, address: int) -> list[Breakpoint]:
        return [bp for bp in self if bp.address == address and not bp.hardware]

    def by_expression(self, expression: str) -> Breakpoint | None:
        folded = expression.casefold()
        for bp in self:
            if bp.expression.casefold() == folded and not bp.hardware:
                return bp
        return None

    def software_in_use(self) -> int:
        """Distinct addresses the enabled, resolved software breakpoints need."""
        return len({bp.address for bp in self
                    if not bp.hardware and bp.enabled and bp.address is not None})

    def free_slot(self) -> int | None:
        used = {bp.slot for bp in self if bp.hardware and bp.slot is not None}
        return next((slot for slot in range(HARDWARE_SLOTS) if slot not in used), None)

    def select(self, ids: Iterable[int]) -> list[Breakpoint]:
        return [self._by_id[i] for i in ids if i in self._by_id]


def parse_id_list(text: str, known: Iterable[int]) -> list[int]:
    """``bc``/``bd``/``be`` id lists: ``*``, ``1 3``, ``1,3``, ``2-5``; ValueError if bad."""
    ids: list[int] = []
    known = sorted(known)
    for part in text.replace(",", " ").split():
        if part == "*":
            ids.extend(known)
        elif "-" in part[1:]:
            low, _, high = part.partition("-")
            first, last = int(low, 16), int(high, 16)
            ids.extend(i for i in known if first <= i <= last)
        else:
            ids.append(int(part.strip("[]"), 16))
    unique: dict[int, None] = dict.fromkeys(ids)
    return list(unique)


def format_bl(bp: Breakpoint, *, name_for: Callable[[int], str | None],
              format_address: Callable[[int], str]) -> str:
    """One ``bl`` line: id, e/d (u), address, passes (initial), symbol, command."""
    state = ("e" if bp.enabled else "d") + ("u" if not bp.resolved else "")
    if bp.resolved:
        assert bp.address is not None
        where = format_address(bp.address)
        if bp.hardware:
            where += f" {bp.access} {bp.size}"
        symbol = name_for(bp.address) or ""
    else:
        where = " " * len(format_address(0))
        symbol = f"({bp.expression})"
    line = f"{bp.id:2d} {state:<2} {where}     {bp.passes:04x} ({bp.initial_passes:04x}) {symbol}"
    if bp.hardware and bp.resolved:
        line = f"{bp.id:2d} {state:<2} {where} {bp.passes:04x} ({bp.initial_passes:04x}) {symbol}"
    if bp.command is not None:
        line += f' "{bp.command}"'
    return line.rstrip()


def format_bpcmd(bp: Breakpoint) -> str:
    """The command that sets ``bp`` again (``.bpcmds``)."""
    kind = "bp" if bp.kind == "bp" else ("ba" if bp.hardware else "bu")
    text = f"{kind}{bp.id}"
    if bp.one_shot:
        text += " /1"
    if bp.hardware:
        text += f" {bp.access}{bp.size}"
    text += f" {bp.expression}"
    if bp.initial_passes != 1:
        text += f" {bp.initial_passes:#x}"
    if bp.command is not None:
        text += f' "{bp.command}"'
    return text + ";"


__all__ += ["format_bl", "format_bpcmd"]
