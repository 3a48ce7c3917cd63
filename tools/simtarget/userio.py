"""A user-mode program's I/O, played into the simulated kernel: CreateFile,
DeviceIoControl, ReadFile, WriteFile and CloseHandle become the IRPs the I/O manager
would send (``src/ntoskrnl/iomgr2.c`` builds them), so a driver sample's own test
application can be replayed without Windows.  The program runs in a user process of
its own (``src/ntoskrnl/process.c``: started by its first request or by
``IoRequest.start_process``, ended by ``IoRequest.exit_process``) with a handle table:
``create_event``, ``wait``, ``open_process`` and ``close_handle`` are its CreateEvent,
WaitForSingleObject, OpenProcess and CloseHandle, and a request's ``handles`` put a
handle an earlier request returned into its input buffer (the event sample's IOCTL
passes its event that way).

    io = machine.io                        # one per boot
    io.post(IoRequest.create(r"\\\\.\\IoctlTest"))
    ... machine.run() ...                  # the request is carried out at PASSIVE_LEVEL
    io.results                             # IoResult per finished request, in order

Requests queue; the machine enters the kernel's ``KiSimIoEntry`` between CPU slices
when the kernel has booted and runs at PASSIVE_LEVEL, one request at a time (like a
thread of the calling process entering the kernel).  The caller's buffers live in a
user-space range the machine maps at ``USER_BUFFER_BASE`` (input, then output), so
ProbeForRead/ProbeForWrite accept them as a real caller's would.  ``parse_ioctl`` reads
the ``DEVICE,CODE,INPUT[,OUTLEN]`` form of ``kdcon-sim --ioctl``; ``{event}`` in a hex
INPUT is a new event's handle (8 bytes), waited for after the call.

Does not run the machine (the caller does) and keeps no handles across a reboot.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from kdcon.protocol.constants import NtStatus

__all__ = ["IoRequest", "IoResult", "UserIo", "IoctlSpec", "parse_ioctl", "ioctl_requests", "USER_BUFFER_BASE",
           "MAX_BUFFER", "EVENT_ALL_ACCESS", "PROCESS_ALL_ACCESS"]

log = logging.getLogger(__name__)

USER_BUFFER_BASE = 0x2000_0000
MAX_BUFFER = 0x20000
_USER_PHYSICAL = 0x600_0000        # a physical run no other region uses (layout.py)
_REQUEST_FORMAT = "<IIIIIIIiQQQ"   # KSIM_IO_REQUEST up to Name (iomgr2.c)
_NAME_OFFSET = struct.calcsize(_REQUEST_FORMAT)
_NAME_CHARS = 128
CREATE, IOCTL, READ, WRITE, CLOSE = 1, 2, 3, 4, 5
START_PROCESS, EXIT_PROCESS, CREATE_EVENT, WAIT, OPEN_PROCESS, CLOSE_HANDLE = 6, 7, 8, 9, 10, 11
_OPERATION_NAMES = {CREATE: "create", IOCTL: "ioctl", READ: "read", WRITE: "write", CLOSE: "close",
                    START_PROCESS: "start", EXIT_PROCESS: "exit process", CREATE_EVENT: "create event",
                    WAIT: "wait", OPEN_PROCESS: "open process", CLOSE_HANDLE: "close handle"}
_HANDLE_MAKERS = (CREATE, CREATE_EVENT, OPEN_PROCESS)
EVENT_ALL_ACCESS = 0x1F0003
PROCESS_ALL_ACCESS = 0x1FFFFF
DEFAULT_WAIT_MS = 100
# Re-enter the kernel for a request its driver left pending at most this often (guest
# instructions).
_POLL_INSTRUCTIONS = 1_000_000


@dataclass(frozen=True)
class IoRequest:
    """One call of the user-mode program.  ``file`` names an earlier request that made
    a handle (create, create_event, open_process): its index in the request list.
    ``handles`` are (offset, request index) pairs: that request's handle is written
    into ``data`` at offset (8 bytes) when the call is made.  ``argument`` is the
    event kind (1 synchronization) or the process id to open."""

    operation: int
    name: str = ""
    file: int = -1
    code: int = 0
    data: bytes = b""
    output_length: int = 0
    handles: tuple[tuple[int, int], ...] = ()
    argument: int = 0

    @classmethod
    def create(cls, name: str) -> IoRequest:
        return cls(CREATE, name=name)

    @classmethod
    def ioctl(cls, file: int, code: int, data: bytes = b"", output_length: int = 0,
              handles: tuple[tuple[int, int], ...] = ()) -> IoRequest:
        return cls(IOCTL, file=file, code=code, data=data, output_length=output_length, handles=handles)

    @classmethod
    def read(cls, file: int, length: int) -> IoRequest:
        return cls(READ, file=file, output_length=length)

    @classmethod
    def write(cls, file: int, data: bytes) -> IoRequest:
        return cls(WRITE, file=file, data=data)

    @classmethod
    def close(cls, file: int) -> IoRequest:
        return cls(CLOSE, file=file)

    @classmethod
    def start_process(cls, image: str = "ksimuser.exe") -> IoRequest:
        return cls(START_PROCESS, name=image)

    @classmethod
    def exit_process(cls) -> IoRequest:
        return cls(EXIT_PROCESS)

    @classmethod
    def create_event(cls, access: int = EVENT_ALL_ACCESS, synchronization: bool = False) -> IoRequest:
        return cls(CREATE_EVENT, code=access, argument=int(synchronization))

    @classmethod
    def wait(cls, event: int, milliseconds: int = DEFAULT_WAIT_MS) -> IoRequest:
        """WaitForSingleObject on the event request ``event`` made; the time is the guest's."""
        return cls(WAIT, file=event, code=milliseconds)

    @classmethod
    def open_process(cls, access: int = PROCESS_ALL_ACCESS, process_id: int = 0) -> IoRequest:
        """OpenProcess; process id 0 is the program's own."""
        return cls(OPEN_PROCESS, code=access, argument=process_id)

    @classmethod
    def close_handle(cls, file: int) -> IoRequest:
        return cls(CLOSE_HANDLE, file=file)

    def describe(self) -> str:
        what = _OPERATION_NAMES[self.operation]
        if self.operation in (CREATE, START_PROCESS):
            return f"{what} {self.name}"
        if self.operation == IOCTL:
            return f"{what} {self.code:#x} in={len(self.data)} out={self.output_length}"
        if self.operation in (CREATE_EVENT, OPEN_PROCESS):
            return f"{what} access={self.code:#x}"
        return what


