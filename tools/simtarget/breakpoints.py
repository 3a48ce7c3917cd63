"""The kernel debugger's software breakpoint table (kd64 kdbreak.c), for the machine.

What it does: keeps the 32 entries WriteBreakPoint and RestoreBreakPoint work on and the
``0xCC`` bytes they put in guest memory, with the rules a Windows kernel applies:

Rule 1: a handle is the entry's index plus one; a new breakpoint takes the lowest free
        entry, and with all 32 in use it is refused (handle 0, STATUS_UNSUCCESSFUL).
Rule 2: a breakpoint at an address that already has one is refused.
Rule 3: a breakpoint on an address that cannot be read now is kept, deferred: it gets a
        handle and is written when its page is mapped (KdSetOwedBreakpoints).
Rule 4: the breakpoint is written whatever the page's protection (the kernel's debugger
        copy goes through the physical page).
Rule 5: RestoreBreakPoint of handle 0, of a handle past 32 or of a free entry fails;
        restoring an entry puts the original byte back (if its page is still mapped)
        and frees the entry, so restoring it again fails.

What it does not do: run the CPU, step over a breakpoint (the machine does), or remove
breakpoints from the reported instruction stream's range at a stop, as kd64's
KdpSetCommonState does.
Spec: ReactOS ntoskrnl/kd64/kdbreak.c (KdpAddBreakpoint, KdpDeleteBreakpoint,
KdSetOwedBreakpoints) and mm/ARM3/mmdbg.c (MmDbgCopyMemory), facts only;
kd-protocol.md §5.6; docs/simulated-target.md §2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .memory import GuestMemory, Region

__all__ = ["BreakpointTable", "BREAKPOINT_TABLE_SIZE"]

log = logging.getLogger(__name__)

BREAKPOINT_TABLE_SIZE = 32  # KD_BREAKPOINT_MAX (ReactOS), BREAKPOINT_TABLE_SIZE (windbgkd.h)
_INT3 = b"\xcc"


@dataclass
class _Entry:
    address: int
    pending: bool  # deferred: the page was not mapped when the breakpoint was written


class BreakpointTable:
    """The 32-entry table of one booted machine (see the module docstring for its rules)."""

    def __init__(self, memory: GuestMemory) -> None:
        self._memory = memory
        self._entries: list[_Entry | None] = [None] * BREAKPOINT_TABLE_SIZE
        memory.on_map = self._on_map

    def write(self, address: int) -> int | None:
        """Add a breakpoint; its handle (1..32), or None when refused (Rules 1-3)."""
        if any(entry is not None and entry.address == address for entry in self._entries):
            return None
        index = next((i for i, entry in enumerate(self._entries) if entry is None), None)
        if index is None:
            return None
        entry = _Entry(address, pending=True)
        self._entries[index] = entry
        if not self._arm(entry):
            log.debug("breakpoint %d at %#x deferred: the address is not mapped", index + 1, address)
        return index + 1

    def restore(self, handle: int) -> bool:
        """Remove breakpoint ``handle``; False for a handle that names no entry (Rule 5)."""
        if not 1 <= handle <= BREAKPOINT_TABLE_SIZE or self._entries[handle - 1] is None:
            return False
        entry = self._entries[handle - 1]
        self._entries[handle - 1] = None
        original = self._memory.breakpoint_bytes.pop(entry.address, None)
        if original is not None and self._memory.is_mapped(entry.address):
            self._poke(entry.address, bytes([original]))
        return True

    def armed_handle(self, address: int) -> int | None:
        """The handle of the breakpoint whose ``0xCC`` is at ``address``, if one is."""
        if address not in self._memory.breakpoint_bytes:
            return None
        for index, entry in enumerate(self._entries):
            if entry is not None and entry.address == address and not entry.pending:
                return index + 1
        return None

    def addresses(self) -> dict[int, int]:
        """handle -> address of every entry in use, deferred ones included."""
        return {i + 1: e.address for i, e in enumerate(self._entries) if e is not None}

    def pending(self) -> dict[int, int]:
        """handle -> address of the deferred entries."""
        return {i + 1: e.address for i, e in enumerate(self._entries) if e is not None and e.pending}

    def _arm(self, entry: _Entry) -> bool:
        original = self._memory.read_virtual(entry.address, 1)
        if len(original) != 1:
            return False
        self._memory.breakpoint_bytes[entry.address] = original[0]
        self._poke(entry.address, _INT3)
        entry.pending = False
        return True

    def _poke(self, address: int, data: bytes) -> None:
        # Rule 4: written whatever the page's protection, like the debugger's copy.
        self._memory.poke(address, data)

    def _on_map(self, region: Region) -> None:
        """A page came in: write the breakpoints owed on it (KdSetOwedBreakpoints)."""
        for entry in self._entries:
            if entry is not None and entry.pending and region.base <= entry.address < region.end:
                self._arm(entry)
