"""Kernel structures whose x64 layout is the same in every Windows version built in here.

What it does: ``X64_COMMON`` is the layout text (``table.parse``) of the small
structures the version tables build on: list entries, large integers, client IDs, the
APC state, the dispatcher header and the fast reference. What it does not do: stand
alone; each version module appends its own structures.

Source: Vergilius Project (vergiliusproject.com), kernels/x64, the pages of these
structures for Windows 7 SP1 (6.1.7601.17514), Windows 10 1809 (10.0.17763.107),
Windows 10 21H1 and 22H2 (10.0.19043.928, 10.0.19045.2965) and Windows 11 22H2 and
23H2 (10.0.22621.382, 10.0.22631.2428), which list the types of Microsoft's public
symbols for those builds and agree on every member named here.
"""

from __future__ import annotations

__all__ = ["X64_COMMON", "x64_windows10_tail"]

X64_COMMON = """
_LIST_ENTRY (0x10)
    +0x000 Flink            : Ptr64 _LIST_ENTRY
    +0x008 Blink            : Ptr64 _LIST_ENTRY

union _LARGE_INTEGER (0x8)
    +0x000 LowPart          : Uint4B
    +0x004 HighPart         : Int4B
    +0x000 QuadPart         : Int8B

_CLIENT_ID (0x10)
    +0x000 UniqueProcess    : Ptr64 Void
    +0x008 UniqueThread     : Ptr64 Void

_KAPC_STATE (0x30)
    +0x000 ApcListHead      : [2] _LIST_ENTRY
    +0x020 Process          : Ptr64 _KPROCESS
    +0x029 KernelApcPending : UChar

_DISPATCHER_HEADER (0x18)
    +0x000 Lock             : Int4B
    +0x000 Type             : UChar
    +0x002 Size             : UChar
    +0x004 SignalState      : Int4B
    +0x008 WaitListHead     : _LIST_ENTRY

_EX_FAST_REF (0x8)
    +0x000 Object           : Ptr64 Void
    +0x000 RefCnt           : Pos 0, 4 Bits of Uint8B
    +0x000 Value            : Uint8B
"""


def x64_windows10_tail(kpcr_size: int, pfn_bits: int) -> str:
    """_KPCR's fields, _POOL_HEADER and the PFN entry: the same from Windows 10 1809 to
    Windows 11 23H2 (the pages each version's module names) but for _KPCR's size and the
    width of the PFN entry's frame numbers (36 bits in Windows 10, 40 in Windows 11)."""
    return f"\n_KPCR ({kpcr_size:#x})\n" + _WINDOWS10_TAIL.replace("{pfn_bits}", str(pfn_bits))


_WINDOWS10_TAIL = """    +0x000 GdtBase          : Ptr64 _KGDTENTRY64
    +0x008 TssBase          : Ptr64 _KTSS64
    +0x010 UserRsp          : Uint8B
    +0x018 Self             : Ptr64 _KPCR
    +0x020 CurrentPrcb      : Ptr64 _KPRCB
    +0x028 LockArray        : Ptr64 _KSPIN_LOCK_QUEUE
    +0x030 Used_Self        : Ptr64 Void
    +0x038 IdtBase          : Ptr64 _KIDTENTRY64
    +0x050 Irql             : UChar
    +0x060 MajorVersion     : Uint2B
    +0x062 MinorVersion     : Uint2B
    +0x064 StallScaleFactor : Uint4B
    +0x108 KdVersionBlock   : Ptr64 Void
    +0x180 Prcb             : _KPRCB

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
    +0x000 Flink            : Pos 0, {pfn_bits} Bits of Uint8B

_MIPFNBLINK (0x8)
    +0x000 Blink            : Pos 0, {pfn_bits} Bits of Uint8B
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
    +0x000 PteFrame         : Pos 0, {pfn_bits} Bits of Uint8B
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
