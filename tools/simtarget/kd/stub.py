"""The kd64 manipulate dispatch of the simulated target: one request in, one reply out.

What it does: answers every DBGKD_MANIPULATE_STATE64 request a host sends to a broken-in
x64 target, against the machine (``KdMachine``, the narrow interface below). The reply
echoes the request's 56-byte header (junk in unused fields included, as a real target
does), with ReturnStatus and the result fields filled in and data appended. Requests
that resume the target (Continue, Continue2, Reboot, CauseBugCheck) or that a real
target answers with something other than a reply (SwitchProcessor: a fresh state
change; ClearAllInternalBreakpoints: the ACK alone) return an action instead of bytes.
What it does not do: framing, ids, ACKs, running the CPU (session.py does that).

A break instruction in the code (DbgBreakPoint, the break-in's and bug check's
RtlpBreakWithStatusInstruction, an ``int 3`` a driver wrote) is reported as Windows x64
reports it: STATUS_BREAKPOINT with the exception address, the ProgramCounter and the
CONTEXT's Rip on the ``int 3`` (KiDispatchException takes one off Rip before the
debugger sees it: WRK amd64 exceptn.c, ReactOS ke/amd64/except.c). The target never
moves past it: Continue with Rip unchanged runs the ``int 3`` again; a debugger moves
Rip one byte on with SetContext first, as WinDbg/kd do for a break instruction that is
not one of their breakpoints. docs/simulated-target.md §1 has the rule and its sources.

Spec: kd-protocol.md §5 (manipulate), §5.4 (GetVersion), §5.5 (control space),
§5.6 (breakpoints), §5.7 (large transfers, ContextEx), §12 (target checklist).

Reply layout (§5.1)::

    0x00 ApiNumber (echoed)  0x04 ProcessorLevel  0x06 Processor  0x08 ReturnStatus
    0x0C pad (echoed)  0x10 u (echoed, result fields patched)  0x38 data
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Callable, Protocol

from kdcon.protocol.constants import (
    MANIPULATE_HEADER_SIZE,
    MAX_TRANSFER_SIZE,
    ManipulateApi as A,
    NtStatus,
)
from kdcon.protocol.context import (
    CONTEXT_AMD64_SIZE,
    KSPECIAL_REGISTERS_AMD64_SIZE,
)
from kdcon.protocol.events import ManipulateRequest

from .layouts import build_context, build_special_registers, parse_context, parse_special_registers

__all__ = [
    "KdMachine",
    "KdStub",
    "Resume",
    "Reboot",
    "BugCheckRequest",
    "ReportAgain",
    "NoReply",
    "Action",
    "VersionInfo",
    "KD_BREAKPOINT_MAX",
]

log = logging.getLogger(__name__)

SUCCESS = NtStatus.STATUS_SUCCESS
UNSUCCESSFUL = NtStatus.STATUS_UNSUCCESSFUL
KD_BREAKPOINT_MAX = 32  # §5.6: ReactOS KD_BREAKPOINT_MAX

# DBGKD_QUERY_MEMORY AddressSpace and Flags (§5.3).
_QUERY_PROCESS, _QUERY_KERNEL = 0, 2
_QUERY_READ, _QUERY_WRITE, _QUERY_EXECUTE = 1, 2, 4
_KERNEL_SPACE_START = 0xFFFF800000000000
# Fill and search work through the machine page by page; a request is bounded so that
# a host asking for terabytes cannot pin the target (it answers with what it did).
_PAGE = 0x1000
_SEARCH_LIMIT = 64 << 20
_FILL_VIRTUAL, _FILL_PHYSICAL = 1, 2

_U = MANIPULATE_HEADER_SIZE - 40  # the union starts at payload offset 0x10
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_RW = struct.Struct("<QII")  # TargetBaseAddress, TransferCount, ActualBytes
_BP_ENTRY = struct.Struct("<QI4x")  # DBGKD_WRITE_BREAKPOINT64 in a BreakPointEx array
_VERSION = struct.Struct("<HHBBHHBBBBHQQQ")  # DBGKD_GET_VERSION64, 40 bytes


class KdMachine(Protocol):
    """What the stub needs from the machine (tools/simtarget's Machine, adapted)."""

    def read_virtual(self, address: int, size: int) -> bytes: ...
    def write_virtual(self, address: int, data: bytes) -> int: ...
    def read_physical(self, address: int, size: int) -> bytes: ...
    def write_physical(self, address: int, data: bytes) -> int: ...
    def get_context(self) -> dict[str, int]: ...
    def set_context(self, context: dict[str, int]) -> None: ...
    def get_special_registers(self) -> dict[str, int]: ...
    def set_special_registers(self, registers: dict[str, int]) -> None: ...
    def control_pointer(self, index: int) -> int | None: ...
    def write_breakpoint(self, address: int) -> int: ...
    def restore_breakpoint(self, handle: int) -> bool: ...
    def read_msr(self, msr: int) -> int | None: ...
    def write_msr(self, msr: int, value: int) -> bool: ...
    def query_memory(self, address: int) -> str | None: ...
    def version_block(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """The numbers of a DBGKD_GET_VERSION64 (§5.4), for machines that keep no block."""

    build: int
    kern_base: int
    ps_loaded_module_list: int
    debugger_data_list: int
    checked: bool = False

    def to_bytes(self) -> bytes:
        # MajorVersion = DBGKD_MAJOR_NT << 8 | 0xF (free) or 0xC (checked); Flags
        # DATA | PTR64 as ReactOS on amd64 (one CPU: no MP); MaxStateChange 3 and
        # MaxManipulate 0x31 as ReactOS.
        return _VERSION.pack(0x000C if self.checked else 0x000F, self.build & 0xFFFF, 6, 2,
                             0x0006, 0x8664, 12, 3, 0x31, 0, 0, self.kern_base,
                             self.ps_loaded_module_list, self.debugger_data_list)


@dataclass(frozen=True, slots=True)
class Resume:
    """Continue/Continue2: resume; ``trace`` sets EFLAGS.TF; ``dr7`` loads Dr7 (§5.3)."""

    status: int
    trace: bool = False
    dr7: int | None = None


@dataclass(frozen=True, slots=True)
class Reboot:
    """DbgKdRebootApi: no reply; the machine boots again."""


@dataclass(frozen=True, slots=True)
class BugCheckRequest:
    """DbgKdCauseBugCheckApi: no reply; the kernel bugchecks."""


@dataclass(frozen=True, slots=True)
class ReportAgain:
    """SwitchProcessor on a one-CPU target: that CPU reports its state change again."""

    processor: int


@dataclass(frozen=True, slots=True)
class NoReply:
    """The ACK is the whole answer (ClearAllInternalBreakpoints, §5.1)."""


Action = Resume | Reboot | BugCheckRequest | ReportAgain | NoReply


class KdStub:
    """Answers manipulate requests for one broken-in x64 CPU (see the module docstring)."""

    processor_count = 1

    def __init__(self, machine: KdMachine) -> None:
        self.machine = machine
        # ReactOS KdpContextSent: SetContext is refused until a GetContext this break.
        self.context_sent = False
        self._handlers: dict[int, Callable[[bytearray, bytes], bytes | Action]] = {
            A.DbgKdReadVirtualMemoryApi: self._read_virtual,
            A.DbgKdWriteVirtualMemoryApi: self._write_virtual,
            A.DbgKdReadPhysicalMemoryApi: self._read_physical,
            A.DbgKdWritePhysicalMemoryApi: self._write_physical,
            A.DbgKdGetContextApi: self._get_context,
            A.DbgKdSetContextApi: self._set_context,
            A.DbgKdGetContextExApi: self._get_context_ex,
            A.DbgKdSetContextExApi: self._set_context_ex,
            A.DbgKdWriteBreakPointApi: self._write_breakpoint,
            A.DbgKdRestoreBreakPointApi: self._restore_breakpoint,
            A.DbgKdWriteBreakPointExApi: self._write_breakpoint_ex,
            A.DbgKdRestoreBreakPointExApi: self._restore_breakpoint_ex,
            A.DbgKdContinueApi: self._continue,
            A.DbgKdContinueApi2: self._continue2,
            A.DbgKdReadControlSpaceApi: self._read_control,
            A.DbgKdWriteControlSpaceApi: self._write_control,
            A.DbgKdReadIoSpaceApi: self._read_io,
            A.DbgKdWriteIoSpaceApi: self._write_io,
            A.DbgKdReadIoSpaceExtendedApi: self._read_io_extended,
            A.DbgKdWriteIoSpaceExtendedApi: self._write_io_extended,
            A.DbgKdGetVersionApi: self._get_version,
            A.DbgKdQueryMemoryApi: self._query_memory,
            A.DbgKdSearchMemoryApi: self._search_memory,
            A.DbgKdFillMemoryApi: self._fill_memory,
            A.DbgKdReadMachineSpecificRegister: self._read_msr,
            A.DbgKdWriteMachineSpecificRegister: self._write_msr,
            A.DbgKdRebootApi: lambda reply, data: Reboot(),
            A.DbgKdCauseBugCheckApi: lambda reply, data: BugCheckRequest(),
            A.DbgKdSwitchProcessor: self._switch_processor,
            A.DbgKdClearAllInternalBreakpointsApi: lambda reply, data: NoReply(),
            A.DbgKdCheckLowMemoryApi: self._check_low_memory,
        }

    def new_break(self) -> None:
        """A new stop began: per-break state is forgotten."""
        self.context_sent = False

    def handle(self, request: ManipulateRequest) -> bytes | Action:
        """The reply payload for ``request``, or the action that replaces a reply."""
        payload = request.raw
        reply = bytearray(payload[:MANIPULATE_HEADER_SIZE])
        handler = self._handlers.get(request.api)
        if handler is None:
            # §5.1/§12: an unknown or unsupported API is echoed with STATUS_UNSUCCESSFUL.
            log.debug("unsupported manipulate api %#x", request.api)
            return _status(reply, UNSUCCESSFUL)
        return handler(reply, payload[MANIPULATE_HEADER_SIZE:])

    # -- memory ------------------------------------------------------------------------

    def _read_virtual(self, reply: bytearray, data: bytes) -> bytes:
        return self._read(reply, self.machine.read_virtual)

    def _read_physical(self, reply: bytearray, data: bytes) -> bytes:
        return self._read(reply, self.machine.read_physical)

    def _read(self, reply: bytearray, read: Callable[[int, int], bytes]) -> bytes:
        address, count, _ = _RW.unpack_from(reply, _U)
        # §1.4: ReactOS clamps TransferCount to what one packet carries.
        got = read(address, min(count, MAX_TRANSFER_SIZE))
        _U32.pack_into(reply, _U + 12, len(got))
        return _status(reply, SUCCESS if got else UNSUCCESSFUL) + got

    def _write_virtual(self, reply: bytearray, data: bytes) -> bytes:
        return self._write(reply, data, self.machine.write_virtual)

    def _write_physical(self, reply: bytearray, data: bytes) -> bytes:
        return self._write(reply, data, self.machine.write_physical)

    def _write(self, reply: bytearray, data: bytes, write: Callable[[int, bytes], int]) -> bytes:
        address, count, _ = _RW.unpack_from(reply, _U)
        chunk = data[: min(count, MAX_TRANSFER_SIZE)]
        done = write(address, chunk) if chunk else 0
        _U32.pack_into(reply, _U + 12, done)
        return _status(reply, SUCCESS if done == len(chunk) and chunk else UNSUCCESSFUL)

    # -- context -----------------------------------------------------------------------

    def _processor_ok(self, reply: bytearray) -> bool:
        return struct.unpack_from("<H", reply, 6)[0] < self.processor_count

    def _context_bytes(self) -> bytes:
        return build_context(self.machine.get_context())

    def _get_context(self, reply: bytearray, data: bytes) -> bytes:
        if not self._processor_ok(reply):
            return _status(reply, UNSUCCESSFUL)
        self.context_sent = True
        return _status(reply, SUCCESS) + self._context_bytes()

    def _set_context(self, reply: bytearray, data: bytes) -> bytes:
        if not (self.context_sent and self._processor_ok(reply)) or len(data) < CONTEXT_AMD64_SIZE:
            return _status(reply, UNSUCCESSFUL)
        self.machine.set_context(parse_context(data[:CONTEXT_AMD64_SIZE]))
        return _status(reply, SUCCESS)

    def _get_context_ex(self, reply: bytearray, data: bytes) -> bytes:
        offset, count, _ = struct.unpack_from("<III", reply, _U)
        if not self._processor_ok(reply) or offset > CONTEXT_AMD64_SIZE:
            return _status(reply, UNSUCCESSFUL)
        self.context_sent = True
        window = self._context_bytes()[offset: offset + min(count, MAX_TRANSFER_SIZE)]
        _U32.pack_into(reply, _U + 8, len(window))
        return _status(reply, SUCCESS) + window

    def _set_context_ex(self, reply: bytearray, data: bytes) -> bytes:
        offset, count, _ = struct.unpack_from("<III", reply, _U)
        window = data[:count]
        if (not (self.context_sent and self._processor_ok(reply))
                or offset + len(window) > CONTEXT_AMD64_SIZE):
            return _status(reply, UNSUCCESSFUL)
        whole = bytearray(self._context_bytes())
        whole[offset: offset + len(window)] = window
        self.machine.set_context(parse_context(bytes(whole)))
        _U32.pack_into(reply, _U + 8, len(window))
        return _status(reply, SUCCESS)

    # -- breakpoints (§5.6) ------------------------------------------------------------

    def _write_breakpoint(self, reply: bytearray, data: bytes) -> bytes:
        address = _U64.unpack_from(reply, _U)[0]
        handle = self.machine.write_breakpoint(address)
        _U32.pack_into(reply, _U + 8, handle)
        return _status(reply, SUCCESS if handle else UNSUCCESSFUL)

    def _restore_breakpoint(self, reply: bytearray, data: bytes) -> bytes:
        handle = _U32.unpack_from(reply, _U)[0]
        ok = 1 <= handle <= KD_BREAKPOINT_MAX and self.machine.restore_breakpoint(handle)
        return _status(reply, SUCCESS if ok else UNSUCCESSFUL)

    def _bp_entries(self, reply: bytearray, data: bytes) -> list[tuple[int, int]] | None:
        count = _U32.unpack_from(reply, _U)[0]
        if count > KD_BREAKPOINT_MAX or len(data) < count * _BP_ENTRY.size:
            return None
        return [_BP_ENTRY.unpack_from(data, i * _BP_ENTRY.size) for i in range(count)]

    def _write_breakpoint_ex(self, reply: bytearray, data: bytes) -> bytes:
        entries = self._bp_entries(reply, data)
        if entries is None:
            return _status(reply, UNSUCCESSFUL)
        out = bytearray()
        ok = True
        for address, _ in entries:
            handle = self.machine.write_breakpoint(address)
            ok = ok and handle != 0
            out += _BP_ENTRY.pack(address, handle)
        return _status(reply, SUCCESS if ok else UNSUCCESSFUL) + bytes(out)

    def _restore_breakpoint_ex(self, reply: bytearray, data: bytes) -> bytes:
        entries = self._bp_entries(reply, data)
        if entries is None:
            return _status(reply, UNSUCCESSFUL)
        ok = True
        for _, handle in entries:
            ok = (1 <= handle <= KD_BREAKPOINT_MAX and self.machine.restore_breakpoint(handle)) and ok
        return _status(reply, SUCCESS if ok else UNSUCCESSFUL) + data[: len(entries) * _BP_ENTRY.size]

    # -- run control (§5.3) ------------------------------------------------------------

    def _continue(self, reply: bytearray, data: bytes) -> Action:
        return Resume(status=_U32.unpack_from(reply, _U)[0])

    def _continue2(self, reply: bytearray, data: bytes) -> Action:
        status, trace, dr7 = struct.unpack_from("<IIQ", reply, _U)
        # The AMD64 control set (u64 Dr7 at union offset 8); radare2's x86 layout
        # agrees while Dr7's upper half is zero (§11).
        return Resume(status=status, trace=bool(trace & 1), dr7=dr7)

    def _switch_processor(self, reply: bytearray, data: bytes) -> Action:
        return ReportAgain(processor=struct.unpack_from("<H", reply, 6)[0])

    # -- control space (§5.5) ----------------------------------------------------------

    def _read_control(self, reply: bytearray, data: bytes) -> bytes:
        index, count, _ = _RW.unpack_from(reply, _U)
        if not self._processor_ok(reply):
            return _status(reply, UNSUCCESSFUL)
        if index == 2:
            block = build_special_registers(self.machine.get_special_registers())
        else:
            pointer = self.machine.control_pointer(index)
            block = b"" if pointer is None else _U64.pack(pointer)
        got = block[: min(count, MAX_TRANSFER_SIZE)]
        _U32.pack_into(reply, _U + 12, len(got))
        return _status(reply, SUCCESS if got else UNSUCCESSFUL) + got

    def _write_control(self, reply: bytearray, data: bytes) -> bytes:
        index, count, _ = _RW.unpack_from(reply, _U)
        chunk = data[: min(count, KSPECIAL_REGISTERS_AMD64_SIZE)]
        # §5.5: KSPECIAL_REGISTERS is the only writable index.
        if index != 2 or not chunk or not self._processor_ok(reply):
            _U32.pack_into(reply, _U + 12, 0)
            return _status(reply, UNSUCCESSFUL)
        whole = bytearray(build_special_registers(self.machine.get_special_registers()))
        whole[: len(chunk)] = chunk
        self.machine.set_special_registers(parse_special_registers(bytes(whole)))
        _U32.pack_into(reply, _U + 12, len(chunk))
        return _status(reply, SUCCESS)

    # -- I/O space ---------------------------------------------------------------------
    # The machine has no devices behind I/O ports. A PC answers a read of an unclaimed
    # port with all ones and drops writes, and the kernel reports success; a bad size or
    # a misaligned port is refused before any access is made (kd64 KdpSysReadIoSpace).

    def _io_check(self, size: int, port: int) -> int:
        if size not in (1, 2, 4):
            return NtStatus.STATUS_INVALID_PARAMETER
        if port & (size - 1):
            return NtStatus.STATUS_DATATYPE_MISALIGNMENT
        return SUCCESS

    def _read_io(self, reply: bytearray, data: bytes) -> bytes:
        port, size, _ = struct.unpack_from("<QII", reply, _U)
        status = self._io_check(size, port)
        if status == SUCCESS:
            _U32.pack_into(reply, _U + 12, (1 << (8 * size)) - 1)
        return _status(reply, status)

    def _write_io(self, reply: bytearray, data: bytes) -> bytes:
        port, size, _ = struct.unpack_from("<QII", reply, _U)
        return _status(reply, self._io_check(size, port))

    def _io_extended(self, reply: bytearray) -> tuple[int, int]:
        size, interface, _bus, space, port = struct.unpack_from("<IIIIQ", reply, _U)
        # Only the processor's own I/O space (Internal 0 / Isa 1, AddressSpace 1) exists.
        if interface not in (0, 1) or space != 1:
            return UNSUCCESSFUL, size
        return self._io_check(size, port), size

    def _read_io_extended(self, reply: bytearray, data: bytes) -> bytes:
        status, size = self._io_extended(reply)
        if status == SUCCESS:
            _U32.pack_into(reply, _U + 0x18, (1 << (8 * size)) - 1)
        return _status(reply, status)

    def _write_io_extended(self, reply: bytearray, data: bytes) -> bytes:
        return _status(reply, self._io_extended(reply)[0])

    # -- version, MSRs, queries ----------------------------------------------------------

    def _get_version(self, reply: bytearray, data: bytes) -> bytes:
        # kd64 copies the kernel's own KdVersionBlock (DBGKD_GET_VERSION64, §5.4).
        block = self.machine.version_block()
        if len(block) != _VERSION.size:
            return _status(reply, UNSUCCESSFUL)
        reply[_U: _U + _VERSION.size] = block
        return _status(reply, SUCCESS)

    def _read_msr(self, reply: bytearray, data: bytes) -> bytes:
        msr = _U32.unpack_from(reply, _U)[0]
        value = self.machine.read_msr(msr)
        if value is None:
            # kd64 catches the #GP of an absent MSR and reports NtStatus.STATUS_NO_SUCH_DEVICE.
            return _status(reply, NtStatus.STATUS_NO_SUCH_DEVICE)
        struct.pack_into("<II", reply, _U + 4, value & 0xFFFFFFFF, value >> 32 & 0xFFFFFFFF)
        return _status(reply, SUCCESS)

    def _write_msr(self, reply: bytearray, data: bytes) -> bytes:
        msr, low, high = struct.unpack_from("<III", reply, _U)
        ok = self.machine.write_msr(msr, high << 32 | low)
        return _status(reply, SUCCESS if ok else NtStatus.STATUS_NO_SUCH_DEVICE)

    def _query_memory(self, reply: bytearray, data: bytes) -> bytes:
        address = _U64.unpack_from(reply, _U)[0]
        perms = self.machine.query_memory(address)
        if perms is None:
            return _status(reply, UNSUCCESSFUL)
        flags = ((_QUERY_READ if "r" in perms else 0) | (_QUERY_WRITE if "w" in perms else 0)
                 | (_QUERY_EXECUTE if "x" in perms else 0))
        space = _QUERY_KERNEL if address >= _KERNEL_SPACE_START else _QUERY_PROCESS
        struct.pack_into("<II", reply, _U + 0x10, space, flags)
        return _status(reply, SUCCESS)

    def _check_low_memory(self, reply: bytearray, data: bytes) -> bytes:
        # Every physical page of this machine lies below 4 GiB: nothing to report.
        return _status(reply, SUCCESS)

    def _search_memory(self, reply: bytearray, data: bytes) -> bytes:
        start, length, pattern_length = struct.unpack_from("<QQI", reply, _U)
        pattern = data[:pattern_length]
        if not pattern or len(pattern) < pattern_length:
            return _status(reply, UNSUCCESSFUL)
        found = search(self.machine.read_virtual, start, min(length, _SEARCH_LIMIT), pattern)
        if found is None:
            return _status(reply, UNSUCCESSFUL)
        _U64.pack_into(reply, _U, found)
        return _status(reply, SUCCESS)

    def _fill_memory(self, reply: bytearray, data: bytes) -> bytes:
        address, length, flags, pattern_length = struct.unpack_from("<QIHH", reply, _U)
        pattern = data[:pattern_length]
        if not pattern or len(pattern) < pattern_length or flags not in (
                _FILL_VIRTUAL, _FILL_PHYSICAL):
            return _status(reply, UNSUCCESSFUL)
        write = self.machine.write_virtual if flags == _FILL_VIRTUAL else self.machine.write_physical
        done = fill(write, address, min(length, _SEARCH_LIMIT), pattern)
        _U32.pack_into(reply, _U + 8, done)
        return _status(reply, SUCCESS if done == length else UNSUCCESSFUL)


def _status(reply: bytearray, status: int) -> bytes:
    _U32.pack_into(reply, 8, status)
    return bytes(reply)


def search(read: Callable[[int, int], bytes], start: int, length: int,
           pattern: bytes) -> int | None:
    """The first address in [start, start+length) where ``pattern`` begins, if readable.

    Reads page-sized windows; an unreadable page breaks any match across it.
    """
    end = start + length
    window, window_at = b"", start
    address = start
    while address < end:
        size = min(_PAGE - (address & (_PAGE - 1)), end - address)
        chunk = read(address, size)
        if window_at + len(window) != address:
            window, window_at = b"", address
        window += chunk
        hit = window.find(pattern)
        if hit >= 0 and window_at + hit + len(pattern) <= end:
            return window_at + hit
        keep = len(pattern) - 1
        if len(window) > keep:
            window_at += len(window) - keep
            window = window[len(window) - keep:] if keep else b""
        # A short read ends at an unmapped page: go on at the next page.
        address = address + len(chunk) if len(chunk) == size else (address | (_PAGE - 1)) + 1
    return None


def fill(write: Callable[[int, bytes], int], address: int, length: int, pattern: bytes) -> int:
    """Write ``pattern`` repeatedly over ``length`` bytes; the count actually written."""
    done = 0
    while done < length:
        at = address + done
        size = min(_PAGE - (at & (_PAGE - 1)), length - done)
        phase = done % len(pattern)
        block = (pattern[phase:] + pattern * (size // len(pattern) + 1))[:size]
        wrote = write(at, block)
        done += wrote
        if wrote < size:
            break
    return done
