"""Entering kernel code from outside the CPU: interrupts and faults through the kernel's
IDT, and calls into kernel routines.

The simulated delivery is not the hardware's frame (unicorn does not deliver through an
IDT): an interrupt pushes only the interrupted RIP and the kernel's handler, which saves
what it touches, returns to it with ``ret``; a fault handler or a routine is called like
a function, arguments in rcx, rdx, r8, r9, on a fresh 16-byte aligned frame whose return
address is the interrupted PC, so stack walks show where it happened.  The handler for
a vector comes from the 16-byte gate in the IDT at KPCR.IdtBase (``ki.h``).  A fault
handler also gets the CPU's CONTEXT at the fault (1232 bytes, 16-byte aligned, below
the interrupted RSP) as its fourth argument, so the kernel can dispatch the exception
to the code's handlers and resume it, as KiDispatchException does with the trap frame.
"""

from __future__ import annotations

import struct

from unicorn import Uc
from unicorn import x86_const as X

from . import layout
from .memory import GuestMemory

__all__ = ["current_irql", "can_interrupt", "idt_handler", "interrupt", "call_routine", "call_with_context"]

_ARGUMENT_REGISTERS = (X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_R8, X.UC_X86_REG_R9)


def current_irql(memory: GuestMemory, kpcr: int) -> int:
    """KPCR.Irql; CLOCK_LEVEL before the kernel has a KPCR (nothing may interrupt yet)."""
    if not kpcr:
        return layout.CLOCK_LEVEL
    data = memory.read_virtual(kpcr + layout.KPCR_IRQL, 1)
    return data[0] if data else layout.CLOCK_LEVEL


def _idt_base(memory: GuestMemory, kpcr: int) -> int:
    data = memory.read_virtual(kpcr + layout.KPCR_IDT_BASE, 8) if kpcr else b""
    return struct.unpack("<Q", data)[0] if len(data) == 8 else 0


def can_interrupt(memory: GuestMemory, kpcr: int) -> bool:
    """True once the kernel has an IDT and runs below CLOCK_LEVEL."""
    return _idt_base(memory, kpcr) != 0 and current_irql(memory, kpcr) < layout.CLOCK_LEVEL


def idt_handler(memory: GuestMemory, kpcr: int, vector: int) -> int:
    """The handler address in the IDT gate for ``vector``."""
    gate = memory.read_virtual(_idt_base(memory, kpcr) + 16 * vector, 16)
    if len(gate) < 12:
        return 0
    low, _selector, _flags, mid, high = struct.unpack("<HHHHI", gate[:12])
    return low | mid << 16 | high << 32


def interrupt(uc: Uc, memory: GuestMemory, handler: int, return_pc: int) -> None:
    """Push ``return_pc`` and continue at ``handler`` (which returns with ``ret``)."""
    rsp = uc.reg_read(X.UC_X86_REG_RSP) - 8
    memory.write_virtual(rsp, struct.pack("<Q", return_pc))
    uc.reg_write(X.UC_X86_REG_RSP, rsp)
    uc.reg_write(X.UC_X86_REG_RIP, handler)


def call_routine(uc: Uc, memory: GuestMemory, routine: int, args: tuple[int, ...], return_pc: int) -> None:
    """Continue at ``routine`` as if ``return_pc`` had called it with ``args`` (at most 4)."""
    # Below the current frame, aligned so RSP is 16n+8 at entry, home space above it.
    rsp = ((uc.reg_read(X.UC_X86_REG_RSP) - 0x80) & ~0xF) - 8
    memory.write_virtual(rsp, struct.pack("<Q", return_pc) + bytes(0x30))
    uc.reg_write(X.UC_X86_REG_RSP, rsp)
    for register, value in zip(_ARGUMENT_REGISTERS, args):
        uc.reg_write(register, value & 0xFFFFFFFFFFFFFFFF)
    uc.reg_write(X.UC_X86_REG_RIP, routine)


def call_with_context(uc: Uc, memory: GuestMemory, routine: int, args: tuple[int, int, int], context: bytes,
                      return_pc: int) -> int:
    """Like ``call_routine``, with ``context`` stored on the stack and its address as
    the fourth argument; returns that address."""
    frame = (uc.reg_read(X.UC_X86_REG_RSP) - 0x80 - len(context)) & ~0xF
    memory.write_virtual(frame, context)
    uc.reg_write(X.UC_X86_REG_RSP, frame)
    call_routine(uc, memory, routine, (*args, frame), return_pc)
    return frame
