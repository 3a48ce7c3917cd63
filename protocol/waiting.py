"""What the threads of a KdLink wait on: the event inbox, a reply, an attach, a turn.

What it does: ``Inbox`` holds delivered events in order; ``next_event`` takes the
oldest and ``wait_for`` takes the oldest of a kind, leaving every other event queued.
``Waiter`` is one request awaiting its reply, ``Attach`` one ``sync`` awaiting its
stop, and ``Cancellable`` (registered by ``Registered``) a call that ``KdLink.cancel``
may interrupt. What it
does not do: read the port or decide which event answers what (link.py does).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .errors import RequestCancelled, TargetTimeout, TransportError
from .events import DroppedPacket, Event, LinkClosed, ManipulateReply, Reset, StateChange
from .messages import reply_matches

__all__ = ["Inbox", "Waiter", "Replies", "Attach", "Cancellable", "Registered"]

EventKind = type[Event] | tuple[type[Event], ...]


class Inbox:
    """Events in the order they were read, for the threads that consume them. A thread
    waiting says which events wake it; one that no waiter wants is queued without a
    wake-up (a console's pump woken for the ACK of every request costs the request a
    thread hand-over, bench/simtarget.py)."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        self._changed = threading.Condition(threading.Lock())
        # What each thread waiting now wakes for: event classes, or None for any.
        self._waking: list[EventKind | None] = []

    def put(self, event: Event) -> None:
        with self._changed:
            self._events.append(event)
            for kind in self._waking:
                if kind is None or isinstance(event, kind):
                    self._changed.notify_all()
                    break

    def next_event(self, timeout: float | None = None, wake_on: EventKind | None = None
                   ) -> Event | None:
        """The oldest event, or None if none came within ``timeout``. With ``wake_on``
        (event classes), a wait for the first event ends only when one of those comes
        (or the timeout passes); the others that came meanwhile are returned first, in
        order, as this and the next calls return at once while events are queued."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self._events:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._sleep(wake_on, left)
            return self._events.popleft()

    def _sleep(self, wake_on: EventKind | None, timeout: float | None) -> None:
        """Wait, holding the condition, until put() brings what ``wake_on`` names."""
        self._waking.append(wake_on)
        try:
            self._changed.wait(timeout)
        finally:
            self._waking.remove(wake_on)

    def wait_for(self, kind: EventKind, timeout: float, where=None) -> Event:
        """The oldest event of ``kind`` (for which ``where(event)`` is true, if given),
        taken out of the inbox; the events before it stay, in order, for
        ``next_event``. TargetTimeout if none comes within ``timeout``; TransportError
        once the link closed before one came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, event in enumerate(self._events):
                    if isinstance(event, kind) and (where is None or where(event)):
                        del self._events[index]
                        return event
                    if isinstance(event, LinkClosed):
                        raise TransportError(f"link closed: {event.reason}")
                left = deadline - time.monotonic()
                if left <= 0:
                    names = kind.__name__ if isinstance(kind, type) else "/".join(
                        k.__name__ for k in kind)
                    raise TargetTimeout(f"no {names} from the target within {timeout:.1f} s")
                # Woken by its kind, or by the end of the link (raised above).
                self._sleep((*(kind if isinstance(kind, tuple) else (kind,)), LinkClosed),
                            left)


class Cancellable:
    """One ``request`` or ``sync`` in progress. ``cancel`` may come from any thread,
    a signal handler included: it sets a flag and wakes what the call sleeps on,
    taking no lock of the link's."""

    __slots__ = ("cancelled", "_wake")

    def __init__(self) -> None:
        self.cancelled = False
        self._wake: Waiter | Attach | None = None

    def sleeps_on(self, thing: Waiter | Attach | None) -> None:
        self._wake = thing
        if self.cancelled and thing is not None:
            thing.set()

    def cancel(self) -> None:
        self.cancelled = True
        wake = self._wake
        if wake is not None:
            wake.set()

    def check(self, what: str) -> None:
        if self.cancelled:
            raise RequestCancelled(f"{what}: cancelled")


