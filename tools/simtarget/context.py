"""Processor state in the x64 CONTEXT and KSPECIAL_REGISTERS layouts.

``Context`` uses the CONTEXT field names (kd-protocol.md §7.3) and converts to and
from the 1232-byte (0x4D0) structure; ``SpecialRegisters`` is the 224-byte (0xE0)
KSPECIAL_REGISTERS of control space index 2.  The byte layouts are the protocol
layer's construct definitions (``kdcon.protocol.context``).  Reading from and writing to unicorn is
in ``read_context``/``write_context``; debug registers are kept by the machine, since
unicorn does not act on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from unicorn import Uc
from unicorn import x86_const as X

from kdcon.protocol.context import AMD64_GPR_NAMES, CONTEXT_AMD64_SIZE, KSPECIAL_REGISTERS_AMD64, \
    KSPECIAL_REGISTERS_AMD64_SIZE
from kdcon.protocol.context import CONTEXT_AMD64 as CONTEXT_AMD64_LAYOUT

__all__ = [
    "CONTEXT_SIZE", "SPECIAL_REGISTERS_SIZE", "CONTEXT_AMD64", "CONTEXT_CONTROL", "CONTEXT_INTEGER",
    "CONTEXT_SEGMENTS", "CONTEXT_FLOATING_POINT", "CONTEXT_DEBUG_REGISTERS", "CONTEXT_FULL",
    "Context", "SpecialRegisters", "read_context", "write_context",
]

CONTEXT_SIZE = CONTEXT_AMD64_SIZE
SPECIAL_REGISTERS_SIZE = KSPECIAL_REGISTERS_AMD64_SIZE
CONTEXT_AMD64 = 0x100000
CONTEXT_CONTROL = CONTEXT_AMD64 | 0x1
CONTEXT_INTEGER = CONTEXT_AMD64 | 0x2
CONTEXT_SEGMENTS = CONTEXT_AMD64 | 0x4
CONTEXT_FLOATING_POINT = CONTEXT_AMD64 | 0x8
CONTEXT_DEBUG_REGISTERS = CONTEXT_AMD64 | 0x10
CONTEXT_FULL = CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_FLOATING_POINT

_GPRS = AMD64_GPR_NAMES
_UC_GPRS = (X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_RBX,
            X.UC_X86_REG_RSP, X.UC_X86_REG_RBP, X.UC_X86_REG_RSI, X.UC_X86_REG_RDI,
            X.UC_X86_REG_R8, X.UC_X86_REG_R9, X.UC_X86_REG_R10, X.UC_X86_REG_R11,
            X.UC_X86_REG_R12, X.UC_X86_REG_R13, X.UC_X86_REG_R14, X.UC_X86_REG_R15)
_UC_XMM = tuple(getattr(X, f"UC_X86_REG_XMM{i}") for i in range(16))

# Selectors a Windows x64 kernel thread runs with (KGDT64_*).
KERNEL_CS, KERNEL_SS, USER_DS, KERNEL_FS, KERNEL_GS = 0x10, 0x18, 0x2B, 0x53, 0x2B


@dataclass
class Context:
    """The x64 CONTEXT, by field name.  ``Xmm`` holds 16 128-bit integers."""

    ContextFlags: int = CONTEXT_FULL | CONTEXT_SEGMENTS | CONTEXT_DEBUG_REGISTERS
    MxCsr: int = 0x1F80
    SegCs: int = KERNEL_CS
    SegDs: int = USER_DS
    SegEs: int = USER_DS
    SegFs: int = KERNEL_FS
    SegGs: int = KERNEL_GS
    SegSs: int = KERNEL_SS
    EFlags: int = 0x202
    Dr0: int = 0
    Dr1: int = 0
    Dr2: int = 0
    Dr3: int = 0
    Dr6: int = 0
    Dr7: int = 0
    Rax: int = 0
    Rcx: int = 0
    Rdx: int = 0
    Rbx: int = 0
    Rsp: int = 0
    Rbp: int = 0
    Rsi: int = 0
    Rdi: int = 0
    R8: int = 0
    R9: int = 0
    R10: int = 0
    R11: int = 0
    R12: int = 0
    R13: int = 0
    R14: int = 0
    R15: int = 0
    Rip: int = 0
    Xmm: tuple[int, ...] = field(default_factory=lambda: (0,) * 16)

    def to_bytes(self) -> bytes:
        """The 1232-byte CONTEXT (FltSave holds MxCsr and Xmm0-15)."""
        m128 = [dict(Low=v & _MASK64, High=v >> 64) for v in self.Xmm]
        flt = dict(ControlWord=0x27F, StatusWord=0, TagWord=0, Reserved1=0, ErrorOpcode=0, ErrorOffset=0,
                   ErrorSelector=0, Reserved2=0, DataOffset=0, DataSelector=0, Reserved3=0,
                   MxCsr=self.MxCsr, MxCsr_Mask=0xFFFF, FloatRegisters=[dict(Low=0, High=0)] * 8,
                   XmmRegisters=m128, Reserved4=bytes(96))
        fields = {name: getattr(self, name) for name in _SCALARS}
        return CONTEXT_AMD64_LAYOUT.build(dict(fields, P1Home=0, P2Home=0, P3Home=0, P4Home=0, P5Home=0,
                                               P6Home=0, FltSave=flt, VectorRegister=[dict(Low=0, High=0)] * 26,
                                               VectorControl=0, DebugControl=0, LastBranchToRip=0,
                                               LastBranchFromRip=0, LastExceptionToRip=0, LastExceptionFromRip=0))

    @classmethod
    def from_bytes(cls, data: bytes) -> Context:
        """Parse a 1232-byte CONTEXT."""
        if len(data) < CONTEXT_SIZE:
            raise ValueError(f"CONTEXT needs {CONTEXT_SIZE} bytes, got {len(data)}")
        parsed = CONTEXT_AMD64_LAYOUT.parse(data)
        xmm = tuple(r.Low | r.High << 64 for r in parsed.FltSave.XmmRegisters)
        return cls(**{name: parsed[name] for name in _SCALARS}, Xmm=xmm)

    def replace(self, **changes: int) -> Context:
        return dataclasses.replace(self, **changes)


_MASK64 = 0xFFFFFFFFFFFFFFFF
_SCALARS = tuple(f.name for f in dataclasses.fields(Context) if f.name != "Xmm")


def read_context(uc: Uc, debug_registers: tuple[int, int, int, int, int, int]) -> Context:
    """The CPU's registers as a Context; ``debug_registers`` is (Dr0-Dr3, Dr6, Dr7)."""
    ctx = Context(EFlags=uc.reg_read(X.UC_X86_REG_EFLAGS), Rip=uc.reg_read(X.UC_X86_REG_RIP),
                  MxCsr=uc.reg_read(X.UC_X86_REG_MXCSR),
                  Xmm=tuple(uc.reg_read(r) for r in _UC_XMM))
    for name, reg in zip(_GPRS, _UC_GPRS):
        setattr(ctx, name, uc.reg_read(reg))
    ctx.Dr0, ctx.Dr1, ctx.Dr2, ctx.Dr3, ctx.Dr6, ctx.Dr7 = debug_registers
    return ctx


