"""Payloads to events and back: decode a data packet's payload, build message payloads.

What it does: turns the payload of a good data packet into the event that means it
(StateChange, ManipulateRequest/Reply, DebugPrint, DebugPrompt, PromptReply, FileIo,
TraceIo, ControlRequest), or UnknownPacket when the type is not a KD message type or
the payload does not parse; and builds the payloads a host or target sends. What it
does not do: framing, ids, ACKs.
Spec: kd-protocol.md §4 (state change), §5 (manipulate), §6 (debug I/O), §7.1 (file I/O).
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from construct import Container, ConstructError

from .constants import (
    KD_PRINT_MAX_BYTES,
    DebugIoApi,
    ManipulateApi,
    PacketType,
    StateChange,
)
from .events import (
    ControlRequest,
    DebugPrint,
    DebugPrompt,
    Event,
    FileIo,
    ManipulateReply,
    ManipulateRequest,
    PromptReply,
    StateChange as StateChangeEvent,
    TraceIo,
    UnknownPacket,
)
from .manipulate import (
    MANIPULATE_STATE64_SIZE,
    build_manipulate_state64,
    parse_manipulate_state64,
)
from .windbgkd import (
    CONTROL_REQUEST_SIZE,
    DBGKD_ANY_WAIT_STATE_CHANGE,
    DBGKD_CONTROL_REQUEST,
    DBGKD_DEBUG_IO,
    DBGKD_FILE_IO,
    DBGKD_TRACE_IO,
    DBGKD_WAIT_STATE_CHANGE32,
    DEBUG_IO_SIZE,
    FILE_IO_SIZE,
    STATE_CHANGE32_SIZE,
    STATE_CHANGE64_SIZE,
    TRACE_IO_SIZE,
)

__all__ = [
    "MIN_PAYLOAD",
    "decode_payload",
    "build_manipulate",
    "build_state_change",
    "build_exception_state_change",
    "build_load_symbols_state_change",
    "build_debug_print",
    "build_debug_prompt",
    "build_prompt_reply",
    "build_file_io",
    "reply_matches",
]

P = PacketType
_MANIPULATE = int(P.PACKET_TYPE_KD_STATE_MANIPULATE)
_MANIPULATE_HEADER = struct.Struct("<IHHII")

# DBGKD_DEBUG_IO's 16 bytes through struct: construct took 30-40 µs to build or parse
# each DbgPrint, most of a DbgPrint flood's CPU on both sides. The union's two fields
# by ApiNumber; construct still parses any other (its Raw bytes).
_DEBUG_IO = struct.Struct("<IHHII")
_DEBUG_IO_UNION = {
    DebugIoApi.DbgKdPrintStringApi: ("LengthOfString", "Unused"),
    DebugIoApi.DbgKdGetStringApi: ("LengthOfPromptString", "LengthOfStringRead"),
}

# §2.3: a payload smaller than its message's fixed struct is answered with RESEND.
MIN_PAYLOAD: dict[int, int] = {
    P.PACKET_TYPE_KD_STATE_CHANGE32: STATE_CHANGE32_SIZE,
    P.PACKET_TYPE_KD_STATE_MANIPULATE: MANIPULATE_STATE64_SIZE,
    P.PACKET_TYPE_KD_DEBUG_IO: DEBUG_IO_SIZE,
    P.PACKET_TYPE_KD_STATE_CHANGE64: STATE_CHANGE64_SIZE,
    P.PACKET_TYPE_KD_TRACE_IO: TRACE_IO_SIZE,
    P.PACKET_TYPE_KD_CONTROL_REQUEST: CONTROL_REQUEST_SIZE,
    P.PACKET_TYPE_KD_FILE_IO: FILE_IO_SIZE,
}


def decode_payload(packet_type: int, packet_id: int, payload: bytes, *,
                   from_host: bool) -> Event:
    """The event a good data packet means; UnknownPacket if it means nothing we know.

    ``from_host`` says who sent it: a manipulate from the host is a request, from the
    target a reply; a GetString from the target is a prompt, from the host its answer.
    """
    try:
        return _decode(packet_type, packet_id, payload, from_host)
    except (ConstructError, ValueError, KeyError):
        return UnknownPacket(kind="data", packet_type=packet_type, packet_id=packet_id,
                             raw=payload)


def _decode(packet_type: int, packet_id: int, payload: bytes, from_host: bool) -> Event:
    if packet_type == _MANIPULATE and len(payload) >= MANIPULATE_STATE64_SIZE:
        msg = parse_manipulate_state64(payload)
        data = payload[MANIPULATE_STATE64_SIZE:]
        # By item: a Container's attribute is a Python __getattr__, a microsecond
        # each, and every request and reply passes here.
        if from_host:
            return ManipulateRequest(message=msg, data=data, api=msg["ApiNumber"],
                                     packet_id=packet_id, packet_type=packet_type, raw=payload)
        return ManipulateReply(message=msg, data=data, api=msg["ApiNumber"],
                               return_status=msg["ReturnStatus"], packet_id=packet_id,
                               packet_type=packet_type, raw=payload)
    common = dict(packet_id=packet_id, packet_type=packet_type, raw=payload)
    size = MIN_PAYLOAD.get(packet_type)
    if size is None or len(payload) < size:
        return UnknownPacket(kind="data", **common)
    data = payload[size:]
    if packet_type == P.PACKET_TYPE_KD_STATE_CHANGE64:
        msg = DBGKD_ANY_WAIT_STATE_CHANGE.parse(payload)
        return StateChangeEvent(message=msg, data=data, new_state=msg.NewState,
                                program_counter=msg.ProgramCounter, **common)
    if packet_type == P.PACKET_TYPE_KD_STATE_CHANGE32:
        msg = DBGKD_WAIT_STATE_CHANGE32.parse(payload)
        return StateChangeEvent(message=msg, data=data, new_state=msg.NewState,
                                program_counter=msg.ProgramCounter, **common)
    if packet_type == P.PACKET_TYPE_KD_DEBUG_IO:
        msg = _parse_debug_io(payload)
        api, u = msg["ApiNumber"], msg["u"]
        if api == DebugIoApi.DbgKdPrintStringApi:
            text = data[: u["LengthOfString"]]
            return DebugPrint(message=msg, data=data, text=text, **common)
        if api == DebugIoApi.DbgKdGetStringApi:
            if from_host:
                text = data[: u["LengthOfStringRead"]]
                return PromptReply(message=msg, data=data, text=text, **common)
            prompt = data[: u["LengthOfPromptString"]]
            return DebugPrompt(message=msg, data=data, prompt=prompt,
                               max_length=u["LengthOfStringRead"], **common)
        return UnknownPacket(kind="data", **common)
    if packet_type == P.PACKET_TYPE_KD_FILE_IO:
        msg = DBGKD_FILE_IO.parse(payload)
        return FileIo(message=msg, data=data, api=msg.ApiNumber, status=msg.Status, **common)
    if packet_type == P.PACKET_TYPE_KD_TRACE_IO:
        msg = DBGKD_TRACE_IO.parse(payload)
        return TraceIo(message=msg, data=data, **common)
    msg = DBGKD_CONTROL_REQUEST.parse(payload)
    return ControlRequest(message=msg, data=data, api=msg.ApiNumber, **common)


# -- builders ------------------------------------------------------------------------


def build_manipulate(api: int, u: Mapping[str, Any] | None = None, data: bytes = b"", *,
                     return_status: int = 0, processor: int = 0,
                     processor_level: int = 0) -> bytes:
    """A DBGKD_MANIPULATE_STATE64 payload; ``u`` holds the union fields by name.

    With ``u`` None (or for an ApiNumber with no union layout) the union is zeros.
    """
    if not u:
        body = _MANIPULATE_HEADER.pack(api, processor_level, processor, return_status, 0)
        return body + bytes(40) + data
    body = build_manipulate_state64(api, processor_level, processor, return_status, u)
    return body + data


def build_state_change(new_state: int, u: Mapping[str, Any], data: bytes = b"", *,
                       program_counter: int, thread: int = 0, processor: int = 0,
                       processor_level: int = 0, number_processors: int = 1,
                       control_report: Mapping[str, Any] | None = None) -> bytes:
    """A DBGKD_ANY_WAIT_STATE_CHANGE payload (240 bytes) plus ``data``.

    ``control_report`` is ``{"Amd64ControlReport": {...}}`` or
    ``{"X86ControlReport": {...}}``; None gives a zeroed report.
    """
    report = control_report or {"Amd64ControlReport": _ZERO_AMD64_REPORT}
    body = DBGKD_ANY_WAIT_STATE_CHANGE.build(
        dict(NewState=new_state, ProcessorLevel=processor_level, Processor=processor,
             NumberProcessors=number_processors, Thread=thread,
             ProgramCounter=program_counter, u=u, ControlReport=report))
    return body + data


_ZERO_AMD64_REPORT = dict(Dr6=0, Dr7=0, EFlags=0, InstructionCount=0, ReportFlags=0,
                          InstructionStream=bytes(16), SegCs=0, SegDs=0, SegEs=0, SegFs=0)


def build_exception_state_change(code: int, address: int, *, program_counter: int | None = None,
                                 first_chance: int = 1, parameters: tuple[int, ...] = (),
                                 flags: int = 0, trace_data: bytes = b"",
                                 **kwargs: Any) -> bytes:
    """An Exception state change (§4.3); ``program_counter`` defaults to ``address``.

    ``trace_data`` follows the struct (ReactOS sends 4 bytes, Windows 10 none, §4.7).
    Other keywords go to build_state_change (thread, processor, control_report, ...).
    """
    info = list(parameters) + [0] * (15 - len(parameters))
    record = dict(ExceptionCode=code, ExceptionFlags=flags, ExceptionRecord=0,
                  ExceptionAddress=address, NumberParameters=len(parameters),
                  __unusedAlignment=0, ExceptionInformation=info)
    u = dict(ExceptionRecord=record, FirstChance=first_chance)
    pc = address if program_counter is None else program_counter
    return build_state_change(StateChange.DbgKdExceptionStateChange, u, trace_data,
                              program_counter=pc, **kwargs)


def build_load_symbols_state_change(path: bytes, base: int, size: int, *, checksum: int = 0,
                                    process_id: int = 0, unload: bool = False,
                                    program_counter: int = 0, **kwargs: Any) -> bytes:
    """A LoadSymbols state change: the path plus NUL follows as data (§4.4)."""
    name = path + b"\0" if path else b""
    u = dict(PathNameLength=len(name), BaseOfDll=base, ProcessId=process_id,
             CheckSum=checksum, SizeOfImage=size, UnloadSymbols=int(unload))
    return build_state_change(StateChange.DbgKdLoadSymbolsStateChange, u, name,
                              program_counter=program_counter, **kwargs)


def build_debug_print(text: bytes, *, processor: int = 0, processor_level: int = 0,
                      limit: int = KD_PRINT_MAX_BYTES, unused: int = 0) -> bytes:
    """A DEBUG_IO PrintString payload; text beyond ``limit`` is cut as ReactOS does."""
    text = text[:limit]
    return _build_debug_io(DebugIoApi.DbgKdPrintStringApi, processor_level, processor,
                           dict(LengthOfString=len(text), Unused=unused)) + text


def _build_debug_io(api: int, processor_level: int, processor: int,
                    u: dict[str, int]) -> bytes:
    """DBGKD_DEBUG_IO.build(...) of these fields; construct builds (and says what is
    wrong with a value) when struct cannot."""
    try:
        return _DEBUG_IO.pack(api, processor_level, processor, *u.values())
    except (struct.error, TypeError):
        return DBGKD_DEBUG_IO.build(dict(ApiNumber=api, ProcessorLevel=processor_level,
                                         Processor=processor, u=u))


def _parse_debug_io(payload: bytes) -> Container:
    """DBGKD_DEBUG_IO.parse(payload), through struct for the two APIs it knows."""
    api, level, processor, first, second = _DEBUG_IO.unpack_from(payload)
    names = _DEBUG_IO_UNION.get(api)
    if names is None:
        return DBGKD_DEBUG_IO.parse(payload)
    return Container(ApiNumber=api, ProcessorLevel=level, Processor=processor,
                     u=Container(zip(names, (first, second))))


def build_debug_prompt(prompt: bytes, max_length: int, *, processor: int = 0,
                       processor_level: int = 0) -> bytes:
    """A DEBUG_IO GetString payload from the target (§6.3 step 1)."""
    return _build_debug_io(DebugIoApi.DbgKdGetStringApi, processor_level, processor, dict(
        LengthOfPromptString=len(prompt), LengthOfStringRead=max_length)) + prompt


def build_prompt_reply(text: bytes, *, processor: int = 0) -> bytes:
    """The host's DEBUG_IO GetString answer carrying the typed response (§6.3 step 4)."""
    return _build_debug_io(DebugIoApi.DbgKdGetStringApi, 0, processor, dict(
        LengthOfPromptString=0, LengthOfStringRead=len(text))) + text


