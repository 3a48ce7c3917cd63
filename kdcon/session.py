"""The session: the one owner of the link and of everything known about the target.

What it does: attaches as kd does (break-in, RESET, the first state change,
GetVersion, the debugger data block, the PsLoadedModuleList walk), keeps the target
state (running, halted on a CPU, syncing, lost), the per-stop memory cache and
register windows, the module list with deferred symbols and the breakpoint table.
A pump thread takes the link's events in order: DbgPrint text is shown as it comes;
stops, prompts and a lost link are queued for the command thread, which turns each
state change into a ``Stop`` (``stopping.py`` decides what a stop means), resumes
(``g``/``p``/``t`` go through ``resume``) and waits. Every request a command makes is
counted (round trips, wire bytes) for ``.wirestats`` and the JSON results.
What it does not do: parse commands or render their output.
Spec: kd-protocol.md §3.5 (attach), §4 (state changes), §5 (requests); windbg.md §0.1.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import queue
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kdcon.protocol import Role
from kdcon.protocol.debugger_data import parse_debugger_data
from kdcon.protocol.errors import ProtocolError, TargetTimeout, TransportError
from kdcon.protocol.events import DebugPrint, DebugPrompt, StateChange
from kdcon.protocol.constants import ContinueStatus
from kdcon.protocol.host import DR7_DEFAULT, KdHost, TargetError
from kdcon.protocol.link import KdLink, LinkClosed
from kdcon.symbols.session import SymbolSession

from .breakpoints import BreakpointTable
from .kerneltypes import KernelTypes
from .linedamage import LineDamageChecks
from .errors import KdconError
from .memory import MemoryCache
from .output import Output, printable
from .registers import Registers
from .stops import Stop, StopKind
from .wire import CountingPort

__all__ = ["Session", "TargetState", "TargetLost", "NotHalted", "ModuleInfo"]

log = logging.getLogger(__name__)

# KLDR_DATA_TABLE_ENTRY (x64): the fields the module walk reads (kd-protocol.md §7.3).
_LDR_DLLBASE, _LDR_SIZEOFIMAGE, _LDR_BASEDLLNAME = 0x30, 0x40, 0x58
# TimeDateStamp moved: 0x80 up to Windows 8.1 (and in the simulated kernel), 0x9C from
# Windows 10 on; the built-in layout of the kernel's build says where (layouts/).
_LDR_CHECKSUM, _LDR_TIMESTAMP = 0x78, 0x80
_MAX_MODULES = 4096
# Windows x64 supports at most this many logical processors in one kernel.
_MAX_PROCESSORS = 2048
# A processor asked to report (``~Ns``): one state change, resent if damaged.
_SWITCH_TIMEOUT = 5.0


class TargetState(enum.Enum):
    RUNNING = "running"
    HALTED = "halted"
    SYNCING = "syncing"
    LOST = "lost"


class TargetLost(KdconError):
    """The link to the target is gone."""


class NotHalted(KdconError):
    """A command needs the target halted."""


@dataclass(slots=True)
class ModuleInfo:
    """One entry of the target's module list."""

    name: str                  # image name as the target spells it (BaseDllName)
    base: int
    size: int
    checksum: int = 0
    timestamp: int = 0
    path: str = ""             # the full image path a LoadSymbols report gave (lmv)


@dataclass
class WireCounter:
    """Requests and bytes since ``mark``."""

    round_trips: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def total(self) -> int:
        return self.bytes_sent + self.bytes_received


@dataclass
class SessionEvent:
    """What the pump thread hands the command thread."""

    kind: str                  # "stop", "prompt", "lost"
    payload: Any = None
    at: float = field(default_factory=time.monotonic)


class _CommandHost(KdHost):
    """KdHost whose requests, once one found the target silent, fail at once until the
    next command begins (``Session.begin_command``): a command that makes many
    requests (symbols read image headers) ends within one request's time bound."""

    silent: TargetTimeout | None = None

    def request(self, api: int, u: dict[str, Any] | None = None, data: bytes = b"", *,
                processor: int | None = None) -> Any:
        if self.silent is not None:
            raise TargetTimeout(f"{self.silent}; not asked again in this command")
        try:
            return super().request(api, u, data, processor=processor)
        except TargetTimeout as exc:
            self.silent = exc
            raise


