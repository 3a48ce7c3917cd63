"""The struct fast path of DBGKD_MANIPULATE_STATE64 gives exactly what construct gives:
the same containers on parse and the same bytes on build, for every ApiNumber, whole,
byte by byte and with trailing bytes through a connection, and the same errors."""

from __future__ import annotations

import random

import pytest
from construct import ConstructError

from kdcon.protocol.connection import KdConnection, Role
from kdcon.protocol.constants import INITIAL_PACKET_ID, ManipulateApi, PacketType
from kdcon.protocol.events import Ack, ManipulateReply, ManipulateRequest
from kdcon.protocol.manipulate import (
    DBGKD_MANIPULATE_STATE64,
    MANIPULATE_STATE64_SIZE,
    build_manipulate_state64,
    parse_manipulate_state64,
)
from kdcon.protocol.messages import build_exception_state_change, build_manipulate
from kdcon.protocol.packet import (
    KD_PACKET_DATA_HEADER,
    build_control_packet,
    build_data_packet,
    checksum,
)

from .kd_feeding import events_three_ways

# Every ApiNumber of windbgkd.h plus values no header names (they decode as Raw).
APIS = sorted({int(api) for api in ManipulateApi} | {0, 0x3000, 0x31FF, 0xFFFFFFFF})


def _payload(api: int, seed: int, extra: int = 0) -> bytes:
    rng = random.Random(api * 1000 + seed)
    body = rng.randbytes(MANIPULATE_STATE64_SIZE + extra)
    return api.to_bytes(4, "little") + body[4:]


def _plain(container: object) -> object:
    """A container as plain dicts without construct's private keys, order kept."""
    if isinstance(container, dict):
        return [(k, _plain(v)) for k, v in container.items() if not k.startswith("_")]
    return container


@pytest.mark.parametrize("api", APIS, ids=hex)
def test_parse_matches_construct_for_every_api(api: int) -> None:
    for seed in range(8):
        payload = _payload(api, seed, extra=seed * 3)
        fast = parse_manipulate_state64(payload)
        slow = DBGKD_MANIPULATE_STATE64.parse(payload)
        assert fast == slow
        assert _plain(fast) == _plain(slow)  # same keys in the same order, same types


@pytest.mark.parametrize("api", APIS, ids=hex)
def test_build_matches_construct_for_every_api(api: int) -> None:
    for seed in range(4):
        parsed = DBGKD_MANIPULATE_STATE64.parse(_payload(api, seed))
        expected = DBGKD_MANIPULATE_STATE64.build(dict(
            ApiNumber=api, ProcessorLevel=parsed.ProcessorLevel, Processor=parsed.Processor,
            ReturnStatus=parsed.ReturnStatus, u=parsed.u))
        got = build_manipulate_state64(api, parsed.ProcessorLevel, parsed.Processor,
                                       parsed.ReturnStatus, parsed.u)
        assert got == expected


def test_short_payload_raises_what_construct_raises() -> None:
    short = _payload(ManipulateApi.DbgKdGetVersionApi, 0)[:40]
    with pytest.raises(ConstructError):
        DBGKD_MANIPULATE_STATE64.parse(short)
    with pytest.raises(ConstructError):
        parse_manipulate_state64(short)


@pytest.mark.parametrize("u", [
    dict(TargetBaseAddress=-1, TransferCount=4, ActualBytesRead=0),
    dict(TargetBaseAddress=1 << 64, TransferCount=4, ActualBytesRead=0),
    dict(TargetBaseAddress=0x1000, TransferCount="4", ActualBytesRead=0),
    dict(TargetBaseAddress=0x1000, TransferCount=4),
])
def test_bad_union_values_raise_what_construct_raises(u: dict) -> None:
    api = ManipulateApi.DbgKdReadVirtualMemoryApi
    with pytest.raises((ConstructError, KeyError)) as slow:
        DBGKD_MANIPULATE_STATE64.build(dict(ApiNumber=api, ProcessorLevel=0, Processor=0,
                                            ReturnStatus=0, u=u))
    with pytest.raises(slow.type) as fast:
        build_manipulate_state64(api, 0, 0, 0, u)
    assert str(fast.value) == str(slow.value)


def test_read_request_builds_the_bytes_construct_builds() -> None:
    api = ManipulateApi.DbgKdReadVirtualMemoryApi
    u = dict(TargetBaseAddress=0xFFFFFA8000001000, TransferCount=3944, ActualBytesRead=0,
             Ignored="extra keys are ignored, as construct ignores them")
    expected = DBGKD_MANIPULATE_STATE64.build(dict(
        ApiNumber=api, ProcessorLevel=0, Processor=1, ReturnStatus=0, u=u)) + b"tail"
    assert build_manipulate(api, u, b"tail", processor=1) == expected


def test_data_packet_header_matches_construct() -> None:
    payload = _payload(ManipulateApi.DbgKdReadVirtualMemoryApi, 1, extra=3944)
    wire = build_data_packet(PacketType.PACKET_TYPE_KD_STATE_MANIPULATE, 0x80800001, payload)
    header = KD_PACKET_DATA_HEADER.build(dict(
        PacketType=PacketType.PACKET_TYPE_KD_STATE_MANIPULATE, ByteCount=len(payload),
        PacketId=0x80800001, Checksum=checksum(payload)))
    assert wire == header + payload + b"\xaa"


@pytest.mark.parametrize("api", APIS, ids=hex)
def test_requests_and_replies_decode_as_construct_three_ways(api: int) -> None:
    payload = _payload(api, 7, extra=24)
    expected = DBGKD_MANIPULATE_STATE64.parse(payload)
    ptype = PacketType.PACKET_TYPE_KD_STATE_MANIPULATE

    def broken_target() -> KdConnection:
        conn = KdConnection(Role.TARGET)
        conn.send_state_change(build_exception_state_change(0x80000003, 0x1000))
        conn.receive_data(build_control_packet(PacketType.PACKET_TYPE_KD_ACKNOWLEDGE,
                                               INITIAL_PACKET_ID))
        assert isinstance(conn.next_event(), Ack)  # the host's ACK: now broken in
        conn.data_to_send()
        return conn

    request = build_data_packet(ptype, 0x80800000, payload)
    events, _ = events_three_ways(broken_target, request)
    [event] = [e for e in events if isinstance(e, ManipulateRequest)]
    assert event.message == expected and event.data == payload[MANIPULATE_STATE64_SIZE:]
    assert _plain(event.message) == _plain(expected)

    reply = build_data_packet(ptype, 0x80800001, payload)
    events, _ = events_three_ways(lambda: KdConnection(Role.HOST), reply)
    [event] = [e for e in events if isinstance(e, ManipulateReply)]
    assert event.message == expected and event.return_status == expected.ReturnStatus
    assert _plain(event.message) == _plain(expected)
