"""Windows 10 versions 2004 to 22H2 x64 (builds 19041 to 19045): the kernel structures
the extensions read.

What it does: ``LAYOUT`` is the table (``table.parse`` text) used for a 19041 to 19045
kernel whose PDB cannot be found; the Windows 10 1809 and Windows 11 tables are written
as their differences from it. What it does not do: name every member: only those the
extensions read, at the offsets the public symbols give.

Source: Vergilius Project (vergiliusproject.com), kernels/x64/windows-10/2004, 20h2,
21h1, 21h2 and 22h2, builds 10.0.19041.264 to 10.0.19045.2965, which list the types of
Microsoft's public symbols for those kernels (one kernel line: the pages agree on every
member named here). The _KPCR and _KPRCB pages of 2004, 20H2, 21H2 and 22H2 stop early;
those two structures are the 21H1 page's (10.0.19043.928).
"""

from __future__ import annotations

from .common import X64_COMMON, x64_kpcr
from .table import WindowsLayout

__all__ = ["LAYOUT"]

_TEXT = X64_COMMON + """
_UNICODE_STRING (0x10)
    +0x000 Length           : Uint2B
    +0x002 MaximumLength    : Uint2B
    +0x008 Buffer           : Ptr64 Wchar

_KLDR_DATA_TABLE_ENTRY (0xa0)
    +0x000 InLoadOrderLinks : _LIST_ENTRY
    +0x010 ExceptionTable   : Ptr64 Void
    +0x018 ExceptionTableSize : Uint4B
    +0x020 GpValue          : Ptr64 Void
    +0x028 NonPagedDebugInfo : Ptr64 _NON_PAGED_DEBUG_INFO
    +0x030 DllBase          : Ptr64 Void
    +0x038 EntryPoint       : Ptr64 Void
    +0x040 SizeOfImage      : Uint4B
    +0x048 FullDllName      : _UNICODE_STRING
    +0x058 BaseDllName      : _UNICODE_STRING
    +0x068 Flags            : Uint4B
    +0x06c LoadCount        : Uint2B
    +0x070 SectionPointer   : Ptr64 Void
    +0x078 CheckSum         : Uint4B
    +0x07c CoverageSectionSize : Uint4B
    +0x080 CoverageSection  : Ptr64 Void
    +0x088 LoadedImports    : Ptr64 Void
    +0x098 SizeOfImageNotRounded : Uint4B
    +0x09c TimeDateStamp    : Uint4B

_KPROCESS (0x438)
    +0x000 Header           : _DISPATCHER_HEADER
    +0x018 ProfileListHead  : _LIST_ENTRY
    +0x028 DirectoryTableBase : Uint8B
    +0x030 ThreadListHead   : _LIST_ENTRY
    +0x280 BasePriority     : Char
    +0x350 ProcessListEntry : _LIST_ENTRY
    +0x37c KernelTime       : Uint4B
    +0x380 UserTime         : Uint4B
    +0x388 UserDirectoryTableBase : Uint8B

_EPROCESS (0xa40)
    +0x000 Pcb              : _KPROCESS
    +0x440 UniqueProcessId  : Ptr64 Void
    +0x448 ActiveProcessLinks : _LIST_ENTRY
    +0x460 Flags2           : Uint4B
    +0x464 Flags            : Uint4B
    +0x468 CreateTime       : _LARGE_INTEGER
    +0x490 PeakVirtualSize  : Uint8B
    +0x498 VirtualSize      : Uint8B
    +0x4a0 SessionProcessLinks : _LIST_ENTRY
    +0x4b8 Token            : _EX_FAST_REF
    +0x510 Job              : Ptr64 _EJOB
    +0x520 SectionBaseAddress : Ptr64 Void
    +0x540 InheritedFromUniqueProcessId : Ptr64 Void
    +0x550 Peb              : Ptr64 _PEB
    +0x558 Session          : Ptr64 _MM_SESSION_SPACE
    +0x570 ObjectTable      : Ptr64 _HANDLE_TABLE
    +0x578 DebugPort        : Ptr64 Void
    +0x580 WoW64Process     : Ptr64 _EWOW64PROCESS
    +0x588 DeviceMap        : Ptr64 Void
    +0x5a8 ImageFileName    : [15] UChar
    +0x5b7 PriorityClass    : UChar
    +0x5e0 ThreadListHead   : _LIST_ENTRY
    +0x5f0 ActiveThreads    : Uint4B
    +0x5f4 ImagePathHash    : Uint4B
    +0x648 CommitCharge     : Uint8B
    +0x840 ExitTime         : _LARGE_INTEGER
    +0x7d4 ExitStatus       : Int4B

_MM_SESSION_SPACE (0x5000)
    +0x008 SessionId        : Uint4B

_KTHREAD (0x430)
    +0x000 Header           : _DISPATCHER_HEADER
    +0x028 InitialStack     : Ptr64 Void
    +0x030 StackLimit       : Ptr64 Void
    +0x038 StackBase        : Ptr64 Void
    +0x058 KernelStack      : Ptr64 Void
    +0x071 Running          : UChar
    +0x074 MiscFlags        : Int4B
    +0x090 TrapFrame        : Ptr64 _KTRAP_FRAME
    +0x098 ApcState         : _KAPC_STATE
    +0x0c3 Priority         : Char
    +0x0c8 WaitStatus       : Int8B
    +0x0d0 WaitBlockList    : Ptr64 _KWAIT_BLOCK
    +0x0e8 Queue            : Ptr64 _DISPATCHER_HEADER
    +0x0f0 Teb              : Ptr64 Void
    +0x154 ContextSwitches  : Uint4B
    +0x184 State            : UChar
    +0x186 WaitIrql         : UChar
    +0x187 WaitMode         : Char
    +0x1b4 WaitTime         : Uint4B
    +0x1c8 Win32Thread      : Ptr64 Void
    +0x1e4 KernelApcDisable : Int2B
    +0x1e6 SpecialApcDisable : Int2B
    +0x208 QueueListEntry   : _LIST_ENTRY
    +0x218 NextProcessor    : Uint4B
    +0x220 Process          : Ptr64 _KPROCESS
    +0x232 PreviousMode     : Char
    +0x233 BasePriority     : Char
    +0x234 PriorityDecrement : Char
    +0x24c IdealProcessor   : Uint4B
    +0x283 WaitReason       : UChar
    +0x284 SuspendCount     : Char
    +0x28c KernelTime       : Uint4B
    +0x2dc UserTime         : Uint4B
    +0x2f8 ThreadListEntry  : _LIST_ENTRY

_ETHREAD (0x898)
    +0x000 Tcb              : _KTHREAD
    +0x430 CreateTime       : _LARGE_INTEGER
    +0x438 ExitTime         : _LARGE_INTEGER
    +0x450 StartAddress     : Ptr64 Void
    +0x478 Cid              : _CLIENT_ID
    +0x4b0 IrpList          : _LIST_ENTRY
    +0x4c0 TopLevelIrp      : Uint8B
    +0x4d0 Win32StartAddress : Ptr64 Void
    +0x4e8 ThreadListEntry  : _LIST_ENTRY
    +0x510 CrossThreadFlags : Uint4B
    +0x548 ExitStatus       : Int4B

_KPRCB (0xaf00)
    +0x000 MxCsr            : Uint4B
    +0x008 CurrentThread    : Ptr64 _KTHREAD
    +0x010 NextThread       : Ptr64 _KTHREAD
    +0x018 IdleThread       : Ptr64 _KTHREAD
    +0x020 NestingLevel     : UChar
    +0x024 Number           : Uint4B
    +0x028 RspBase          : Uint8B
    +0x030 PrcbLock         : Uint8B
    +0x040 CpuType          : Char
    +0x041 CpuID            : Char
    +0x042 CpuStep          : Uint2B
    +0x044 MHz              : Uint4B
    +0x312a DpcRoutineActive : UChar
    +0x7e80 InterruptCount  : Uint4B
    +0x7e84 KernelTime      : Uint4B
    +0x7e88 UserTime        : Uint4B
    +0x7e8c DpcTime         : Uint4B
    +0x7e90 InterruptTime   : Uint4B
    +0x8590 VendorString    : [13] UChar
""" + x64_kpcr(0xb080) + """
_POOL_HEADER (0x10)
    +0x000 PreviousSize     : Pos 0, 8 Bits of Uint2B
    +0x000 PoolIndex        : Pos 8, 8 Bits of Uint2B
    +0x002 BlockSize        : Pos 0, 8 Bits of Uint2B
    +0x002 PoolType         : Pos 8, 8 Bits of Uint2B
    +0x000 Ulong1           : Uint4B
    +0x004 PoolTag          : Uint4B
    +0x008 ProcessBilled    : Ptr64 _EPROCESS
    +0x008 AllocatorBackTraceIndex : Uint2B
    +0x00a PoolTagHash      : Uint2B

# The PFN entry's unions are unnamed in the symbols; they are named after their member.
union _MMPFN::u1 (0x8)
    +0x000 Next             : Ptr64 Void
    +0x000 Flink            : Pos 0, 36 Bits of Uint8B

_MIPFNBLINK (0x8)
    +0x000 Blink            : Pos 0, 36 Bits of Uint8B
    +0x000 ShareCount       : Pos 0, 62 Bits of Uint8B
    +0x000 EntireField      : Uint8B

_MMPFNENTRY1 (0x1)
    +0x000 PageLocation     : Pos 0, 3 Bits of UChar
    +0x000 WriteInProgress  : Pos 3, 1 Bit of UChar
    +0x000 Modified         : Pos 4, 1 Bit of UChar
    +0x000 ReadInProgress   : Pos 5, 1 Bit of UChar
    +0x000 CacheAttribute   : Pos 6, 2 Bits of UChar

union _MMPFN::u3 (0x4)
    +0x000 ReferenceCount   : Uint2B
    +0x002 e1               : _MMPFNENTRY1

union _MMPFN::u4 (0x8)
    +0x000 PteFrame         : Pos 0, 36 Bits of Uint8B
    +0x000 EntireField      : Uint8B

_MMPFN (0x30)
    +0x000 ListEntry        : _LIST_ENTRY
    +0x000 u1               : _MMPFN::u1
    +0x008 PteAddress       : Ptr64 _MMPTE
    +0x008 PteLong          : Uint8B
    +0x018 u2               : _MIPFNBLINK
    +0x020 u3               : _MMPFN::u3
    +0x028 u4               : _MMPFN::u4
"""

LAYOUT = WindowsLayout(
    name="Windows 10 2004-22H2 x64",
    builds=(19041, 19042, 19043, 19044, 19045),
    source="Vergilius Project, kernels/x64/windows-10/2004 to 22h2 (10.0.19041-19045)",
    text=_TEXT,
)
