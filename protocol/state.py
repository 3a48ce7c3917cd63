"""The KD connection's state: roles, phases, packet ids, and the transition table.

What it does: holds the rules of kd-protocol.md §2 as data: which data packet types
each role accepts in each phase, which packet type carries each message and who may
send it, which phase a sent or received message leads to, and the id arithmetic; and
``ConnectionState``, everything one side knows, in one object. connection.py and
datarules.py apply the rules to it; nothing here does I/O or reads a clock.
Spec: kd-protocol.md §2.2 (ids), §2.5 (retries), §3 (sequences), §5.1, §6.3.

Invariants
----------
Rule 1: A side has at most one data packet awaiting an ACK; later ones queue.
Rule 2: Every good data packet is ACKed with its own id (the SYNC bit cleared when the
        host ACKs), duplicates included; only ``id == remote`` is acted on. A host
        calls a packet with the other id a duplicate only if its length and checksum
        repeat the last one taken (a retransmission repeats its bytes, and even one
        the checksum's blind spot damaged keeps both); anything else means a packet
        of the target's was lost between them, so the host takes it and follows the
        target's ids from there.
Rule 3: The target's ids start at Current=INITIAL|SYNC, Remote=INITIAL; an accepted ACK
        toggles bit 0 of Current and clears SYNC. The target accepts an ACK only for
        ``Current & ~SYNC``; the host compares with SYNC masked off on both sides.
Rule 4: The host's first data id is INITIAL. A target packet carrying SYNC means the
        target started afresh: the host accepts it and restarts its own ids.
Rule 5: RESET, received at any time, puts both ids at INITIAL (no SYNC). The target
        answers RESET with RESET id 0 and sends its pending packet again; the host
        only re-sends its pending packet (answering would make the two RESET forever).
Rule 6: RESEND re-sends the pending packet unchanged. With nothing pending, a target
        that waits in a reliable exchange (a state change awaiting manipulates, a
        prompt awaiting its answer) sends that message again with a fresh id.
Rule 7: A data packet arriving while we wait for an ACK stands for that ACK. The
        target drops it and sends RESEND so the host sends it again (ReactOS),
        except a repeat of the host's last packet (id ``remote ^ 1``): the host sent
        it again because our ACK was lost, before it saw our packet, so it is ACKed
        and dropped and we keep waiting (ReactOS would lose our packet); and except
        one whose id is neither (damaged on the line): RESEND, and we keep waiting. The
        host keeps it: it is ACKed and checked as usual, and only a new (in-sequence)
        packet counts as the lost ACK. Dropping it on the host too would make a
        target that repeats its state change on RESEND (Rule 6) and a host with a
        request in flight bounce RESENDs for ever on a noisy line.
Rule 8: After KD_DEFAULT_RETRIES unanswered sends, a target gives up only DbgPrint,
        LoadSymbols and CreateFile, marks the debugger absent and resets its ids to
        INITIAL|SYNC / INITIAL; all its other packets are sent for ever. Any leader
        heard marks the debugger present again. A host gives up any packet.
Rule 9: A RUNNING target reads nothing but break-in bytes (KdPollBreakIn) unless it
        waits for an ACK: the bytes before a break-in byte are discarded, and the
        bytes after it wait, unread, for the exchange the break-in starts (a host
        attaching writes break-in and RESET together, §3.5). A target that has sent
        nothing yet discards nothing: its kdcom has not read the port, whose bytes
        wait for its first packet, as in a UART (a RESET crossing that packet, §3.2).
Rule 10: A target accepts a data packet only of the type its phase expects. A good
        packet of another type, not a duplicate, is dropped without toggling Remote
        and answered with RESEND, not ACKed: the header lies outside the checksum, so
        a type that makes no sense here most likely is a damaged one, and an ACK would
        lose the host's packet (ReactOS ACKs it). Duplicates are ACKed whatever type.
        A host answers the same way a packet that decodes to nothing a target sends
        (an unknown type, a debug I/O call that does not exist, a short payload).
Rule 11: A host that sent RESET neither ACKs nor accepts data packets until a RESET
        comes back. The target sent them before it read the RESET, and reads our
        ACK after it: with both ids back at INITIAL, the ACK of a copy stamped before
        the RESET would pass for the ACK of the copy stamped after it, and a stop
        lost on the line would go unnoticed by both sides. The RESET makes the target
        send its pending packet again in any case (Rule 5).
Rule 12: A state change reaching a host that holds the target broken in is that stop
        reported again (Rule 6: a RESEND found the target with nothing pending, or it
        took our request for the ACK it waited on and dropped it, Rule 7). It is
        ACKed and dropped, not delivered as a second stop, and it is no sign that our
        pending packet arrived: that stays pending and goes again. So is one with the
        length and checksum of the stop last taken while the host's Continue still
        awaits its ACK: the target took the Continue for the ACK it waited on (Rule 7); a new
        stop that matched byte for byte and crossed a lost ACK would be missed, and
        the next break-in brings it (Rule 13). After a RESET or a request that awaits
        a state change (Continue, SwitchProcessor, ...) the host takes the next one
        as the stop; so does it one with SYNC (Rule 4).
Rule 13: A lone break-in byte (nothing follows it for byte_timeout) reaching a target
        that waits in an exchange (a stop awaiting manipulates, a prompt awaiting its
        answer) with nothing pending makes it send that message again, as a RESEND
        would (ReactOS: a 'b' and then silence while waiting for a leader returns
        "needs resend", and KdpSendWaitContinue reports the stop again). A host that lost a stop (a Continue it had to repeat was
        taken for the ACK of the stop, Rule 7) gets it back by breaking in.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from enum import Enum

from .constants import (
    INITIAL_PACKET_ID,
    SYNC_PACKET_ID,
    DebugIoApi,
    FileIoApi,
    PacketType,
    StateChange,
)

__all__ = [
    "Role",
    "Phase",
    "Message",
    "Outgoing",
    "ConnectionState",
    "SENDERS",
    "EXCHANGES",
    "EXPECTED_TYPES",
    "PHASE_AFTER_SEND",
    "PHASE_AFTER_RECEIVE",
    "PARSING_PHASES",
    "droppable",
    "next_id",
    "same_id",
    "ack_id",
    "INITIAL_PACKET_ID",
    "SYNC_PACKET_ID",
]

P = PacketType


class _FastEnum(Enum):
    """Members are singletons compared by identity: hash them the same way, in C, not
    by name in Python (the transition tables are looked up on every packet)."""

    __hash__ = object.__hash__


class Role(_FastEnum):
    HOST = "host"
    TARGET = "target"


# The roles by module name: a member looked up on its Enum class costs ~50 ns, and
# the path of every packet compares roles a dozen times.
_HOST, _TARGET = Role.HOST, Role.TARGET


class Phase(_FastEnum):
    """Where the conversation stands, seen from one side."""

    # Target phases (what kdcom/kd64 is doing).
    RUNNING = "running"  # polling for break-in only (Rule 9)
    BROKEN = "broken"  # KdpSendWaitContinue: waiting for manipulate requests
    AWAIT_PROMPT_REPLY = "await_prompt_reply"  # KdpPromptString
    AWAIT_FILE_IO_REPLY = "await_file_io_reply"
    # Host phases (what the host believes of the target).
    UNKNOWN = "unknown"  # not synchronised yet
    TARGET_RUNNING = "target_running"
    TARGET_BROKEN = "target_broken"
    TARGET_PROMPTING = "target_prompting"


class Message(_FastEnum):
    """Message kinds that move a phase."""

    STATE_CHANGE = "state_change"
    DEBUG_PRINT = "debug_print"
    DEBUG_PROMPT = "debug_prompt"
    PROMPT_REPLY = "prompt_reply"
    FILE_IO_REQUEST = "file_io_request"
    FILE_IO_REPLY = "file_io_reply"
    MANIPULATE = "manipulate"
    RESUME = "resume"  # Continue, Continue2, Reboot, CauseBugCheck (§5.1)


# message -> (its packet type, the only role that sends it; None: either).
SENDERS: dict[Message, tuple[int, Role | None]] = {
    Message.STATE_CHANGE: (P.PACKET_TYPE_KD_STATE_CHANGE64, Role.TARGET),
    Message.DEBUG_PRINT: (P.PACKET_TYPE_KD_DEBUG_IO, Role.TARGET),
    Message.DEBUG_PROMPT: (P.PACKET_TYPE_KD_DEBUG_IO, Role.TARGET),
    Message.PROMPT_REPLY: (P.PACKET_TYPE_KD_DEBUG_IO, Role.HOST),
    Message.FILE_IO_REQUEST: (P.PACKET_TYPE_KD_FILE_IO, Role.TARGET),
    Message.FILE_IO_REPLY: (P.PACKET_TYPE_KD_FILE_IO, Role.HOST),
    Message.MANIPULATE: (P.PACKET_TYPE_KD_STATE_MANIPULATE, None),
    Message.RESUME: (P.PACKET_TYPE_KD_STATE_MANIPULATE, Role.HOST),
}

# What a target waits in, repeating it on RESEND, RESET or a lone break-in (Rules 6, 13).
EXCHANGES = frozenset({Message.STATE_CHANGE, Message.DEBUG_PROMPT, Message.FILE_IO_REQUEST})


_HOST_ACCEPTS = frozenset(
    {
        P.PACKET_TYPE_KD_STATE_CHANGE32,
        P.PACKET_TYPE_KD_STATE_MANIPULATE,
        P.PACKET_TYPE_KD_DEBUG_IO,
        P.PACKET_TYPE_KD_STATE_CHANGE64,
        P.PACKET_TYPE_KD_TRACE_IO,
        P.PACKET_TYPE_KD_CONTROL_REQUEST,
        P.PACKET_TYPE_KD_FILE_IO,
    }
)

# Rule 10 (target) and the host's open door: (role, phase) -> accepted data types.
EXPECTED_TYPES: dict[tuple[Role, Phase], frozenset[int]] = {
    (Role.TARGET, Phase.RUNNING): frozenset(),
    (Role.TARGET, Phase.BROKEN): frozenset({P.PACKET_TYPE_KD_STATE_MANIPULATE}),
    (Role.TARGET, Phase.AWAIT_PROMPT_REPLY): frozenset({P.PACKET_TYPE_KD_DEBUG_IO}),
    (Role.TARGET, Phase.AWAIT_FILE_IO_REPLY): frozenset({P.PACKET_TYPE_KD_FILE_IO}),
    **{(Role.HOST, phase): _HOST_ACCEPTS for phase in (
        Phase.UNKNOWN, Phase.TARGET_RUNNING, Phase.TARGET_BROKEN, Phase.TARGET_PROMPTING)},
}

# Phases in which a target parses packets even with nothing awaiting an ACK (Rule 9).
PARSING_PHASES = frozenset(
    {Phase.BROKEN, Phase.AWAIT_PROMPT_REPLY, Phase.AWAIT_FILE_IO_REPLY}
)

# h11-style tables: (role, phase, message) -> next phase. A missing key means "no
# change"; for the host a missing MANIPULATE/RESUME entry means the target cannot take
# it (LocalProtocolError). RETURN means "back to the phase before the exchange".
RETURN = "return"

PHASE_AFTER_SEND: dict[tuple[Role, Phase, Message], Phase | str] = {
    **{(Role.TARGET, ph, Message.STATE_CHANGE): Phase.BROKEN
       for ph in (Phase.RUNNING, Phase.BROKEN)},
    **{(Role.TARGET, ph, Message.DEBUG_PROMPT): Phase.AWAIT_PROMPT_REPLY
       for ph in (Phase.RUNNING, Phase.BROKEN)},
    **{(Role.TARGET, ph, Message.FILE_IO_REQUEST): Phase.AWAIT_FILE_IO_REPLY
       for ph in (Phase.RUNNING, Phase.BROKEN)},
    (Role.TARGET, Phase.BROKEN, Message.MANIPULATE): Phase.BROKEN,
    **{(Role.TARGET, ph, Message.DEBUG_PRINT): ph
       for ph in (Phase.RUNNING, Phase.BROKEN)},
    (Role.HOST, Phase.UNKNOWN, Message.MANIPULATE): Phase.UNKNOWN,
    (Role.HOST, Phase.TARGET_BROKEN, Message.MANIPULATE): Phase.TARGET_BROKEN,
    (Role.HOST, Phase.UNKNOWN, Message.RESUME): Phase.TARGET_RUNNING,
    (Role.HOST, Phase.TARGET_BROKEN, Message.RESUME): Phase.TARGET_RUNNING,
    (Role.HOST, Phase.TARGET_PROMPTING, Message.PROMPT_REPLY): RETURN,
    **{(Role.HOST, ph, Message.FILE_IO_REPLY): ph for ph in (
        Phase.UNKNOWN, Phase.TARGET_RUNNING, Phase.TARGET_BROKEN, Phase.TARGET_PROMPTING)},
}

PHASE_AFTER_RECEIVE: dict[tuple[Role, Phase, Message], Phase | str] = {
    (Role.TARGET, Phase.BROKEN, Message.RESUME): Phase.RUNNING,
    (Role.TARGET, Phase.AWAIT_PROMPT_REPLY, Message.PROMPT_REPLY): RETURN,
    (Role.TARGET, Phase.AWAIT_FILE_IO_REPLY, Message.FILE_IO_REPLY): RETURN,
    **{(Role.HOST, ph, Message.STATE_CHANGE): Phase.TARGET_BROKEN for ph in (
        Phase.UNKNOWN, Phase.TARGET_RUNNING, Phase.TARGET_BROKEN, Phase.TARGET_PROMPTING)},
    **{(Role.HOST, ph, Message.DEBUG_PROMPT): Phase.TARGET_PROMPTING for ph in (
        Phase.UNKNOWN, Phase.TARGET_RUNNING, Phase.TARGET_BROKEN)},
}


@dataclass(slots=True)
class Outgoing:
    """One data packet of ours: queued, pending (awaiting its ACK) or given up."""

    packet_type: int
    payload: bytes
    kind: Message
    api: int | None
    phase_before: Phase
    packet_id: int = 0
    wire: bytes = b""
    timeouts: int = 0
    deadline: float | None = None


@dataclass(slots=True)
class ConnectionState:
    """Everything one side of a KD link knows; the rules read and change it."""

    role: Role
    phase: Phase
    current_id: int
    remote_id: int | None
    stats: Counter[str] = field(default_factory=Counter)
    # Rule 8: cleared when a target gives a packet up, set by any leader heard.
    debugger_present: bool = True
    # Rule 1: the packet awaiting its ACK, and those queued behind it.
    pending: Outgoing | None = None
    queue: deque[Outgoing] = field(default_factory=deque)
    # Target: the message RESEND/RESET repeats when nothing is pending (Rule 6), and
    # the phase (with its exchange) a prompt or file I/O returns to.
    exchange: Outgoing | None = None
    return_to: tuple[Phase, Outgoing | None] = (Phase.RUNNING, None)
    # Host: length and checksum of the stop it holds or last held (Rule 12).
    held_stop: tuple[int, int] | None = None
    # Host: (id, length, checksum) of the last packet taken, to tell repeats (Rule 2).
    last_accepted: tuple[int, int, int] | None = None
    # Host: a RESET we sent has not been answered yet (Rule 11).
    awaiting_reset_answer: bool = False
    # Target (Rule 9): whether it has sent a packet yet, where its break-in poll
    # resumes, and the break-in byte it took, whose followers wait for the exchange.
    started: bool = False
    poll_from: int = 0
    breakin_taken: int | None = None
    # Target: the stream position right after a break-in byte met while waiting in an
    # exchange; a repeat is due if nothing follows it (Rule 13).
    breakin_mark: int | None = None
    # The stream position last seen to grow, and when (truncation, §2.3).
    last_progress: tuple[int, float] | None = None

    @classmethod
    def initial(cls, role: Role) -> ConnectionState:
        """A fresh side: Rule 3 (target ids) and Rule 4 (host ids)."""
        if role is Role.TARGET:
            return cls(role, Phase.RUNNING, INITIAL_PACKET_ID | SYNC_PACKET_ID,
                       INITIAL_PACKET_ID)
        return cls(role, Phase.UNKNOWN, INITIAL_PACKET_ID, None)

    @property
    def polling(self) -> bool:
        """Rule 9: a running target reads only break-in bytes."""
        return (self.role is _TARGET and self.pending is None
                and self.phase not in PARSING_PHASES)

    def reset_ids(self) -> None:
        """Rule 5: both ids back to INITIAL, no SYNC."""
        self.current_id = INITIAL_PACKET_ID
        self.remote_id = INITIAL_PACKET_ID
        self.last_accepted = None


def droppable(packet_type: int, api: int | None) -> bool:
    """The three packets a target may give up after its retries (§2.5, Rule 8)."""
    return (packet_type, api) in {
        (P.PACKET_TYPE_KD_DEBUG_IO, DebugIoApi.DbgKdPrintStringApi),
        (P.PACKET_TYPE_KD_STATE_CHANGE64, StateChange.DbgKdLoadSymbolsStateChange),
        (P.PACKET_TYPE_KD_STATE_CHANGE32, StateChange.DbgKdLoadSymbolsStateChange),
        (P.PACKET_TYPE_KD_FILE_IO, FileIoApi.DbgKdCreateFileApi),
    }


def next_id(packet_id: int) -> int:
    """The id after an accepted ACK: bit 0 toggled, SYNC cleared (§2.2)."""
    return (packet_id ^ 1) & ~SYNC_PACKET_ID & 0xFFFFFFFF


def same_id(a: int, b: int) -> bool:
    """Ids compared with the SYNC bit masked off (§2.4, VirtualKD note)."""
    return (a & ~SYNC_PACKET_ID) == (b & ~SYNC_PACKET_ID)


def ack_id(role: Role, received_id: int) -> int:
    """The id an ACK carries: the received id; a host clears SYNC (§11, ACK id)."""
    if role is _HOST:
        return received_id & ~SYNC_PACKET_ID & 0xFFFFFFFF
    return received_id
