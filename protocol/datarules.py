"""What a side does with a good data packet: the rules as a table, and their inputs.

What it does: ``classify`` names the situation a packet meets (new, a duplicate, out
of sequence, of a type the phase does not take, a stop reported again, sent before our
RESET was answered), and ``DATA_RULES`` maps (role, awaiting an ACK, situation) to a
``Verdict``: what to answer (ACK, RESEND or nothing), whether the packet's id is taken,
whether it stands for the ACK we await, and whether its event is delivered or it is
dropped. The helpers keep the ids and phases (Rules 2, 4, 12). Everything works on a
``ConnectionState``; connection.py applies the verdict. No I/O, no clock.
Spec: kd-protocol.md §2.2-§2.3, §3; the rules are numbered in state.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from . import messages
from .buffer import DataFrame
from .constants import INITIAL_PACKET_ID, SYNC_PACKET_ID, PacketType
from .events import (
    DebugPrompt,
    Event,
    FileIo,
    ManipulateRequest,
    PromptReply,
    StateChange,
    UnknownPacket,
)
from .manipulate import RESUMING_APIS
from .state import (
    EXPECTED_TYPES,
    PHASE_AFTER_RECEIVE,
    RETURN,
    ConnectionState,
    Message,
    Phase,
    Role,
    next_id,
    same_id,
)

__all__ = ["Situation", "Verdict", "DATA_RULES", "classify", "take_id", "advance_phase"]

P = PacketType
ACK, RESEND = P.PACKET_TYPE_KD_ACKNOWLEDGE, P.PACKET_TYPE_KD_RESEND
_STATE_CHANGES = (P.PACKET_TYPE_KD_STATE_CHANGE64, P.PACKET_TYPE_KD_STATE_CHANGE32)
# The roles by module name: a member looked up on its Enum class costs ~50 ns, and
# the path of every packet compares roles a dozen times.
_HOST, _TARGET = Role.HOST, Role.TARGET


class Situation(Enum):
    NEW = "new"  # the id expected (or one a host follows, Rules 2 and 4)
    DUPLICATE = "duplicate"  # the other id: a repeat of the packet taken last
    OUT_OF_SEQUENCE = "out_of_sequence"  # neither id (target): damaged on the line
    WRONG_TYPE = "wrong_type"  # new, but not a type this side takes now (Rule 10)
    REPEATED_STOP = "repeated_stop"  # host: the stop it holds, said again (Rule 12)
    BEFORE_RESET_ANSWER = "before_reset_answer"  # host: our RESET unanswered (Rule 11)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What becomes of a data packet. ``reason``: "accepted", or why it is dropped
    (the DroppedPacket reason); ``counter``: the stats key it counts under."""

    reason: str
    answer: int | None  # the control packet sent back: ACK, RESEND or none
    take_id: bool = False  # the remote id moves past it (Rule 2)
    acks_ours: bool = False  # it stands for the ACK our pending packet awaits (Rule 7)
    deliver: bool = False  # its event goes out; else a DroppedPacket does
    counter: str | None = None


_TAKE = Verdict("accepted", ACK, take_id=True, deliver=True)
_DUPLICATE = Verdict("duplicate", ACK, counter="duplicate")
_IMPLICIT_ACK = Verdict("implicit_ack", RESEND, acks_ours=True)
_BEFORE_RESET_ANSWER = Verdict("before_reset_answer", None, counter="before_reset_answer")

# (role, awaiting an ACK, situation) -> verdict. A missing key cannot happen (a host
# never finds a packet out of sequence, a target never meets Rules 11 and 12).
DATA_RULES: dict[tuple[Role, bool, Situation], Verdict] = {
    # A target, as ReactOS kddll.c, with the deviations of Rules 7 and 10.
    (Role.TARGET, False, Situation.NEW): _TAKE,
    (Role.TARGET, False, Situation.DUPLICATE): _DUPLICATE,
    (Role.TARGET, False, Situation.OUT_OF_SEQUENCE):
        Verdict("out_of_sequence", ACK, counter="out_of_sequence"),
    # Rule 10: not ACKed (the header is outside the checksum); RESEND asks again.
    (Role.TARGET, False, Situation.WRONG_TYPE):
        Verdict("unexpected_type", RESEND, counter="unexpected_type"),
    # Rule 7: whatever the host sends now stands for the ACK we wait for; RESEND
    # brings it again. Except a repeat of the host's last packet, sent before it saw
    # ours, and a damaged id: no sign that our packet arrived.
    (Role.TARGET, True, Situation.NEW): _IMPLICIT_ACK,
    (Role.TARGET, True, Situation.WRONG_TYPE): _IMPLICIT_ACK,
    (Role.TARGET, True, Situation.DUPLICATE): _DUPLICATE,
    (Role.TARGET, True, Situation.OUT_OF_SEQUENCE):
        Verdict("out_of_sequence", RESEND, counter="out_of_sequence"),
    # A host takes every new packet; one that arrives while ours awaits its ACK
    # means that ACK was lost (Rule 7).
    (Role.HOST, False, Situation.NEW): _TAKE,
    (Role.HOST, True, Situation.NEW):
        Verdict("accepted", ACK, take_id=True, acks_ours=True, deliver=True),
    **{(Role.HOST, waiting, situation): verdict for waiting in (False, True)
       for situation, verdict in {
           Situation.DUPLICATE: _DUPLICATE,
           # Rule 10 (host): nothing a target sends; its UnknownPacket is delivered.
           Situation.WRONG_TYPE:
               Verdict("unknown_type", RESEND, deliver=True, counter="unknown_type"),
           # Rule 12: ACKed and taken, not shown twice; our pending packet stays.
           Situation.REPEATED_STOP:
               Verdict("stop_repeated", ACK, take_id=True, counter="stop_repeated"),
           Situation.BEFORE_RESET_ANSWER: _BEFORE_RESET_ANSWER,
       }.items()},
}


