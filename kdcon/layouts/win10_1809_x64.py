"""Windows 10 version 1809 x64 (build 17763): the kernel structures the extensions read.

What it does: ``LAYOUT`` is the table used for a 17763 kernel whose PDB cannot be
found, written as where it differs from Windows 10 2004's (``win10_19041_x64``): the
process, thread and processor blocks are smaller, so their later members stand lower.
What it does not do: name every member: only those the extensions read, at the offsets
the public symbols give.

Source: Vergilius Project (vergiliusproject.com), kernels/x64/windows-10/1809, build
10.0.17763.107, which lists the types of Microsoft's public symbols for that kernel.
"""

from __future__ import annotations

from . import win10_19041_x64
from .table import WindowsLayout

__all__ = ["LAYOUT"]

_CHANGES = """
_KPROCESS (0x2d8)
    +0x1bc BasePriority     : Char
    +0x240 ProcessListEntry : _LIST_ENTRY
    +0x26c KernelTime       : Uint4B
    +0x270 UserTime         : Uint4B
    +0x278 UserDirectoryTableBase : Uint8B

_EPROCESS (0x850)
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

_KTHREAD (0x5f0)

_ETHREAD (0x810)
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
    +0x2e6a DpcRoutineActive : UChar
    +0x5b80 InterruptCount  : Uint4B
    +0x5b84 KernelTime      : Uint4B
    +0x5b88 UserTime        : Uint4B
    +0x5b8c DpcTime         : Uint4B
    +0x5b90 InterruptTime   : Uint4B
    +0x6290 VendorString    : [13] UChar

_KPCR (0x8040)
"""

LAYOUT = WindowsLayout(
    name="Windows 10 1809 x64",
    builds=(17763,),
    source="Vergilius Project, kernels/x64/windows-10/1809 (10.0.17763.107)",
    text=_CHANGES,
    base=win10_19041_x64.LAYOUT,
)
