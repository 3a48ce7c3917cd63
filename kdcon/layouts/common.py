"""Kernel structures whose x64 layout is the same in every Windows version built in here.

What it does: ``X64_COMMON`` is the layout text (``table.parse``) of the small
structures the version tables build on: list entries, large integers, client IDs, the
APC state, the dispatcher header and the fast reference; ``x64_kpcr`` gives the
processor control region's. What it does not do: stand alone; each version module
appends its own structures.

Source: Vergilius Project (vergiliusproject.com), kernels/x64, the pages of these
structures for Windows 7 SP1 (6.1.7601.17514), Windows 10 1809 (10.0.17763.107),
Windows 10 21H1 and 22H2 (10.0.19043.928, 10.0.19045.2965) and Windows 11 22H2 and
23H2 (10.0.22621.382, 10.0.22631.2428), which list the types of Microsoft's public
symbols for those builds and agree on every member named here.
"""

from __future__ import annotations

__all__ = ["X64_COMMON", "x64_kpcr"]

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


def x64_kpcr(size: int) -> str:
    """_KPCR's layout text: its members stand at the same offsets in every version built
    in here, from Windows 7 SP1 to Windows 11 23H2; only its size differs."""
    return f"\n_KPCR ({size:#x})\n" + _KPCR_MEMBERS


_KPCR_MEMBERS = """    +0x000 GdtBase          : Ptr64 _KGDTENTRY64
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
"""
