"""KdConnection: the sans-I/O KD protocol engine for one side of one link.

What it does: takes received bytes (``receive_data``), returns events one at a time
(``next_event`` -> event or NEED_DATA), returns the bytes to write from every ``send_*``
method and from ``check_timeouts(now)`` / ``data_to_send()``: ACKs, RESENDs, RESETs,
retransmissions and queued packets. Both roles: ``Role.HOST`` behaves like WinDbg/kd,
``Role.TARGET`` like kdcom + kd64 (ReactOS kddll.c / kdapi.c). What it does not do:
read a clock, sleep, or touch a port; time only arrives as ``now`` in
``check_timeouts``. The rules it applies are the numbered invariants and tables in
state.py, over the one ``ConnectionState`` it keeps (``state``); the framing is
buffer.py; what becomes of a good data packet is the table in datarules.py. Every
data packet goes out through ``send(kind, payload)``; the ``send_*`` methods build
the payload.
Spec: kd-protocol.md §2 (ids, ACK/RESEND/RESET, retries, resync), §3 (sequences),
§5.1 (replies), §6 (debug I/O), §12 (target checklist).

Using the TARGET role (what a kd stub does; every step returns bytes to write):

1. Running: feed received bytes and call ``next_event``; only ``BreakIn`` comes out
   (Rule 9), and what follows it is read once the target sends its state change. ``send_debug_print`` / ``send_state_change(load symbols)`` may be sent
   at any time; they are given up after the retries if no host answers (Rule 8:
   ``SendAbandoned``, ``debugger_present`` False).
2. Break in: on ``BreakIn`` (or a breakpoint), ``send_state_change(payload)`` with a
   payload from ``messages.build_exception_state_change``. The phase becomes BROKEN.
3. Broken: each ``ManipulateRequest`` gets exactly one ``send_manipulate`` reply of
   the same ApiNumber echoing the request union (``dict(event.message.u, ...)``),
   except the APIs in ``manipulate.NO_REPLY_APIS``. Continue/Continue2/Reboot/
   CauseBugCheck put the phase back to RUNNING by themselves; a RESEND or RESET with
   nothing pending makes the connection send the state change again (Rule 6).
4. ``send_debug_prompt`` waits (phase AWAIT_PROMPT_REPLY) for a ``PromptReply``;
   ``send_file_io`` waits for the host's ``FileIo`` answer; both return to the phase
   they started from.
5. Call ``check_timeouts(now)`` regularly (every few tens of ms) and write what it
   returns: retransmissions and RESENDs for truncated packets come from there.

Timing: a packet's ACK deadline starts at the first ``check_timeouts`` after it was
produced and lasts ``ack_timeout`` plus the packet's own time on the line
(``len * byte_time``, 86.8 µs a byte at 115200 8N1, §10.2). A started packet whose
bytes stop arriving for ``byte_timeout`` is truncated: RESEND (§2.3).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from . import messages
from .buffer import BadFrame, BreakInFrame, ControlFrame, DataFrame, FrameBuffer, GarbageFrame
from .constants import (
    BREAKIN_PACKET_BYTE,
    INITIAL_PACKET_ID,
    KD_DEFAULT_RETRIES,
    SYNC_PACKET_ID,
    PacketType,
)
from .datarules import DATA_RULES, advance_phase, classify, take_id
from .errors import LocalProtocolError
from .events import (
    NEED_DATA,
    Ack,
    BadPacket,
    BreakIn,
    DroppedPacket,
    Event,
    Garbage,
    NeedData,
    Resend,
    Reset,
    SendAbandoned,
    StateChange,
    UnknownPacket,
)
from .manipulate import STOP_AWAITING_APIS
from .packet import build_control_packet, build_data_packet, check_payload_size
from .state import (
    EXCHANGES,
    PARSING_PHASES,
    PHASE_AFTER_SEND,
    RETURN,
    SENDERS,
    ConnectionState,
    Message,
    Outgoing,
    Phase,
    Role,
    ack_id,
    droppable,
    next_id,
    same_id,
)

__all__ = ["KdConnection", "Role", "Phase", "NEED_DATA"]

log = logging.getLogger(__name__)

P = PacketType
_ACK, _RESEND, _RESET = (P.PACKET_TYPE_KD_ACKNOWLEDGE, P.PACKET_TYPE_KD_RESEND,
                         P.PACKET_TYPE_KD_RESET)
# The roles by module name: a member looked up on its Enum class costs ~50 ns, and
# the path of every packet compares roles a dozen times.
_HOST, _TARGET = Role.HOST, Role.TARGET


def _in_state(name: str, *, settable: bool = True) -> property:
    """A connection attribute that is its ``state``'s."""
    def get(self: KdConnection) -> Any:
        return getattr(self.state, name)

    def put(self: KdConnection, value: Any) -> None:
        setattr(self.state, name, value)

    return property(get, put if settable else None, doc=f"``state.{name}``")