@dataclass(frozen=True)
class IoResult:
    """What the program would get back: the status, Information and output bytes."""

    request: IoRequest
    status: int
    information: int
    output: bytes = b""
    handle: int = 0

    @property
    def ok(self) -> bool:
        return self.status < 0x8000_0000

    @property
    def granted_access(self) -> int:
        """An open_process's granted access (what object callbacks left)."""
        return self.information if self.request.operation == OPEN_PROCESS else 0

    def describe(self) -> str:
        request = self.request
        if request.operation == WAIT:
            state = ("signalled" if self.status == NtStatus.STATUS_SUCCESS
                     else "timed out" if self.status == NtStatus.STATUS_TIMEOUT else "failed")
            return f"{request.describe()}: status {self.status:#010x}, event {state}"
        if request.operation == START_PROCESS and self.ok:
            return f"{request.describe()}: status {self.status:#010x}, process id {self.information}"
        if request.operation in (CREATE_EVENT, OPEN_PROCESS) and self.ok:
            text = f"{request.describe()}: status {self.status:#010x}, handle {self.handle:#x}"
            return text + (f", granted {self.information:#x}" if request.operation == OPEN_PROCESS else "")
        text = f"{request.describe()}: status {self.status:#010x}, information {self.information}"
        if self.output:
            text += f", output {self.output!r}"
        return text