def build_file_io(api: int, status: int, u: Mapping[str, Any], data: bytes = b"") -> bytes:
    """A DBGKD_FILE_IO payload (64 bytes) plus data (a UTF-16 name, file bytes)."""
    return DBGKD_FILE_IO.build(dict(ApiNumber=api, Status=status, u=u)) + data


_ECHOED_UNION_BYTES = {
    # Memory-style requests: TargetBaseAddress and TransferCount come back unchanged.
    **{api: 12 for api in (
        ManipulateApi.DbgKdReadVirtualMemoryApi, ManipulateApi.DbgKdWriteVirtualMemoryApi,
        ManipulateApi.DbgKdReadPhysicalMemoryApi, ManipulateApi.DbgKdWritePhysicalMemoryApi,
        ManipulateApi.DbgKdReadControlSpaceApi, ManipulateApi.DbgKdWriteControlSpaceApi)},
    ManipulateApi.DbgKdReadIoSpaceApi: 12,
    ManipulateApi.DbgKdWriteIoSpaceApi: 12,
    ManipulateApi.DbgKdReadMachineSpecificRegister: 4,
    ManipulateApi.DbgKdWriteMachineSpecificRegister: 4,
    ManipulateApi.DbgKdRestoreBreakPointApi: 4,
    ManipulateApi.DbgKdWriteBreakPointApi: 8,
    ManipulateApi.DbgKdGetContextExApi: 8,
    ManipulateApi.DbgKdSetContextExApi: 8,
}


# Reads whose reply carries ActualBytesRead bytes of data.
_READ_APIS = frozenset({ManipulateApi.DbgKdReadVirtualMemoryApi,
                        ManipulateApi.DbgKdReadPhysicalMemoryApi,
                        ManipulateApi.DbgKdReadControlSpaceApi})


def reply_matches(request: bytes, reply: ManipulateReply) -> bool:
    """Whether ``reply`` answers the manipulate ``request`` payload (§5.1: the target
    echoes the header and union). A stale reply to an earlier, retried request for
    another address fails this, so it can never be taken for the current one."""
    if len(request) < MANIPULATE_STATE64_SIZE:
        return False
    if int.from_bytes(request[:4], "little") != reply.api:
        return False
    if request[6:8] != reply.raw[6:8]:  # Processor
        return False
    echoed = _ECHOED_UNION_BYTES.get(reply.api, 0)
    if request[16:16 + echoed] != reply.raw[16:16 + echoed]:
        return False
    if reply.api in _READ_APIS:
        wanted = int.from_bytes(request[24:28], "little")
        got = int.from_bytes(reply.raw[28:32], "little")
        return got <= wanted and len(reply.data) == got
    return True
