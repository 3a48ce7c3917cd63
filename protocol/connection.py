"""KdConnection: the sans-I/O KD protocol engine for one side of one link.

What it does: takes received bytes (``receive_data``), returns events one at a time
(``next_event`` -> event or NEED_DATA), returns the bytes to write from every ``send_*``
method and from ``check_timeouts(now)`` / ``data_to_send()``: ACKs, RESENDs, RESETs,
retransmissions and queued packets. Both roles: ``Role.HOST`` behaves like WinDbg/kd,
``Role.TARGET`` like kdcom + kd64 (ReactOS kddll.c / kdapi.c). What it does not do:
read a clock, sleep, or touch a port; time only arrives as ``now`` in
``check_timeouts``. The rules it applies are the numbered invariants and tables in
state.py; the framing is buffer.py; what becomes of a good data packet is datarules.py.
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
from collections import Counter, deque
from dataclasses import dataclass

from . import messages
from .buffer import BadFrame, BreakInFrame, ControlFrame, DataFrame, FrameBuffer, GarbageFrame
from .constants import (
    BREAKIN_PACKET_BYTE,
    INITIAL_PACKET_ID,
    KD_DEFAULT_RETRIES,
    SYNC_PACKET_ID,
    PacketType,
)
from .errors import LocalProtocolError
from .datarules import DataPacketRules
from .events import (
    NEED_DATA,
    Ack,
    BadPacket,
    BreakIn,
    Event,
    Garbage,
    NeedData,
    Resend,
    Reset,
    SendAbandoned,
    UnknownPacket,
)
from .manipulate import STOP_AWAITING_APIS
from .packet import build_control_packet, build_data_packet, check_payload_size
from .state import (
    PARSING_PHASES,
    PHASE_AFTER_SEND,
    RETURN,
    Message,
    Phase,
    Role,
    droppable,
    next_id,
    same_id,
)

__all__ = ["KdConnection", "Role", "Phase", "NEED_DATA"]

log = logging.getLogger(__name__)

P = PacketType
_ACK, _RESEND, _RESET = (P.PACKET_TYPE_KD_ACKNOWLEDGE, P.PACKET_TYPE_KD_RESEND,
                         P.PACKET_TYPE_KD_RESET)


@dataclass(slots=True)
class _Outgoing:
    packet_type: int
    payload: bytes
    kind: Message
    api: int | None
    phase_before: Phase
    packet_id: int = 0
    wire: bytes = b""
    timeouts: int = 0
    deadline: float | None = None


class KdConnection(DataPacketRules):
    """One side of a KD link. See the module docstring and state.py's rules."""

    def __init__(self, role: Role, *, retries: int = KD_DEFAULT_RETRIES,
                 ack_timeout: float = 0.5, byte_time: float = 10 / 115200,
                 byte_timeout: float = 0.25) -> None:
        self.role = role
        self.retries = retries
        self.ack_timeout = ack_timeout
        self.byte_time = byte_time
        self.byte_timeout = byte_timeout
        self.stats: Counter[str] = Counter()
        self.debugger_present = True
        self._frames = FrameBuffer()
        self._events: deque[Event] = deque()
        self._out = bytearray()
        self._queue: deque[_Outgoing] = deque()
        self._pending: _Outgoing | None = None
        # Target: the message RESEND/RESET repeats when nothing is pending (Rule 6).
        self._exchange: _Outgoing | None = None
        self._return: tuple[Phase, _Outgoing | None] = (Phase.RUNNING, None)
        self._last_progress: tuple[int, float] | None = None
        # Target: the stream position right after a break-in byte met while waiting in
        # an exchange; a repeat is due if nothing follows it (Rule 13).
        self._breakin_mark: int | None = None
        # Host: length and checksum of the stop it holds or last held (Rule 12).
        self._held_stop: tuple[int, int] | None = None
        # Host: (id, length, checksum) of the last packet taken, to tell repeats (Rule 2).
        self._last_accepted: tuple[int, int, int] | None = None
        # Host: a RESET we sent has not been answered yet (Rule 11).
        self.awaiting_reset_answer = False
        # Target (Rule 9): whether it has sent a packet yet (before that, kdcom has not
        # read its port: bytes wait as in a UART), where its break-in poll resumes, and
        # the break-in byte it took, whose followers wait for the exchange it starts.
        self._started = False
        self._poll_from = 0
        self._breakin_taken: int | None = None
        if role is Role.TARGET:
            self.phase = Phase.RUNNING
            self.current_id = INITIAL_PACKET_ID | SYNC_PACKET_ID
            self.remote_id: int | None = INITIAL_PACKET_ID
        else:
            self.phase = Phase.UNKNOWN
            self.current_id = INITIAL_PACKET_ID
            self.remote_id = None

    # -- input -------------------------------------------------------------------------

    @property
    def awaiting_ack(self) -> bool:
        return self._pending is not None

    @property
    def input_waiting(self) -> bool:
        """Received bytes wait to be read now: ``next_event`` has work without new data
        (a target kept them while it ran, Rule 9, and has just sent)."""
        return bool(self._frames.pending) and not self._polling()

    def receive_data(self, data: bytes) -> None:
        """Store received bytes; ``next_event`` cuts them into events."""
        self._frames.receive_data(data)

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA. Bytes to send may appear in data_to_send()."""
        while not self._events:
            if self._polling():
                if self._breakin_taken is None:
                    self._poll_breakin()
                if not self._events:
                    return NEED_DATA
                break
            frame = self._frames.next_frame()
            if frame is None:
                return NEED_DATA
            self._on_frame(frame)
        return self._events.popleft()

    def check_timeouts(self, now: float) -> bytes:
        """Apply the clock: truncated packets, ACK timeouts, retries. Bytes to send."""
        self._check_truncation(now)
        if self._breakin_mark is not None:
            self._check_lone_breakin(now)
        pending = self._pending
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

    def send_manipulate(self, api: int, u: dict | None = None, data: bytes = b"", *,
                        return_status: int = 0, processor: int = 0,
                        processor_level: int = 0) -> bytes:
        """A manipulate request (host) or reply (target); see messages.build_manipulate."""
        payload = messages.build_manipulate(api, u, data, return_status=return_status,
                                            processor=processor,
                                            processor_level=processor_level)
        return self.send_manipulate_payload(payload)

    def send_manipulate_payload(self, payload: bytes) -> bytes:
        """A ready DBGKD_MANIPULATE_STATE64 payload (e.g. a request echoed as a reply)."""
        api = int.from_bytes(payload[:4], "little")
        kind = Message.MANIPULATE
        if self.role is Role.HOST and api in STOP_AWAITING_APIS:
            kind = Message.RESUME
        return self._send(P.PACKET_TYPE_KD_STATE_MANIPULATE, payload, kind, api)

    def send_state_change(self, payload: bytes, *, legacy32: bool = False) -> bytes:
        """A state change (target only); build it with messages.build_*_state_change."""
        self._require(Role.TARGET, "send a state change")
        ptype = P.PACKET_TYPE_KD_STATE_CHANGE32 if legacy32 else P.PACKET_TYPE_KD_STATE_CHANGE64
        return self._send(ptype, payload, Message.STATE_CHANGE,
                          int.from_bytes(payload[:4], "little"))

    def send_debug_print(self, text: bytes, **fields: int) -> bytes:
        """DbgPrint (target only): wait for the ACK and nothing else (§6.2)."""
        self._require(Role.TARGET, "send DbgPrint")
        payload = messages.build_debug_print(text, **fields)
        return self._send(P.PACKET_TYPE_KD_DEBUG_IO, payload, Message.DEBUG_PRINT,
                          int.from_bytes(payload[:4], "little"))

    def send_debug_prompt(self, prompt: bytes, max_length: int, **fields: int) -> bytes:
        """DbgPrompt (target only): the host answers with a PromptReply (§6.3)."""
        self._require(Role.TARGET, "send DbgPrompt")
        payload = messages.build_debug_prompt(prompt, max_length, **fields)
        return self._send(P.PACKET_TYPE_KD_DEBUG_IO, payload, Message.DEBUG_PROMPT,
                          int.from_bytes(payload[:4], "little"))

    def send_prompt_reply(self, text: bytes) -> bytes:
        """The host's answer to a DebugPrompt (§6.3 step 4)."""
        self._require(Role.HOST, "answer a prompt")
        payload = messages.build_prompt_reply(text)
        return self._send(P.PACKET_TYPE_KD_DEBUG_IO, payload, Message.PROMPT_REPLY,
                          int.from_bytes(payload[:4], "little"))

    def send_file_io(self, api: int, status: int, u: dict, data: bytes = b"") -> bytes:
        """FILE_IO: a request from the target, or the host's answer to one (§7.1)."""
        payload = messages.build_file_io(api, status, u, data)
        kind = Message.FILE_IO_REQUEST if self.role is Role.TARGET else Message.FILE_IO_REPLY
        return self._send(P.PACKET_TYPE_KD_FILE_IO, payload, kind, api)

    def send_breakin(self) -> bytes:
        """The lone break-in byte 0x62 (host only, §3.4)."""
        self._require(Role.HOST, "send break-in")
        self._out.append(BREAKIN_PACKET_BYTE)
        return self.data_to_send()

    def send_reset(self) -> bytes:
        """RESET: both ids back to INITIAL (Rule 5); the peer answers RESET."""
        self._reset_ids()
        self._out += build_control_packet(_RESET, 0)
        self.stats["resets_sent"] += 1
        if self.role is Role.HOST:
            self.awaiting_reset_answer = True
            # Whatever the target reports after the answer is taken afresh (Rule 12).
            self.phase = Phase.UNKNOWN
            self._held_stop = None
        return self.data_to_send()

    # -- internals: sending --------------------------------------------------------------

    def _require(self, role: Role, what: str) -> None:
        if self.role is not role:
            raise LocalProtocolError(f"only the {role.value} role can {what}")

    def _send(self, ptype: int, payload: bytes, kind: Message, api: int | None) -> bytes:
        before = self.phase
        if kind is not Message.OTHER:
            after = PHASE_AFTER_SEND.get((self.role, before, kind))
            if after is None:
                if before is Phase.TARGET_RUNNING:
                    raise LocalProtocolError(
                        "the target is running: break in before sending a manipulate request")
                raise LocalProtocolError(
                    f"{self.role.value} cannot send {kind.value} while {before.value}")
            if after == RETURN:
                self.phase = self._return[0]
            else:
                assert isinstance(after, Phase)
                if after is not before and self.role is Role.TARGET:
                    self._return = (before, self._exchange)
                self.phase = after
        check_payload_size(payload)
        out = _Outgoing(ptype, payload, kind, api, before)
        if self.role is Role.TARGET and kind in (
                Message.STATE_CHANGE, Message.DEBUG_PROMPT, Message.FILE_IO_REQUEST):
            self._exchange = out
        if self._pending is None:
            self._transmit(out)
        else:
            self._queue.append(out)
        return self.data_to_send()

    def _transmit(self, out: _Outgoing) -> None:
        if self._breakin_taken is not None or not self._started:
            # Rule 9: the bytes kept for this exchange are read from now on, and they
            # have not been arriving late: the truncation clock starts afresh.
            self._started = True
            self._breakin_taken = None
            self._last_progress = None
        out.packet_id = self.current_id
        out.wire = build_data_packet(out.packet_type, out.packet_id, out.payload)
        out.deadline = None
        self._pending = out
        self._out += out.wire

    def _start_next(self) -> None:
        if self._pending is None and self._queue:
            self._transmit(self._queue.popleft())

    def _retransmit(self) -> None:
        pending = self._pending
        assert pending is not None
        pending.deadline = None
        self._out += pending.wire
        self.stats["retransmissions"] += 1

    def _ack_wait(self, out: _Outgoing) -> float:
        return self.ack_timeout + len(out.wire) * self.byte_time

    def _on_ack_timeout(self, pending: _Outgoing, now: float) -> None:
        pending.timeouts += 1
        self.stats["ack_timeouts"] += 1
        give_up = pending.timeouts >= self.retries and (
            self.role is Role.HOST or droppable(pending.packet_type, pending.api))
        if not give_up:
            self._retransmit()
            pending.deadline = now + self._ack_wait(pending)
            return
        # Rule 8: the three droppable packets (target) or anything (host) is given up.
        self._pending = None
        self.stats["abandoned"] += 1
        if self.role is Role.TARGET:
            self.debugger_present = False
            self.current_id = INITIAL_PACKET_ID | SYNC_PACKET_ID
            self.remote_id = INITIAL_PACKET_ID
            if self._exchange is pending:
                self._exchange = None
                self.phase = pending.phase_before
        log.debug("gave up packet type %d id %#x", pending.packet_type, pending.packet_id)
        self._events.append(SendAbandoned(packet_type=pending.packet_type,
                                          packet_id=pending.packet_id,
                                          payload=pending.payload, reason="no_ack"))
        self._start_next()

    # -- internals: receiving -------------------------------------------------------------

    def _polling(self) -> bool:
        return (self.role is Role.TARGET and self._pending is None
                and self.phase not in PARSING_PHASES)

    def _poll_breakin(self) -> None:
        """Rule 9: KdPollBreakIn. What comes before a break-in byte is discarded; the
        byte is taken, and what follows it waits, input like any other, for the
        exchange the break-in starts (a host attaching sends break-in and RESET in one
        write). A target that has sent nothing yet discards nothing."""
        frames = self._frames
        found = frames.breakin_at(self._poll_from)
        if found is None:
            if self._started:
                self.stats["discarded_while_running"] += frames.discard()
            else:
                self._poll_from = frames.received
            return
        if self._started:
            self.stats["discarded_while_running"] += frames.discard(found)
            frames.discard(found + 1)
        else:
            self._poll_from = found + 1  # reported now, not again when parsed
        self._breakin_taken = found
        self._events.append(BreakIn(offset=found))

    def _check_truncation(self, now: float) -> None:
        frames = self._frames
        mark = frames.received
        if self._last_progress is None or self._last_progress[0] != mark:
            self._last_progress = (mark, now)
            return
        if frames.pending and now - self._last_progress[1] >= self.byte_timeout:
            if self._polling():
                return
            frame = frames.expire_partial()
            if frame is not None:
                self._on_frame(frame)
            self._last_progress = (mark, now)

    def _check_lone_breakin(self, now: float) -> None:
        """Rule 13: a break-in byte and then silence, while we wait in an exchange with
        nothing pending: say again what we wait with. A byte of line noise that happens
        to be 0x62 is followed by more bytes and changes nothing."""
        mark = self._breakin_mark
        progress = self._last_progress
        if (self._frames.received != mark or self._pending is not None
                or self.phase not in PARSING_PHASES):
            self._breakin_mark = None
        elif progress is not None and now - progress[1] >= self.byte_timeout:
            self._breakin_mark = None
            self.stats["breakin_repeats"] += 1
            self._repeat()

    def _on_frame(self, frame: DataFrame | ControlFrame | BreakInFrame | GarbageFrame
                  | BadFrame) -> None:
        if isinstance(frame, DataFrame):
            self.debugger_present = True
            self._on_data(frame)
        elif isinstance(frame, ControlFrame):
            self.debugger_present = True
            self._on_control(frame)
        elif isinstance(frame, GarbageFrame):
            self.stats["garbage_bytes"] += len(frame.data)
            self._events.append(Garbage(offset=frame.offset, raw=frame.data))
        elif isinstance(frame, BreakInFrame):
            if frame.offset < self._poll_from:
                return  # reported by the poll while we had sent nothing yet (Rule 9)
            if self.role is Role.TARGET:
                if self.phase in PARSING_PHASES:
                    # Rule 13: maybe the host's break-in finding us waiting on it.
                    self._breakin_mark = self._frames.received
                self._events.append(BreakIn(offset=frame.offset))
            else:
                self.stats["garbage_bytes"] += 1
                self._events.append(Garbage(offset=frame.offset,
                                            raw=bytes([BREAKIN_PACKET_BYTE])))
        else:
            self.debugger_present = True
            self._reject(frame.offset, frame.reason, frame.packet_type, frame.packet_id,
                         frame.raw)

    def _reject(self, offset: int, reason: str, ptype: int | None, pid: int | None,
                raw: bytes) -> None:
        self.stats["bad_packets"] += 1
        self._send_resend()
        self._events.append(BadPacket(offset=offset, reason=reason, packet_type=ptype,
                                      packet_id=pid, raw=raw))

    def _send_resend(self) -> None:
        self.stats["resends_sent"] += 1
        self._out += build_control_packet(_RESEND, 0)

    def _on_control(self, frame: ControlFrame) -> None:
        ptype, pid = frame.packet_type, frame.packet_id
        if ptype == _ACK:
            self._on_ack(pid)
        elif ptype == _RESEND:
            self.stats["resends_received"] += 1
            self._events.append(Resend(packet_id=pid))
            self._repeat()
        elif ptype == _RESET:
            self.stats["resets_received"] += 1
            self._reset_ids()
            self.awaiting_reset_answer = False
            if self.role is Role.TARGET:
                self._out += build_control_packet(_RESET, 0)
            self._events.append(Reset(packet_id=pid))
            if self._pending is not None:
                # Re-stamp with the fresh id (§2.2: "sent again with 0x80800000").
                pending, self._pending = self._pending, None
                self._transmit(pending)
            else:
                self._repeat()
        else:
            self._events.append(UnknownPacket(kind="control", packet_type=ptype,
                                              packet_id=pid, raw=b""))

    def _on_ack(self, pid: int) -> None:
        pending = self._pending
        if pending is None:
            self.stats["stale_acks"] += 1
            return
        if self.role is Role.TARGET:
            matches = pid == self.current_id & ~SYNC_PACKET_ID
        else:
            matches = same_id(pid, self.current_id)
        if not matches:
            self.stats["stale_acks"] += 1
            return
        self.current_id = next_id(self.current_id)
        self._pending = None
        self._events.append(Ack(packet_id=pid))
        self._start_next()

    def _repeat(self) -> None:
        """Rule 6: RESEND/RESET re-sends the pending packet, else the open exchange."""
        if self._pending is not None:
            self._retransmit()
        elif self.role is Role.TARGET and self._exchange is not None:
            again = self._exchange
            self._exchange = again = _Outgoing(again.packet_type, again.payload, again.kind,
                                               again.api, again.phase_before)
            self._transmit(again)

    def _reset_ids(self) -> None:
        self.current_id = INITIAL_PACKET_ID
        self.remote_id = INITIAL_PACKET_ID
        self._last_accepted = None