def classify(state: ConnectionState, frame: DataFrame) -> tuple[Situation, Event | None]:
    """The situation ``frame`` meets, and (host) its event, decoded to tell."""
    if state.awaiting_reset_answer:
        return Situation.BEFORE_RESET_ANSWER, None
    ptype, pid, payload, csum = frame.packet_type, frame.packet_id, frame.payload, frame.checksum
    sequence = _sequence(state, pid, payload, csum)
    if sequence is not Situation.NEW:
        return sequence, None
    if state.role is _TARGET:
        if ptype not in EXPECTED_TYPES[(state.role, state.phase)]:
            return Situation.WRONG_TYPE, None
        return Situation.NEW, None
    event = messages.decode_payload(ptype, pid, payload, from_host=False)
    if isinstance(event, UnknownPacket):
        return Situation.WRONG_TYPE, event
    if ptype in _STATE_CHANGES and not pid & SYNC_PACKET_ID and _stop_repeated(
            state, payload, csum):
        return Situation.REPEATED_STOP, event
    return Situation.NEW, event


def _stop_repeated(state: ConnectionState, payload: bytes, csum: int) -> bool:
    """Rule 12: a state change that is the stop we hold, said again."""
    if state.phase is Phase.TARGET_BROKEN:
        return True
    # Our Continue not yet ACKed: the same stop again (same length and byte sum, as
    # Rule 2 compares) means the target never took it (it took it for an ACK, Rule 7);
    # a new stop would almost never match. Not after SwitchProcessor: the same stop
    # again is its answer when we asked the CPU that stopped (§5.1).
    pending = state.pending
    return (pending is not None and pending.kind is Message.RESUME
            and pending.api in RESUMING_APIS
            and (len(payload), csum) == state.held_stop)


def _sequence(state: ConnectionState, pid: int, payload: bytes, csum: int) -> Situation:
    expected = state.remote_id
    if state.role is _HOST:
        if pid & SYNC_PACKET_ID:
            # Rule 4: a target that started afresh, unless it is a repeat.
            return Situation.DUPLICATE if _repeats_last(state, pid, payload, csum) \
                else Situation.NEW
        if expected is None or same_id(pid, expected):
            return Situation.NEW
        if not _repeats_last(state, pid, payload, csum):
            # Rule 2: no repeat of the packet we took last, so one of the target's was
            # lost and its ids slipped a step: take this one, follow them.
            state.stats["ids_resynced"] += 1
            return Situation.NEW
        return Situation.DUPLICATE
    if pid == expected:
        return Situation.NEW
    if expected is not None and same_id(pid, expected ^ 1):
        return Situation.DUPLICATE
    return Situation.OUT_OF_SEQUENCE


def _repeats_last(state: ConnectionState, pid: int, payload: bytes, csum: int) -> bool:
    """A retransmission of the packet taken last: same id, length and byte sum. Not
    the bytes themselves: a repeat the checksum's blind spot damaged (§1.3) is still
    that repeat, and a new packet almost never matches both."""
    last = state.last_accepted
    return last is not None and same_id(pid, last[0]) and (len(payload), csum) == last[1:]


def take_id(state: ConnectionState, frame: DataFrame) -> None:
    """The remote id moves past ``frame``'s (Rule 2); a host restarts its own ids on
    SYNC (Rule 4) and remembers the packet, to tell its repeats."""
    pid = frame.packet_id
    if state.role is _HOST:
        if pid & SYNC_PACKET_ID:
            state.current_id = INITIAL_PACKET_ID
        state.last_accepted = (pid, len(frame.payload), frame.checksum)
    state.remote_id = next_id(pid)


def advance_phase(state: ConnectionState, event: Event) -> None:
    """The phase a received message leads to (PHASE_AFTER_RECEIVE)."""
    kind = _received_kind(event, state.role)
    if kind is None:
        return
    after = PHASE_AFTER_RECEIVE.get((state.role, state.phase, kind))
    if after is None:
        return
    if after == RETURN:
        state.phase, state.exchange = state.return_to
        return
    assert isinstance(after, Phase)
    if state.role is _HOST and kind is Message.DEBUG_PROMPT:
        state.return_to = (state.phase, None)
    state.phase = after
    if state.role is _TARGET and after is Phase.RUNNING:
        state.exchange = None


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
        return Message.FILE_IO_REPLY if role is _TARGET else Message.FILE_IO_REQUEST
    return None