def write_context(uc: Uc, ctx: Context) -> None:
    """Load the integer, control and floating-point parts of ``ctx`` into the CPU.

    Segment selectors are fixed in this flat machine and are not loaded.
    """
    for name, reg in zip(_GPRS, _UC_GPRS):
        uc.reg_write(reg, getattr(ctx, name) & 0xFFFFFFFFFFFFFFFF)
    uc.reg_write(X.UC_X86_REG_RIP, ctx.Rip & 0xFFFFFFFFFFFFFFFF)
    # Reserved bit 1 always reads as 1.
    uc.reg_write(X.UC_X86_REG_EFLAGS, (ctx.EFlags & 0x3F7FD5) | 0x2)
    uc.reg_write(X.UC_X86_REG_MXCSR, ctx.MxCsr & 0xFFFF)
    for reg, value in zip(_UC_XMM, ctx.Xmm):
        uc.reg_write(reg, value)


@dataclass
class SpecialRegisters:
    """KSPECIAL_REGISTERS (x64): what ReadControlSpace index 2 returns."""

    Cr0: int = 0
    Cr2: int = 0
    Cr3: int = 0
    Cr4: int = 0
    KernelDr0: int = 0
    KernelDr1: int = 0
    KernelDr2: int = 0
    KernelDr3: int = 0
    KernelDr6: int = 0
    KernelDr7: int = 0
    GdtrLimit: int = 0
    GdtrBase: int = 0
    IdtrLimit: int = 0
    IdtrBase: int = 0
    Tr: int = 0
    Ldtr: int = 0
    MxCsr: int = 0x1F80
    MsrGsBase: int = 0

    def to_bytes(self) -> bytes:
        fields = {name: getattr(self, name) for name in _SPECIAL_SCALARS}
        return KSPECIAL_REGISTERS_AMD64.build(dict(
            fields, Gdtr=dict(Pad=[0, 0, 0], Limit=self.GdtrLimit, Base=self.GdtrBase),
            Idtr=dict(Pad=[0, 0, 0], Limit=self.IdtrLimit, Base=self.IdtrBase), DebugControl=0,
            LastBranchToRip=0, LastBranchFromRip=0, LastExceptionToRip=0, LastExceptionFromRip=0, Cr8=0,
            MsrGsSwap=0, MsrStar=0, MsrLStar=0, MsrCStar=0, MsrSyscallMask=0, Xcr0=0))

    @classmethod
    def from_bytes(cls, data: bytes) -> SpecialRegisters:
        if len(data) < SPECIAL_REGISTERS_SIZE:
            raise ValueError(f"KSPECIAL_REGISTERS needs {SPECIAL_REGISTERS_SIZE} bytes, got {len(data)}")
        parsed = KSPECIAL_REGISTERS_AMD64.parse(data)
        return cls(**{name: parsed[name] for name in _SPECIAL_SCALARS}, GdtrLimit=parsed.Gdtr.Limit,
                   GdtrBase=parsed.Gdtr.Base, IdtrLimit=parsed.Idtr.Limit, IdtrBase=parsed.Idtr.Base)


_SPECIAL_SCALARS = ("Cr0", "Cr2", "Cr3", "Cr4", "KernelDr0", "KernelDr1", "KernelDr2", "KernelDr3", "KernelDr6",
                    "KernelDr7", "Tr", "Ldtr", "MxCsr", "MsrGsBase")
