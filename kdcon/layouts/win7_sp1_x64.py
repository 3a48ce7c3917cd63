"""Windows 7 SP1 x64 (build 7601): the kernel structures the built-in extensions read.

What it does: ``LAYOUT`` is the table (``table.parse`` text) used for a 7601 kernel
whose PDB cannot be found. What it does not do: name every member: only those the
extensions read, at the offsets the public symbols give.

Source: Vergilius Project (vergiliusproject.com), kernels/x64/windows-7/sp1, build
6.1.7601.17514, which lists the types of Microsoft's public symbols for that kernel;
the _EPROCESS and _ETHREAD offsets agree with the ntdiff/headers transcription
(Win7_SP1/x64/System32/ntoskrnl.exe) of the same symbols.
"""

from __future__ import annotations

from .common import X64_COMMON, x64_kpcr
from .table import WindowsLayout

__all__ = ["LAYOUT"]

_TEXT = X64_COMMON + """
_UNICODE_STRING (0x10)
    +0x000 Length           : Uint2B
    +0x002 MaximumLength    : Uint2B
    +0x008 Buffer           : Ptr64 Uint2B

_LDR_DATA_TABLE_ENTRY (0xe0)
    +0x000 InLoadOrderLinks : _LIST_ENTRY
    +0x010 InMemoryOrderLinks : _LIST_ENTRY
    +0x020 InInitializationOrderLinks : _LIST_ENTRY
    +0x030 DllBase          : Ptr64 Void
    +0x038 EntryPoint       : Ptr64 Void
    +0x040 SizeOfImage      : Uint4B
    +0x048 FullDllName      : _UNICODE_STRING
    +0x058 BaseDllName      : _UNICODE_STRING
    +0x068 Flags            : Uint4B
    +0x06c LoadCount        : Uint2B
    +0x06e TlsIndex         : Uint2B
    +0x070 SectionPointer   : Ptr64 Void
    +0x078 CheckSum         : Uint4B
    +0x080 TimeDateStamp    : Uint4B
    +0x080 LoadedImports    : Ptr64 Void

# The 7601 symbols have no _KLDR_DATA_TABLE_ENTRY: the kernel's module list
# (PsLoadedModuleList) is described by _LDR_DATA_TABLE_ENTRY above. Here are only the
# members a kernel loader entry shares with it, at the same offsets (the ones later
# symbols give _KLDR_DATA_TABLE_ENTRY too), so one type name walks every version.
_KLDR_DATA_TABLE_ENTRY (0x80)
    +0x000 InLoadOrderLinks : _LIST_ENTRY
    +0x030 DllBase          : Ptr64 Void
    +0x038 EntryPoint       : Ptr64 Void
    +0x040 SizeOfImage      : Uint4B
    +0x048 FullDllName      : _UNICODE_STRING
    +0x058 BaseDllName      : _UNICODE_STRING
    +0x068 Flags            : Uint4B
    +0x06c LoadCount        : Uint2B
    +0x070 SectionPointer   : Ptr64 Void
    +0x078 CheckSum         : Uint4B

_KPROCESS (0x160)
    +0x000 Header           : _DISPATCHER_HEADER
    +0x018 ProfileListHead  : _LIST_ENTRY
    +0x028 DirectoryTableBase : Uint8B
    +0x030 ThreadListHead   : _LIST_ENTRY
    +0x0b4 BasePriority     : Char
    +0x0e0 ProcessListEntry : _LIST_ENTRY
    +0x0f8 KernelTime       : Uint4B
    +0x0fc UserTime         : Uint4B

_EPROCESS (0x4d0)
    +0x000 Pcb              : _KPROCESS
    +0x168 CreateTime       : _LARGE_INTEGER
    +0x170 ExitTime         : _LARGE_INTEGER
    +0x180 UniqueProcessId  : Ptr64 Void
    +0x188 ActiveProcessLinks : _LIST_ENTRY
    +0x1b8 CommitCharge     : Uint8B
    +0x1d0 PeakVirtualSize  : Uint8B
    +0x1d8 VirtualSize      : Uint8B
    +0x1e0 SessionProcessLinks : _LIST_ENTRY
    +0x1f0 DebugPort        : Ptr64 Void
    +0x200 ObjectTable      : Ptr64 _HANDLE_TABLE
    +0x208 Token            : _EX_FAST_REF
    +0x260 Job              : Ptr64 _EJOB
    +0x270 SectionBaseAddress : Ptr64 Void
    +0x290 InheritedFromUniqueProcessId : Ptr64 Void
    +0x2b0 DeviceMap        : Ptr64 Void
    +0x2d8 Session          : Ptr64 Void
    +0x2e0 ImageFileName    : [15] UChar
    +0x2ef PriorityClass    : UChar
    +0x308 ThreadListHead   : _LIST_ENTRY
    +0x320 Wow64Process     : Ptr64 Void
    +0x328 ActiveThreads    : Uint4B
    +0x32c ImagePathHash    : Uint4B
    +0x338 Peb              : Ptr64 _PEB
    +0x43c Flags2           : Uint4B
    +0x440 Flags            : Uint4B
    +0x444 ExitStatus       : Int4B

_MM_SESSION_SPACE (0x1f80)
    +0x008 SessionId        : Uint4B

_HANDLE_TABLE (0x68)
    +0x000 TableCode        : Uint8B
    +0x008 QuotaProcess     : Ptr64 _EPROCESS
    +0x010 UniqueProcessId  : Ptr64 Void
    +0x020 HandleTableList  : _LIST_ENTRY
    +0x058 HandleCount      : Int4B

# Level 0 of TableCode (its low 2 bits) is an array of these; Object's low 3 bits are
# the lock and attribute bits.
_HANDLE_TABLE_ENTRY (0x10)
    +0x000 Object           : Ptr64 Void
    +0x000 Value            : Uint8B
    +0x008 GrantedAccess    : Uint4B

_OBJECT_HEADER (0x38)
    +0x000 PointerCount     : Int8B
    +0x008 HandleCount      : Int8B
    +0x010 Lock             : _EX_PUSH_LOCK
    +0x018 TypeIndex        : UChar
    +0x019 TraceFlags       : UChar
    +0x01a InfoMask         : UChar
    +0x01b Flags            : UChar
    +0x020 ObjectCreateInfo : Ptr64 Void
    +0x028 SecurityDescriptor : Ptr64 Void
    +0x030 Body             : _QUAD

_EX_PUSH_LOCK (0x8)
    +0x000 Value            : Uint8B

_QUAD (0x8)
    +0x000 UseThisFieldToCopy : Int8B

# In front of the header when InfoMask has 0x2, after the optional headers of the lower
# bits (creator 0x20 bytes for 0x1).
_OBJECT_HEADER_NAME_INFO (0x20)
    +0x000 Directory        : Ptr64 _OBJECT_DIRECTORY
    +0x008 Name             : _UNICODE_STRING
    +0x018 ReferenceCount   : Int4B

# nt!ObTypeIndexTable holds pointers to these, by _OBJECT_HEADER.TypeIndex.
_OBJECT_TYPE (0xd0)
    +0x000 TypeList         : _LIST_ENTRY
    +0x010 Name             : _UNICODE_STRING
    +0x020 DefaultObject    : Ptr64 Void
    +0x028 Index            : UChar
    +0x02c TotalNumberOfObjects : Uint4B
    +0x030 TotalNumberOfHandles : Uint4B
    +0x034 HighWaterNumberOfObjects : Uint4B
    +0x038 HighWaterNumberOfHandles : Uint4B
    +0x0b0 TypeLock         : _EX_PUSH_LOCK
    +0x0b8 Key              : Uint4B
    +0x0c0 CallbackList     : _LIST_ENTRY

_OBJECT_DIRECTORY (0x150)
    +0x000 HashBuckets      : [37] Ptr64 _OBJECT_DIRECTORY_ENTRY
    +0x128 Lock             : _EX_PUSH_LOCK
    +0x130 DeviceMap        : Ptr64 Void
    +0x138 SessionId        : Uint4B
    +0x140 NamespaceEntry   : Ptr64 Void
    +0x148 Flags            : Uint4B

_OBJECT_DIRECTORY_ENTRY (0x18)
    +0x000 ChainLink        : Ptr64 _OBJECT_DIRECTORY_ENTRY
    +0x008 Object           : Ptr64 Void
    +0x010 HashValue        : Uint4B

_KTHREAD (0x360)
    +0x000 Header           : _DISPATCHER_HEADER
    +0x028 InitialStack     : Ptr64 Void
    +0x030 StackLimit       : Ptr64 Void
    +0x038 KernelStack      : Ptr64 Void
    +0x049 Running          : UChar
    +0x04c MiscFlags        : Int4B
    +0x050 ApcState         : _KAPC_STATE
    +0x07b Priority         : Char
    +0x07c NextProcessor    : Uint4B
    +0x090 WaitStatus       : Int8B
    +0x098 WaitBlockList    : Ptr64 _KWAIT_BLOCK
    +0x0b0 Queue            : Ptr64 _KQUEUE
    +0x0b8 Teb              : Ptr64 Void
    +0x134 ContextSwitches  : Uint4B
    +0x164 State            : UChar
    +0x166 WaitIrql         : UChar
    +0x167 WaitMode         : Char
    +0x194 WaitTime         : Uint4B
    +0x1c4 KernelApcDisable : Int2B
    +0x1c6 SpecialApcDisable : Int2B
    +0x1c8 QueueListEntry   : _LIST_ENTRY
    +0x1d8 TrapFrame        : Ptr64 _KTRAP_FRAME
    +0x1e8 CallbackStack    : Ptr64 Void
    +0x1f1 BasePriority     : Char
    +0x1f2 PriorityDecrement : Char
    +0x1f6 PreviousMode     : Char
    +0x210 Process          : Ptr64 _KPROCESS
    +0x228 IdealProcessor   : Uint4B
    +0x26b WaitReason       : UChar
    +0x26c SuspendCount     : Char
    +0x270 Win32Thread      : Ptr64 Void
    +0x278 StackBase        : Ptr64 Void
    +0x284 KernelTime       : Uint4B
    +0x2d4 UserTime         : Uint4B
    +0x2f8 ThreadListEntry  : _LIST_ENTRY

_ETHREAD (0x498)
    +0x000 Tcb              : _KTHREAD
    +0x360 CreateTime       : _LARGE_INTEGER
    +0x368 ExitTime         : _LARGE_INTEGER
    +0x378 ExitStatus       : Int4B
    +0x388 StartAddress     : Ptr64 Void
    +0x3b0 Cid              : _CLIENT_ID
    +0x3e8 IrpList          : _LIST_ENTRY
    +0x3f8 TopLevelIrp      : Uint8B
    +0x410 Win32StartAddress : Ptr64 Void
    +0x420 ThreadListEntry  : _LIST_ENTRY
    +0x448 CrossThreadFlags : Uint4B

_KDESCRIPTOR (0x10)
    +0x000 Pad              : [3] Uint2B
    +0x006 Limit            : Uint2B
    +0x008 Base             : Ptr64 Void

_KSPECIAL_REGISTERS (0xd8)
    +0x000 Cr0              : Uint8B
    +0x008 Cr2              : Uint8B
    +0x010 Cr3              : Uint8B
    +0x018 Cr4              : Uint8B
    +0x050 Gdtr             : _KDESCRIPTOR
    +0x060 Idtr             : _KDESCRIPTOR
    +0x070 Tr               : Uint2B
    +0x072 Ldtr             : Uint2B

_KPROCESSOR_STATE (0x5b0)
    +0x000 SpecialRegisters : _KSPECIAL_REGISTERS

_KPRCB (0x4d00)
    +0x000 MxCsr            : Uint4B
    +0x008 CurrentThread    : Ptr64 _KTHREAD
    +0x010 NextThread       : Ptr64 _KTHREAD
    +0x018 IdleThread       : Ptr64 _KTHREAD
    +0x020 NestingLevel     : UChar
    +0x024 Number           : Uint4B
    +0x028 RspBase          : Uint8B
    +0x030 PrcbLock         : Uint8B
    +0x040 ProcessorState   : _KPROCESSOR_STATE
    +0x5f0 CpuType          : Char
    +0x5f1 CpuID            : Char
    +0x5f2 CpuStep          : Uint2B
    +0x5f4 MHz              : Uint4B
    +0x21da DpcRoutineActive : UChar
    +0x4700 InterruptCount  : Uint4B
    +0x4704 KernelTime      : Uint4B
    +0x4708 UserTime        : Uint4B
    +0x470c DpcTime         : Uint4B
    +0x4710 InterruptTime   : Uint4B
    +0x4bb8 VendorString    : [13] UChar
""" + x64_kpcr(0x4e80) + """
_POOL_HEADER (0x10)
    +0x000 PreviousSize     : Pos 0, 8 Bits of Uint4B
    +0x000 PoolIndex        : Pos 8, 8 Bits of Uint4B
    +0x000 BlockSize        : Pos 16, 8 Bits of Uint4B
    +0x000 PoolType         : Pos 24, 8 Bits of Uint4B
    +0x000 Ulong1           : Uint4B
    +0x004 PoolTag          : Uint4B
    +0x008 ProcessBilled    : Ptr64 _EPROCESS
    +0x008 AllocatorBackTraceIndex : Uint2B
    +0x00a PoolTagHash      : Uint2B

# The PFN entry's unions are unnamed in the symbols; they are named after their member.
union _MMPFN::u1 (0x8)
    +0x000 Flink            : Uint8B
    +0x000 WsIndex          : Uint4B
    +0x000 Next             : Ptr64 Void

union _MMPFN::u2 (0x8)
    +0x000 Blink            : Uint8B
    +0x000 ImageProtoPte    : Ptr64 _MMPTE
    +0x000 ShareCount       : Uint8B

_MMPFNENTRY (0x2)
    +0x000 PageLocation     : Pos 0, 3 Bits of UChar
    +0x000 WriteInProgress  : Pos 3, 1 Bit of UChar
    +0x000 Modified         : Pos 4, 1 Bit of UChar
    +0x000 ReadInProgress   : Pos 5, 1 Bit of UChar
    +0x000 CacheAttribute   : Pos 6, 2 Bits of UChar
    +0x001 Priority         : Pos 0, 3 Bits of UChar
    +0x001 Rom              : Pos 3, 1 Bit of UChar
    +0x001 InPageError      : Pos 4, 1 Bit of UChar
    +0x001 KernelStack      : Pos 5, 1 Bit of UChar
    +0x001 RemovalRequested : Pos 6, 1 Bit of UChar
    +0x001 ParityError      : Pos 7, 1 Bit of UChar

union _MMPFN::u3 (0x4)
    +0x000 ReferenceCount   : Uint2B
    +0x002 e1               : _MMPFNENTRY

union _MMPFN::u4 (0x8)
    +0x000 PteFrame         : Pos 0, 52 Bits of Uint8B
    +0x000 PrototypePte     : Pos 57, 1 Bit of Uint8B
    +0x000 PageColor        : Pos 58, 6 Bits of Uint8B

_MMPFN (0x30)
    +0x000 u1               : _MMPFN::u1
    +0x008 u2               : _MMPFN::u2
    +0x010 PteAddress       : Ptr64 _MMPTE
    +0x010 PteLong          : Uint8B
    +0x018 u3               : _MMPFN::u3
    +0x01c UsedPageTableEntries : Uint2B
    +0x01e VaType           : UChar
    +0x01f ViewCount        : UChar
    +0x028 u4               : _MMPFN::u4

_POOL_TRACKER_TABLE (0x28)
    +0x000 Key              : Int4B
    +0x004 NonPagedAllocs   : Int4B
    +0x008 NonPagedFrees    : Int4B
    +0x010 NonPagedBytes    : Uint8B
    +0x018 PagedAllocs      : Uint4B
    +0x01c PagedFrees       : Uint4B
    +0x020 PagedBytes       : Uint8B

_POOL_TRACKER_BIG_PAGES (0x18)
    +0x000 Va               : Ptr64 Void
    +0x008 Key              : Uint4B
    +0x00c PoolType         : Uint4B
    +0x010 NumberOfBytes    : Uint8B

_PHYSICAL_MEMORY_RUN (0x10)
    +0x000 BasePage         : Uint8B
    +0x008 PageCount        : Uint8B

_PHYSICAL_MEMORY_DESCRIPTOR (0x20)
    +0x000 NumberOfRuns     : Uint4B
    +0x008 NumberOfPages    : Uint8B
    +0x010 Run              : [1] _PHYSICAL_MEMORY_RUN
"""

LAYOUT = WindowsLayout(
    name="Windows 7 SP1 x64",
    builds=(7601,),
    source="Vergilius Project, kernels/x64/windows-7/sp1 (6.1.7601.17514)",
    text=_TEXT,
)