class KdConnection:
    """One side of a KD link. See the module docstring and state.py's rules."""

    def __init__(self, role: Role, *, retries: int = KD_DEFAULT_RETRIES,
                 ack_timeout: float = 0.5, byte_time: float = 10 / 115200,
                 byte_timeout: float = 0.25) -> None:
        self.role = role
        self.retries = retries
        self.ack_timeout = ack_timeout
        self.byte_time = byte_time
        self.byte_timeout = byte_timeout
        self.state = ConnectionState.initial(role)
        self._frames = FrameBuffer()
        self._events: deque[Event] = deque()
        self._out = bytearray()

    # -- the state, as callers read it ---------------------------------------------------

    phase = _in_state("phase")
    current_id = _in_state("current_id", settable=False)
    remote_id = _in_state("remote_id", settable=False)
    stats = _in_state("stats", settable=False)
    debugger_present = _in_state("debugger_present", settable=False)
    # KdLink.sync clears it when it gives up waiting for the answer (Rule 11).
    awaiting_reset_answer = _in_state("awaiting_reset_answer")

    @property
    def awaiting_ack(self) -> bool:
        return self.state.pending is not None

    @property
    def input_waiting(self) -> bool:
        """Received bytes wait to be read now: ``next_event`` has work without new data
        (a target kept them while it ran, Rule 9, and has just sent)."""
        return bool(self._frames.pending) and not self.state.polling

    # -- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Store received bytes; ``next_event`` cuts them into events."""
        self._frames.receive_data(data)

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA. Bytes to send may appear in data_to_send()."""
        events = self._events
        if events:
            return events.popleft()
        state = self.state
        frames = self._frames
        while not events:
            if state.polling:
                if state.breakin_taken is None:
                    self._poll_breakin()
                if not events:
                    return NEED_DATA
                break
            frame = frames.next_frame()
            if frame is None:
                return NEED_DATA
            self._on_frame(frame)
        return events.popleft()

    def check_timeouts(self, now: float) -> bytes:
        """Apply the clock: truncated packets, ACK timeouts, retries. Bytes to send."""
        self._check_truncation(now)
        if self.state.breakin_mark is not None:
            self._check_lone_breakin(now)
        pending = self.state.pending
        if pending is not None:
            if pending.deadline is None:
                pending.deadline = now + self._ack_wait(pending)
            elif now >= pending.deadline:
                self._on_ack_timeout(pending, now)
        return self.data_to_send()

    def data_to_send(self) -> bytes:
        """Every byte produced since the last call (ACKs, RESENDs, retransmissions)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- sending -----------------------------------------------------------------------

    def send(self, kind: Message, payload: bytes, *, packet_type: int | None = None) -> bytes:
        """Send a data packet carrying ``kind`` (who may, and of which packet type:
        state.SENDERS; in which phase: PHASE_AFTER_SEND). A host's manipulate request
        that awaits a stop (Continue, ...) counts as RESUME. LocalProtocolError when
        this side cannot send it now."""
        state = self.state
        api = int.from_bytes(payload[:4], "little")
        if kind is Message.MANIPULATE and self.role is _HOST and api in STOP_AWAITING_APIS:
            kind = Message.RESUME
        default_type, sender = SENDERS[kind]
        if sender is not None and sender is not self.role:
            raise LocalProtocolError(f"only the {sender.value} role sends {kind.value}")
        before = state.phase
        after = PHASE_AFTER_SEND.get((self.role, before, kind))
        if after is None:
            if before is Phase.TARGET_RUNNING:
                raise LocalProtocolError(
                    "the target is running: break in before sending a manipulate request")
            raise LocalProtocolError(
                f"{self.role.value} cannot send {kind.value} while {before.value}")
        check_payload_size(payload)
        if after == RETURN:
            state.phase = state.return_to[0]
        else:
            assert isinstance(after, Phase)
            if after is not before and self.role is _TARGET:
                state.return_to = (before, state.exchange)
            state.phase = after
        out = Outgoing(packet_type or default_type, payload, kind, api, before)
        if self.role is _TARGET and kind in EXCHANGES:
            state.exchange = out
        if state.pending is None:
            self._transmit(out)
        else:
            state.queue.append(out)
        return self.data_to_send()

    def send_manipulate(self, api: int, u: dict | None = None, data: bytes = b"", *,
                        return_status: int = 0, processor: int = 0,
                        processor_level: int = 0) -> bytes:
        """A manipulate request (host) or reply (target); see messages.build_manipulate."""
        return self.send(Message.MANIPULATE, messages.build_manipulate(
            api, u, data, return_status=return_status, processor=processor,
            processor_level=processor_level))

    def send_manipulate_payload(self, payload: bytes) -> bytes:
        """A ready DBGKD_MANIPULATE_STATE64 payload (e.g. a request echoed as a reply)."""
        return self.send(Message.MANIPULATE, payload)

    def send_state_change(self, payload: bytes, *, legacy32: bool = False) -> bytes:
        """A state change (target only); build it with messages.build_*_state_change."""
        return self.send(Message.STATE_CHANGE, payload, packet_type=(
            P.PACKET_TYPE_KD_STATE_CHANGE32 if legacy32 else None))

    def send_debug_print(self, text: bytes, **fields: int) -> bytes:
        """DbgPrint (target only): wait for the ACK and nothing else (§6.2)."""
        return self.send(Message.DEBUG_PRINT, messages.build_debug_print(text, **fields))

    def send_debug_prompt(self, prompt: bytes, max_length: int, **fields: int) -> bytes:
        """DbgPrompt (target only): the host answers with a PromptReply (§6.3)."""
        return self.send(Message.DEBUG_PROMPT,
                         messages.build_debug_prompt(prompt, max_length, **fields))

    def send_prompt_reply(self, text: bytes) -> bytes:
        """The host's answer to a DebugPrompt (§6.3 step 4)."""
        return self.send(Message.PROMPT_REPLY, messages.build_prompt_reply(text))

    def send_file_io(self, api: int, status: int, u: dict, data: bytes = b"") -> bytes:
        """FILE_IO: a request from the target, or the host's answer to one (§7.1)."""
        kind = Message.FILE_IO_REQUEST if self.role is Role.TARGET else Message.FILE_IO_REPLY
        return self.send(kind, messages.build_file_io(api, status, u, data))

    def send_breakin(self) -> bytes:
        """The lone break-in byte 0x62 (host only, §3.4)."""
        if self.role is not Role.HOST:
            raise LocalProtocolError("only the host role sends break-in")
        self._out.append(BREAKIN_PACKET_BYTE)
        return self.data_to_send()

    def send_reset(self) -> bytes:
        """RESET: both ids back to INITIAL (Rule 5); the peer answers RESET."""
        state = self.state
        state.reset_ids()
        self._out += build_control_packet(_RESET, 0)
        state.stats["resets_sent"] += 1
        if self.role is Role.HOST:
            state.awaiting_reset_answer = True
            # Whatever the target reports after the answer is taken afresh (Rule 12).
            state.phase = Phase.UNKNOWN
            state.held_stop = None
        return self.data_to_send()

    # -- internals: sending --------------------------------------------------------------

    def _transmit(self, out: Outgoing) -> None:
        state = self.state
        if state.breakin_taken is not None or not state.started:
            # Rule 9: the bytes kept for this exchange are read from now on, and they
            # have not been arriving late: the truncation clock starts afresh.
            state.started = True
            state.breakin_taken = None
            state.last_progress = None
        out.packet_id = state.current_id
        out.wire = build_data_packet(out.packet_type, out.packet_id, out.payload)
        out.deadline = None
        state.pending = out
        self._out += out.wire

    def _acknowledged(self) -> None:
        """Our pending packet got its ACK, or what stands for it (Rule 7): the id
        moves on and the next queued packet goes."""
        state = self.state
        state.current_id = next_id(state.current_id)
        state.pending = None
        if state.queue:
            self._transmit(state.queue.popleft())

    def _retransmit(self) -> None:
        pending = self.state.pending
        assert pending is not None
        pending.deadline = None
        self._out += pending.wire
        self.state.stats["retransmissions"] += 1

    def _ack_wait(self, out: Outgoing) -> float:
        return self.ack_timeout + len(out.wire) * self.byte_time

    def _on_ack_timeout(self, pending: Outgoing, now: float) -> None:
        state = self.state
        pending.timeouts += 1
        state.stats["ack_timeouts"] += 1
        give_up = pending.timeouts >= self.retries and (
            self.role is Role.HOST or droppable(pending.packet_type, pending.api))
        if not give_up:
            self._retransmit()
            pending.deadline = now + self._ack_wait(pending)
            return
        # Rule 8: the three droppable packets (target) or anything (host) is given up.
        state.pending = None
        state.stats["abandoned"] += 1
        if self.role is Role.TARGET:
            state.debugger_present = False
            state.current_id = INITIAL_PACKET_ID | SYNC_PACKET_ID
            state.remote_id = INITIAL_PACKET_ID
            if state.exchange is pending:
                state.exchange = None
                state.phase = pending.phase_before
        log.debug("gave up packet type %d id %#x", pending.packet_type, pending.packet_id)
        self._events.append(SendAbandoned(packet_type=pending.packet_type,
                                          packet_id=pending.packet_id,
                                          payload=pending.payload, reason="no_ack"))
        if state.queue:
            self._transmit(state.queue.popleft())

    # -- internals: receiving -------------------------------------------------------------

    def _poll_breakin(self) -> None:
        """Rule 9: KdPollBreakIn. What comes before a break-in byte is discarded; the
        byte is taken, and what follows it waits, input like any other, for the
        exchange the break-in starts (a host attaching sends break-in and RESET in one
        write). A target that has sent nothing yet discards nothing."""
        frames = self._frames
        found = frames.breakin_at(self.state.poll_from)
        if found is None:
            if self.state.started:
                self.state.stats["discarded_while_running"] += frames.discard()
            else:
                self.state.poll_from = frames.received
            return
        if self.state.started:
            self.state.stats["discarded_while_running"] += frames.discard(found)
            frames.discard(found + 1)
        else:
            self.state.poll_from = found + 1  # reported now, not again when parsed
        self.state.breakin_taken = found
        self._events.append(BreakIn(offset=found))

    def _check_truncation(self, now: float) -> None:
        frames = self._frames
        mark = frames.received
        if self.state.last_progress is None or self.state.last_progress[0] != mark:
            self.state.last_progress = (mark, now)
            return
        if frames.pending and now - self.state.last_progress[1] >= self.byte_timeout:
            if self.state.polling:
                return
            frame = frames.expire_partial()
            if frame is not None:
                self._on_frame(frame)
            self.state.last_progress = (mark, now)

    def _check_lone_breakin(self, now: float) -> None:
        """Rule 13: a break-in byte and then silence, while we wait in an exchange with
        nothing pending: say again what we wait with. A byte of line noise that happens
        to be 0x62 is followed by more bytes and changes nothing."""
        mark = self.state.breakin_mark
        progress = self.state.last_progress
        if (self._frames.received != mark or self.state.pending is not None
                or self.state.phase not in PARSING_PHASES):
            self.state.breakin_mark = None
        elif progress is not None and now - progress[1] >= self.byte_timeout:
            self.state.breakin_mark = None
            self.state.stats["breakin_repeats"] += 1
            self._repeat()

    def _on_frame(self, frame: DataFrame | ControlFrame | BreakInFrame | GarbageFrame
                  | BadFrame) -> None:
        if isinstance(frame, DataFrame):
            self.state.debugger_present = True
            self._on_data(frame)
        elif isinstance(frame, ControlFrame):
            self.state.debugger_present = True
            self._on_control(frame)
        elif isinstance(frame, GarbageFrame):
            self.state.stats["garbage_bytes"] += len(frame.data)
            self._events.append(Garbage(offset=frame.offset, raw=frame.data))
        elif isinstance(frame, BreakInFrame):
            if frame.offset < self.state.poll_from:
                return  # reported by the poll while we had sent nothing yet (Rule 9)
            if self.role is Role.TARGET:
                if self.state.phase in PARSING_PHASES:
                    # Rule 13: maybe the host's break-in finding us waiting on it.
                    self.state.breakin_mark = self._frames.received
                self._events.append(BreakIn(offset=frame.offset))
            else:
                self.state.stats["garbage_bytes"] += 1
                self._events.append(Garbage(offset=frame.offset,
                                            raw=bytes([BREAKIN_PACKET_BYTE])))
        else:
            self.state.debugger_present = True
            self._reject(frame.offset, frame.reason, frame.packet_type, frame.packet_id,
                         frame.raw)

    def _reject(self, offset: int, reason: str, ptype: int | None, pid: int | None,
                raw: bytes) -> None:
        self.state.stats["bad_packets"] += 1
        self._send_resend()
        self._events.append(BadPacket(offset=offset, reason=reason, packet_type=ptype,
                                      packet_id=pid, raw=raw))

    def _send_resend(self) -> None:
        self.state.stats["resends_sent"] += 1
        self._out += build_control_packet(_RESEND, 0)

    def _on_control(self, frame: ControlFrame) -> None:
        ptype, pid = frame.packet_type, frame.packet_id
        if ptype == _ACK:
            self._on_ack(pid)
        elif ptype == _RESEND:
            self.state.stats["resends_received"] += 1
            self._events.append(Resend(packet_id=pid))
            self._repeat()
        elif ptype == _RESET:
            self.state.stats["resets_received"] += 1
            self.state.reset_ids()
            self.state.awaiting_reset_answer = False
            if self.role is Role.TARGET:
                self._out += build_control_packet(_RESET, 0)
            self._events.append(Reset(packet_id=pid))
            if self.state.pending is not None:
                # Re-stamp with the fresh id (§2.2: "sent again with 0x80800000").
                pending, self.state.pending = self.state.pending, None
                self._transmit(pending)
            else:
                self._repeat()
        else:
            self._events.append(UnknownPacket(kind="control", packet_type=ptype,
                                              packet_id=pid, raw=b""))

    def _on_data(self, frame: DataFrame) -> None:
        """A good data packet: the verdict of datarules.DATA_RULES, applied."""
        state = self.state
        ptype, pid, payload = frame.packet_type, frame.packet_id, frame.payload
        if len(payload) < messages.MIN_PAYLOAD.get(ptype, 0):
            self._reject(frame.offset, "too_short", ptype, pid, payload)
            return
        situation, event = classify(state, frame)
        verdict = DATA_RULES[(self.role, state.pending is not None, situation)]
        if verdict.answer == _ACK:
            self._out += build_control_packet(_ACK, ack_id(self.role, pid))
        elif verdict.answer == _RESEND:
            self._send_resend()
        if verdict.counter is not None:
            state.stats[verdict.counter] += 1
        if verdict.take_id:
            take_id(state, frame)
        if verdict.acks_ours:
            state.stats["implicit_acks"] += 1
            self._acknowledged()
        if not verdict.deliver:
            self._events.append(DroppedPacket(reason=verdict.reason, packet_type=ptype,
                                              packet_id=pid, raw=payload))
            return
        if event is None:
            event = messages.decode_payload(ptype, pid, payload,
                                            from_host=self.role is _TARGET)
        if isinstance(event, StateChange):
            state.held_stop = (len(payload), frame.checksum)
        advance_phase(state, event)
        self._events.append(event)

    def _on_ack(self, pid: int) -> None:
        state = self.state
        if state.pending is None:
            state.stats["stale_acks"] += 1
            return
        if self.role is _TARGET:
            matches = pid == state.current_id & ~SYNC_PACKET_ID
        else:
            matches = same_id(pid, state.current_id)
        if not matches:
            state.stats["stale_acks"] += 1
            return
        self._events.append(Ack(packet_id=pid))
        self._acknowledged()

    def _repeat(self) -> None:
        """Rule 6: RESEND/RESET re-sends the pending packet, else the open exchange."""
        state = self.state
        if state.pending is not None:
            self._retransmit()
        elif self.role is Role.TARGET and state.exchange is not None:
            again = state.exchange
            state.exchange = again = Outgoing(again.packet_type, again.payload, again.kind,
                                              again.api, again.phase_before)
            self._transmit(again)
