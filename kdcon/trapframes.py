"""Trap frames on a stack walk: where ``kv`` says ``(TrapFrame @ ...)`` and how ``k``
walks on past an interrupt or a fault.

What it does: ``walk(session, symbolizer, limit)`` is ``stack.stack_frames`` with the
trap frames found and crossed. A trap frame is the state the CPU was in when an
interrupt or fault took it into a handler; a frame is marked as holding one when

* its unwind data pushed a machine frame (UWOP_PUSH_MACHFRAME): the handler's
  KTRAP_FRAME starts ``KTRAP_FRAME.Rip`` (0x168 on x64, Windows 7 to 11) below the
  machine frame's RIP slot, which is also the handler's Child-SP in Windows' own
  handlers; the unwinder has already continued through it; or
* its function is one of the kernel's fault handlers (``nt!KiPageFault`` ...) and a
  CONTEXT record lies just above its return slot whose Rip is that frame's return
  address: the form the simulated kernel's fault handlers get (the machine calls them
  with the CONTEXT at the fault as their fourth argument instead of building a
  KTRAP_FRAME). The walk then starts again from that record's registers, because the
  handler was entered on a fresh frame below the interrupted one.

What it does not do: format the frames (``unwind.format_stack`` and commands/stack.py),
find trap frames of handlers that have neither unwind data with a machine frame nor a
CONTEXT record (the simulated clock interrupt's stub has no unwind data at all, so a
walk from inside it ends there).
Spec: Microsoft's "x64 exception handling" (UWOP_PUSH_MACHFRAME); the k page of the
debugger documentation (``kv``); CONTEXT's x64 layout (winnt.h offsets below).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import replace
from typing import TYPE_CHECKING

from .stack import function_table_for, stack_frames
from .unwind import Frame, Symbolizer, unwind

if TYPE_CHECKING:
    from .session import Session

__all__ = ["KTRAP_FRAME_RIP", "FAULT_HANDLERS", "walk", "context_registers"]

log = logging.getLogger(__name__)

KTRAP_FRAME_RIP = 0x168

# x64 trap and fault handlers, by the names Windows' kernel (and the simulated one) gives them.
FAULT_HANDLERS = frozenset({
    "KiDivideErrorFault", "KiDebugTrapOrFault", "KiNmiInterrupt", "KiBreakpointTrap",
    "KiOverflowTrap", "KiBoundFault", "KiInvalidOpcodeFault", "KiNpxNotAvailableFault",
    "KiDoubleFaultAbort", "KiInvalidTssFault", "KiSegmentNotPresentFault", "KiStackFault",
    "KiGeneralProtectionFault", "KiPageFault", "KiFloatingErrorFault", "KiAlignmentFault",
    "KiMcheckAbort", "KiXmmException", "KiRaiseAssertion", "KiDebugServiceTrap",
})

# CONTEXT (x64): ContextFlags at 0x30, Rax..R15 from 0x78 in this order, Rip at 0xf8.
_CONTEXT_FLAGS = 0x30
_CONTEXT_GPRS = 0x78
_CONTEXT_RIP = 0xF8
_CONTEXT_AMD64 = 0x100000
_GPR_ORDER = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
# How far above a handler's return slot its CONTEXT record may start.
_CONTEXT_SEARCH = 0x100


def context_registers(data: bytes) -> dict[str, int] | None:
    """The integer registers and ``rip`` of an x64 CONTEXT record's bytes, None when
    the bytes are not one (too short, or ContextFlags without CONTEXT_AMD64)."""
    if len(data) < _CONTEXT_RIP + 8:
        return None
    flags = struct.unpack_from("<I", data, _CONTEXT_FLAGS)[0]
    if not flags & _CONTEXT_AMD64:
        return None
    values = struct.unpack_from("<16Q", data, _CONTEXT_GPRS)
    registers = dict(zip(_GPR_ORDER, values))
    registers["rip"] = struct.unpack_from("<Q", data, _CONTEXT_RIP)[0]
    return registers


def _function_name(symbolizer: Symbolizer, address: int) -> str:
    name = symbolizer(address) or ""
    return name.partition("!")[2].partition("+")[0]


def _context_record(session: Session, frame: Frame, caller_sp: int) -> tuple[int, dict[str, int]] | None:
    """The CONTEXT a fault handler's frame was given: 16-byte aligned, at most
    ``_CONTEXT_SEARCH`` above the return slot, its Rip the frame's return address."""
    start = (caller_sp + 15) & ~15
    data = session.read_virtual(start, _CONTEXT_SEARCH + _CONTEXT_RIP + 8)
    for offset in range(0, _CONTEXT_SEARCH + 1, 16):
        registers = context_registers(data[offset: offset + _CONTEXT_RIP + 8])
        if registers is not None and registers["rip"] == frame.return_address:
            return start + offset, registers
    return None


def walk(session: Session, symbolizer: Symbolizer, limit: int, *,
         start: tuple[int, int] | None = None) -> tuple[list[Frame], dict[int, int]]:
    """The frames (numbered from 0, at most ``limit``) and, by frame number, the
    address of the trap frame each one holds; ``start`` (RIP, RSP) walks from there
    instead of the registers."""
    # One frame more than shown: a fault handler's CONTEXT is found from its caller's Child-SP.
    if start is None:
        frames = stack_frames(session, limit=limit + 1)
    else:
        frames = stack_frames(session, limit=limit + 1, start=start)
    out: list[Frame] = []
    traps: dict[int, int] = {}
    while frames and len(out) < limit:
        resumed = None
        for index, frame in enumerate(frames):
            if len(out) >= limit:
                break
            frame = replace(frame, number=len(out))
            out.append(frame)
            if frame.machine_frame is not None:
                traps[frame.number] = frame.machine_frame - KTRAP_FRAME_RIP
                continue
            if _function_name(symbolizer, frame.instruction_pointer) not in FAULT_HANDLERS \
                    or index + 1 >= len(frames):
                continue
            found = _context_record(session, frame, frames[index + 1].child_sp)
            if found is None:
                continue
            traps[frame.number], resumed = found
            break
        if resumed is None:
            break
        log.debug("walk resumes from the CONTEXT at %#x", traps[out[-1].number])
        frames = unwind(resumed["rip"], resumed["rsp"], resumed["rbp"], registers=resumed,
                        read=session.read_virtual, function_for=lambda a: function_table_for(session, a),
                        max_frames=limit - len(out) + 1)
    return out, traps
