"""The simulated CPU's registers to and from the protocol layer's ``Context``.

``read_context`` fills a ``kdcon.protocol.context.Context`` (the x64 CONTEXT by field
name, shared by every layer) from unicorn; ``write_context`` loads one back.  What it
does not do: define the CONTEXT or KSPECIAL_REGISTERS types (``kdcon.protocol.context``
does) or keep debug registers, which the machine holds because unicorn does not act on
them.
Spec: kd-protocol.md §7.3 (CONTEXT field names).
"""

from __future__ import annotations

from unicorn import Uc
from unicorn import x86_const as X

from kdcon.protocol.context import AMD64_GPR_NAMES, Context

__all__ = ["read_context", "write_context"]

_MASK64 = 0xFFFFFFFFFFFFFFFF
_UC_GPRS = (X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_RBX,
            X.UC_X86_REG_RSP, X.UC_X86_REG_RBP, X.UC_X86_REG_RSI, X.UC_X86_REG_RDI,
            X.UC_X86_REG_R8, X.UC_X86_REG_R9, X.UC_X86_REG_R10, X.UC_X86_REG_R11,
            X.UC_X86_REG_R12, X.UC_X86_REG_R13, X.UC_X86_REG_R14, X.UC_X86_REG_R15)
_UC_XMM = tuple(getattr(X, f"UC_X86_REG_XMM{i}") for i in range(16))


def read_context(uc: Uc, debug_registers: tuple[int, int, int, int, int, int]) -> Context:
    """The CPU's registers as a Context; ``debug_registers`` is (Dr0-Dr3, Dr6, Dr7)."""
    ctx = Context(EFlags=uc.reg_read(X.UC_X86_REG_EFLAGS), Rip=uc.reg_read(X.UC_X86_REG_RIP),
                  MxCsr=uc.reg_read(X.UC_X86_REG_MXCSR),
                  Xmm=tuple(uc.reg_read(r) for r in _UC_XMM))
    for name, reg in zip(AMD64_GPR_NAMES, _UC_GPRS):
        setattr(ctx, name, uc.reg_read(reg))
    ctx.Dr0, ctx.Dr1, ctx.Dr2, ctx.Dr3, ctx.Dr6, ctx.Dr7 = debug_registers
    return ctx


def write_context(uc: Uc, ctx: Context) -> None:
    """Load the integer, control and floating-point parts of ``ctx`` into the CPU.

    Segment selectors are fixed in this flat machine and are not loaded.
    """
    for name, reg in zip(AMD64_GPR_NAMES, _UC_GPRS):
        uc.reg_write(reg, getattr(ctx, name) & _MASK64)
    uc.reg_write(X.UC_X86_REG_RIP, ctx.Rip & _MASK64)
    # Reserved bit 1 always reads as 1.
    uc.reg_write(X.UC_X86_REG_EFLAGS, (ctx.EFlags & 0x3F7FD5) | 0x2)
    uc.reg_write(X.UC_X86_REG_MXCSR, ctx.MxCsr & 0xFFFF)
    for reg, value in zip(_UC_XMM, ctx.Xmm):
        uc.reg_write(reg, value)
