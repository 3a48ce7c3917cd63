"""DEBUG_IO payloads through struct: the bytes and fields construct's DBGKD_DEBUG_IO gives."""

from __future__ import annotations

import pytest
from construct import ConstructError

from kdcon.protocol import messages
from kdcon.protocol.constants import DebugIoApi, PacketType
from kdcon.protocol.events import DebugPrint, DebugPrompt, PromptReply, UnknownPacket
from kdcon.protocol.windbgkd import DBGKD_DEBUG_IO

PRINT, GET = DebugIoApi.DbgKdPrintStringApi, DebugIoApi.DbgKdGetStringApi


def _construct(api: int, level: int, processor: int, u: dict) -> bytes:
    return DBGKD_DEBUG_IO.build(dict(ApiNumber=api, ProcessorLevel=level,
                                     Processor=processor, u=u))


@pytest.mark.parametrize("text, processor, level, unused", [
    (b"", 0, 0, 0),
    (b"TrackDemo: ready\n", 1, 0x8664, 0x7FF),
    (b"\xff" * 300, 0xFFFF, 1, 2**32 - 1),
])
def test_print_string_bytes_are_constructs(text, processor, level, unused) -> None:
    built = messages.build_debug_print(text, processor=processor, processor_level=level,
                                       unused=unused)
    assert built == _construct(PRINT, level, processor,
                               dict(LengthOfString=len(text), Unused=unused)) + text


def test_prompt_and_its_answer_bytes_are_constructs() -> None:
    assert messages.build_debug_prompt(b"bipt? ", 512, processor=2) == _construct(
        GET, 0, 2, dict(LengthOfPromptString=6, LengthOfStringRead=512)) + b"bipt? "
    assert messages.build_prompt_reply(b"i", processor=1) == _construct(
        GET, 0, 1, dict(LengthOfPromptString=0, LengthOfStringRead=1)) + b"i"


def test_a_value_struct_cannot_hold_is_constructs_error() -> None:
    with pytest.raises(ConstructError):
        messages.build_debug_print(b"x", processor=0x10000)


@pytest.mark.parametrize("payload, kind, text", [
    (messages.build_debug_print(b"hello\n") + b"trailing", DebugPrint, b"hello\n"),
    (messages.build_debug_prompt(b"bipt? ", 4), DebugPrompt, b"bipt? "),
])
def test_target_packets_decode_to_constructs_fields(payload, kind, text) -> None:
    event = messages.decode_payload(PacketType.PACKET_TYPE_KD_DEBUG_IO, 0x80800000, payload,
                                    from_host=False)
    assert isinstance(event, kind)
    assert event.message == DBGKD_DEBUG_IO.parse(payload)
    assert (event.text if kind is DebugPrint else event.prompt) == text


def test_prompt_reply_from_the_host_decodes_its_text() -> None:
    payload = messages.build_prompt_reply(b"g")
    event = messages.decode_payload(PacketType.PACKET_TYPE_KD_DEBUG_IO, 1, payload,
                                    from_host=True)
    assert isinstance(event, PromptReply) and event.text == b"g"
    assert event.message.u == DBGKD_DEBUG_IO.parse(payload).u


def test_an_unknown_debug_io_api_is_still_constructs_raw_union() -> None:
    payload = (0x3232).to_bytes(4, "little") + bytes(range(12))
    event = messages.decode_payload(PacketType.PACKET_TYPE_KD_DEBUG_IO, 1, payload,
                                    from_host=False)
    assert isinstance(event, UnknownPacket)
