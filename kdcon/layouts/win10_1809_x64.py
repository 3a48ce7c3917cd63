"""Windows 10 version 1809 x64 (build 17763): the kernel structures the extensions read.

What it does: ``LAYOUT`` is the table (``table.parse`` text) used for a 17763 kernel whose
PDB cannot be found. What it does not do: name every member: only those the extensions
read, at the offsets the public symbols give.

Source: Vergilius Project (vergiliusproject.com), kernels/x64/windows-10/1809, build
10.0.17763.107, which lists the types of Microsoft's public symbols for that kernel.
"""

from __future__ import annotations

from .common import X64_COMMON, x64_windows10_tail
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

_KPROCESS (0x2d8)
    +0x000 Header           : _DISPATCHER_HEADER
    +0x018 ProfileListHead  : _LIST_ENTRY
    +0x028 DirectoryTableBase : Uint8B
    +0x030 ThreadListHead   : _LIST_ENTRY
    +0x1bc BasePriority     : Char
    +0x240 ProcessListEntry : _LIST_ENTRY
    +0x26c KernelTime       : Uint4B
    +0x270 UserTime         : Uint4B
    +0x278 UserDirectoryTableBase : Uint8B

_EPROCESS (0x850)
    +0x000 Pcb              : _KPROCESS
    +0x2e0 UniqueProcessId  : Ptr64 Void
    +0x2e8 ActiveProcessLinks : _LIST_ENTRY
    +0x300 Flags2           : Uint4B
    +0x304 Flags            : Uint4B
    +0x308 CreateTime       : _LARGE_INTEGER
    +0x330 PeakVirtualSize  : Uint8B
    +0x338 VirtualSize      : Uint8B
    +0x340 SessionProcessLinks : _LIST_ENTRY
    +0x358 Token            : _EX_FAST_REF
    +0x3b0 Job              : Ptr64 _EJOB
    +0x3c0 SectionBaseAddress : Ptr64 Void
    +0x3e0 InheritedFromUniqueProcessId : Ptr64 Void
    +0x3f8 Peb              : Ptr64 _PEB
    +0x400 Session          : Ptr64 _MM_SESSION_SPACE
    +0x418 ObjectTable      : Ptr64 _HANDLE_TABLE
    +0x420 DebugPort        : Ptr64 Void
    +0x428 WoW64Process     : Ptr64 _EWOW64PROCESS
    +0x430 DeviceMap        : Ptr64 Void
    +0x450 ImageFileName    : [15] UChar
    +0x45f PriorityClass    : UChar
    +0x488 ThreadListHead   : _LIST_ENTRY
    +0x498 ActiveThreads    : Uint4B
    +0x49c ImagePathHash    : Uint4B
    +0x4f0 CommitCharge     : Uint8B
    +0x690 ExitTime         : _LARGE_INTEGER
    +0x624 ExitStatus       : Int4B

_MM_SESSION_SPACE (0x5000)
    +0x008 SessionId        : Uint4B

_KTHREAD (0x5f0)
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

_ETHREAD (0x810)
    +0x000 Tcb              : _KTHREAD
    +0x5f0 CreateTime       : _LARGE_INTEGER
    +0x5f8 ExitTime         : _LARGE_INTEGER
    +0x610 StartAddress     : Ptr64 Void
    +0x638 Cid              : _CLIENT_ID
    +0x670 IrpList          : _LIST_ENTRY
    +0x680 TopLevelIrp      : Uint8B
    +0x690 Win32StartAddress : Ptr64 Void
    +0x6a8 ThreadListEntry  : _LIST_ENTRY
    +0x6d0 CrossThreadFlags : Uint4B
    +0x700 ExitStatus       : Int4B

_KPRCB (0x7ec0)
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
    +0x2e6a DpcRoutineActive : UChar
    +0x5b80 InterruptCount  : Uint4B
    +0x5b84 KernelTime      : Uint4B
    +0x5b88 UserTime        : Uint4B
    +0x5b8c DpcTime         : Uint4B
    +0x5b90 InterruptTime   : Uint4B
    +0x6290 VendorString    : [13] UChar
""" + x64_windows10_tail(0x8040, 36)

LAYOUT = WindowsLayout(
    name="Windows 10 1809 x64",
    builds=(17763,),
    source="Vergilius Project, kernels/x64/windows-10/1809 (10.0.17763.107)",
    text=_TEXT,
)
