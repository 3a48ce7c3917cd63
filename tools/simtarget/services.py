"""What the kernel asks of the world outside the CPU: the debug services behind
``int 2Dh`` and the simulator's I/O ports.

Debug services (service number in eax, kd-protocol.md §6): 1 DbgPrint (rcx text,
rdx length, r8 component, r9 level), 2 DbgPrompt (rcx prompt, rdx length, r8 response
buffer, r9 its size; eax returns the response length), 3/4 load/unload symbols (rcx
PSTRING path, rdx KD_SYMBOLS_INFO), and the simulator's own 0x4B01 (rcx EXCEPTION_RECORD,
rdx the CONTEXT RtlRaiseException captured for its caller: an exception raised in
software, reported first chance before any handler runs, as KiDispatchException reports
it; the machine shows that context at the stop).  Each becomes a stop event.

Ports (``layout``): the COM1 UART that kdcom polls for the break-in byte, the
instruction-based clock, and the control port (unmap image, halt, booted, reboot, and
a file request for ``hostfiles``, carried out before the OUT returns).
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from unicorn import Uc
from unicorn import x86_const as X

from . import layout
from .events import (DebugPrintStop, DebugPromptStop, ExceptionEvent, ImageInfo, LoadSymbols, StopEvent,
                     UnloadSymbols)
from .memory import GuestMemory

__all__ = ["PendingPrompt", "decode_debug_service", "PortDevice"]

log = logging.getLogger(__name__)

BREAKPOINT_PRINT = 1
BREAKPOINT_PROMPT = 2
BREAKPOINT_LOAD_SYMBOLS = 3
BREAKPOINT_UNLOAD_SYMBOLS = 4
KSIM_SERVICE_EXCEPTION = 0x4B01
MAX_TEXT = 4096


@dataclass
class PendingPrompt:
    """Where the answer to a DbgPrompt goes."""

    buffer: int
    max_len: int


def _text(memory: GuestMemory, address: int, length: int) -> str:
    return memory.read_virtual(address, min(length, MAX_TEXT)).decode("latin-1")


def _image_info(memory: GuestMemory, name_string: int, symbols_info: int) -> ImageInfo:
    header = memory.read_virtual(name_string, 16)
    length, buffer = (struct.unpack_from("<H", header)[0], struct.unpack_from("<Q", header, 8)[0]) \
        if len(header) == 16 else (0, 0)
    info = memory.read_virtual(symbols_info, 24)
    base, process_id, checksum, size = struct.unpack("<QQII", info) if len(info) == 24 else (0, 0, 0, 0)
    timestamp = 0
    mz = memory.read_virtual(base + 0x3C, 4)
    if len(mz) == 4:
        stamp = memory.read_virtual(base + struct.unpack("<I", mz)[0] + 8, 4)
        timestamp = struct.unpack("<I", stamp)[0] if len(stamp) == 4 else 0
    return ImageInfo(path=_text(memory, buffer, length), base=base, size=size, checksum=checksum,
                     timestamp=timestamp, process_id=process_id)


def _raised_exception(memory: GuestMemory, record: int) -> ExceptionEvent | None:
    data = memory.read_virtual(record, 0x98)
    if len(data) < 0x98:
        return None
    code, _flags, _nested, address, count = struct.unpack_from("<IIQQI", data)
    params = struct.unpack_from(f"<{min(count, 15)}Q", data, 0x20)
    return ExceptionEvent(code=code, address=address, params=params, first_chance=True)


def decode_debug_service(uc: Uc, memory: GuestMemory) -> tuple[StopEvent | None, PendingPrompt | None]:
    """The event for the service the CPU asked for at its ``int 2Dh``."""
    service = uc.reg_read(X.UC_X86_REG_EAX) & 0xFFFFFFFF
    rcx, rdx = uc.reg_read(X.UC_X86_REG_RCX), uc.reg_read(X.UC_X86_REG_RDX)
    r8, r9 = uc.reg_read(X.UC_X86_REG_R8), uc.reg_read(X.UC_X86_REG_R9)
    if service == BREAKPOINT_PRINT:
        return DebugPrintStop(text=_text(memory, rcx, rdx & 0xFFFF), component=r8 & 0xFFFFFFFF,
                          level=r9 & 0xFFFFFFFF), None
    if service == BREAKPOINT_PROMPT:
        return (DebugPromptStop(text=_text(memory, rcx, rdx & 0xFFFF), max_len=r9 & 0xFFFF),
                PendingPrompt(buffer=r8, max_len=r9 & 0xFFFF))
    if service == BREAKPOINT_LOAD_SYMBOLS:
        return LoadSymbols(image=_image_info(memory, rcx, rdx)), None
    if service == BREAKPOINT_UNLOAD_SYMBOLS:
        return UnloadSymbols(image=_image_info(memory, rcx, rdx)), None
    if service == KSIM_SERVICE_EXCEPTION:
        return _raised_exception(memory, rcx), None
    log.debug("debug service %d ignored", service)
    return None, None


class PortDevice:
    """The simulator's I/O ports.  ``breakin`` is set by any thread; the rest runs on
    the CPU's thread inside unicorn's IN/OUT hooks."""

    LSR_IDLE = 0x60          # transmitter empty, holding register empty
    BREAKIN_BYTE = 0x62

    def __init__(self) -> None:
        self.breakin = threading.Event()
        self.time_100ns = 0
        self._latched_high = 0
        self.control: tuple[int, int, int] | None = None   # (command, arg1, arg2) to act on
        self.halted = False
        self.booted = False
        self.file_service: Callable[[int], None] | None = None   # given the request's address

    def port_in(self, port: int, size: int) -> int:
        if port == layout.COM_PORT + 5:
            return self.LSR_IDLE | (1 if self.breakin.is_set() else 0)
        if port == layout.COM_PORT:
            if self.breakin.is_set():
                self.breakin.clear()
                return self.BREAKIN_BYTE
            return 0
        if port == layout.PORT_TIME_LOW:
            self._latched_high = (self.time_100ns >> 32) & 0xFFFFFFFF
            return self.time_100ns & 0xFFFFFFFF
        if port == layout.PORT_TIME_HIGH:
            return self._latched_high
        return (1 << (8 * size)) - 1   # nothing decodes the port: the bus floats high

    def port_out(self, uc: Uc, port: int, value: int) -> bool:
        """Handle an OUT; True when the CPU must stop so the machine can act."""
        if port != layout.PORT_CONTROL:
            return False
        command = value & 0xFFFFFFFF
        arg1, arg2 = uc.reg_read(X.UC_X86_REG_R9), uc.reg_read(X.UC_X86_REG_R8)
        if command == layout.CONTROL_HALT:
            self.halted = True
            return False
        if command == layout.CONTROL_BOOTED:
            self.booted = True
            return False
        if command == layout.CONTROL_FILE:
            if self.file_service is not None:
                self.file_service(arg1)
            return False
        if command in (layout.CONTROL_UNMAP_IMAGE, layout.CONTROL_REBOOT):
            self.control = (command, arg1, arg2)
            return True
        log.debug("control command %d ignored", command)
        return False