@dataclass
class UserIo:
    """The request queue of one booted machine (``machine.io``)."""

    machine: object
    queue: list[IoRequest] = field(default_factory=list)
    results: list[IoResult] = field(default_factory=list)
    _handles: dict[int, int] = field(default_factory=dict)     # request index -> kernel file slot
    _current: IoRequest | None = None
    _sequence: int = 0
    _entered_at: int | None = None
    _mapped: bool = False
    on_result: Callable[[IoResult], None] | None = None    # called as each request ends

    def post(self, *requests: IoRequest) -> None:
        """Queue requests; ``file`` counts every request posted since boot, from 0."""
        posted = len(self.results) + (self._current is not None) + len(self.queue)
        for request in requests:
            if len(request.data) > MAX_BUFFER or request.output_length > MAX_BUFFER:
                raise ValueError(f"{request.describe()}: buffers are limited to {MAX_BUFFER} bytes")
            needs_file = request.operation not in (CREATE, START_PROCESS, EXIT_PROCESS, CREATE_EVENT, OPEN_PROCESS)
            if needs_file and not 0 <= request.file < posted:
                raise ValueError(f"{request.describe()}: file {request.file} names no earlier request")
            for offset, index in request.handles:
                if not 0 <= index < posted or not 0 <= offset <= len(request.data) - 8:
                    raise ValueError(f"{request.describe()}: handle {index} at {offset} does not fit")
            posted += 1
        self.queue.extend(requests)

    @property
    def busy(self) -> bool:
        """True while a request is queued or under way."""
        return bool(self.queue) or self._current is not None

    def step(self, uc, can_enter: bool) -> bool:
        """Between CPU slices: finish, start or poll a request.  True when the CPU was
        sent into the kernel (RIP moved)."""
        if self._current is not None and self._finished():
            self._collect()
        if not can_enter:
            return False
        if self._current is None:
            if not self.queue:
                return False
            self._start(self.queue.pop(0))
        elif not self._left_pending() or self.machine.instructions - self._entered_at < _POLL_INSTRUCTIONS:
            return False
        self._enter(uc)
        return True

    # ------------------------------------------------------------ internals

    def _request_address(self) -> int:
        return self.machine.kernel_symbol("KiSimIoRequest")

    def _start(self, request: IoRequest) -> None:
        memory = self.machine.memory
        if not self._mapped:
            memory.map(USER_BUFFER_BASE, 2 * MAX_BUFFER, _USER_PHYSICAL, "user buffers")
            self._mapped = True
        self._sequence += 1
        index = len(self.results)
        slot = self._handles.get(request.file, 0) if request.file >= 0 else 0
        data = bytearray(request.data)
        for offset, made_by in request.handles:
            data[offset:offset + 8] = struct.pack("<Q", self._handles.get(made_by, 0))
        memory.write_virtual(USER_BUFFER_BASE, bytes(data))
        memory.write_virtual(USER_BUFFER_BASE + MAX_BUFFER, bytes(request.output_length))
        input_length = len(data) if request.operation < START_PROCESS else request.argument
        header = struct.pack(_REQUEST_FORMAT, self._sequence, self._sequence - 1, request.operation, slot,
                             request.code, input_length, request.output_length, 0, 0,
                             USER_BUFFER_BASE, USER_BUFFER_BASE + MAX_BUFFER)
        name = request.name.encode("utf-16-le")[:2 * (_NAME_CHARS - 1)] + b"\0\0"
        memory.write_virtual(self._request_address(), header)
        memory.write_virtual(self._request_address() + _NAME_OFFSET, name)
        self._current = request
        self._current_index = index
        self._entered_at = None
        log.debug("posted %s", request.describe())

    def _enter(self, uc) -> None:
        from unicorn import x86_const as X

        from .interrupts import interrupt
        interrupt(uc, self.machine.memory, self.machine.kernel_symbol("KiSimIoEntry"), uc.reg_read(X.UC_X86_REG_RIP))
        self._entered_at = self.machine.instructions

    def _fields(self) -> tuple:
        data = self.machine.memory.read_virtual(self._request_address(), _NAME_OFFSET)
        return struct.unpack(_REQUEST_FORMAT, data)

    def _left_pending(self) -> bool:
        """The kernel came back from its entry with the driver's IRP still pending: only
        then is it entered again (to see whether the IRP has been completed since)."""
        fields = self._fields()
        return self._entered_at is not None and fields[1] != self._sequence and fields[7] == NtStatus.STATUS_PENDING

    def _finished(self) -> bool:
        return self._fields()[1] == self._sequence

    def _collect(self) -> None:
        fields = self._fields()
        request = self._current
        status, information = fields[7] & 0xFFFFFFFF, fields[8]
        output = b""
        if request.operation in (IOCTL, READ) and status < 0x8000_0000:
            length = min(information, request.output_length)
            output = self.machine.memory.read_virtual(USER_BUFFER_BASE + MAX_BUFFER, length)
        handle = fields[3] if request.operation in _HANDLE_MAKERS and status < 0x8000_0000 else 0
        if handle:
            self._handles[self._current_index] = handle
        if request.operation == OPEN_PROCESS:
            information = fields[4]              # the granted access comes back in IoControlCode
        result = IoResult(request, status, information, output, handle)
        self.results.append(result)
        self._current = None
        self._entered_at = None
        if self.on_result is not None:
            self.on_result(result)


