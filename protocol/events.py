"""Events that KdConnection.next_event() returns: one frozen dataclass per meaning.

What it does: names everything a KD peer can tell us (a state change, a manipulate
request or reply, a DbgPrint, a prompt and its answer, file and trace I/O, ACK, RESEND,
RESET, a break-in byte) and everything the framing had to do about bad input (garbage,
a packet answered with RESEND, a duplicate dropped, an unknown packet). Message events
carry both the parsed construct container (``message``), the bytes after the fixed
struct (``data``) and the whole raw payload. What it does not do: decide anything.
Spec: packet types of kd-protocol.md §1.5; message bodies of §4-§7.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, dataclass_transform

__all__ = [
    "NEED_DATA",
    "NeedData",
    "Event",
    "StateChange",
    "ManipulateRequest",
    "ManipulateReply",
    "DebugPrint",
    "DebugPrompt",
    "PromptReply",
    "FileIo",
    "TraceIo",
    "ControlRequest",
    "Ack",
    "Resend",
    "Reset",
    "BreakIn",
    "Garbage",
    "BadPacket",
    "DroppedPacket",
    "UnknownPacket",
    "SendAbandoned",
    "LinkClosed",
]


class NeedData:
    """Sentinel: no complete event until more bytes arrive (h11's NEED_DATA)."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event: each subclass is a frozen dataclass of keyword fields."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True, kw_only=True)(cls)


class _Message(Event):
    packet_id: int
    packet_type: int
    message: Any = field(repr=False)
    data: bytes = field(repr=False)
    raw: bytes = field(repr=False)


class StateChange(_Message):
    """STATE_CHANGE64 (or the legacy STATE_CHANGE32): the target stopped."""

    new_state: int
    program_counter: int


class ManipulateRequest(_Message):
    """A STATE_MANIPULATE request as the target receives it."""

    api: int


class ManipulateReply(_Message):
    """A STATE_MANIPULATE reply as the host receives it."""

    api: int
    return_status: int


class DebugPrint(_Message):
    """DEBUG_IO PrintString: the DbgPrint text, raw bytes (not NUL-terminated)."""

    text: bytes


class DebugPrompt(_Message):
    """DEBUG_IO GetString from the target: a prompt awaiting the host's PromptReply."""

    prompt: bytes
    max_length: int


class PromptReply(_Message):
    """DEBUG_IO GetString from the host: the answer to a DebugPrompt."""

    text: bytes


class FileIo(_Message):
    """FILE_IO: a request (target to host) or its answer (host to target)."""

    api: int
    status: int


class TraceIo(_Message):
    """TRACE_IO: trace data from the target."""


class ControlRequest(_Message):
    """CONTROL_REQUEST: a hardware-breakpoint request or its answer."""

    api: int


class _Control(Event):
    """A control packet from the peer, with the id it carried."""

    packet_id: int


class Ack(_Control):
    """Our pending data packet was acknowledged."""


class Resend(_Control):
    """The peer asked for a retransmission."""


class Reset(_Control):
    """The peer sent RESET: both packet ids are back at INITIAL_PACKET_ID."""


class BreakIn(Event):
    """A lone break-in byte 0x62 (the host asks a running target to stop)."""

    offset: int


class Garbage(Event):
    """Bytes that belong to no packet (skipped while looking for a leader)."""

    offset: int
    raw: bytes = field(repr=False)

    @property
    def length(self) -> int:
        return len(self.raw)


class BadPacket(Event):
    """A damaged data packet; RESEND was sent. reason: byte_count, trailer, checksum,
    truncated, or too_short (ByteCount below the message's fixed struct)."""

    offset: int
    reason: str
    packet_type: int | None
    packet_id: int | None
    raw: bytes = field(repr=False)


class DroppedPacket(Event):
    """A good data packet that was dropped. reason: duplicate, out_of_sequence,
    unexpected_type, implicit_ack (it arrived while we waited for an ACK: it counts as
    that ACK, and RESEND asks the peer to send it again), all ACKed; or
    before_reset_answer (a host's RESET is unanswered: the packet was sent before the
    target read it, and is not ACKed, Rule 11); stop_repeated (a state change while the
    host holds the target broken in: the same stop again, ACKed, Rule 12)."""

    reason: str
    packet_type: int
    packet_id: int
    raw: bytes = field(repr=False)


class UnknownPacket(Event):
    """A packet of a type this side does not handle, or a payload that does not parse."""

    kind: str  # "data" or "control"
    packet_type: int
    packet_id: int
    raw: bytes = field(repr=False)


class SendAbandoned(Event):
    """A data packet was given up after its retries (§2.5). On a target only DbgPrint,
    LoadSymbols and CreateFile are ever given up, and the debugger is then absent."""

    packet_type: int
    packet_id: int
    payload: bytes = field(repr=False)
    reason: str


class LinkClosed(Event):
    """The port reached end of file or failed (KdLink); no more events will come."""

    reason: str
