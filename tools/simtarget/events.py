"""Stop events: why ``Machine.run`` returned.

Frozen keyword-only dataclasses, one per meaning.  These are machine-level stops, not
wire events: the kd stub turns them into state changes and debug I/O (the protocol's
own ``BreakIn`` and ``DebugPrint`` are packets, hence the ``...Stop`` names here).
PCs are where the CPU stands when the event is reported: for breakpoints, the ``int 3``
itself (as Windows' trap handler reports it), for single steps and data breakpoints the
next instruction to run.  NTSTATUS values are ``kdcon.protocol.constants.NtStatus``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "StopEvent", "BreakpointHit", "SingleStep", "DataBreakpoint", "DebugPrintStop", "DebugPromptStop",
    "ImageInfo", "LoadSymbols", "UnloadSymbols", "BugCheck", "BreakInStop", "ExceptionEvent",
    "Rebooted", "BudgetExhausted",
]


@dataclass(frozen=True, kw_only=True)
class StopEvent:
    """Base of every stop event."""


@dataclass(frozen=True, kw_only=True)
class BreakpointHit(StopEvent):
    """An ``int 3`` ran: one the debugger set (``handle`` 1..32) or one in the code (``None``)."""

    pc: int
    handle: int | None = None


@dataclass(frozen=True, kw_only=True)
class SingleStep(StopEvent):
    """One instruction ran after ``run(trace=True)``; ``pc`` is the next one."""

    pc: int


@dataclass(frozen=True, kw_only=True)
class DataBreakpoint(StopEvent):
    """A debug-register breakpoint fired, after the accessing instruction completed."""

    pc: int
    dr6: int
    address: int


@dataclass(frozen=True, kw_only=True)
class DebugPrintStop(StopEvent):
    """DbgPrint text (int 2Dh service 1); the machine continues past it on the next run."""

    text: str
    component: int = 0
    level: int = 0


@dataclass(frozen=True, kw_only=True)
class DebugPromptStop(StopEvent):
    """DbgPrompt (service 2): call ``answer_prompt`` before running on."""

    text: str
    max_len: int


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    """What a LoadSymbols report carries (kd-protocol.md §4.4) plus the PE timestamp."""

    path: str
    base: int
    size: int
    checksum: int
    timestamp: int
    process_id: int = 0


@dataclass(frozen=True, kw_only=True)
class LoadSymbols(StopEvent):
    """A module was loaded (service 3)."""

    image: ImageInfo


@dataclass(frozen=True, kw_only=True)
class UnloadSymbols(StopEvent):
    """A module is being unloaded (service 4); it is still mapped when this is reported."""

    image: ImageInfo


@dataclass(frozen=True, kw_only=True)
class BugCheck(StopEvent):
    """KeBugCheckEx broke in (DbgBreakPointWithStatus 3 first, 4 on every later run)."""

    pc: int
    code: int
    params: tuple[int, int, int, int]
    first: bool = True


@dataclass(frozen=True, kw_only=True)
class BreakInStop(StopEvent):
    """The clock interrupt found a break-in request and broke at RtlpBreakWithStatusInstruction."""

    pc: int


@dataclass(frozen=True, kw_only=True)
class ExceptionEvent(StopEvent):
    """An exception, first chance: a CPU fault, or one RtlRaiseException raised.  Running
    on hands it to the kernel's dispatcher (the code's __try handlers; a bug check when
    none takes it)."""

    code: int
    address: int
    params: tuple[int, ...] = field(default_factory=tuple)
    first_chance: bool = True


@dataclass(frozen=True, kw_only=True)
class Rebooted(StopEvent):
    """The machine booted again (HalReturnToFirmware or ``reboot()``); module loads follow."""


@dataclass(frozen=True, kw_only=True)
class BudgetExhausted(StopEvent):
    """``run`` reached its instruction budget or its ``until`` check said stop."""

    pc: int
    instructions: int
