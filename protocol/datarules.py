"""The rules a KdConnection applies to a good data packet: ACK or not, take or drop.

What it does: one mixin of ``KdConnection`` (connection.py), kept apart because the
rules are many and each answers a way the line or the peer can fail: sequence and
duplicates (Rules 2 and 4), a target's implicit ACK and its exceptions (Rule 7),
types (Rule 10), a host's wait for its RESET's answer (Rule 11), stops reported again
(Rule 12), and the phase a received message leads to. It works on the connection's
own state and sends through its methods; it does no I/O and reads no clock.
Spec: kd-protocol.md §2.2-§2.3, §3; the rules are numbered in state.py.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import TYPE_CHECKING

from . import messages
from .buffer import DataFrame
from .constants import INITIAL_PACKET_ID, SYNC_PACKET_ID, PacketType
from .events import (
    DebugPrompt,
    DroppedPacket,
    Event,
    FileIo,
    ManipulateRequest,
    PromptReply,
    StateChange,
    UnknownPacket,
)
from .manipulate import RESUMING_APIS
from .packet import build_control_packet
from .state import (
    EXPECTED_TYPES,
    PHASE_AFTER_RECEIVE,
    RETURN,
    Message,
    Phase,
    Role,
    ack_id,
    next_id,
    same_id,
)

if TYPE_CHECKING:
    from .connection import _Outgoing

__all__ = ["DataPacketRules"]

P = PacketType
_ACK = P.PACKET_TYPE_KD_ACKNOWLEDGE
_STATE_CHANGES = (P.PACKET_TYPE_KD_STATE_CHANGE64, P.PACKET_TYPE_KD_STATE_CHANGE32)


class DataPacketRules:
    """The data-packet half of ``KdConnection``; see connection.py for the state."""

    role: Role
    phase: Phase
    stats: Counter[str]
    current_id: int
    remote_id: int | None
    awaiting_reset_answer: bool
    _events: deque[Event]
    _out: bytearray
    _pending: _Outgoing | None
    _exchange: _Outgoing | None
    _return: tuple[Phase, _Outgoing | None]
    _held_stop: tuple[int, int] | None
    _last_accepted: tuple[int, int, int] | None

    if TYPE_CHECKING:
        def _reject(self, offset: int, reason: str, ptype: int | None, pid: int | None,
                    raw: bytes) -> None: ...

        def _send_resend(self) -> None: ...

        def _start_next(self) -> None: ...

    def _on_data(self, frame: DataFrame) -> None:
        ptype, pid, payload = frame.packet_type, frame.packet_id, frame.payload
        csum = frame.checksum
        minimum = messages.MIN_PAYLOAD.get(ptype, 0)
        if len(payload) < minimum:
            self._reject(frame.offset, "too_short", ptype, pid, payload)
            return
        if self.awaiting_reset_answer:
            # Rule 11: sent before the target read our RESET; it comes again after.
            self.stats["before_reset_answer"] += 1
            self._events.append(DroppedPacket(reason="before_reset_answer", packet_type=ptype,
                                              packet_id=pid, raw=payload))
            return
        if self._pending is not None and self.role is Role.TARGET:
            reason = self._sequence_check(pid, payload, csum)
            if reason == "duplicate":
                # Rule 7's exception: a repeat sent before the host saw our packet.
                self._out += build_control_packet(_ACK, ack_id(self.role, pid))
            elif reason == "out_of_sequence":
                # An id damaged on the line (the header is outside the checksum): no
                # sign of our packet either; RESEND brings the host's again.
                self._send_resend()
            if reason is not None:
                self.stats[reason] += 1
                self._events.append(DroppedPacket(reason=reason, packet_type=ptype,
                                                  packet_id=pid, raw=payload))
                return
            # Rule 7: the packet stands for the ACK we wait for; ask for it again.
            self.current_id = next_id(self.current_id)
            self._pending = None
            self._send_resend()
            self.stats["implicit_acks"] += 1
            self._events.append(DroppedPacket(reason="implicit_ack", packet_type=ptype,
                                              packet_id=pid, raw=payload))
            self._start_next()
            return
        reason = self._sequence_check(pid, payload, csum)
        event: Event | None = None
        if reason is None and self.role is Role.HOST:
            event = messages.decode_payload(ptype, pid, payload, from_host=False)
            if isinstance(event, UnknownPacket):
                # Rule 10 (host): a type or layout no target sends: damaged in the
                # header, outside the checksum. Not ACKed, or the target's packet is lost.
                self._send_resend()
                self.stats["unknown_type"] += 1
                self._events.append(event)
                return
        if (reason is None and self.role is Role.TARGET
                and ptype not in EXPECTED_TYPES[(self.role, self.phase)]):
            # Rule 10: not ACKed; RESEND asks for it again, Remote not toggled.
            self._send_resend()
            self.stats["unexpected_type"] += 1
            self._events.append(DroppedPacket(reason="unexpected_type", packet_type=ptype,
                                              packet_id=pid, raw=payload))
            return
        self._out += build_control_packet(_ACK, ack_id(self.role, pid))
        if reason is not None:
            self.stats[reason] += 1
            self._events.append(DroppedPacket(reason=reason, packet_type=ptype,
                                              packet_id=pid, raw=payload))
            return
        if (self.role is Role.HOST and ptype in _STATE_CHANGES
                and not pid & SYNC_PACKET_ID and self._stop_repeated(payload, csum)):
            # Rule 12: the stop we hold, reported again; our pending packet stays.
            self._accept_id(pid, payload, csum)
            self.stats["stop_repeated"] += 1
            self._events.append(DroppedPacket(reason="stop_repeated", packet_type=ptype,
                                              packet_id=pid, raw=payload))
            return
        self._accept_id(pid, payload, csum)
        if self._pending is not None:
            # Rule 7 (host): a new packet from the target means our ACK was lost.
            self.current_id = next_id(self.current_id)
            self._pending = None
            self.stats["implicit_acks"] += 1
            self._start_next()
        if event is None:
            event = messages.decode_payload(ptype, pid, payload,
                                            from_host=self.role is Role.TARGET)
        if isinstance(event, StateChange):
            self._held_stop = (len(payload), csum)
        self._advance_phase(event)
        self._events.append(event)

    def _stop_repeated(self, payload: bytes, csum: int) -> bool:
        """Rule 12: a state change that is the stop we hold, said again."""
        if self.phase is Phase.TARGET_BROKEN:
            return True
        # Our Continue not yet ACKed: the same stop again (same length and byte sum,
        # as Rule 2 compares) means the target never took it (it took it for an ACK,
        # Rule 7); a new stop would almost never match.
        pending = self._pending
        return (pending is not None and pending.kind is Message.RESUME
                and (len(payload), csum) == self._held_stop)

    def _sequence_check(self, pid: int, payload: bytes, csum: int) -> str | None:
        expected = self.remote_id
        if self.role is Role.HOST:
            if pid & SYNC_PACKET_ID:
                if self._repeats_last(pid, payload, csum):
                    return "duplicate"
                return None  # Rule 4: a target that started afresh
            if expected is None or same_id(pid, expected):
                return None
            if not self._repeats_last(pid, payload, csum):
                # Rule 2: no repeat of the packet we took last, so one of the target's
                # was lost and its ids slipped a step: take this one, follow them.
                self.stats["ids_resynced"] += 1
                return None
            return "duplicate"
        elif pid == expected:
            return None
        if expected is not None and same_id(pid, expected ^ 1):
            return "duplicate"
        return "out_of_sequence"

    def _repeats_last(self, pid: int, payload: bytes, csum: int) -> bool:
        """A retransmission of the packet taken last: same id, length and byte sum. Not
        the bytes themselves: a repeat the checksum's blind spot damaged (§1.3) is still
        that repeat, and a new packet almost never matches both."""
        last = self._last_accepted
        return last is not None and same_id(pid, last[0]) and (len(payload), csum) == last[1:]

    def _accept_id(self, pid: int, payload: bytes, csum: int) -> None:
        if self.role is Role.HOST:
            if pid & SYNC_PACKET_ID:
                self.current_id = INITIAL_PACKET_ID
            self._last_accepted = (pid, len(payload), csum)
        self.remote_id = next_id(pid)

    def _advance_phase(self, event: Event) -> None:
        kind = _received_kind(event, self.role)
        if kind is None:
            return
        after = PHASE_AFTER_RECEIVE.get((self.role, self.phase, kind))
        if after is None:
            return
        if after == RETURN:
            self.phase, self._exchange = self._return
            return
        assert isinstance(after, Phase)
        if self.role is Role.HOST and kind is Message.DEBUG_PROMPT:
            self._return = (self.phase, None)
        self.phase = after
        if self.role is Role.TARGET and after is Phase.RUNNING:
            self._exchange = None


def _received_kind(event: Event, role: Role) -> Message | None:
    if isinstance(event, StateChange):
        return Message.STATE_CHANGE
    if isinstance(event, ManipulateRequest):
        return Message.RESUME if event.api in RESUMING_APIS else Message.MANIPULATE
    if isinstance(event, DebugPrompt):
        return Message.DEBUG_PROMPT
    if isinstance(event, PromptReply):
        return Message.PROMPT_REPLY
    if isinstance(event, FileIo):
        return Message.FILE_IO_REPLY if role is Role.TARGET else Message.FILE_IO_REQUEST
    return None
