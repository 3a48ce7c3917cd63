"""The host's calls on a KdLink: ``sync`` (the attach) and ``request`` (a manipulate
request and its reply, with timeout, retries and cancellation).

A mixin of ``KdLink``: it drives the link's connection, locks and reader through the
link's own members (``_lock``, ``_io``, ``_replies``, ``_read_in_turn``, ...); the
reader thread, the pump and the writes stay in ``link.py``.
Spec: kd-protocol.md §2.5 (retries), §3.5 (host sync), §5.1 (replies).
"""

from __future__ import annotations

import logging
import time

from . import messages
from .constants import api_name
from .errors import LocalProtocolError, TargetTimeout, TransportError
from .events import ManipulateReply, StateChange
from .manipulate import NO_REPLY_APIS
from .state import Role
from .waiting import Attach, Cancellable, Waiter

__all__ = ["HostCalls", "RESET_ANSWER_GRACE"]

log = logging.getLogger(__name__)

# How long sync waits for the RESET answer behind a stop that came before it: the
# target reads our RESET once it has sent that stop, so the answer follows within a
# round trip; no answer by then means a running target discarded the RESET.
RESET_ANSWER_GRACE = 0.2


class HostCalls:
    """``sync`` and ``request`` for a host-role ``KdLink``."""

    def sync(self, timeout: float = 10.0, reset_interval: float = 1.0, *,
             breakin: bool = True) -> StateChange:
        """Host attach (§3.5): break in (unless ``breakin`` is false), RESET every
        ``reset_interval`` until a state change follows the target's answer to RESET,
        and return it; TargetTimeout if none comes within ``timeout``.

        Until the answer, the connection neither ACKs nor accepts what the target sent
        before reading the RESET (state.py Rule 11): the RESET makes the target send
        its packet again, stamped afresh (§2.2, §3.2). When RESET goes again:
        waiting.Attach. A slow target may answer several RESETs: the same stop that
        each later answer brings again is dropped (Rule 12). A host attaching to a
        target that already talks makes the link with ``start=False``: a stop read
        before ``sync`` would be queued beside the copy returned here, which goes to
        this call only; other events flow as usual.
        """
        if self.role is not Role.HOST:
            raise LocalProtocolError("only a host synchronises")
        deadline = time.monotonic() + timeout
        attach = Attach(reset_interval, RESET_ANSWER_GRACE)
        with self._cancellable() as call:
            call.sleeps_on(attach)
            try:
                with self._lock:
                    self._check_open()
                    self._attach = attach
                    self._send_attach_reset(attach, breakin, time.monotonic())
                # Started only now, a host made with start=False queues no stop that
                # this attach would supersede.
                self.start()
                while True:
                    call.check("sync")
                    now = time.monotonic()
                    with self._lock:
                        self._check_open()
                        if attach.state is not None:
                            return attach.state
                        if now >= attach.next_reset():
                            self._send_attach_reset(attach, breakin, now)
                    left = deadline - now
                    if left <= 0:
                        raise TargetTimeout(
                            f"no state change from the target within {timeout:.1f} s: check "
                            "the cable, the port, the baud rate and that the target booted "
                            "with /DEBUG")
                    # Set by the stop taken, an early stop, a RESET answer, the link
                    # closing, or cancel().
                    attach.done.wait(max(0.0, min(left, attach.next_reset() - now)))
            finally:
                with self._lock:
                    if self._attach is attach and attach.state is None:
                        self._attach = None
                        # Given up: what the target sends from now on is taken as usual.
                        self.connection.awaiting_reset_answer = False

    def _send_attach_reset(self, attach: Attach, breakin: bool, now: float) -> None:
        attach.reset_sent(now)
        out = self.connection.send_breakin() if breakin else b""
        self._write(out + self.connection.send_reset())

    def request(self, api: int, u: dict | None = None, data: bytes = b"", *,
                timeout: float = 5.0, retries: int = 2, processor: int = 0) -> ManipulateReply | None:
        """Send a manipulate request and return its reply (host only).

        Each try waits ``timeout`` seconds; a try with no reply sends the request again
        as a new packet, up to ``retries`` more times, then TargetTimeout. APIs that have
        no reply (Continue, Continue2, Reboot, ...; §5.1) return None once ACKed.
        Requests from several threads take turns: a target in KdpSendWaitContinue
        answers one at a time, and a second request arriving while its reply awaits
        an ACK would be taken for that ACK (state.py Rule 7).
        """
        if self.role is not Role.HOST:
            raise LocalProtocolError("only a host sends manipulate requests")
        payload = messages.build_manipulate(api, u, data, processor=processor)
        with self._cancellable() as call:
            # Our turn: a cancel while we wait for it counts too. The API's name is
            # made only for a cancel: one request's CPU is a few tens of µs.
            while not self._exchange.acquire(timeout=self._poll_interval):
                if call.cancelled:
                    call.check(api_name(api))
            try:
                if call.cancelled:
                    call.check(api_name(api))
                if self._replies.owed:
                    self._settle_cancelled(call, api_name(api))
                if api in NO_REPLY_APIS:
                    self.call("send_manipulate_payload", payload)
                    self._wait_acked(timeout * (retries + 1), call)
                    self._aside_until = 0.0
                    self._reader_back.set()
                    return None
                return self._exchange_reply(api, payload, timeout, retries, call)
            finally:
                self._exchange.release()

    def _settle_cancelled(self, call: Cancellable, what: str) -> None:
        """Wait for the replies still owed to cancelled requests. The target answers
        one request at a time (KdpSendWaitContinue), and our next request sent before
        that reply came would be taken for its ACK and lost (state.py Rule 7)."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._replies.owed = [ghost for ghost in self._replies.owed if ghost.until > now]
                if not self._replies.owed:
                    return
                ghost = self._replies.owed[0]
            call.sleeps_on(ghost)
            try:
                self._await_reply(ghost, ghost.until - now, call)
            finally:
                call.sleeps_on(None)
            call.check(what)

    def _exchange_reply(self, api: int, payload: bytes, timeout: float, retries: int,
                        call: Cancellable) -> ManipulateReply:
        for attempt in range(retries + 1):
            waiter = Waiter(payload)
            with self._lock:
                self._check_open()
                self._replies.waiting.append(waiter)
                self._callers += 1
                try:
                    self._write(self.connection.send_manipulate_payload(payload))
                except (TransportError, LocalProtocolError):
                    # Not sent (the link closed, or the phase forbids it: a target that
                    # prompted in the middle of a request): nothing to wait for, and the
                    # reader thread, which steps aside for callers, must read again.
                    self._callers -= 1
                    if waiter in self._replies.waiting:   # a closing link empties it
                        self._replies.waiting.remove(waiter)
                    raise
            call.sleeps_on(waiter)
            try:
                self._await_reply(waiter, timeout, call)
            finally:
                call.sleeps_on(None)
                with self._lock:
                    if waiter in self._replies.waiting:
                        self._replies.waiting.remove(waiter)
                        if call.cancelled and waiter.reply is None:
                            # Its reply may still come: drop it then (not the next
                            # request's, even one asking the same).
                            waiter.until = time.monotonic() + timeout
                            self._replies.owed.append(waiter)
                    self._callers -= 1
                    self._aside_until = time.monotonic() + self._poll_interval
            if waiter.reply is not None:
                return waiter.reply
            self._check_open()
            call.check(api_name(api))
            log.debug("%s: try %d got no reply", api_name(api), attempt + 1)
        raise TargetTimeout(f"{api_name(api)}: no reply from the target after {retries + 1} "
                            f"tries of {timeout:.1f} s; the target may be running or the "
                            "line dead")

    def _await_reply(self, waiter: Waiter, timeout: float, call: Cancellable) -> bool:
        """Wait for ``waiter``'s reply, reading the port ourselves when the reader
        thread is not in the middle of a read (then it hands the reply over)."""
        deadline = time.monotonic() + timeout
        while waiter.reply is None:
            left = deadline - time.monotonic()
            if left <= 0 or self._closed.is_set() or call.cancelled:
                return False
            if self._io.locked():
                waiter.wait(min(left, self._poll_interval))
            else:
                self._read_in_turn(blocking=False, waiter=waiter)
        return True