def _number(text: str) -> int:
    return int(text, 0)


class IoctlSpec(NamedTuple):
    """One ``--ioctl``: ``event_at`` is the offset of ``{event}`` in the input (or
    None), ``wait_ms`` how long the program waits for that event after the call."""

    device: str
    code: int
    data: bytes
    output_length: int
    event_at: int | None = None
    wait_ms: int = DEFAULT_WAIT_MS


def _hex_input(spec: str, text: str) -> tuple[bytes, int | None, int]:
    """``hex:`` INPUT with at most one ``{event}`` or ``{event:MS}`` placeholder."""
    event_at, wait_ms = None, DEFAULT_WAIT_MS
    before, mark, after = text.partition("{event")
    if mark:
        inside, closed, after = after.partition("}")
        if not closed or (inside and not inside[1:].isdigit()) or (inside and inside[0] != ":") \
                or "{" in after:
            raise ValueError(f"--ioctl {spec}: the placeholder is {{event}} or {{event:MS}}, once")
        wait_ms = int(inside[1:]) if inside else DEFAULT_WAIT_MS
    try:
        head, tail = bytes.fromhex(before), bytes.fromhex(after)
    except ValueError:
        raise ValueError(f"--ioctl {spec}: hex: takes pairs of hex digits") from None
    if mark:
        event_at = len(head)
        return head + bytes(8) + tail, event_at, wait_ms
    return head, None, wait_ms


def parse_ioctl(spec: str) -> IoctlSpec:
    """``DEVICE,CODE,INPUT[,OUTLEN]`` -> IoctlSpec.

    INPUT is text (sent with a terminating NUL, as the samples' test programs send
    strings), ``hex:0a0b...`` for raw bytes, or empty; OUTLEN defaults to 256.  In hex
    input ``{event}`` stands for the handle of an event the program creates first
    (8 bytes); after the call it waits for the event (``{event:MS}``: MS guest
    milliseconds, default 100) and reports whether it was signalled."""
    parts = spec.split(",")
    if len(parts) not in (3, 4) or not parts[0]:
        raise ValueError(f"--ioctl {spec}: use DEVICE,CODE,INPUT[,OUTLEN], e.g. \\\\.\\IoctlTest,0x9C402608,hello")
    device, code_text, data_text = parts[0], parts[1], parts[2]
    try:
        code = _number(code_text)
        out_len = _number(parts[3]) if len(parts) == 4 else 256
    except ValueError:
        raise ValueError(f"--ioctl {spec}: CODE and OUTLEN are numbers (0x... for hex)") from None
    event_at, wait_ms = None, DEFAULT_WAIT_MS
    if data_text.startswith("hex:"):
        data, event_at, wait_ms = _hex_input(spec, data_text[4:])
    else:
        data = data_text.encode("latin-1") + b"\0" if data_text else b""
    if not 0 <= code <= 0xFFFFFFFF or not 0 <= out_len <= MAX_BUFFER or len(data) > MAX_BUFFER:
        raise ValueError(f"--ioctl {spec}: CODE is 32 bits and buffers at most {MAX_BUFFER} bytes")
    return IoctlSpec(device, code, data, out_len, event_at, wait_ms)


def ioctl_requests(specs: list[IoctlSpec] | list[tuple]) -> list[IoRequest]:
    """What a test program does for the ``--ioctl``s (IoctlSpecs or their first four
    fields): for each, create the event it passes (if any), open, control, wait for the
    event, close the device and the event; then end its process (which its first
    request started)."""
    requests: list[IoRequest] = []
    for spec in map(lambda fields: IoctlSpec(*fields), specs):
        event = None
        if spec.event_at is not None:
            event = len(requests)
            requests.append(IoRequest.create_event())
        opened = len(requests)
        handles = ((spec.event_at, event),) if event is not None else ()
        requests += [IoRequest.create(spec.device),
                     IoRequest.ioctl(opened, spec.code, spec.data, spec.output_length, handles)]
        # The wait comes before the close: a driver may cancel what it promised when
        # its device is closed (its cleanup routine), as the event sample does.
        if event is not None:
            requests.append(IoRequest.wait(event, spec.wait_ms))
        requests.append(IoRequest.close(opened))
        if event is not None:
            requests.append(IoRequest.close_handle(event))
    return requests + [IoRequest.exit_process()]
