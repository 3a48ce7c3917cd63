"""The target's pump: the one place that touches both the port and the KdConnection.

What it does: one reader thread reads ``max(1, in_waiting)`` bytes at a time, feeds the
connection, writes what the connection answers (ACKs, RESENDs, RESETs, retransmissions
from ``check_timeouts``), reports break-in bytes through a callback at once (the CPU may
be running), and queues every other event for the session thread. Sends from the
session go through ``send`` under the same lock. End of file (the peer went away, the
port was closed) ends the pump and wakes every waiter.
What it does not do: decide anything about the protocol (KdConnection) or the machine
(session.py). Time comes from time.monotonic here only.
Spec: kd-protocol.md §2.5 (retries and timeouts), simulated-target.md §8.2 (EOF rules).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

import serial

from kdcon.protocol import NEED_DATA, KdConnection
from kdcon.protocol.events import BreakIn, Event

__all__ = ["TargetPump", "LinkGone"]

log = logging.getLogger(__name__)

_POLL = 0.05  # reader wake-up period: drives check_timeouts and notices a close


class LinkGone(Exception):
    """The link ended (EOF or close) while the session waited for the host."""


class TargetPump:
    """Reader thread + send lock over one port for one TARGET connection."""

    def __init__(self, port: Any, conn: KdConnection, on_breakin: Callable[[], None]) -> None:
        self.port = port
        self.conn = conn
        self._on_breakin = on_breakin
        self._lock = threading.Lock()
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="kdsim-reader",
                                        daemon=True)
        try:
            port.timeout = _POLL
        except (AttributeError, ValueError, serial.SerialException):
            log.debug("port %r keeps its own read timeout", port)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def start(self) -> None:
        self._thread.start()

    def replace_connection(self, conn: KdConnection) -> None:
        """A rebooted target starts kdcom afresh: new ids, nothing pending (§3.2)."""
        with self._lock:
            self.conn = conn
            while not self._events.empty():
                self._events.get_nowait()

    def send(self, method: Callable[..., bytes], *args: Any, **kwargs: Any) -> None:
        """Call a ``KdConnection.send_*`` method and write what it returns."""
        if self.closed:
            raise LinkGone("the link is closed")
        with self._lock:
            out = method(*args, **kwargs) + self.conn.data_to_send()
            self._write(out)

    def wait(self, timeout: float | None = None) -> Event:
        """The next event from the host; LinkGone at EOF; TimeoutError after ``timeout``."""
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no event from the host") from None
        if event is None:
            self._events.put(None)  # every later waiter sees the end too
            raise LinkGone("the link closed")
        return event

    def close(self) -> None:
        """Stop the reader and wake every waiter; the port is the caller's to close."""
        self._closed.set()
        cancel = getattr(self.port, "cancel_read", None)
        if cancel is not None:
            try:
                cancel()
            except (OSError, serial.SerialException):
                pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._events.put(None)

    # -- reader thread -------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.port.write(data)
        except (OSError, serial.SerialException) as exc:
            log.debug("write failed: %s", exc)
            self._closed.set()
            self._events.put(None)

    def _read_loop(self) -> None:
        try:
            while not self._closed.is_set():
                data = self._read_some()
                with self._lock:
                    if data:
                        self.conn.receive_data(data)
                        self._drain()
                    self._write(self.conn.check_timeouts(time.monotonic()))
                    self._drain()
        except (EOFError, OSError, serial.SerialException, TypeError, AttributeError) as exc:
            # TypeError/AttributeError: pyserial ports raise them when closed under a read.
            log.debug("reader ends: %s", exc)
        finally:
            self._closed.set()
            self._events.put(None)

    def _read_some(self) -> bytes:
        waiting = self.port.in_waiting
        return self.port.read(max(1, waiting))

    def _drain(self) -> None:
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, BreakIn):
                self._on_breakin()
            else:
                self._events.put(event)
        self._write(self.conn.data_to_send())
