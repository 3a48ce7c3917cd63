"""CONTEXT and KSPECIAL_REGISTERS for AMD64 and x86, as construct definitions.

What it does: declares the AMD64 CONTEXT (1232 bytes, what GetContext returns from an
x64 target), the x86 CONTEXT (716 bytes), and the special-register blocks that control
space carries (AMD64 index 2, 224 bytes; x86 offset 0x2CC, 84 bytes), parseable and
buildable. What it does not do: interpret ContextFlags or map registers to names the
console shows.
Spec: winnt.h CONTEXT / ntddk KSPECIAL_REGISTERS via kd-protocol.md §5.5, §7.3.
"""

from __future__ import annotations

from construct import Array, Bytes, Int8ul, Int16ul, Int32ul, Int64ul, Struct

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
    *[name / Int64ul for name in AMD64_GPR_NAMES],
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

KSPECIAL_REGISTERS_AMD64 = Struct(
    "Cr0" / Int64ul,
    "Cr2" / Int64ul,
    "Cr3" / Int64ul,
    "Cr4" / Int64ul,
    "KernelDr0" / Int64ul,
    "KernelDr1" / Int64ul,
    "KernelDr2" / Int64ul,
    "KernelDr3" / Int64ul,
    "KernelDr6" / Int64ul,
    "KernelDr7" / Int64ul,
    "Gdtr" / KDESCRIPTOR_AMD64,
    "Idtr" / KDESCRIPTOR_AMD64,
    "Tr" / Int16ul,
    "Ldtr" / Int16ul,
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
)

KDESCRIPTOR_X86 = Struct("Pad" / Int16ul, "Limit" / Int16ul, "Base" / Int32ul)

KSPECIAL_REGISTERS_X86 = Struct(
    "Cr0" / Int32ul,
    "Cr2" / Int32ul,
    "Cr3" / Int32ul,
    "Cr4" / Int32ul,
    "KernelDr0" / Int32ul,
    "KernelDr1" / Int32ul,
    "KernelDr2" / Int32ul,
    "KernelDr3" / Int32ul,
    "KernelDr6" / Int32ul,
    "KernelDr7" / Int32ul,
    "Gdtr" / KDESCRIPTOR_X86,
    "Idtr" / KDESCRIPTOR_X86,
    "Tr" / Int16ul,
    "Ldtr" / Int16ul,
    "Reserved" / Array(6, Int32ul),
)
