"""CONTEXT and KSPECIAL_REGISTERS for AMD64 and x86: construct layouts and x64 value types.

What it does: declares the AMD64 CONTEXT (1232 bytes, what GetContext returns from an
x64 target), the x86 CONTEXT (716 bytes), and the special-register blocks that control
space carries (AMD64 index 2, 224 bytes; x86 offset 0x2CC, 84 bytes), parseable and
buildable. On top of the AMD64 layouts it gives the one CPU context type every layer
shares: ``Context`` (the x64 CONTEXT by field name) and ``SpecialRegisters``
(KSPECIAL_REGISTERS), each with ``to_bytes``/``from_bytes``/``replace``, the
``CONTEXT_*`` ContextFlags values and the KGDT64 selectors an x64 kernel thread runs
with. What it does not do: read or write a CPU (the simulated target does that) or map
registers to names the console shows. The ContextFlags architecture bit itself is
``constants.CONTEXT_AMD64``; here ``CONTEXT_AMD64`` is the CONTEXT layout.
Spec: winnt.h CONTEXT / ntddk KSPECIAL_REGISTERS via kd-protocol.md §5.5, §7.3;
ksamd64.inc KGDT64_* selectors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from construct import Array, Bytes, Int8ul, Int16ul, Int32ul, Int64ul, Struct

from .constants import CONTEXT_AMD64 as _CONTEXT_AMD64_FLAG
from .windbgkd import Width, both_widths, fields

__all__ = [
    "M128A",
    "XMM_SAVE_AREA32",
    "CONTEXT_AMD64",
    "FLOATING_SAVE_AREA",
    "CONTEXT_X86",
    "KDESCRIPTOR_AMD64",
    "KSPECIAL_REGISTERS_AMD64",
    "KDESCRIPTOR_X86",
    "KSPECIAL_REGISTERS_X86",
    "CONTEXT_AMD64_SIZE",
    "CONTEXT_X86_SIZE",
    "KSPECIAL_REGISTERS_AMD64_SIZE",
    "KSPECIAL_REGISTERS_X86_SIZE",
    "AMD64_GPR_NAMES",
    "CONTEXT_CONTROL",
    "CONTEXT_INTEGER",
    "CONTEXT_SEGMENTS",
    "CONTEXT_FLOATING_POINT",
    "CONTEXT_DEBUG_REGISTERS",
    "CONTEXT_FULL",
    "CONTEXT_ALL",
    "RPL_MASK",
    "KGDT64_R0_CODE",
    "KGDT64_R0_DATA",
    "KGDT64_R3_CMCODE",
    "KGDT64_R3_DATA",
    "KGDT64_R3_CODE",
    "KGDT64_SYS_TSS",
    "KGDT64_R3_CMTEB",
    "Context",
    "SpecialRegisters",
]

CONTEXT_AMD64_SIZE = 0x4D0
CONTEXT_X86_SIZE = 0x2CC
KSPECIAL_REGISTERS_AMD64_SIZE = 0xE0
KSPECIAL_REGISTERS_X86_SIZE = 0x54

M128A = Struct("Low" / Int64ul, "High" / Int64ul)

XMM_SAVE_AREA32 = Struct(
    "ControlWord" / Int16ul,
    "StatusWord" / Int16ul,
    "TagWord" / Int8ul,
    "Reserved1" / Int8ul,
    "ErrorOpcode" / Int16ul,
    "ErrorOffset" / Int32ul,
    "ErrorSelector" / Int16ul,
    "Reserved2" / Int16ul,
    "DataOffset" / Int32ul,
    "DataSelector" / Int16ul,
    "Reserved3" / Int16ul,
    "MxCsr" / Int32ul,
    "MxCsr_Mask" / Int32ul,
    "FloatRegisters" / Array(8, M128A),
    "XmmRegisters" / Array(16, M128A),
    "Reserved4" / Bytes(96),
)

AMD64_GPR_NAMES = (
    "Rax", "Rcx", "Rdx", "Rbx", "Rsp", "Rbp", "Rsi", "Rdi",
    "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15",
)

CONTEXT_AMD64 = Struct(
    "P1Home" / Int64ul,
    "P2Home" / Int64ul,
    "P3Home" / Int64ul,
    "P4Home" / Int64ul,
    "P5Home" / Int64ul,
    "P6Home" / Int64ul,
    "ContextFlags" / Int32ul,
    "MxCsr" / Int32ul,
    "SegCs" / Int16ul,
    "SegDs" / Int16ul,
    "SegEs" / Int16ul,
    "SegFs" / Int16ul,
    "SegGs" / Int16ul,
    "SegSs" / Int16ul,
    "EFlags" / Int32ul,
    "Dr0" / Int64ul,
    "Dr1" / Int64ul,
    "Dr2" / Int64ul,
    "Dr3" / Int64ul,
    "Dr6" / Int64ul,
    "Dr7" / Int64ul,
    *fields(Int64ul, AMD64_GPR_NAMES),
    "Rip" / Int64ul,
    "FltSave" / XMM_SAVE_AREA32,
    "VectorRegister" / Array(26, M128A),
    "VectorControl" / Int64ul,
    "DebugControl" / Int64ul,
    "LastBranchToRip" / Int64ul,
    "LastBranchFromRip" / Int64ul,
    "LastExceptionToRip" / Int64ul,
    "LastExceptionFromRip" / Int64ul,
)

FLOATING_SAVE_AREA = Struct(
    "ControlWord" / Int32ul,
    "StatusWord" / Int32ul,
    "TagWord" / Int32ul,
    "ErrorOffset" / Int32ul,
    "ErrorSelector" / Int32ul,
    "DataOffset" / Int32ul,
    "DataSelector" / Int32ul,
    "RegisterArea" / Bytes(80),
    "Cr0NpxState" / Int32ul,
)

CONTEXT_X86 = Struct(
    "ContextFlags" / Int32ul,
    "Dr0" / Int32ul,
    "Dr1" / Int32ul,
    "Dr2" / Int32ul,
    "Dr3" / Int32ul,
    "Dr6" / Int32ul,
    "Dr7" / Int32ul,
    "FloatSave" / FLOATING_SAVE_AREA,
    "SegGs" / Int32ul,
    "SegFs" / Int32ul,
    "SegEs" / Int32ul,
    "SegDs" / Int32ul,
    "Edi" / Int32ul,
    "Esi" / Int32ul,
    "Ebx" / Int32ul,
    "Edx" / Int32ul,
    "Ecx" / Int32ul,
    "Eax" / Int32ul,
    "Ebp" / Int32ul,
    "Eip" / Int32ul,
    "SegCs" / Int32ul,
    "EFlags" / Int32ul,
    "Esp" / Int32ul,
    "SegSs" / Int32ul,
    "ExtendedRegisters" / Bytes(512),
)

# Limit sits at +6 so that Base is naturally aligned (§7.3: Gdtr Limit @0x56, Base @0x58).
KDESCRIPTOR_AMD64 = Struct("Pad" / Array(3, Int16ul), "Limit" / Int16ul, "Base" / Int64ul)
KDESCRIPTOR_X86 = Struct("Pad" / Int16ul, "Limit" / Int16ul, "Base" / Int32ul)

_CONTROL_REGISTERS = ("Cr0", "Cr2", "Cr3", "Cr4", "KernelDr0", "KernelDr1", "KernelDr2",
                      "KernelDr3", "KernelDr6", "KernelDr7")


def _special_registers(width: Width) -> Any:
    """KSPECIAL_REGISTERS: the same head in both architectures, register-sized."""
    descriptor = width.pick(KDESCRIPTOR_AMD64, KDESCRIPTOR_X86)
    return Struct(
        *fields(width.ptr, _CONTROL_REGISTERS),
        "Gdtr" / descriptor,
        "Idtr" / descriptor,
        "Tr" / Int16ul,
        "Ldtr" / Int16ul,
        *width.pick((
            "MxCsr" / Int32ul,
            "DebugControl" / Int64ul,
            "LastBranchToRip" / Int64ul,
            "LastBranchFromRip" / Int64ul,
            "LastExceptionToRip" / Int64ul,
            "LastExceptionFromRip" / Int64ul,
            "Cr8" / Int64ul,
            "MsrGsBase" / Int64ul,
            "MsrGsSwap" / Int64ul,
            "MsrStar" / Int64ul,
            "MsrLStar" / Int64ul,
            "MsrCStar" / Int64ul,
            "MsrSyscallMask" / Int64ul,
            "Xcr0" / Int64ul,
        ), (
            "Reserved" / Array(6, Int32ul),
        )),
    )


KSPECIAL_REGISTERS_AMD64, KSPECIAL_REGISTERS_X86 = both_widths(_special_registers)


# winnt.h ContextFlags for AMD64: which parts of a CONTEXT are valid.
CONTEXT_CONTROL = _CONTEXT_AMD64_FLAG | 0x1
CONTEXT_INTEGER = _CONTEXT_AMD64_FLAG | 0x2
CONTEXT_SEGMENTS = _CONTEXT_AMD64_FLAG | 0x4
CONTEXT_FLOATING_POINT = _CONTEXT_AMD64_FLAG | 0x8
CONTEXT_DEBUG_REGISTERS = _CONTEXT_AMD64_FLAG | 0x10
CONTEXT_FULL = CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_FLOATING_POINT
CONTEXT_ALL = CONTEXT_FULL | CONTEXT_SEGMENTS | CONTEXT_DEBUG_REGISTERS

# ksamd64.inc GDT selectors; user-mode ones are loaded with RPL 3.
RPL_MASK = 0x3
KGDT64_R0_CODE = 0x10
KGDT64_R0_DATA = 0x18
KGDT64_R3_CMCODE = 0x20
KGDT64_R3_DATA = 0x28
KGDT64_R3_CODE = 0x30
KGDT64_SYS_TSS = 0x40
KGDT64_R3_CMTEB = 0x50

_MASK64 = 0xFFFFFFFFFFFFFFFF


@dataclass
class Context:
    """The x64 CONTEXT, by field name.  ``Xmm`` holds 16 128-bit integers.

    The defaults are a kernel thread's: CS/SS the ring-0 selectors, DS/ES/GS the flat
    ring-3 data selector and FS the compatibility TEB selector, as x64 Windows loads them.
    """

    ContextFlags: int = CONTEXT_ALL
    MxCsr: int = 0x1F80
    SegCs: int = KGDT64_R0_CODE
    SegDs: int = KGDT64_R3_DATA | RPL_MASK
    SegEs: int = KGDT64_R3_DATA | RPL_MASK
    SegFs: int = KGDT64_R3_CMTEB | RPL_MASK
    SegGs: int = KGDT64_R3_DATA | RPL_MASK
    SegSs: int = KGDT64_R0_DATA
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
        scalars = {name: getattr(self, name) for name in _CONTEXT_SCALARS}
        return CONTEXT_AMD64.build(dict(scalars, P1Home=0, P2Home=0, P3Home=0, P4Home=0, P5Home=0,
                                        P6Home=0, FltSave=flt, VectorRegister=[dict(Low=0, High=0)] * 26,
                                        VectorControl=0, DebugControl=0, LastBranchToRip=0,
                                        LastBranchFromRip=0, LastExceptionToRip=0, LastExceptionFromRip=0))

    @classmethod
    def from_bytes(cls, data: bytes) -> Context:
        """Parse a 1232-byte CONTEXT; bytes past it are ignored."""
        if len(data) < CONTEXT_AMD64_SIZE:
            raise ValueError(f"CONTEXT needs {CONTEXT_AMD64_SIZE} bytes, got {len(data)}")
        parsed = CONTEXT_AMD64.parse(data)
        xmm = tuple(r.Low | r.High << 64 for r in parsed.FltSave.XmmRegisters)
        return cls(**{name: parsed[name] for name in _CONTEXT_SCALARS}, Xmm=xmm)

    def replace(self, **changes: int) -> Context:
        """A copy with the named fields changed."""
        return dataclasses.replace(self, **changes)


_CONTEXT_SCALARS = tuple(f.name for f in dataclasses.fields(Context) if f.name != "Xmm")


@dataclass
class SpecialRegisters:
    """KSPECIAL_REGISTERS (x64): what ReadControlSpace index 2 returns.

    It keeps the control and kernel debug registers, Gdtr and Idtr (as their Limit and
    Base), Tr, Ldtr, MxCsr and MsrGsBase. The rest of the block (DebugControl, the last
    branch and exception records, Cr8, the other MSRs, Xcr0) is zero in ``to_bytes`` and
    dropped by ``from_bytes``.
    """

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
        """The 224-byte KSPECIAL_REGISTERS; fields not kept here are zero."""
        scalars = {name: getattr(self, name) for name in _SPECIAL_SCALARS}
        return KSPECIAL_REGISTERS_AMD64.build(dict(
            scalars, Gdtr=dict(Pad=[0, 0, 0], Limit=self.GdtrLimit, Base=self.GdtrBase),
            Idtr=dict(Pad=[0, 0, 0], Limit=self.IdtrLimit, Base=self.IdtrBase), DebugControl=0,
            LastBranchToRip=0, LastBranchFromRip=0, LastExceptionToRip=0, LastExceptionFromRip=0, Cr8=0,
            MsrGsSwap=0, MsrStar=0, MsrLStar=0, MsrCStar=0, MsrSyscallMask=0, Xcr0=0))

    @classmethod
    def from_bytes(cls, data: bytes) -> SpecialRegisters:
        """Parse a 224-byte KSPECIAL_REGISTERS; bytes past it are ignored."""
        if len(data) < KSPECIAL_REGISTERS_AMD64_SIZE:
            raise ValueError(f"KSPECIAL_REGISTERS needs {KSPECIAL_REGISTERS_AMD64_SIZE} bytes, got {len(data)}")
        parsed = KSPECIAL_REGISTERS_AMD64.parse(data)
        return cls(**{name: parsed[name] for name in _SPECIAL_SCALARS}, GdtrLimit=parsed.Gdtr.Limit,
                   GdtrBase=parsed.Gdtr.Base, IdtrLimit=parsed.Idtr.Limit, IdtrBase=parsed.Idtr.Base)

    def replace(self, **changes: int) -> SpecialRegisters:
        """A copy with the named fields changed."""
        return dataclasses.replace(self, **changes)


_SPECIAL_SCALARS = tuple(f.name for f in dataclasses.fields(SpecialRegisters)
                         if not f.name.startswith(("Gdtr", "Idtr")))