class Session(LineDamageChecks, KernelTypes):
    """Everything the console knows about one target over one link."""

    def __init__(self, port: Any, *, output: Output, symbol_path: str | None = None,
                 request_timeout: float = 5.0, retries: int = 2,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.port = CountingPort(port)
        self.output = output
        self.link = KdLink(self.port, Role.HOST, start=False)
        self.host = _CommandHost(self.link, timeout=request_timeout, retries=retries)
        self.state = TargetState.SYNCING
        self.stop: Stop | None = None
        self.pointer_size = 8
        self.memory = MemoryCache(self._fetch_virtual)
        self.physical = MemoryCache(self.host.read_physical)
        self.registers = Registers(self._context_window, self._store_context)
        self.symbols = SymbolSession(symbol_path)
        self.breakpoints = BreakpointTable()
        self.modules: list[ModuleInfo] = []
        self.version: Any = None
        self.debugger_data: Any = None
        self.on_event = on_event or (lambda kind, fields: None)
        self.prompt_answer: Callable[[str], str | None] = lambda prompt: None
        self._events: queue.Queue[SessionEvent] = queue.Queue()
        self._pump: threading.Thread | None = None
        self._closing = threading.Event()
        self.break_requested = threading.Event()
        self.lost_reason: str | None = None
        self.resends = 0
        self.stop_processor = (0, 1)
        # Whether the target answers DbgKdSearchMemoryApi (image records are found by it).
        self.target_searches = True

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        self._closing.set()
        self.link.close()
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(timeout=2)

    def attach(self, timeout: float = 30.0) -> Stop:
        """Synchronise with the target and return its first stop (§3.5)."""
        self.state = TargetState.SYNCING
        try:
            first = self.link.sync(timeout)
        except TargetTimeout as exc:
            self.state = TargetState.LOST
            raise TargetLost(str(exc)) from exc
        except TransportError as exc:
            self.state = TargetState.LOST
            raise TargetLost(f"the link closed while connecting: {exc}") from exc
        self._pump = threading.Thread(target=self._run_pump, name="kdcon-pump", daemon=True)
        self._pump.start()
        stop = self._halted(first)
        try:
            self._identify()
        except ProtocolError as exc:
            # A target that will not say what it is or what it loaded cannot be debugged:
            # one line for the CLI, not a traceback.
            self.state = TargetState.LOST
            raise TargetLost(str(exc)) from exc
        return stop

    def reattach(self, port: Any, timeout: float = 10.0) -> Stop:
        """Carry on over a newly opened port after the link was lost (reconnect.py):
        a new link under the same host, counters and breakpoint table, then ``attach``.
        What the old link queued (its ``lost``) is dropped."""
        self.link.close()
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(timeout=2)
        while not self._events.empty():
            self._events.get_nowait()
        counting = CountingPort(port)
        counting.bytes_read, counting.bytes_written = self.port.bytes_read, self.port.bytes_written
        counting.tap = self.port.tap
        self.port = counting
        self.link = KdLink(counting, Role.HOST, start=False)
        self.host.link = self.link
        self.host.silent = None
        self.break_requested.clear()
        self.lost_reason = None
        return self.attach(timeout)

    def _identify(self) -> None:
        """GetVersion, the debugger data block and the module list."""
        self.version = self.host.get_version()
        # Only an x86 kernel (IMAGE_FILE_MACHINE_I386) has 4-byte pointers.
        self.pointer_size = 4 if self.version.MachineType == 0x14C else 8
        # A target's pointers are untrusted: an unreadable list is a warning, and the
        # console attaches with what it could read.
        try:
            if self.version.DebuggerDataList:
                head = self.read_pointer(self.version.DebuggerDataList)
                if head:
                    header = self.read_virtual(head, 0x18)
                    if len(header) == 0x18:
                        size = struct.unpack_from("<I", header, 0x14)[0]
                        block = self.read_virtual(head, min(size, 0x400))
                        self.debugger_data = parse_debugger_data(block)
        except (MemoryError, TargetError) as exc:
            self.output.line(f"WARNING: the debugger data block is unreadable ({exc})")
        try:
            self.reload_module_list()
        except (MemoryError, TargetError) as exc:
            self.output.line(f"WARNING: the loaded module list is unreadable ({exc})")

    # -- the pump thread ------------------------------------------------------------------

    def _run_pump(self) -> None:
        while not self._closing.is_set():
            # Woken only by what it handles: not by the ACK of every request.
            event = self.link.next_event(0.25, wake_on=(DebugPrint, DebugPrompt, StateChange,
                                                        LinkClosed))
            if event is None:
                continue
            if isinstance(event, DebugPrint):
                text = printable(event.text.decode("latin-1"))
                self.on_event("dbgprint", {"text": text})
                self.output.event_text(text)
            elif isinstance(event, DebugPrompt):
                self._events.put(SessionEvent("prompt", event))
            elif isinstance(event, StateChange):
                self._events.put(SessionEvent("stop", event))
            elif isinstance(event, LinkClosed):
                self.lost_reason = event.reason
                self._events.put(SessionEvent("lost", event.reason))
                if not self._closing.is_set():
                    self.on_event("lost", {"reason": event.reason})
                return

    def begin_command(self) -> None:
        """A command line starts: the target is asked again, however the last one went,
        and a DbgPrompt that came while it was broken in (a hostile or broken target:
        the last command's request got no reply) is answered first, since until it is
        the link can carry no request."""
        self.host.silent = None
        if self.state is TargetState.HALTED and not self._events.empty():
            others = []
            while True:
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    break
                if event.kind == "prompt":
                    self._answer_prompt(event.payload)
                else:
                    others.append(event)
            for event in others:
                self._events.put(event)

    # -- state -----------------------------------------------------------------------------

    @property
    def halted(self) -> bool:
        return self.state is TargetState.HALTED

    def require_halted(self) -> None:
        if self.state is TargetState.LOST:
            raise TargetLost(f"the target link is lost ({self.lost_reason or 'closed'})")
        if self.state is not TargetState.HALTED:
            raise NotHalted("the target is running: break in first (Ctrl+C)")

    def _halted(self, event: StateChange) -> Stop:
        self.state = TargetState.HALTED
        self.memory.invalidate()
        self.physical.invalidate()
        self.registers.invalidate()
        stop = self._stop_from(event)
        if self.host.line_damaged():
            stop = self._stop_reported_again(stop)
        self.stop_processor = (stop.processor, stop.processor_count)
        self.host.processor = stop.processor
        if stop.kind is StopKind.EXCEPTION and stop.pc != stop.exception_address:
            stop = self._pc_from_context(stop)
        if stop.instruction_stream and self.host.line_damaged():
            stop = self._stream_from_memory(stop)
        self.stop = stop
        return stop

    def _stop_from(self, event: StateChange) -> Stop:
        stop = Stop.from_state_change(event)
        if not (1 <= stop.processor_count <= _MAX_PROCESSORS
                and stop.processor < stop.processor_count):
            # A duplicated and a dropped byte of the same value pass the byte-sum
            # checksum and shift the header (docs/protocol.md, the checksum's blind
            # spot): keep the CPU this target last reported rather than address a
            # processor that does not exist.
            last = self.stop_processor
            log.warning("implausible processor %d of %d in a state change; using %d",
                        stop.processor, stop.processor_count, last[0])
            stop = dataclasses.replace(stop, processor=last[0], processor_count=last[1])
        return stop

    def resume(self, *, trace: bool = False, dr7: int = DR7_DEFAULT,
               status: int = ContinueStatus.DBG_CONTINUE) -> None:
        """Continue (or trace one instruction) and forget this stop's cached state."""
        self.require_halted()
        self.host.continue2(trace=trace, dr7=dr7, status=status)
        self.state = TargetState.RUNNING
        self.stop = None
        self.memory.invalidate()
        self.physical.invalidate()
        self.registers.invalidate()

    def wait(self, deadline: float | None = None) -> Stop:
        """The next state change while running. DbgPrompt is answered on the way;
        a pending break request sends the break-in byte (once per request)."""
        while True:
            if self.break_requested.is_set():
                self.break_requested.clear()
                self.break_in()
            timeout = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            event = self._next_state_change(timeout)
            if event is None:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TargetTimeout("the target did not stop in time")
                continue
            return self._halted(event)

    def _next_state_change(self, timeout: float) -> StateChange | None:
        """The next state change within ``timeout`` (None if none came), answering a
        DbgPrompt on the way; TargetLost when the link ends."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if event.kind == "lost":
                self.state = TargetState.LOST
                raise TargetLost(f"the target link is lost ({event.payload})")
            if event.kind == "prompt":
                self._answer_prompt(event.payload)
                continue
            return event.payload

    def report_from(self, processor: int, timeout: float) -> StateChange | None:
        """The state change ``processor`` answers DbgKdSwitchProcessor with
        (kd-protocol.md §5.1); None if none came within ``timeout``."""
        self.host.switch_processor(processor)
        return self._next_state_change(timeout)

    def switch_processor(self, processor: int, timeout: float = _SWITCH_TIMEOUT) -> Stop:
        """``~Ns``: the stop ``processor`` reports becomes the current one, so registers,
        stacks and control space address it. The caller checks the number."""
        self.require_halted()
        event = self.report_from(processor, timeout)
        if event is None:
            raise TargetTimeout(f"processor {processor} did not report its state")
        return self._halted(event)

    def resync(self, timeout: float = 10.0) -> Stop:
        """Ctrl+R: RESET the link and take the stop the target reports again (a
        running target is broken into first, §3.5); TargetLost when none comes."""
        breakin = self.state is not TargetState.HALTED
        self.state = TargetState.SYNCING
        try:
            first = self.link.sync(timeout, breakin=breakin)
        except (TargetTimeout, TransportError) as exc:
            self.state = TargetState.LOST
            self.lost_reason = f"no answer to a resync: {exc}"
            raise TargetLost(f"the target did not resynchronise: {exc}") from exc
        return self._halted(first)

    def break_in(self) -> None:
        if self.state is TargetState.RUNNING:
            try:
                self.host.breakin()
            except ProtocolError as exc:
                log.debug("break-in failed: %s", exc)

    def _answer_prompt(self, event: DebugPrompt) -> None:
        prompt = printable(event.prompt.decode("latin-1"))
        self.on_event("prompt", {"text": prompt})
        self.output.event_text(prompt)
        answer = self.prompt_answer(prompt)
        if answer is None:
            answer = ""
        else:
            self.output.event_text(answer + "\n")
        data = answer.encode("latin-1", "replace")[: max(0, event.max_length - 1)] + b"\n"
        self.host.prompt_reply(data)

    # -- memory and registers ---------------------------------------------------------------

    def _fetch_virtual(self, address: int, size: int) -> bytes:
        return self.host.read_virtual(address, size)

    def read_virtual(self, address: int, size: int) -> bytes:
        self.require_halted()
        return self.memory.read(address, size)

    def read_physical(self, address: int, size: int) -> bytes:
        self.require_halted()
        return self.physical.read(address, size)

    def write_virtual(self, address: int, data: bytes) -> int:
        self.require_halted()
        try:
            return self.host.write_virtual(address, data)
        finally:
            self.memory.invalidate()
            self.physical.invalidate()

    def write_physical(self, address: int, data: bytes) -> int:
        self.require_halted()
        try:
            return self.host.write_physical(address, data)
        finally:
            self.memory.invalidate()
            self.physical.invalidate()

    def read_pointer(self, address: int) -> int:
        data = self.read_virtual(address, self.pointer_size)
        if len(data) < self.pointer_size:
            raise MemoryError(f"Memory access error at {address:#x}")
        return int.from_bytes(data, "little")

    def current_pc(self) -> int:
        """RIP at this stop. The state change carried it; the CONTEXT is asked only
        if nothing has it (a register read or set since then is in the cached window)."""
        cached = self.registers.cached("rip")
        if cached is not None:
            return cached
        if self.stop is not None:
            return self.stop.pc
        return self.registers.get("rip")

    def code_at_pc(self, size: int = 16) -> tuple[int, bytes]:
        """(RIP, the bytes there): the state change's instruction stream when RIP is
        still where the target stopped, a memory read otherwise."""
        pc = self.current_pc()
        stop = self.stop
        if stop is not None and stop.pc == pc and len(stop.instruction_stream) >= min(size, 15):
            return pc, stop.instruction_stream[:size]
        return pc, self.read_virtual(pc, size)

    def _context_window(self, offset: int, size: int) -> bytes:
        self.require_halted()
        return self.host.get_context_ex(offset, size)

    def _store_context(self, offset: int, data: bytes) -> None:
        self.require_halted()
        self.host.set_context_ex(offset, data)

    # -- modules ----------------------------------------------------------------------------

    def reload_module_list(self) -> list[ModuleInfo]:
        """Walk PsLoadedModuleList and register every module with deferred symbols."""
        head = self.version.PsLoadedModuleList if self.version is not None else 0
        modules: list[ModuleInfo] = []
        stamp_at = self._ldr_timestamp_offset()
        entry_size = max(_LDR_CHECKSUM, stamp_at) + 4
        if head:
            first = self._confirmed_read(head, 8)
            if len(first) < 8:
                raise MemoryError(f"Memory access error at {head:#x}")
            entry = int.from_bytes(first, "little")
            seen = {head}
            while entry not in seen and len(modules) < _MAX_MODULES:
                seen.add(entry)
                raw = self._confirmed_read(entry, entry_size)
                if len(raw) < entry_size:
                    break
                modules.append(self._module_from_entry(raw, stamp_at))
                entry = struct.unpack_from("<Q", raw, 0)[0]
            if len(modules) >= _MAX_MODULES and entry not in seen:
                self.output.line(f"WARNING: the module list goes on past {_MAX_MODULES} "
                                 "entries; the rest are ignored")
        known = {(m.base, m.name.lower()) for m in self.modules}
        for module in self.modules:
            if (module.base, module.name.lower()) not in {(m.base, m.name.lower()) for m in modules}:
                self.symbols.remove_module(module.base)
        self.modules = modules
        for module in modules:
            if (module.base, module.name.lower()) not in known:
                self._register_symbols(module)
        return modules

    def _ldr_timestamp_offset(self) -> int:
        """Where this kernel's loader entries keep the image's TimeDateStamp."""
        if self.version is None:
            return _LDR_TIMESTAMP
        table = self._build_layout()
        info = table.find("_KLDR_DATA_TABLE_ENTRY") if table is not None else None
        field = next((f for f in info.fields if f.name == "TimeDateStamp"), None) \
            if info is not None else None
        return field.offset if field is not None else _LDR_TIMESTAMP

    def _module_from_entry(self, raw: bytes, stamp_at: int = _LDR_TIMESTAMP) -> ModuleInfo:
        base, = struct.unpack_from("<Q", raw, _LDR_DLLBASE)
        size, = struct.unpack_from("<I", raw, _LDR_SIZEOFIMAGE)
        length, _, buffer = struct.unpack_from("<HHxxxxQ", raw, _LDR_BASEDLLNAME)
        checksum, = struct.unpack_from("<I", raw, _LDR_CHECKSUM)
        timestamp, = struct.unpack_from("<I", raw, stamp_at)
        name_bytes = self._confirmed_read(buffer, min(length, 512)) if buffer and length else b""
        name = name_bytes.decode("utf-16-le", "replace") or f"image{base:x}"
        return ModuleInfo(name=name, base=base, size=size, checksum=checksum,
                          timestamp=timestamp)

    def _register_symbols(self, module: ModuleInfo) -> None:
        base = module.base

        def read(rva: int, size: int) -> bytes | None:
            if self.state is not TargetState.HALTED:
                return None
            return self.memory.read(base + rva, size) or None

        def search(rva: int, length: int, pattern: bytes) -> int | None:
            # The target searches (DbgKdSearchMemoryApi): only the address crosses the wire.
            if self.state is not TargetState.HALTED or not self.target_searches:
                return None
            try:
                found = self.host.search_memory(base + rva, length, pattern)
            except TargetTimeout as exc:
                # Some kernels never answer it (an older ReactOS): read instead, and
                # do not wait on it again this session.
                self.target_searches = False
                log.warning("the target did not answer a memory search (%s); image "
                            "records are read from its headers instead", exc)
                return None
            if found is None or not base + rva <= found < base + rva + length:
                return None
            return found - base

        symbols = self.symbols.add_module(module.name, base, module.size, timestamp=module.timestamp,
                                          checksum=module.checksum, read=read)
        symbols.search = search

    def module_loaded(self, stop: Stop) -> ModuleInfo:
        """A LoadSymbols stop for a load: add the module (unique by base)."""
        name = stop.image_name or f"image{stop.image_base:x}"
        known = next((m for m in self.modules if m.base == stop.image_base
                      and m.name.lower() == name.lower()), None)
        if known is not None and self.symbols.module_for(known.base) is not None:
            # Already registered from the module list, which also gave its timestamp.
            known.path = known.path or stop.image_path
            return known
        info = ModuleInfo(name=name, base=stop.image_base, size=stop.image_size,
                          checksum=stop.image_checksum, path=stop.image_path)
        self.modules = [m for m in self.modules if m.base != info.base] + [info]
        self._register_symbols(info)
        return info

    def module_unloaded(self, stop: Stop) -> ModuleInfo | None:
        gone = next((m for m in self.modules if m.base == stop.image_base), None)
        self.modules = [m for m in self.modules if m.base != stop.image_base]
        self.symbols.remove_module(stop.image_base)
        return gone

    def forget_modules(self) -> None:
        """The target went away (a reboot): no module is known until it reports them."""
        for module in self.modules:
            self.symbols.remove_module(module.base)
        self.modules = []

    def after_reboot(self) -> None:
        """A rebooted target stopped again: read who it is and what it loaded."""
        self._identify()

    # -- accounting ---------------------------------------------------------------------------

    def wire(self) -> WireCounter:
        """Counters since the session started."""
        return WireCounter(self.host.round_trips, self.port.bytes_written, self.port.bytes_read)

