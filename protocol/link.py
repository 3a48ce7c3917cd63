"""KdLink: one KdConnection driven over one pyserial-like port by one reader thread.

What it does: the blocking side of the protocol. A reader thread reads
``max(1, in_waiting)`` bytes at a time (simulated-target.md §8.2), feeds the
connection, writes what it must answer (ACK, RESEND, retransmissions, from
``check_timeouts(time.monotonic())``), and hands every event on in order to an inbox
or a callback. Callers send through thread-safe methods; a host calls
``request(api, ...)`` and gets the matching reply, with timeout and retry, or a
TargetTimeout saying what was asked and for how long (``sync`` and ``request`` live in
hostcalls.py). A caller waiting for its reply
reads the port itself while the reader thread stands aside (one thread hand-off per
round trip fewer: bench/simtarget.py); whoever reads holds ``_io``, so bytes are fed
in order, and the events are handed on in that order once ``_io`` is released: an
``on_event`` callback never runs while the port is held. ``cancel()``, from any thread
(a Ctrl+C handler too), makes the requests and the sync in progress raise
RequestCancelled; a reply that comes later for a cancelled request is dropped. A read
that raises ``OSError`` (pyserial's SerialException, EIO, our transports' LinkError)
is end of file: the link closes, waiters get TransportError, and a ``LinkClosed``
event ends the events. Every write is bounded (``write_timeout``).
What it does not do: open ports (transports.open_link), parse commands, or know what
a session is. The clock is read here and only here.
Spec: kd-protocol.md §2.5 (retries), §3.4-§3.5 (break-in, host sync), §5.1 (replies).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Protocol

from .connection import KdConnection
from .errors import TargetTimeout, TransportError
from .events import (
    NEED_DATA,
    Ack,
    Event,
    LinkClosed,
    ManipulateReply,
    Reset,
    SendAbandoned,
)
from .hostcalls import HostCalls
from .state import Role
from .waiting import Attach, Cancellable, EventKind, Inbox, Registered, Replies, Waiter

__all__ = ["KdLink", "PortLike"]

log = logging.getLogger(__name__)

# How long a reader awaiting the peer's answer (a reply, an ACK) polls the port before
# it sleeps: a sleeping thread's wake-up costs more than the whole round trip of a
# simulated target on a virtual machine (bench/simtarget.py), and a broken-in kdcom
# polls its UART the same way. Ports whose peer shares our interpreter never spin.
DEFAULT_SPIN = 0.0005

# How long one write may wait for the peer to take bytes before the link is closed
# (TransportError). Without a bound a peer that stops reading (a pty nobody reads)
# blocks the writer, and every other thread behind the link's lock, for good. A
# 4000-byte packet takes 2.1 s on a 19200-baud line, the slowest kd rate.
DEFAULT_WRITE_TIMEOUT = 5.0

# The roles by module name: a member looked up on its Enum class costs ~50 ns, and
# the path of every packet compares roles a dozen times.
_HOST, _TARGET = Role.HOST, Role.TARGET




class PortLike(Protocol):
    """What KdLink needs from a port: pyserial's read/write/in_waiting/close."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