class Waiter:
    """One request awaiting its reply. Its bare lock is taken at birth and released
    once the reply is in (or the request is cancelled): waking a caller costs one C
    call on each side, not the Python code of a ``threading.Event``
    (bench/simtarget.py). ``until``: how long a reply, once cancelled, is still
    expected (and dropped when it comes)."""

    __slots__ = ("request", "reply", "until", "_lock")

    def __init__(self, request: bytes, until: float = 0.0) -> None:
        self.request = request
        self.reply: ManipulateReply | None = None
        self.until = until
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        if self._lock.locked():
            try:
                self._lock.release()
            except RuntimeError:
                pass  # a racing set() released it first

    def wait(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=timeout)


class Replies:
    """Requests awaiting their replies (``waiting``), and cancelled requests whose
    reply is still owed (``owed``, until each one's ``until``): that reply is
    dropped when it comes, never handed to a later request that asks the same."""

    def __init__(self) -> None:
        self.waiting: list[Waiter] = []
        self.owed: list[Waiter] = []

    def take(self, reply: ManipulateReply, now: float) -> Waiter | None:
        """The waiter ``reply`` answers, out of the lists, with its reply set; None if
        no request awaits it. Replies come in the order of the requests (a target
        answers one at a time), so one owed to a cancelled request comes first."""
        if self.owed:
            self.owed = [waiter for waiter in self.owed if waiter.until > now]
        for book in (self.owed, self.waiting):
            for waiter in book:
                if reply_matches(waiter.request, reply):
                    book.remove(waiter)
                    waiter.reply = reply
                    return waiter
        return None


class Attach:
    """What ``sync`` waits for: the target's RESET reply, then one state change. The
    same stop said again after late replies to earlier RESETs is the connection's to
    drop (state.py Rule 12). ``done`` wakes ``sync`` whenever it has something to do.

    When RESET goes again: ``interval`` after the last, and no sooner than
    ``interval`` after an answer (a target that first sends something else, such as
    a reply the last debugger never ACKed, has nothing pending after it, and the next
    RESET brings the stop); but ``grace`` after a stop that came before any answer
    (the answer follows such a stop closely, unless a running target discarded the
    RESET).
    """

    def __init__(self, interval: float, grace: float) -> None:
        self.interval = interval
        self.grace = grace
        self.done = threading.Event()
        self.state: StateChange | None = None
        self._due = 0.0
        self._early_at: float | None = None

    def set(self) -> None:
        self.done.set()

    def reset_sent(self, now: float) -> None:
        self.done.clear()
        self._early_at = None
        self._due = now + self.interval

    def next_reset(self) -> float:
        if self._early_at is not None:
            return min(self._due, self._early_at + self.grace)
        return self._due

    def take(self, event: Event, now: float) -> bool:
        """Note what ``event`` means to the attach; True if it is the stop awaited
        (the connection drops stops that come before a RESET answer)."""
        if isinstance(event, Reset):
            self._due = max(self._due, now + self.interval)
            self.done.set()
        elif isinstance(event, DroppedPacket) and event.reason == "before_reset_answer":
            if self._early_at is None:
                self._early_at = now
            self.done.set()
        elif isinstance(event, StateChange):
            self.state = event
            return True
        return False


class Registered:
    """``with Registered(calls, lock) as call``: ``call`` is in ``calls``, where
    ``KdLink.cancel`` finds it, while the block runs."""

    def __init__(self, calls: list[Cancellable], lock: threading.RLock) -> None:
        self._calls = calls
        self._lock = lock
        self.call = Cancellable()

    def __enter__(self) -> Cancellable:
        with self._lock:
            self._calls.append(self.call)
        return self.call

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._calls.remove(self.call)
