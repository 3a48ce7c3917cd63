"""Typed host requests: the one API a KD host uses to drive a halted target.

What it does: wraps a host-role ``KdLink`` with one method per manipulate request a
debugger sends (memory, physical memory, context, control space, breakpoints, run
control, version, MSRs, search, fill) taking and returning plain Python values.
Reads and writes larger than one packet carries are split into MAX_TRANSFER_SIZE
pieces; a short read means the memory from there on is not readable. Every request
counts one round trip in ``round_trips``. A request the target refuses raises
``TargetError`` with its NTSTATUS, except reads (short data) and ``restore_breakpoint``
(a bool), whose failure is an ordinary answer. On a line whose recent faults make an
undetected shift in a large memory or context reply likely, the reply is asked for
again until two agree (``CONFIRM_CHANCE``).
What it does not do: cache memory, know what a stop or a module is, or read the
clock: timeouts and retries are the link's.
Spec: kd-protocol.md §5 (manipulate APIs), §5.3 (continue), §5.5 (context and
control space), §5.6 (breakpoints).
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import Any

from .constants import (
    MAX_TRANSFER_SIZE,
    ContinueStatus,
    ManipulateApi as A,
    NtStatus,
    api_name,
    status_name,
)
from .context import CONTEXT_AMD64_SIZE, KSPECIAL_REGISTERS_AMD64_SIZE
from .errors import ProtocolError
from .events import ManipulateReply
from .link import KdLink
from .manipulate import DBGKD_GET_VERSION64

__all__ = [
    "TargetError",
    "KdHost",
    "AMD64_CONTROL_SPACE_PCR",
    "AMD64_CONTROL_SPACE_PRCB",
    "AMD64_CONTROL_SPACE_SPECIAL_REGISTERS",
    "AMD64_CONTROL_SPACE_THREAD",
    "DR7_DEFAULT",
]

log = logging.getLogger(__name__)

# §5.5: control space indexes of an x64 target (kd64's KdpSysReadControlSpace).
AMD64_CONTROL_SPACE_PCR = 0
AMD64_CONTROL_SPACE_PRCB = 1
AMD64_CONTROL_SPACE_SPECIAL_REGISTERS = 2
AMD64_CONTROL_SPACE_THREAD = 3

# Dr7 with only the reserved bit 10 set: no hardware breakpoint armed (§5.3).
DR7_DEFAULT = 0x400

_QUERY_FLAGS = struct.Struct("<II")

# The KD checksum is a byte sum: a duplicated and a dropped byte of the same value pass
# it and shift the bytes between them (docs/protocol.md). The echoed fields
# (messages.reply_matches) catch a shift that reaches them; one inside the data no
# field can show. So a reply carrying at least CONFIRM_BYTES of memory or context is
# asked for again, and taken once two agree, when the line's recent damage makes such
# a shift likely enough: faults per byte over the last NOISY_TRIPS round trips give
# the expected duplicates and drops in a packet of that size, and both must land in
# it with the same value. A clean line never pays for it, a bad cable's rarely.
CONFIRM_BYTES = 256
CONFIRM_CHANCE = 0.002                 # one shifted reply in 500
NOISY_TRIPS = 64
# How often a dropped byte has the value of a duplicated one, and the bytes between
# them are not all that value too (a shift of zeros among zeros changes nothing): the
# sum of squared byte frequencies at a breakpoint of the simulated kernel is 0.79 for
# a 1 KB stack read, 0.87 for the context and 0.45 for the module list; half of it
# is taken for the second condition.
_SAME_VALUE = 0.5
# A trip's bytes besides its data: two data packets (header, trailer, manipulate
# header) and their ACKs.
_TRIP_OVERHEAD = 2 * (16 + 1 + 56) + 2 * 16
_CONFIRM_TRIES = 4
_CONFIRMED_APIS = frozenset({A.DbgKdReadVirtualMemoryApi, A.DbgKdReadPhysicalMemoryApi,
                             A.DbgKdReadControlSpaceApi, A.DbgKdGetContextApi,
                             A.DbgKdGetContextExApi})
_DAMAGE_STATS = ("bad_packets", "resends_received", "garbage_bytes")


class TargetError(ProtocolError):
    """The target answered a request with a failure status."""

    def __init__(self, api: int, status: int, what: str = "") -> None:
        self.api = api
        self.status = status
        detail = f" {what}" if what else ""
        super().__init__(f"{api_name(api)}{detail} failed: {status_name(status)}")


class KdHost:
    """Typed requests over a host ``KdLink``; ``processor`` is the CPU addressed."""

    def __init__(self, link: KdLink, *, timeout: float = 5.0, retries: int = 2) -> None:
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.processor = 0
        self.round_trips = 0
        self.confirmations = 0      # replies asked for again on a noisy line
        self.disagreements = 0      # of those, answers that differed: damage caught
        self._damage = 0
        self._trips: deque[tuple[int, int]] = deque(maxlen=NOISY_TRIPS)  # (bytes, faults)

    # -- the one request path ------------------------------------------------------------

    def request(self, api: int, u: dict[str, Any] | None = None, data: bytes = b"", *,
                processor: int | None = None) -> ManipulateReply | None:
        """Send one manipulate request and return its reply (None for APIs with none)."""
        self.round_trips += 1
        cpu = self.processor if processor is None else processor
        reply = self.link.request(api, u, data, timeout=self.timeout, retries=self.retries,
                                  processor=cpu)
        self._note_trip(len(data) + (len(reply.data) if reply is not None else 0))
        if (api in _CONFIRMED_APIS and reply is not None
                and len(reply.data) >= CONFIRM_BYTES
                and self.shift_chance(len(reply.data)) >= CONFIRM_CHANCE):
            reply = self._confirm(api, u, cpu, reply)
        return reply

    def _note_trip(self, size: int) -> None:
        """Count this trip's bytes and the faults the link saw during it."""
        connection = getattr(self.link, "connection", None)
        stats = getattr(getattr(connection, "state", None), "stats", None)
        if stats is None:
            return
        damage = sum(stats[name] for name in _DAMAGE_STATS)
        # Fewer than before: a new link (a reconnect) counts from zero.
        faults = max(0, damage - self._damage)
        self._damage = damage
        self._trips.append((size + _TRIP_OVERHEAD, faults))

    def line_damaged(self) -> bool:
        """Whether the link saw damage in the last NOISY_TRIPS round trips or since the
        last one (a packet that came unasked, such as a state change). A caller checks a
        small or unasked packet another way when it is; a clean line never is."""
        if any(faults for _, faults in self._trips):
            return True
        stats = getattr(getattr(getattr(self.link, "connection", None), "state", None),
                        "stats", None)
        return stats is not None and sum(stats[name] for name in _DAMAGE_STATS) > self._damage

    def shift_chance(self, size: int) -> float:
        """The chance that a reply of ``size`` data bytes on this line carries a
        duplicate and a drop of the same value, from the faults of the recent trips."""
        carried = sum(count for count, _ in self._trips)
        faults = sum(fault for _, fault in self._trips)
        if not faults or not carried:
            return 0.0
        # Half the faults are taken for duplicates and half for drops.
        expected = (size + _TRIP_OVERHEAD / 2) * faults / carried / 2
        return expected * expected * _SAME_VALUE

    def _confirm(self, api: int, u: dict[str, Any] | None, cpu: int,
                 first: ManipulateReply) -> ManipulateReply:
        """The same request again until two replies carry the same data (a halted
        target's memory does not change between them); the last one when none agree."""
        seen = [first]
        for _ in range(_CONFIRM_TRIES):
            self.round_trips += 1
            self.confirmations += 1
            again = self.link.request(api, u, timeout=self.timeout, retries=self.retries,
                                      processor=cpu)
            assert again is not None
            self._note_trip(len(again.data))
            for earlier in seen:
                if earlier.data == again.data and earlier.return_status == again.return_status:
                    return again
            self.disagreements += 1
            log.info("%s: a reply differed from the last (damage the checksum passed)",
                     api_name(api))
            seen.append(again)
        return seen[-1]

    def _checked(self, api: int, u: dict[str, Any] | None = None, data: bytes = b"", *,
                 what: str = "", processor: int | None = None) -> ManipulateReply:
        reply = self.request(api, u, data, processor=processor)
        assert reply is not None, f"{api_name(api)} has a reply"
        if reply.return_status != NtStatus.STATUS_SUCCESS:
            raise TargetError(api, reply.return_status, what)
        return reply

    # -- memory ----------------------------------------------------------------------------

    def read_virtual(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``address``; fewer where the memory stops being readable."""
        return self._read(A.DbgKdReadVirtualMemoryApi, address, size)

    def read_physical(self, address: int, size: int) -> bytes:
        return self._read(A.DbgKdReadPhysicalMemoryApi, address, size)

    def _read(self, api: int, address: int, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            count = min(size - len(out), MAX_TRANSFER_SIZE)
            reply = self.request(api, dict(TargetBaseAddress=address + len(out),
                                           TransferCount=count, ActualBytesRead=0))
            assert reply is not None
            if reply.return_status != NtStatus.STATUS_SUCCESS or not reply.data:
                break
            out += reply.data
            if len(reply.data) < count:
                break
        return bytes(out)

    def write_virtual(self, address: int, data: bytes) -> int:
        """Write ``data``; the count written (short where the memory is not writable)."""
        return self._write(A.DbgKdWriteVirtualMemoryApi, address, data)

    def write_physical(self, address: int, data: bytes) -> int:
        return self._write(A.DbgKdWritePhysicalMemoryApi, address, data)

    def _write(self, api: int, address: int, data: bytes) -> int:
        done = 0
        while done < len(data):
            chunk = data[done: done + MAX_TRANSFER_SIZE]
            reply = self.request(api, dict(TargetBaseAddress=address + done,
                                           TransferCount=len(chunk), ActualBytesWritten=0), chunk)
            assert reply is not None
            wrote = reply.message.u.ActualBytesWritten
            if reply.return_status != NtStatus.STATUS_SUCCESS:
                return done + min(wrote, len(chunk)) if wrote < len(chunk) else done
            done += len(chunk)
        return done

    def search_memory(self, start: int, length: int, pattern: bytes) -> int | None:
        """The first address in [start, start+length) where ``pattern`` begins, or None."""
        reply = self.request(A.DbgKdSearchMemoryApi, dict(
            SearchAddress=start, SearchLength=length, PatternLength=len(pattern)), pattern)
        assert reply is not None
        if reply.return_status != NtStatus.STATUS_SUCCESS:
            return None
        return reply.message.u.SearchAddress

    def fill_memory(self, address: int, length: int, pattern: bytes, *,
                    physical: bool = False) -> int:
        """Repeat ``pattern`` over ``length`` bytes; the count the target filled."""
        reply = self.request(A.DbgKdFillMemoryApi, dict(
            Address=address, Length=length, Flags=2 if physical else 1,
            PatternLength=len(pattern)), pattern)
        assert reply is not None
        return reply.message.u.Length

    def query_memory(self, address: int) -> tuple[int, int] | None:
        """(address space, flags) of ``address`` as DbgKdQueryMemoryApi says, or None."""
        reply = self.request(A.DbgKdQueryMemoryApi, dict(
            Address=address, Reserved=0, AddressSpace=0, Flags=0))
        assert reply is not None
        if reply.return_status != NtStatus.STATUS_SUCCESS:
            return None
        return reply.message.u.AddressSpace, reply.message.u.Flags

    # -- processor state -------------------------------------------------------------------

    def get_context(self, *, processor: int | None = None) -> bytes:
        """The whole CONTEXT (1232 bytes on x64) of the current thread on ``processor``."""
        reply = self._checked(A.DbgKdGetContextApi, dict(Unused=0), processor=processor)
        return reply.data[:CONTEXT_AMD64_SIZE]

    def get_context_ex(self, offset: int, count: int, *, processor: int | None = None) -> bytes:
        """``count`` bytes of the CONTEXT from ``offset``: just the part a command needs."""
        reply = self._checked(A.DbgKdGetContextExApi, dict(
            Offset=offset, ByteCount=count, BytesCopied=0), processor=processor)
        return reply.data[: reply.message.u.BytesCopied]

    def set_context(self, context: bytes, *, processor: int | None = None) -> None:
        self._checked(A.DbgKdSetContextApi, dict(ContextFlags=int.from_bytes(
            context[0x30:0x34], "little")), context, processor=processor)

    def set_context_ex(self, offset: int, data: bytes, *, processor: int | None = None) -> None:
        self._checked(A.DbgKdSetContextExApi, dict(
            Offset=offset, ByteCount=len(data), BytesCopied=0), data, processor=processor)

    def read_control_space(self, index: int, size: int, *,
                           processor: int | None = None) -> bytes:
        """Control space: on x64 ``index`` names a block (PCR, PRCB, special registers,
        thread), see the AMD64_CONTROL_SPACE_* constants."""
        reply = self._checked(A.DbgKdReadControlSpaceApi, dict(
            TargetBaseAddress=index, TransferCount=size, ActualBytesRead=0),
            what=f"index {index}", processor=processor)
        return reply.data

    def write_control_space(self, index: int, data: bytes, *,
                            processor: int | None = None) -> None:
        self._checked(A.DbgKdWriteControlSpaceApi, dict(
            TargetBaseAddress=index, TransferCount=len(data), ActualBytesWritten=0), data,
            what=f"index {index}", processor=processor)

    def read_special_registers(self, *, processor: int | None = None) -> bytes:
        """KSPECIAL_REGISTERS (CR0-CR8, debug registers, GDTR/IDTR, ...) on x64."""
        return self.read_control_space(AMD64_CONTROL_SPACE_SPECIAL_REGISTERS,
                                       KSPECIAL_REGISTERS_AMD64_SIZE, processor=processor)

    def read_msr(self, msr: int) -> int:
        reply = self._checked(A.DbgKdReadMachineSpecificRegister, dict(
            Msr=msr, DataValueLow=0, DataValueHigh=0), what=f"msr {msr:#x}")
        u = reply.message.u
        return u.DataValueHigh << 32 | u.DataValueLow

    def write_msr(self, msr: int, value: int) -> None:
        self._checked(A.DbgKdWriteMachineSpecificRegister, dict(
            Msr=msr, DataValueLow=value & 0xFFFFFFFF, DataValueHigh=value >> 32 & 0xFFFFFFFF),
            what=f"msr {msr:#x}")

    # -- breakpoints -----------------------------------------------------------------------

    def write_breakpoint(self, address: int) -> int:
        """Insert a software breakpoint; its handle. TargetError if the target refuses
        (unwritable memory, a full table, one already there)."""
        reply = self._checked(A.DbgKdWriteBreakPointApi, dict(
            BreakPointAddress=address, BreakPointHandle=0), what=f"at {address:#x}")
        return reply.message.u.BreakPointHandle

    def restore_breakpoint(self, handle: int) -> bool:
        """Remove the breakpoint ``handle``; False if the target did not know it."""
        reply = self.request(A.DbgKdRestoreBreakPointApi, dict(BreakPointHandle=handle))
        assert reply is not None
        return reply.return_status == NtStatus.STATUS_SUCCESS

    # -- run control (no replies) ------------------------------------------------------------

    def continue2(self, *, status: int = ContinueStatus.DBG_CONTINUE, trace: bool = False,
                  dr7: int = DR7_DEFAULT, symbol_start: int = 1, symbol_end: int = 0) -> None:
        """Resume (``trace``: for one instruction). ``dr7`` arms the hardware breakpoints
        whose addresses are in the special registers. Returns once ACKed."""
        self.request(A.DbgKdContinueApi2, dict(
            ContinueStatus=status,
            ControlSet=dict(Amd64=dict(TraceFlag=int(trace), Dr7=dr7,
                                       CurrentSymbolStart=symbol_start,
                                       CurrentSymbolEnd=symbol_end))))

    def continue_(self, status: int = ContinueStatus.DBG_CONTINUE) -> None:
        self.request(A.DbgKdContinueApi, dict(ContinueStatus=status))

    def reboot(self) -> None:
        self.request(A.DbgKdRebootApi)

    def cause_bugcheck(self) -> None:
        self.request(A.DbgKdCauseBugCheckApi)

    def switch_processor(self, processor: int) -> None:
        """Ask the target to report its stop again from ``processor``."""
        self.request(A.DbgKdSwitchProcessor, processor=processor)

    # -- identity --------------------------------------------------------------------------

    def get_version(self) -> Any:
        """DBGKD_GET_VERSION64 (KernBase, PsLoadedModuleList, DebuggerDataList, ...)."""
        reply = self._checked(A.DbgKdGetVersionApi)
        return DBGKD_GET_VERSION64.parse(reply.raw[16:16 + DBGKD_GET_VERSION64.sizeof()])

    # -- without a reply -------------------------------------------------------------------

    def breakin(self) -> None:
        """Send the break-in byte: a running target stops and reports it."""
        self.link.send_breakin()

    def prompt_reply(self, text: bytes) -> None:
        """Answer the target's DbgPrompt with the line typed (at most its buffer)."""
        self.link.call("send_prompt_reply", text)
