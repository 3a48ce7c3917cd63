"""The simulated target's run/break loop: the machine's stops carried over one link.

What it does: runs the machine until it stops and reports each stop the way a real x64
kernel with a debugger attached does: DbgPrint as DEBUG_IO PrintString (waiting only
for the ACK; given up after the retries when no debugger answers), DbgPrompt as
GetString (waiting for the answer, which goes back to the machine), image loads and
unloads as LoadSymbols state changes (given up like DbgPrint), and breakpoints, single
steps, data breakpoints, break-ins, bugchecks and faults as Exception state changes,
after which it loops on manipulate requests (stub.py answers them) until Continue.
A lone 0x62 while the CPU runs stops it at once (the machine's ``request_breakin``).
One session object lives as long as the machine: ``serve(port)`` carries it over one
link until end of file, and a later ``serve`` on a new link picks up where the last one
stopped (a target broken in re-sends its state change to the new debugger).
What it does not do: answer requests (stub.py) or run the CPU (the machine).
Spec: kd-protocol.md §3.2-§3.4 (sequences), §4 (state change), §6 (debug I/O), §12.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable

from kdcon.protocol import KdConnection, Role
from kdcon.protocol.errors import TransportError
from kdcon.protocol.link import KdLink, LinkClosed
from kdcon.protocol.events import (
    Ack,
    BreakIn,
    DroppedPacket,
    Event,
    ManipulateRequest,
    PromptReply,
    SendAbandoned,
)

from .layouts import exception_payload, load_symbols_payload
from .stub import Action, BugCheckRequest, KdStub, Reboot, ReportAgain, Resume

__all__ = ["KdTargetSession", "SessionStats", "StopReport", "LinkGone"]

log = logging.getLogger(__name__)

# How often a session waiting for the debugger lets its thread handle signals.
SIGNAL_CHECK_INTERVAL = 0.25


class LinkGone(Exception):
    """The link ended (end of file or close) while the target waited for the host."""


@dataclass(frozen=True, slots=True)
class _Answered:
    """A request the reader thread answered with an action for the session thread."""

    result: Action


class _Wire:
    """KdLink plus the session's own event queue; break-in bytes bypass the queue.

    The reader thread hands a lone 0x62 straight to the session (the CPU may be
    running). While the target is broken in and ``answer`` is set, it also answers
    manipulate requests itself, saving a thread hand-off per request; a request whose
    answer is an action (Continue, Reboot, ...) goes to the session thread, and
    ``answer`` is cleared so that nothing runs beside it. Every other event waits in
    order for the session thread.
    """

    def __init__(self, port: Any, conn: KdConnection, on_breakin: Any) -> None:
        self._events: queue.Queue[Event | _Answered | None] = queue.Queue()
        self._on_breakin = on_breakin
        self.answer: Callable[[ManipulateRequest], bytes | Action] | None = None
        # The break loop heeds requests only: ACKs and the like need not wake it.
        self.requests_only = False
        self.link = KdLink(port, Role.TARGET, connection=conn, on_event=self._on_event)

    @property
    def conn(self) -> KdConnection:
        return self.link.connection

    @property
    def closed(self) -> bool:
        return self.link.closed

    def _on_event(self, event: Event) -> None:
        # Requests first: one comes with nearly every packet the host sends.
        if isinstance(event, ManipulateRequest):
            answer = self.answer
            if answer is None:
                self._events.put(event)
                return
            result = answer(event)
            if isinstance(result, bytes):
                try:
                    self.link.call("send_manipulate_payload", result)
                except TransportError:
                    # The link closed while the answer was being made (kdcon-sim told
                    # to stop, the debugger gone): the reply has nowhere to go, and the
                    # end of the link reaches the session thread as the None below.
                    log.debug("reply to %#x dropped: the link closed", event.api)
            else:
                self.answer = None
                self._events.put(_Answered(result))
        elif isinstance(event, BreakIn):
            self._on_breakin()
        elif isinstance(event, LinkClosed):
            self._events.put(None)
        elif not self.requests_only:
            self._events.put(event)

    def send(self, method: str, *args: Any) -> None:
        try:
            self.link.call(method, *args)
        except TransportError as exc:
            raise LinkGone(str(exc)) from exc

    def wait(self) -> Event | _Answered:
        while True:
            try:
                # In slices: kdcon-sim waits here on its main thread, and a signal that
                # the kernel gave to another thread is handled only when this thread
                # runs Python again; a lock wait without end would never wake for it.
                event = self._events.get(timeout=SIGNAL_CHECK_INTERVAL)
                break
            except queue.Empty:
                continue
        if event is None:
            self._events.put(None)  # later waiters see the end too
            raise LinkGone("the link closed")
        return event

    def replace_connection(self, conn: KdConnection) -> None:
        """A rebooted target starts kdcom afresh: new ids, nothing pending (§3.2)."""
        self.link.connection = conn
        while not self._events.empty():
            if self._events.get_nowait() is None:
                self._events.put(None)
                break

    def close(self) -> None:
        self.link.close()


@dataclass(slots=True)
class SessionStats:
    prints_sent: int = 0
    prints_dropped: int = 0
    prompts: int = 0
    loads_reported: int = 0
    loads_dropped: int = 0
    exceptions_reported: int = 0
    requests: int = 0
    reboots: int = 0


@dataclass(frozen=True, slots=True)
class StopReport:
    """How one machine stop goes on the wire (made by the machine adapter).

    kind: "print", "prompt", "load", "exception", "rebooted", or "none" (nothing to
    report: the machine stopped for a reason of its own and simply runs on).
    """

    kind: str
    text: bytes = b""
    max_length: int = 0
    path: str = ""
    base: int = 0
    size: int = 0
    checksum: int = 0
    unload: bool = False
    code: int = 0
    address: int = 0
    parameters: tuple[int, ...] = ()
    first_chance: bool = True


class KdTargetSession:
    """Carries one machine's stops over successive links (see the module docstring).

    ``machine`` is the stub's ``KdMachine`` plus the run interface:
    ``run(until) -> stop`` (``until()`` true: return soon with a stop of kind "none"),
    ``describe(stop) -> StopReport``, ``request_breakin()``, ``resume(trace, dr7)``,
    ``answer_prompt(text)``, ``reboot()``, ``cause_bugcheck()``, ``current_thread()``.
    """

    def __init__(self, machine: Any, *, ack_timeout: float = 0.5) -> None:
        self.machine = machine
        self.stub = KdStub(machine)
        self.stats = SessionStats()
        self.ack_timeout = ack_timeout
        self._pump: _Wire | None = None
        self._conn = self._new_connection()
        self._cpu_running = threading.Event()
        self._breakin_pending = threading.Event()
        self._closing = threading.Event()
        # A stop that came back while no link was up, reported on the next one.
        self._held: Any = None
        # The state change a broken-in target keeps offering (§3.3), and the prompt
        # it waits to have answered, across links.
        self._broken: bytes | None = None
        self._open_prompt: StopReport | None = None
        self._early: Event | _Answered | None = None  # a request seen while awaiting an ACK

    def _new_connection(self) -> KdConnection:
        return KdConnection(Role.TARGET, ack_timeout=self.ack_timeout)

    # -- public --------------------------------------------------------------------------

    def serve(self, port: Any) -> None:
        """Run the machine over ``port`` until the link ends or ``stop()`` is called."""
        self._closing.clear()
        pump = self._pump = _Wire(port, self._conn, self._on_breakin)
        try:
            # A target left waiting keeps waiting: the old packet is still pending or
            # is the open exchange, which the new debugger's RESET makes it send again
            # with fresh ids (§3.3, Rule 6).
            if self._open_prompt is not None:
                self._await_answer(pump, self._open_prompt)
            if self._broken is not None:
                self._break_loop(pump)
            while not self._closing.is_set() and not pump.closed:
                stop = self._held
                self._held = None
                if stop is None:
                    if self._breakin_pending.is_set():
                        self.machine.request_breakin()
                    self._cpu_running.set()
                    try:
                        stop = self.machine.run(until=lambda: self._closing.is_set()
                                                or pump.closed)
                    finally:
                        self._cpu_running.clear()
                if self._closing.is_set() or pump.closed:
                    self._held = stop
                    break
                self._report(pump, stop)
        except LinkGone:
            log.info("debugger link closed")
        finally:
            pump.close()
            self._conn = pump.conn
            self._pump = None

    def stop_soon(self) -> threading.Thread:
        """``stop`` from a signal handler: the handler runs on the main thread between
        two bytecodes, maybe inside a Queue.get holding the lock of the queue that
        ``stop`` puts into, so a thread of its own does it (returned, to join)."""
        thread = threading.Thread(target=self.stop, name="kdsim-stop", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Make ``serve`` return soon (from any thread); the machine keeps its state."""
        self._closing.set()
        pump = self._pump
        if pump is not None:
            pump.close()

    # -- stops ---------------------------------------------------------------------------

    def _on_breakin(self) -> None:
        """Reader thread: a lone 0x62 arrived (KdPollBreakIn on the next clock tick).

        A target already stopped in the debugger has nothing to break: the byte a host
        sends while attaching (§3.5) must not stop the target again after ``g``.
        """
        pump = self._pump
        if pump is not None and pump.answer is not None:
            return  # broken in: the reader clears ``answer`` as it hands over Continue
        self._breakin_pending.set()
        if self._cpu_running.is_set():
            self.machine.request_breakin()

    def _report(self, pump: _Wire, stop: Any) -> None:
        report: StopReport = self.machine.describe(stop)
        kind = report.kind
        if kind == "print":
            self._print(pump, report.text)
        elif kind == "prompt":
            self._prompt(pump, report)
        elif kind == "load":
            self._load(pump, report)
        elif kind == "exception":
            self._exception(pump, report)
        elif kind == "rebooted":
            self._rebooted(pump)
        # "none": the run ended for the machine's own reasons; it simply runs on.

    def _print(self, pump: _Wire, text: bytes) -> None:
        conn = pump.conn
        if not conn.debugger_present:
            # Given up on (§2.5): prints go nowhere until a leader is heard again.
            self.stats.prints_dropped += 1
            return
        pump.send("send_debug_print", text)
        if self._await_delivery(pump):
            self.stats.prints_sent += 1
        else:
            self.stats.prints_dropped += 1

    def _prompt(self, pump: _Wire, report: StopReport) -> None:
        self._open_prompt = report
        pump.send("send_debug_prompt", report.text, report.max_length)
        self.stats.prompts += 1
        self._await_answer(pump, report)

    def _await_answer(self, pump: _Wire, report: StopReport) -> None:
        while True:
            event = pump.wait()
            if isinstance(event, PromptReply):
                # §6.3 step 5: the target keeps at most the buffer's length.
                answer = event.text[: report.max_length]
                self._open_prompt = None
                self.machine.answer_prompt(answer.decode("latin-1"))
                return

    def _load(self, pump: _Wire, report: StopReport) -> None:
        conn = pump.conn
        if not conn.debugger_present:
            self.stats.loads_dropped += 1
            return
        registers = self.machine.get_context()
        payload = load_symbols_payload(
            report.path, report.base, report.size, checksum=report.checksum,
            unload=report.unload, registers=registers, stream=self._stream(registers),
            thread=self.machine.current_thread())
        self._enter_break(pump, payload)
        if not self._await_delivery(pump):
            self._broken = None
            pump.answer = None
            self.stats.loads_dropped += 1
            return
        self.stats.loads_reported += 1
        self._break_loop(pump)

    def _exception(self, pump: _Wire, report: StopReport) -> None:
        self._breakin_pending.clear()
        registers = self.machine.get_context()
        payload = exception_payload(
            report.code, report.address, registers, self._stream(registers),
            parameters=report.parameters, first_chance=report.first_chance,
            thread=self.machine.current_thread())
        self.stats.exceptions_reported += 1
        self._enter_break(pump, payload)
        self._break_loop(pump)

    def _rebooted(self, pump: _Wire) -> None:
        # A fresh kdcom: ids back at INITIAL|SYNC, the debugger presumed present (§3.2).
        self.stats.reboots += 1
        self._broken = None
        self._breakin_pending.clear()
        self._conn = self._new_connection()
        pump.replace_connection(self._conn)

    def _stream(self, registers: dict[str, int]) -> bytes:
        return self.machine.read_virtual(registers.get("Rip", 0), 16)

    def _await_delivery(self, pump: _Wire) -> bool:
        """Wait for the ACK of a droppable packet: True when ACKed, False if given up."""
        while True:
            event = pump.wait()
            if isinstance(event, Ack):
                return True
            if isinstance(event, SendAbandoned):
                return False
            if isinstance(event, DroppedPacket) and event.reason == "implicit_ack":
                # The host's next packet crossed its ACK (Rule 7): delivered, and the
                # RESEND already asked for that packet again.
                return True
            if isinstance(event, (_Answered, ManipulateRequest)):
                # Only a host that got the packet asks anything: delivered.
                self._early = event
                return True

    # -- broken in -----------------------------------------------------------------------

    def _enter_break(self, pump: _Wire, payload: bytes) -> None:
        """Send a state change that waits for the host, ready for its requests first."""
        self.stub.new_break()
        self._broken = payload
        pump.answer = self.stub.handle
        pump.send("send_state_change", payload)

    def _break_loop(self, pump: _Wire) -> None:
        """KdpSendWaitContinue: one reply per request until the host resumes us."""
        pump.answer = self.stub.handle
        pump.requests_only = True
        try:
            while True:
                item, self._early = self._early or pump.wait(), None
                if isinstance(item, _Answered):
                    result = item.result
                elif isinstance(item, ManipulateRequest):
                    result = self.stub.handle(item)
                else:
                    continue
                self.stats.requests += 1
                if isinstance(result, bytes):
                    pump.send("send_manipulate_payload", result)
                elif self._act(pump, result):
                    return
                pump.answer = self.stub.handle
        finally:
            pump.answer = None
            pump.requests_only = False

    def _act(self, pump: _Wire, result: Action) -> bool:
        """Carry out a request's action; True when the target leaves the break."""
        if isinstance(result, Resume):
            self._broken = None
            self.machine.resume(trace=result.trace, dr7=result.dr7)
            return True
        if isinstance(result, Reboot):
            self.machine.reboot()
            self._rebooted(pump)
            return True
        if isinstance(result, BugCheckRequest):
            self._broken = None
            self.machine.cause_bugcheck()
            return True
        if isinstance(result, ReportAgain):
            assert self._broken is not None
            self.stub.new_break()
            pump.send("send_state_change", self._broken)
        return False
