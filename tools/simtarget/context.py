"""Processor state in the x64 CONTEXT and KSPECIAL_REGISTERS layouts.

``Context`` uses the CONTEXT field names (kd-protocol.md §7.3) and converts to and
from the 1232-byte (0x4D0) structure; ``SpecialRegisters`` is the 224-byte (0xE0)
KSPECIAL_REGISTERS of control space index 2.  Reading from and writing to unicorn is
in ``read_context``/``write_context``; debug registers are kept by the machine, since
unicorn does not act on them.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field

from unicorn import Uc
from unicorn import x86_const as X

__all__ = [
    "CONTEXT_SIZE", "SPECIAL_REGISTERS_SIZE", "CONTEXT_AMD64", "CONTEXT_CONTROL", "CONTEXT_INTEGER",
    "CONTEXT_SEGMENTS", "CONTEXT_FLOATING_POINT", "CONTEXT_DEBUG_REGISTERS", "CONTEXT_FULL",
    "Context", "SpecialRegisters", "read_context", "write_context",
]

CONTEXT_SIZE = 0x4D0
SPECIAL_REGISTERS_SIZE = 0xE0
CONTEXT_AMD64 = 0x100000
CONTEXT_CONTROL = CONTEXT_AMD64 | 0x1
CONTEXT_INTEGER = CONTEXT_AMD64 | 0x2
CONTEXT_SEGMENTS = CONTEXT_AMD64 | 0x4
CONTEXT_FLOATING_POINT = CONTEXT_AMD64 | 0x8
CONTEXT_DEBUG_REGISTERS = CONTEXT_AMD64 | 0x10
CONTEXT_FULL = CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_FLOATING_POINT

_GPRS = ("Rax", "Rcx", "Rdx", "Rbx", "Rsp", "Rbp", "Rsi", "Rdi",
         "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15")
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
        buf = bytearray(CONTEXT_SIZE)
        struct.pack_into("<IIHHHHHHI", buf, 0x30, self.ContextFlags, self.MxCsr, self.SegCs,
                         self.SegDs, self.SegEs, self.SegFs, self.SegGs, self.SegSs, self.EFlags)
        struct.pack_into("<6Q", buf, 0x48, self.Dr0, self.Dr1, self.Dr2, self.Dr3, self.Dr6, self.Dr7)
        struct.pack_into("<16Q", buf, 0x78, *(getattr(self, n) for n in _GPRS))
        struct.pack_into("<Q", buf, 0xF8, self.Rip)
        struct.pack_into("<HH", buf, 0x100, 0x27F, 0)          # FltSave.ControlWord
        struct.pack_into("<II", buf, 0x118, self.MxCsr, 0xFFFF)  # FltSave.MxCsr, MxCsr_Mask
        for i, value in enumerate(self.Xmm):
            buf[0x1A0 + 16 * i:0x1B0 + 16 * i] = value.to_bytes(16, "little")
        return bytes(buf)

    @classmethod
    def from_bytes(cls, data: bytes) -> Context:
        """Parse a CONTEXT; ``data`` must be at least 0x100 bytes (Xmm needs 0x2A0)."""
        if len(data) < 0x100:
            raise ValueError(f"CONTEXT needs at least 256 bytes, got {len(data)}")
        flags, mxcsr, cs, ds, es, fs, gs, ss, eflags = struct.unpack_from("<IIHHHHHHI", data, 0x30)
        drs = struct.unpack_from("<6Q", data, 0x48)
        gprs = struct.unpack_from("<16Q", data, 0x78)
        (rip,) = struct.unpack_from("<Q", data, 0xF8)
        xmm = tuple(int.from_bytes(data[0x1A0 + 16 * i:0x1B0 + 16 * i], "little") for i in range(16)) \
            if len(data) >= 0x2A0 else (0,) * 16
        ctx = cls(ContextFlags=flags, MxCsr=mxcsr, SegCs=cs, SegDs=ds, SegEs=es, SegFs=fs, SegGs=gs,
                  SegSs=ss, EFlags=eflags, Dr0=drs[0], Dr1=drs[1], Dr2=drs[2], Dr3=drs[3], Dr6=drs[4],
                  Dr7=drs[5], Rip=rip, Xmm=xmm)
        for name, value in zip(_GPRS, gprs):
            setattr(ctx, name, value)
        return ctx

    def replace(self, **changes: int) -> Context:
        return dataclasses.replace(self, **changes)


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
        buf = bytearray(SPECIAL_REGISTERS_SIZE)
        struct.pack_into("<10Q", buf, 0, self.Cr0, self.Cr2, self.Cr3, self.Cr4, self.KernelDr0,
                         self.KernelDr1, self.KernelDr2, self.KernelDr3, self.KernelDr6, self.KernelDr7)
        struct.pack_into("<HQ", buf, 0x56, self.GdtrLimit, self.GdtrBase)
        struct.pack_into("<HQ", buf, 0x66, self.IdtrLimit, self.IdtrBase)
        struct.pack_into("<HHI", buf, 0x70, self.Tr, self.Ldtr, self.MxCsr)
        struct.pack_into("<Q", buf, 0xA8, self.MsrGsBase)
        return bytes(buf)

    @classmethod
    def from_bytes(cls, data: bytes) -> SpecialRegisters:
        if len(data) < SPECIAL_REGISTERS_SIZE:
            raise ValueError(f"KSPECIAL_REGISTERS needs {SPECIAL_REGISTERS_SIZE} bytes, got {len(data)}")
        q = struct.unpack_from("<10Q", data, 0)
        glimit, gbase = struct.unpack_from("<HQ", data, 0x56)
        ilimit, ibase = struct.unpack_from("<HQ", data, 0x66)
        tr, ldtr, mxcsr = struct.unpack_from("<HHI", data, 0x70)
        (gs_base,) = struct.unpack_from("<Q", data, 0xA8)
        return cls(*q, GdtrLimit=glimit, GdtrBase=gbase, IdtrLimit=ilimit, IdtrBase=ibase, Tr=tr,
                   Ldtr=ldtr, MxCsr=mxcsr, MsrGsBase=gs_base)
