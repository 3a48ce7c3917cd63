"""The event bus: Python callbacks on what the target and the console do.

What it does: ``EventBus.subscribe(kind, callback, owner=...)`` registers a callback for
one kind of event (``stop``, ``module_load``, ``module_unload``, ``dbgprint``,
``prompt``, ``connected``, ``progress``, or ``*`` for all); ``emit(kind, fields)`` calls
each in the order they subscribed. Every event the console emits comes through here
(``Console.emit_event``, which the session's pump and the executor already call), so
the bus needs no hook of its own in either. A callback that raises is reported in one
line naming its owner and the cause, and the others still run. ``remove_owner`` drops
every callback an unloaded extension left behind.
What it does not do: decide what the events mean or run callbacks on another thread:
``dbgprint`` arrives on the session's pump thread while the target runs, so its
callbacks must not read target memory; the others run on the command thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventBus", "Event", "Subscription", "EVENT_KINDS"]

log = logging.getLogger(__name__)

EVENT_KINDS = ("stop", "module_load", "module_unload", "dbgprint", "prompt", "connected",
               "progress")


@dataclass(frozen=True)
class Event:
    """One event: its kind and the fields the JSON renderer also gets."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


Callback = Callable[[Event], Any]


@dataclass(eq=False)
class Subscription:
    """What ``subscribe`` returns: ``remove()`` ends it."""

    kind: str
    callback: Callback
    owner: str | None
    bus: EventBus | None = None

    def remove(self) -> None:
        if self.bus is not None:
            self.bus.unsubscribe(self)
            self.bus = None


class EventBus:
    """Callbacks by event kind; a failing callback is reported, never propagated."""

    def __init__(self, report: Callable[[str], None] | None = None) -> None:
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self.report = report or (lambda line: log.warning("%s", line))

    def subscribe(self, kind: str, callback: Callback, *, owner: str | None = None) -> Subscription:
        if kind != "*" and kind not in EVENT_KINDS:
            raise ValueError(f"no event {kind!r}: one of {', '.join(EVENT_KINDS)} or '*'")
        subscription = Subscription(kind, callback, owner, self)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def remove_owner(self, owner: str) -> int:
        """Drop every callback ``owner`` subscribed; how many there were."""
        with self._lock:
            kept = [s for s in self._subscriptions if s.owner != owner]
            gone = len(self._subscriptions) - len(kept)
            self._subscriptions = kept
        return gone

    def subscribers(self, kind: str) -> list[Subscription]:
        with self._lock:
            return [s for s in self._subscriptions if s.kind in (kind, "*")]

    def emit(self, kind: str, fields: dict[str, Any]) -> None:
        subscribers = self.subscribers(kind)
        if not subscribers:
            return
        event = Event(kind, dict(fields))
        for subscription in subscribers:
            try:
                subscription.callback(event)
            except Exception as exc:  # one line; the console and the other hooks carry on
                log.debug("%s hook failed", kind, exc_info=exc)
                who = f"extension {subscription.owner}" if subscription.owner else "a hook"
                self.report(f"The {kind} hook of {who} failed: {type(exc).__name__}: {exc}")
