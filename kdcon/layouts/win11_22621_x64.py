"""Windows 11 versions 22H2 and 23H2 x64 (builds 22621 and 22631): the kernel structures
the extensions read.

What it does: ``LAYOUT`` is the table used for a 22621 or 22631 kernel whose PDB cannot
be found, written as where it differs from Windows 10 2004's (``win10_19041_x64``):
larger threads and processor blocks, DeviceMap a fast reference, and 40-bit page frame
numbers in the PFN entry. What it does not do: name every member: only those the
extensions read, at the offsets the public symbols give.

Source: Vergilius Project (vergiliusproject.com), kernels/x64/windows-11/22h2 and 23h2,
builds 10.0.22621.382 and 10.0.22631.2428, which list the types of Microsoft's public
symbols for those kernels (one kernel: the pages agree on every member named here). The
22H2 _KPCR page stops early; _KPCR is the 23H2 page's.
"""

from __future__ import annotations

from . import win10_19041_x64
from .table import WindowsLayout

__all__ = ["LAYOUT"]

_CHANGES = """
_EPROCESS (0xb80)
    +0x588 DeviceMap        : _EX_FAST_REF

_MM_SESSION_SPACE (0x340)

_KTHREAD (0x480)

_ETHREAD (0x900)
    +0x480 CreateTime       : _LARGE_INTEGER
    +0x488 ExitTime         : _LARGE_INTEGER
    +0x4a0 StartAddress     : Ptr64 Void
    +0x4c8 Cid              : _CLIENT_ID
    +0x500 IrpList          : _LIST_ENTRY
    +0x510 TopLevelIrp      : Uint8B
    +0x520 Win32StartAddress : Ptr64 Void
    +0x538 ThreadListEntry  : _LIST_ENTRY
    +0x560 CrossThreadFlags : Uint4B
    +0x598 ExitStatus       : Int4B

_KPRCB (0xbf00)
    +0x33ba DpcRoutineActive : UChar
    +0x8140 InterruptCount  : Uint4B
    +0x8144 KernelTime      : Uint4B
    +0x8148 UserTime        : Uint4B
    +0x814c DpcTime         : Uint4B
    +0x8150 InterruptTime   : Uint4B
    +0x8990 VendorString    : [13] UChar

_KPCR (0xc080)

union _MMPFN::u1 (0x8)
    +0x000 Flink            : Pos 0, 40 Bits of Uint8B

_MIPFNBLINK (0x8)
    +0x000 Blink            : Pos 0, 40 Bits of Uint8B

union _MMPFN::u4 (0x8)
    +0x000 PteFrame         : Pos 0, 40 Bits of Uint8B
"""

LAYOUT = WindowsLayout(
    name="Windows 11 22H2/23H2 x64",
    builds=(22621, 22631),
    source="Vergilius Project, kernels/x64/windows-11/22h2 and 23h2 (10.0.22621, 10.0.22631)",
    text=_CHANGES,
    base=win10_19041_x64.LAYOUT,
)
