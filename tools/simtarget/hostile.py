"""A hostile kd target: well-formed packets (good checksums, right types) with bad content.

What it does: ``HostileTarget`` serves the simulated machine (or any ``KdMachine``) over
a socket pair like ``SimTarget``, but every manipulate reply passes through a tamper
(wrong ApiNumber, ActualBytesRead beyond the request or the data, an error status on
every request, silence after some requests, seeded random damage), the machine's
memory can be overlaid with hostile structures (a module list that loops, points at
itself, runs for millions of entries, names of 64 KiB or full of escape sequences and
invalid UTF-16, absurd image sizes), GetVersion can carry absurd fields, and stops can
be raw payloads (state changes with processor numbers past the count, exception
records with NumberParameters > 15, LoadSymbols whose path length runs past the packet,
DebugIo with hostile text), sent between requests or in the middle of one
(``interject``). ``connect()`` gives a socket pair's host end, ``listen_unix(path)``
serves a ``kdcon --port unix://path`` process. Tests and the soak bench
(tools/bench/hostile.py) drive a real console against it.
What it does not do: break the framing (transports/faults.py does that) or run code.
Spec: kd-protocol.md §4 (state change), §5 (manipulate), §6 (debug I/O).

    target = HostileTarget(tamper=Tamper(status=NtStatus.STATUS_ACCESS_VIOLATION))
    port = target.connect()          # a host end, as SimTarget.connect()
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from kdcon.protocol.constants import (
    DebugIoApi,
    MANIPULATE_HEADER_SIZE,
    ManipulateApi as A,
    PACKET_MAX_SIZE,
    StateChange,
)
from kdcon.protocol.events import ManipulateRequest, PromptReply
from kdcon.protocol.messages import build_state_change
from kdcon.protocol.state import Message
from kdcon.protocol.transports.socketport import SocketPort
from kdcon.protocol.windbgkd import DBGKD_DEBUG_IO

from .kd import KdTargetSession, StopReport
from .kd.layouts import PROCESSOR_LEVEL
from .kd.stub import Action, KdStub, NoReply
from .loopback import SimTarget

__all__ = [
    "HostileTarget",
    "HostileMachine",
    "Tamper",
    "Overlay",
    "raw_state_change",
    "raw_exception",
    "raw_load_symbols",
    "raw_debug_io",
    "module_chain",
    "self_linked",
    "OVERLAY_BASE",
]

_U = 0x10                       # the union in a manipulate payload
_READS = (A.DbgKdReadVirtualMemoryApi, A.DbgKdReadPhysicalMemoryApi,
          A.DbgKdReadControlSpaceApi)
# Where overlays put their structures: a canonical kernel address that no simulated
# image, stack or pool uses.
OVERLAY_BASE = 0xFFFFF7A000000000


@dataclass
class Tamper:
    """What happens to each manipulate reply before it goes on the wire.

    ``wrong_api``: ApiNumber + 1. ``status``: this ReturnStatus on every reply.
    ``actual_extra``: ActualBytesRead this much past the request (data padded to
    match), ``actual_past_data``: ActualBytesRead this much past the data sent.
    ``data_limit``: the reply's data cut to this many bytes, its count fields left as
    they were. ``silent_after``: no reply at all once this many requests were answered.
    ``chance``: the share of replies a seeded random damage hits (its kinds: data
    bytes flipped, union fields randomised, data cut, a random status, data all
    garbage; ``kinds`` picks among them).
    ``apis``: only these ApiNumbers are tampered (empty: all but GetVersion, whose
    fields ``HostileTarget(version=...)`` fakes instead).
    """

    wrong_api: bool = False
    status: int | None = None
    actual_extra: int = 0
    actual_past_data: int = 0
    data_limit: int | None = None
    silent_after: int | None = None
    chance: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = ("flip", "union", "cut", "status", "garbage")
    apis: frozenset[int] = frozenset()
    answered: int = 0
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def applies(self, api: int) -> bool:
        return api in self.apis if self.apis else api != A.DbgKdGetVersionApi

    def __call__(self, request: ManipulateRequest, reply: bytes) -> bytes | None:
        if self.silent_after is not None and self.answered >= self.silent_after:
            return None
        self.answered += 1
        if not self.applies(request.api):
            return reply
        out = bytearray(reply)
        if self.wrong_api:
            struct.pack_into("<I", out, 0, request.api + 1)
        if self.status is not None:
            struct.pack_into("<I", out, 8, self.status)
        if request.api in _READS and (self.actual_extra or self.actual_past_data):
            count, = struct.unpack_from("<I", out, _U + 8)
            if self.actual_extra:
                struct.pack_into("<I", out, _U + 12, count + self.actual_extra)
                out += bytes(count + self.actual_extra - (len(out) - MANIPULATE_HEADER_SIZE))
            else:
                data = len(out) - MANIPULATE_HEADER_SIZE
                struct.pack_into("<I", out, _U + 12, data + self.actual_past_data)
        if self.data_limit is not None:
            del out[MANIPULATE_HEADER_SIZE + self.data_limit:]
        if self.chance and self.rng.random() < self.chance:
            self._damage(out)
        return bytes(out[:PACKET_MAX_SIZE])

    def _damage(self, out: bytearray) -> None:
        rng = self.rng
        kind = rng.choice(self.kinds)
        self.log.append(kind)
        data = len(out) - MANIPULATE_HEADER_SIZE
        if kind == "flip" and data:
            for _ in range(rng.randint(1, 8)):
                out[MANIPULATE_HEADER_SIZE + rng.randrange(data)] = rng.randrange(256)
        elif kind == "union":
            # Past the echoed address and count: the result fields a host trusts.
            for at in range(_U + 12, MANIPULATE_HEADER_SIZE, 4):
                if rng.random() < 0.5:
                    struct.pack_into("<I", out, at, rng.getrandbits(32))
        elif kind == "cut" and data:
            del out[MANIPULATE_HEADER_SIZE + rng.randrange(data):]
        elif kind == "status":
            struct.pack_into("<I", out, 8, rng.choice((0xC0000001, 0xC0000005, 0x80000005,
                                                       rng.getrandbits(32))))
        elif data:
            out[MANIPULATE_HEADER_SIZE:] = rng.randbytes(data)


Overlay = Callable[[int, int], "bytes | None"]


def module_chain(head: int, count: int, *, name: Callable[[int], bytes] | None = None,
                 size: Callable[[int], int] | None = None, stride: int = 0x100,
                 base: Callable[[int], int] | None = None,
                 loop_to: int | None = None) -> Overlay:
    """An overlay holding a PsLoadedModuleList at ``head`` with ``count`` KLDR entries
    made on demand (a million costs nothing until read). The last entry points back
    at the head, or at entry ``loop_to`` (a cycle that never reaches the head).
    ``name(i)`` is entry i's BaseDllName in bytes (UTF-16 or not), ``size(i)`` its
    SizeOfImage, ``base(i)`` its DllBase."""
    first = head + stride
    names = OVERLAY_BASE + (1 << 32)
    name_room = 0x20000

    def entry(i: int) -> bytes:
        raw = bytearray(stride)
        nxt = first + (i + 1) * stride if i + 1 < count else (
            head if loop_to is None else first + loop_to * stride)
        prev = first + (i - 1) * stride if i else head
        struct.pack_into("<QQ", raw, 0, nxt, prev)
        text = name(i) if name else f"m{i}.sys".encode("utf-16-le")
        dll = base(i) if base else 0xFFFFF80100000000 + i * 0x10000
        struct.pack_into("<QQI", raw, 0x30, dll, 0, (size(i) if size else 0x8000) & 0xFFFFFFFF)
        length = min(len(text), 0xFFFF)
        struct.pack_into("<HHxxxxQ", raw, 0x48, length, length, names + i * name_room)
        struct.pack_into("<HHxxxxQ", raw, 0x58, length, length, names + i * name_room)
        return bytes(raw)

    def read(address: int, want: int) -> bytes | None:
        if head <= address < head + 16:
            link = struct.pack("<QQ", first if count else head,
                               first + (count - 1) * stride if count else head)
            return link[address - head: address - head + want]
        if first <= address < first + count * stride:
            i, offset = divmod(address - first, stride)
            return entry(i)[offset: offset + want]
        if names <= address < names + count * name_room:
            i, offset = divmod(address - names, name_room)
            text = name(i) if name else f"m{i}.sys".encode("utf-16-le")
            return text[offset: offset + want] or None
        return None

    return read


def self_linked(head: int, entry: int = OVERLAY_BASE + 0x1000, span: int = 0x800) -> Overlay:
    """An overlay that sends the list at ``head`` to ``entry``, whose Flink and Blink
    point at itself (a cycle that never comes back to the head); the ``span`` bytes
    around ``entry`` read as zeros."""

    def read(address: int, want: int) -> bytes | None:
        if head <= address < head + 16:
            return struct.pack("<QQ", entry, entry)[address - head: address - head + want]
        if entry - span <= address < entry + span:
            room = bytearray(2 * span)
            struct.pack_into("<QQ", room, span, entry, entry)
            at = address - (entry - span)
            return bytes(room[at: at + want])
        return None

    return read


class HostileMachine:
    """A machine seen through hostile eyes: overlays on its virtual memory, fake
    GetVersion fields, and queued hostile stops ahead of its own (after its first break)."""

    def __init__(self, inner: Any, *, overlays: list[Overlay] | None = None,
                 version: dict[str, int] | None = None) -> None:
        self.inner = inner
        self.overlays = list(overlays or ())
        self.version = dict(version or {})
        self.stops: list[StopReport] = []
        self.answers: list[str] = []      # what the console answered hostile prompts
        self._booted = False
        self._ours = False                # the last stop was a queued hostile one

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_virtual(self, address: int, size: int) -> bytes:
        for overlay in self.overlays:
            got = overlay(address, size)
            if got is not None:
                return got
        return self.inner.read_virtual(address, size)

    def version_block(self) -> bytes:
        block = bytearray(self.inner.version_block())
        # DBGKD_GET_VERSION64: KernBase 0x10, PsLoadedModuleList 0x18, DebuggerDataList 0x20.
        for name, at in (("KernBase", 0x10), ("PsLoadedModuleList", 0x18),
                         ("DebuggerDataList", 0x20)):
            if name in self.version:
                struct.pack_into("<Q", block, at, self.version[name] & (2**64 - 1))
        for name, at, fmt in (("MajorVersion", 0, "<H"), ("MinorVersion", 2, "<H"),
                              ("Flags", 6, "<H"), ("MachineType", 8, "<H")):
            if name in self.version:
                struct.pack_into(fmt, block, at, self.version[name] & 0xFFFF)
        return bytes(block)

    def run(self, until: Any = None) -> Any:
        # The machine's own first break comes first (its boot's prints and loads before
        # it): until then its version block and memory are not there to tamper with.
        self._ours = bool(self.stops and self._booted)
        if self._ours:
            return self.stops.pop(0)
        report = self.inner.describe(self.inner.run(until=until))
        self._booted = self._booted or report.kind == "exception"
        return report

    def answer_prompt(self, text: str) -> None:
        if self._ours:
            self.answers.append(text)
        else:
            self.inner.answer_prompt(text)

    def describe(self, stop: Any) -> StopReport:
        return stop if isinstance(stop, StopReport) else self.inner.describe(stop)


@dataclass(frozen=True, slots=True)
class _Interject:
    """A raw stop sent in the middle of a request, before its reply (None: none)."""

    report: StopReport
    reply: bytes | None


class _HostileStub(KdStub):
    def __init__(self, machine: Any, tamper: Tamper) -> None:
        super().__init__(machine)
        self.tamper = tamper
        self.interjections: list[tuple[StopReport, bool]] = []

    def handle(self, request: ManipulateRequest) -> bytes | Action:
        result = super().handle(request)
        if not isinstance(result, bytes):
            return result
        reply = self.tamper(request, result)
        if self.interjections:
            report, answered = self.interjections.pop(0)
            return _Interject(report, reply if answered else None)  # type: ignore[return-value]
        return NoReply() if reply is None else reply


class _HostileSession(KdTargetSession):
    """Sends raw stops as they are: kind "raw" is a state-change payload, "rawio" a
    DEBUG_IO payload (a print, or a prompt when ``max_length`` is set)."""

    def __init__(self, machine: Any, tamper: Tamper) -> None:
        super().__init__(machine)
        self.stub = _HostileStub(machine, tamper)

    def _report(self, pump: Any, stop: Any) -> None:
        report = self.machine.describe(stop)
        if report.kind == "raw":
            self.stats.exceptions_reported += 1
            self._enter_break(pump, report.text)
            self._break_loop(pump)
        elif report.kind == "rawio" and report.max_length:
            pump.send("send", Message.DEBUG_PROMPT, report.text)
            self._await_answer(pump, report)
        elif report.kind == "rawio":
            pump.send("send", Message.DEBUG_PRINT, report.text)
            self._await_delivery(pump)
        else:
            super()._report(pump, stop)

    def _act(self, pump: Any, result: Any) -> bool:
        if not isinstance(result, _Interject):
            return super()._act(pump, result)
        report = result.report
        if report.kind == "raw":
            pump.send("send_state_change", report.text)
        elif report.max_length:
            pump.send("send", Message.DEBUG_PROMPT, report.text)
            # The answer is not a request; requests that come first wait their turn.
            pump.requests_only = False
            early = []
            try:
                while not isinstance(answer := pump.wait(), PromptReply):
                    early.append(answer)
            finally:
                pump.requests_only = True
                for event in early:
                    pump._events.put(event)     # the session's own queue, in order
            self.machine.answers.append(answer.text.decode("latin-1"))
        else:
            pump.send("send", Message.DEBUG_PRINT, report.text)
        if result.reply is not None:
            pump.send("send_manipulate_payload", result.reply)
        return False


class HostileTarget(SimTarget):
    """``SimTarget`` whose kd answers through a ``Tamper`` and whose machine is a
    ``HostileMachine`` over the simulated kernel (or ``inner``)."""

    def __init__(self, *, tamper: Tamper | None = None, inner: Any = None,
                 overlays: list[Overlay] | None = None, version: dict[str, int] | None = None,
                 stops: list[StopReport] | None = None, seed: int = 0) -> None:
        if inner is None:
            from .kd.adapter import MachineAdapter

            inner = MachineAdapter.create(seed=seed, drivers=[], break_on_connect=True,
                                          include_trackdemo=False, flavour="checked")
        machine = HostileMachine(inner, overlays=overlays, version=version)
        machine.stops = list(stops or ())
        super().__init__(machine=machine)
        self.tamper = tamper or Tamper()
        self.session = _HostileSession(machine, self.tamper)

    def interject(self, report: StopReport, *, then_reply: bool = True) -> None:
        """Send ``report`` (a raw state change, print or prompt) in the middle of the
        next request, before its reply, or instead of it (``then_reply=False``)."""
        self.session.stub.interjections.append((report, then_reply))

    def listen_unix(self, path: str) -> None:
        """Serve the first debugger that connects to a unix socket at ``path`` (for
        ``kdcon --port unix://path`` in a child process); ``close()`` ends it."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        self._server = server

        def accept() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return                  # closed before anyone came
            finally:
                server.close()
            self.serve_in_thread(SocketPort(conn, name=path, timeout=1.0))

        self._acceptor = threading.Thread(target=accept, name="hostile-accept", daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            server.close()
            self._acceptor.join(timeout=5)
        super().close()


# -- raw stops --------------------------------------------------------------------------


def raw_state_change(new_state: int, u: dict[str, Any], data: bytes = b"", *,
                     pc: int, processor: int = 0, processors: int = 1) -> StopReport:
    """A state change sent as built, whatever its fields say."""
    payload = build_state_change(new_state, u, data, program_counter=pc, processor=processor,
                                 processor_level=PROCESSOR_LEVEL,
                                 number_processors=processors)
    return StopReport(kind="raw", text=payload)


def raw_exception(code: int, address: int, *, parameters: list[int] | None = None,
                  count: int | None = None, processor: int = 0,
                  processors: int = 1) -> StopReport:
    """An Exception state change; ``count`` is NumberParameters as sent (may be > 15)."""
    info = (list(parameters or ()) + [0] * 15)[:15]
    record = dict(ExceptionCode=code, ExceptionFlags=0, ExceptionRecord=0,
                  ExceptionAddress=address,
                  NumberParameters=len(parameters or ()) if count is None else count,
                  __unusedAlignment=0, ExceptionInformation=info)
    return raw_state_change(StateChange.DbgKdExceptionStateChange,
                            dict(ExceptionRecord=record, FirstChance=1), pc=address,
                            processor=processor, processors=processors)


def raw_load_symbols(path: bytes, *, length: int, base: int, size: int,
                     unload: bool = False, pc: int = 0) -> StopReport:
    """A LoadSymbols state change whose PathNameLength says ``length``, whatever
    ``path`` holds."""
    u = dict(PathNameLength=length, BaseOfDll=base, ProcessId=0, CheckSum=0,
             SizeOfImage=size & 0xFFFFFFFF, UnloadSymbols=int(unload))
    return raw_state_change(StateChange.DbgKdLoadSymbolsStateChange, u, path, pc=pc)


def raw_debug_io(text: bytes, *, length: int | None = None,
                 prompt_max: int = 0) -> StopReport:
    """A DbgPrint (or, with ``prompt_max``, a DbgPrompt) whose length field says
    ``length`` (default: the text's)."""
    told = len(text) if length is None else length
    if prompt_max:
        u = dict(LengthOfPromptString=told, LengthOfStringRead=prompt_max)
        api = DebugIoApi.DbgKdGetStringApi
    else:
        u = dict(LengthOfString=told, Unused=0)
        api = DebugIoApi.DbgKdPrintStringApi
    payload = DBGKD_DEBUG_IO.build(dict(ApiNumber=api, ProcessorLevel=0, Processor=0, u=u))
    return StopReport(kind="rawio", text=payload + text, max_length=prompt_max)