class KdLink(HostCalls):
    """Drive ``KdConnection(role)`` over ``port`` with one reader thread.

    Events go to ``on_event`` if given, else to an inbox read with
    ``next_event(timeout)`` and ``wait_for(kind, timeout)``. ``on_event`` is called,
    in order, on a thread that read bytes (the reader thread, or a thread in
    ``request`` reading its own reply), never while that thread holds the port: it may
    send (a target answers requests there). A consumer that waits there for anything
    the link must read first stalls the events behind it: such a consumer takes
    events from the inbox, on a thread of its own. Replies that a ``request`` waits
    for are handed to it and not queued. ``spin``: how long a read that awaits the
    peer's answer polls before sleeping (None: DEFAULT_SPIN, or 0 for a peer in this
    process). ``write_timeout``: the bound given to a port whose writes have none.
    Use as a context manager or call ``close()``.
    """

    def __init__(self, port: PortLike, role: Role, *,
                 connection: KdConnection | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 poll_interval: float = 0.02, spin: float | None = None,
                 write_timeout: float = DEFAULT_WRITE_TIMEOUT, start: bool = True) -> None:
        self.port = port
        self.role = role
        self.connection = connection or KdConnection(role)
        self._on_event = on_event
        self._inbox = Inbox()
        # Events read and not yet handed on: whoever holds ``_delivering`` hands them
        # on, in order, and never while holding ``_io`` (``_io_owner``: its holder).
        self._outbox: deque[Event] = deque()
        self._delivering = threading.Lock()
        self._io_owner: int | None = None
        self._lock = threading.RLock()
        self._replies = Replies()
        self._calls: list[Cancellable] = []
        self._attach: Attach | None = None
        self._acked = threading.Condition(self._lock)
        self._closed = threading.Event()
        self.closed_reason: str | None = None
        self._poll_interval = poll_interval
        # Held by the thread that reads the port and pumps what it read.
        self._io = threading.Lock()
        # Held by a request from its send to its reply.
        self._exchange = threading.Lock()
        # Requests reading their own replies, and until when the reader thread stays
        # aside after the last (a caller's next request usually follows at once).
        self._callers = 0
        self._aside_until = 0.0
        # Set to bring the reader back before its time aside is up: after a Continue
        # the next thing on the line is the target's stop, and nobody else reads it.
        self._reader_back = threading.Event()
        # ACKs held back to share a write (``_write`` sends them first): a target's
        # while its event callback on the reader thread answers the request, a host's
        # for a reply until the caller's next request or the next pump (at most
        # ``poll_interval`` later). One write means one wake-up of the peer.
        self._unsent = b""
        self._flush_after_delivery = False
        if getattr(port, "timeout", None) is None or port.timeout > poll_interval:
            # A blocking read would stall ACK retransmission: bound every read.
            port.timeout = poll_interval
        if getattr(port, "write_timeout", None) is None:
            port.write_timeout = write_timeout
        # Our transports read what is there in fewer system calls (fdport.py).
        self._read_available = getattr(port, "read_available", None)
        if spin is None:
            # A peer in this process needs the interpreter lock we would spin with.
            spin = 0.0 if getattr(port, "peer_in_process", False) else DEFAULT_SPIN
        self._spin = spin
        self._thread = threading.Thread(target=self._run, name=f"kdlink-{role.value}",
                                        daemon=True)
        if start:
            self._thread.start()

    # -- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> KdLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def start(self) -> None:
        """Start the reader thread of a link made with ``start=False`` (``sync`` does
        this itself, so that no stop is taken before it is listening)."""
        with self._lock:
            if not self._thread.is_alive() and self._thread.ident is None:
                self._thread.start()

    def close(self) -> None:
        """Send any ACK still held back, stop the reader thread, close the port."""
        # A reply left unACKed keeps the target sending it, and the next debugger to
        # attach gets that reply before any stop.
        self._flush_unsent()
        self._finish("closed by this side")
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        try:
            self.port.close()
        except OSError as exc:
            log.debug("closing the port failed: %s", exc)

    def replace_connection(self, connection: KdConnection) -> None:
        """Carry on with a fresh connection (a target that rebooted starts kdcom
        afresh, §3.2): swapped under the lock, so the reader never sees half of it."""
        with self._lock:
            self.connection = connection
            self._acked.notify_all()

    # -- events ----------------------------------------------------------------------------

    def next_event(self, timeout: float | None = None, wake_on: EventKind | None = None
                   ) -> Event | None:
        """The next event in order, or None if none came within ``timeout``. With
        ``wake_on`` (event classes), the wait ends only for one of those: what came
        before it is still returned first, in order, but an ACK of each request, say,
        wakes no thread (waiting.Inbox)."""
        return self._inbox.next_event(timeout, wake_on)

    def wait_for(self, kind: EventKind, timeout: float, where: Callable[[Any], bool] | None = None
                 ) -> Event:
        """The next event of ``kind`` (with ``where(event)`` true, if given). The events
        before it stay queued, in order, for ``next_event``. TargetTimeout if none
        comes within ``timeout``; TransportError if the link closed first."""
        return self._inbox.wait_for(kind, timeout, where)

    @property
    def calls_in_progress(self) -> int:
        """Requests and syncs under way: what ``cancel`` would end (a console may
        cancel them on Ctrl+C, and break in when there are none)."""
        return len(self._calls)

    def cancel(self) -> None:
        """Make every ``request`` in progress (waiting for its turn, its ACK or its
        reply) and a ``sync`` in progress raise RequestCancelled within a poll
        interval. Callable from any thread and from a signal handler: it takes no lock.
        The link stays usable; a reply that comes later for a cancelled request is
        dropped, never handed to the next request."""
        for call in tuple(self._calls):
            call.cancel()
        self._wake_reader()

    # -- sending ---------------------------------------------------------------------------

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Run ``connection.<method>(...)`` under the link's lock and write its bytes."""
        with self._lock:
            self._check_open()
            out = getattr(self.connection, method)(*args, **kwargs)
            self._write(out)
            if self.connection.input_waiting:
                self._wake_reader()

    def send_breakin(self) -> None:
        self.call("send_breakin")

    def send_state_change(self, payload: bytes) -> None:
        self.call("send_state_change", payload)

    def send_debug_print(self, text: bytes) -> None:
        self.call("send_debug_print", text)

    def send_manipulate(self, api: int, u: dict | None = None, data: bytes = b"",
                        **fields: int) -> None:
        """A manipulate reply (target) or a request without waiting (host)."""
        self.call("send_manipulate", api, u, data, **fields)

    def wait_acked(self, timeout: float) -> None:
        """Block until nothing of ours awaits an ACK; TargetTimeout after ``timeout``."""
        self._wait_acked(timeout, None)

    def _wait_acked(self, timeout: float, call: Cancellable | None) -> None:
        """Wait for the ACK of what we sent. A caller (``call``) reads the port itself
        when nobody else is reading, as a request reads its own reply: the reader
        thread stands aside for a poll interval after each exchange, and a Continue
        sent just after a request would otherwise wait that out (20 ms a step)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._acked:
                if not self.connection.awaiting_ack:
                    return
                self._check_open()
                if call is not None:
                    call.check("waiting for the target's ACK")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TargetTimeout(f"the target did not acknowledge within {timeout:.1f} s")
                if call is None or self._io.locked():
                    self._acked.wait(min(left, self._poll_interval))
                    continue
            self._read_in_turn(blocking=False)

    def _cancellable(self) -> Registered:
        return Registered(self._calls, self._lock)

    # -- the reader thread -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise TransportError(f"link closed: {self.closed_reason}")

    def _write(self, data: bytes) -> None:
        if self._unsent:
            data, self._unsent = self._unsent + data, b""
        if data:
            try:
                self.port.write(data)
            except OSError as exc:
                self._finish(f"write failed: {exc}")
                raise TransportError(f"link closed: {exc}") from exc

    def _flush_unsent(self) -> None:
        """Write the ACKs held back, if the link is open (a failure closes it)."""
        with self._lock:
            if self._unsent and not self._closed.is_set():
                try:
                    self._write(b"")
                except TransportError:
                    pass

    def _wake_reader(self) -> None:
        """Make a read in progress return now, so that its pump takes the bytes the
        connection kept (a port without ``cancel_read`` waits out its timeout)."""
        cancel = getattr(self.port, "cancel_read", None)
        if cancel is not None:
            cancel()

    def _read(self) -> bytes:
        waiting = self.port.in_waiting
        chunk = self.port.read(max(1, waiting))
        if chunk and not waiting:
            # The first byte of a packet woke us and the rest has usually arrived
            # with it: one pump per packet, not two (bench/simtarget.py).
            waiting = self.port.in_waiting
            if waiting:
                chunk += self.port.read(waiting)
        return chunk

    def _read_and_pump(self) -> bool:
        """One read of the port and its pump, by whoever holds ``_io``; False once
        the link is closed."""
        try:
            if self._read_available is None:
                chunk = self._read()
            else:
                # Waiting on the peer's answer, poll for ``spin`` before sleeping.
                expecting = self._replies.waiting or self.connection.awaiting_ack
                chunk = self._read_available(1 << 16, self._spin if expecting else 0.0)
        except (OSError, ValueError, TypeError) as exc:
            # ValueError/TypeError: pyserial on a port closed under us.
            self._finish(f"end of file: {exc}")
            return False
        try:
            self._pump(chunk)
        except TransportError:
            return False
        return True

    def _run(self) -> None:
        while not self._closed.is_set():
            if self._callers or time.monotonic() < self._aside_until:
                self._reader_back.wait(self._poll_interval)
                self._reader_back.clear()
                continue
            if not self._read_in_turn(blocking=True):
                break

    def _read_in_turn(self, *, blocking: bool, waiter: Waiter | None = None) -> bool:
        """Read and pump once holding ``_io`` (unless another thread holds it and
        ``blocking`` is false, or ``waiter`` got its reply meanwhile), then hand the
        events on. False once the link is closed."""
        if not self._io.acquire(blocking):
            return not self._closed.is_set()
        self._io_owner = threading.get_ident()
        try:
            is_open = waiter is not None and waiter.reply is not None or self._read_and_pump()
        finally:
            self._io_owner = None
            self._io.release()
        self._drain()
        return is_open

    def _pump(self, chunk: bytes) -> None:
        answered: list[Waiter | Attach] = []
        try:
            with self._lock:
                conn = self.connection
                if chunk:
                    conn.receive_data(chunk)
                queued = False
                while (event := conn.next_event()) is not NEED_DATA:
                    # Tested here first: most events are for neither.
                    taken = (isinstance(event, ManipulateReply)
                             and self._hand_to_waiter(event, answered)
                             or self._attach is not None
                             and self._hand_to_attach(event, answered))
                    if not taken:
                        self._outbox.append(event)
                        queued = True
                    if isinstance(event, (Ack, Reset, SendAbandoned)):
                        self._acked.notify_all()
                # Every byte produced so far, then the clock's: check_timeouts returns both.
                out = conn.check_timeouts(time.monotonic())
                answering = queued and self.role is _TARGET and self._on_event is not None
                if answering:
                    self._flush_after_delivery = True
                if answering or (answered and self.role is _HOST):
                    self._unsent += out
                else:
                    self._write(out)
        finally:
            for waiter in answered:
                waiter.set()

    def _hand_to_waiter(self, event: ManipulateReply, answered: list[Waiter | Attach]) -> bool:
        waiter = self._replies.take(event, time.monotonic())
        if waiter is not None:
            answered.append(waiter)
        return waiter is not None

    def _hand_to_attach(self, event: Event, answered: list[Waiter | Attach]) -> bool:
        attach = self._attach
        if attach is None or not attach.take(event, time.monotonic()):
            return False
        answered.append(attach)
        self._attach = None
        return True

    def _drain(self) -> None:
        """Hand on the events read, in order; a thread holding ``_io`` leaves them to
        after it lets go. Whoever finds another thread handing on leaves it to that
        thread, which looks again before it stops."""
        if self._io_owner == threading.get_ident():
            return
        while self._outbox or self._flush_after_delivery:
            if not self._delivering.acquire(blocking=False):
                return
            try:
                while self._outbox:
                    self._deliver(self._outbox.popleft())
                if self._flush_after_delivery:
                    # ACKs held back while the callback answered: sent with the answer,
                    # or now if there was none.
                    self._flush_after_delivery = False
                    self._flush_unsent()
            finally:
                self._delivering.release()

    def _deliver(self, event: Event) -> None:
        if self._on_event is None:
            self._inbox.put(event)
            return
        try:
            self._on_event(event)
        except Exception:  # noqa: BLE001 - a callback bug must not kill the link
            log.exception("event callback failed on %r", event)

    def _finish(self, reason: str) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self.closed_reason = reason
            self._closed.set()
            self._reader_back.set()
            for waiter in self._replies.waiting:
                waiter.set()
            self._replies.waiting.clear()
            if self._attach is not None:
                self._attach.done.set()
            self._acked.notify_all()
            self._outbox.append(LinkClosed(reason=reason))
        log.debug("link closed: %s", reason)
        self._drain()
