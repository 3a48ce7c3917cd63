"""KdConnection rules of kd-protocol.md §2-§3 and §6, both roles, over in-memory bytes."""

from __future__ import annotations

import pytest

from kdcon.protocol.constants import (
    INITIAL_PACKET_ID,
    KD_DEFAULT_RETRIES,
    SYNC_PACKET_ID,
    FileIoApi,
    ManipulateApi,
    NtStatus,
    PacketType,
)
from kdcon.protocol.connection import NEED_DATA, KdConnection, Phase, Role
from kdcon.protocol.errors import LocalProtocolError
from kdcon.protocol.events import (
    Ack,
    BadPacket,
    BreakIn,
    DebugPrint,
    DebugPrompt,
    DroppedPacket,
    FileIo,
    Garbage,
    ManipulateReply,
    ManipulateRequest,
    PromptReply,
    Resend,
    Reset,
    SendAbandoned,
    StateChange,
)
from kdcon.protocol.messages import (
    build_exception_state_change,
    build_load_symbols_state_change,
)
from kdcon.protocol.packet import build_control_packet, build_data_packet

from .kd_feeding import events_three_ways

READ = ManipulateApi.DbgKdReadVirtualMemoryApi


def drain(conn: KdConnection, data: bytes = b"") -> list:
    conn.receive_data(data)
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def control(ptype: int, pid: int) -> bytes:
    return build_control_packet(ptype, pid)


def ack(pid: int) -> bytes:
    return control(PacketType.PACKET_TYPE_KD_ACKNOWLEDGE, pid)


RESEND = control(PacketType.PACKET_TYPE_KD_RESEND, 0)
RESET = control(PacketType.PACKET_TYPE_KD_RESET, 0)


def read_request(address: int = 0x1000, count: int = 16) -> dict:
    return dict(TargetBaseAddress=address, TransferCount=count, ActualBytesRead=0)


def send_continue(host: KdConnection) -> bytes:
    """Continue2 with DBG_CONTINUE, no trace, no debug registers: what ``g`` sends."""
    return host.send_manipulate(ManipulateApi.DbgKdContinueApi2, dict(
        ContinueStatus=0x10002, ControlSet=dict(Amd64=dict(
            TraceFlag=0, Dr7=0, CurrentSymbolStart=1, CurrentSymbolEnd=0))))


def broken_pair() -> tuple[KdConnection, KdConnection]:
    """A host and a target after a break-in: state change sent and ACKed."""
    host, target = KdConnection(Role.HOST), KdConnection(Role.TARGET)
    assert [type(e) for e in drain(target, host.send_breakin())] == [BreakIn]
    sc = target.send_state_change(build_exception_state_change(0x80000003, 0x1000))
    events = drain(host, sc)
    assert [type(e) for e in events] == [StateChange]
    assert [type(e) for e in drain(target, host.data_to_send())] == [Ack]
    return host, target


def test_target_first_packet_carries_sync_and_host_acks_without_it() -> None:
    target = KdConnection(Role.TARGET)
    wire = target.send_debug_print(b"hello")
    assert wire[8:12] == (INITIAL_PACKET_ID | SYNC_PACKET_ID).to_bytes(4, "little")
    events, host = events_three_ways(lambda: KdConnection(Role.HOST), wire)
    assert [type(e) for e in events] == [DebugPrint] and events[0].text == b"hello"
    assert host.data_to_send() == ack(INITIAL_PACKET_ID)
    assert [type(e) for e in drain(target, ack(INITIAL_PACKET_ID))] == [Ack]
    assert target.current_id == INITIAL_PACKET_ID | 1


def test_target_ignores_ack_with_sync_bit_or_wrong_id() -> None:
    target = KdConnection(Role.TARGET)
    target.send_debug_print(b"x")
    assert drain(target, ack(INITIAL_PACKET_ID | SYNC_PACKET_ID) + ack(0x80800001)) == []
    assert target.awaiting_ack and target.stats["stale_acks"] == 2


def test_request_reply_ids_alternate_and_reply_is_request_xor_1() -> None:
    host, target = broken_pair()
    for n in range(4):
        req = host.send_manipulate(READ, read_request(0x1000 * n))
        (event,) = drain(target, req)
        assert isinstance(event, ManipulateRequest) and event.api == READ
        request_id = event.packet_id
        reply = target.send_manipulate(READ, dict(event.message.u, ActualBytesRead=4),
                                       b"abcd")
        events = drain(host, target.data_to_send() + reply)
        assert [type(e) for e in events] == [Ack, ManipulateReply]
        assert events[1].packet_id == request_id ^ 1 and events[1].data == b"abcd"
        assert [type(e) for e in drain(target, host.data_to_send())] == [Ack]


def test_bad_checksum_requests_resend_and_is_not_acked() -> None:
    packet = bytearray(build_data_packet(3, INITIAL_PACKET_ID, bytes(16) + b"text"))
    packet[-2] ^= 0xFF
    events, host = events_three_ways(lambda: KdConnection(Role.HOST), bytes(packet))
    assert [type(e) for e in events] == [BadPacket] and events[0].reason == "checksum"
    assert host.data_to_send() == RESEND


def test_payload_smaller_than_message_struct_requests_resend() -> None:
    packet = build_data_packet(PacketType.PACKET_TYPE_KD_STATE_MANIPULATE, 0x80800000,
                               bytes(20))
    events, target = events_three_ways(lambda: _broken_target(), packet)
    assert [(type(e), e.reason) for e in events] == [(BadPacket, "too_short")]
    assert target.data_to_send().endswith(RESEND)


def _broken_target() -> KdConnection:
    target = KdConnection(Role.TARGET)
    target.send_state_change(build_exception_state_change(0x80000003, 0x1000))
    drain(target, ack(INITIAL_PACKET_ID))
    target.data_to_send()
    return target


def test_duplicate_request_is_acked_and_dropped() -> None:
    host, target = broken_pair()
    req = host.send_manipulate(READ, read_request())
    events = drain(target, req + req)
    assert [type(e) for e in events] == [ManipulateRequest, DroppedPacket]
    assert events[1].reason == "duplicate"
    assert target.data_to_send() == ack(0x80800000) + ack(0x80800000)


def test_out_of_sequence_id_is_acked_and_dropped() -> None:
    target = _broken_target()
    from kdcon.protocol.messages import build_manipulate
    stray = build_data_packet(2, 0x12345678, build_manipulate(READ, read_request()))
    events, conn = events_three_ways(_broken_target, stray)
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "out_of_sequence")]
    assert conn.data_to_send() == ack(0x12345678)
    assert target.remote_id == INITIAL_PACKET_ID


def test_target_drops_unexpected_type_without_toggling_remote() -> None:
    host, target = broken_pair()
    host.phase = Phase.TARGET_PROMPTING  # pretend, to send a reply the target never asked for
    wire = host.send_prompt_reply(b"i")
    events = drain(target, wire)
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "unexpected_type")]
    assert target.remote_id == INITIAL_PACKET_ID
    # Not ACKed: most likely a packet whose type the line damaged (the header is
    # outside the checksum); RESEND brings it again.
    assert target.data_to_send() == RESEND


def test_a_repeat_of_a_packet_already_taken_is_acked_whatever_its_type() -> None:
    host, target = broken_pair()
    drain(host, target.send_debug_prompt(b"(bipt)? ", 4))  # a prompt while broken in
    drain(target, host.data_to_send())  # the ACK of the prompt
    reply = host.send_prompt_reply(b"i")
    assert [type(e) for e in drain(target, reply)] == [PromptReply]  # back to broken
    assert target.phase is Phase.BROKEN
    target.data_to_send()
    events = drain(target, reply)  # its ACK was lost: the host sends it again
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "duplicate")]
    assert target.data_to_send().startswith(b"iiii")


def test_target_takes_data_packet_while_waiting_for_ack_as_ack_and_asks_resend() -> None:
    host, target = broken_pair()
    wire = target.send_debug_print(b"pending")  # the host's ACK for it will be lost
    drain(host, wire)
    host.data_to_send()
    req = host.send_manipulate(READ, read_request())
    events = drain(target, req)
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "implicit_ack")]
    assert target.data_to_send() == RESEND and not target.awaiting_ack
    # The host sends its request again and this time the target takes it.
    assert [type(e) for e in drain(host, RESEND)] == [Resend]
    events = drain(target, host.data_to_send())
    assert [type(e) for e in events] == [ManipulateRequest]


def test_target_waiting_for_ack_acks_a_repeat_of_the_hosts_packet_and_keeps_waiting() -> None:
    host, target = broken_pair()
    go = send_continue(host)
    drain(target, go)
    target.data_to_send()  # the target's ACK of Continue is lost on the line
    load = target.send_state_change(build_load_symbols_state_change(b"\\hal.dll", 0x1000, 0x2000))
    # The host repeats Continue before it sees the load: that says nothing of the load.
    events = drain(target, go)
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "duplicate")]
    assert target.data_to_send() == ack(INITIAL_PACKET_ID) and target.awaiting_ack
    assert [type(e) for e in drain(host, ack(INITIAL_PACKET_ID))] == [Ack]
    (event,) = drain(host, load)
    assert isinstance(event, StateChange) and event.data.startswith(b"\\hal.dll")
    assert [type(e) for e in drain(target, host.data_to_send())] == [Ack]


def test_host_neither_acks_nor_takes_data_until_its_reset_is_answered() -> None:
    host, target = broken_pair()
    early = target.send_debug_print(b"sent before the target read the RESET")
    reset = host.send_reset()
    events = drain(host, early)
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "before_reset_answer")]
    # An ACK now would reach the target after the RESET and pass for the ACK of the
    # copy it stamps afresh.
    assert host.data_to_send() == b""
    drain(target, reset)
    answer = target.data_to_send()
    assert answer.startswith(RESET)
    events = drain(host, answer)
    assert [type(e) for e in events] == [Reset, DebugPrint]
    assert events[1].packet_id == INITIAL_PACKET_ID and not host.awaiting_reset_answer
    assert host.data_to_send() == ack(INITIAL_PACKET_ID)


def test_a_host_that_lost_a_stop_gets_it_again_by_breaking_in() -> None:
    host, target = broken_pair()
    go = send_continue(host)
    drain(target, go)
    drain(host, target.data_to_send())
    assert host.phase is Phase.TARGET_RUNNING
    # The target stops again, and the stop never reaches the host, while the target
    # believes it did: a ReactOS target that took a repeated Continue for its ACK.
    stop = target.send_state_change(build_exception_state_change(0x80000003, 0x2000))
    stop_id = int.from_bytes(stop[8:12], "little")
    drain(target, ack(stop_id))
    assert target.phase is Phase.BROKEN and not target.awaiting_ack
    # Ctrl+C on the host: once the line stays quiet after the break-in byte, the
    # waiting target says again what it waits with (Rule 13).
    events = drain(target, host.send_breakin())
    assert [type(e) for e in events] == [BreakIn]
    assert target.check_timeouts(100.0) == b""
    assert target.check_timeouts(100.0 + target.byte_timeout / 2) == b""
    again = target.check_timeouts(100.0 + target.byte_timeout)
    (event,) = drain(host, again)
    assert isinstance(event, StateChange) and event.program_counter == 0x2000
    drain(target, host.data_to_send())
    assert [type(e) for e in drain(target, host.send_manipulate(READ, read_request()))] == [
        ManipulateRequest]


def test_a_break_in_byte_inside_other_bytes_is_no_request_to_repeat() -> None:
    host, target = broken_pair()
    # Line noise that happens to hold 0x62, then more bytes: not a lone break-in.
    drain(target, b"\x13b")
    target.check_timeouts(100.0)
    drain(target, b"\x07\x00")
    assert target.check_timeouts(100.0 + target.byte_timeout) == b""
    assert target.check_timeouts(101.0 + target.byte_timeout) == b""
    assert target.stats["breakin_repeats"] == 0


def test_a_running_target_takes_break_in_as_break_in_only() -> None:
    target = KdConnection(Role.TARGET)
    assert [type(e) for e in drain(target, bytes([0x62]))] == [BreakIn]
    assert target.data_to_send() == b"" and target.stats["breakin_repeats"] == 0


def test_host_keeps_new_data_packet_while_waiting_for_ack_as_the_lost_ack() -> None:
    host, target = broken_pair()
    req = host.send_manipulate(READ, read_request())
    drain(target, req)
    target.data_to_send()  # the target's ACK is lost on the line
    reply = target.send_manipulate(READ, read_request(), b"")
    events = drain(host, reply)
    assert [type(e) for e in events] == [ManipulateReply]
    assert host.data_to_send() == ack(INITIAL_PACKET_ID | 1) and not host.awaiting_ack
    assert host.stats["implicit_acks"] == 1


def test_host_duplicate_while_waiting_for_ack_is_not_taken_as_ack() -> None:
    host, target = broken_pair()
    old = target.send_debug_print(b"again")
    drain(host, old)
    host.send_manipulate(READ, read_request())
    events = drain(host, old)
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "duplicate")]
    assert host.awaiting_ack


def test_resend_retransmits_pending_packet_unchanged() -> None:
    target = KdConnection(Role.TARGET)
    first = target.send_debug_print(b"abc")
    drain(target, RESEND)
    assert target.data_to_send() == first


def test_resend_with_nothing_pending_repeats_state_change_with_fresh_id() -> None:
    host, target = broken_pair()
    drain(target, RESEND)
    again = target.data_to_send()
    assert again[8:12] == (INITIAL_PACKET_ID | 1).to_bytes(4, "little")
    # The host holds that stop already: ACKed, not a second stop, ids in step (Rule 12).
    events = drain(host, again)
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "stop_repeated")]
    assert host.data_to_send() == ack(INITIAL_PACKET_ID | 1)
    drain(target, ack(INITIAL_PACKET_ID | 1))
    assert [type(e) for e in drain(target, host.send_manipulate(READ, read_request()))] == [
        ManipulateRequest]


def test_a_stop_repeated_while_a_request_is_pending_keeps_the_request_pending() -> None:
    host, target = broken_pair()
    request = host.send_manipulate(READ, read_request())
    # The target took the request for the ACK of a repeat it had sent and dropped it
    # (Rule 7); its repeat reaches the host, whose request must go again.
    drain(target, RESEND)
    again = target.data_to_send()
    events = drain(host, again)
    assert [(type(e), e.reason) for e in events] == [(DroppedPacket, "stop_repeated")]
    assert host.awaiting_ack and host.phase is Phase.TARGET_BROKEN
    assert host.data_to_send() == ack(INITIAL_PACKET_ID | 1)
    drain(host, RESEND)
    assert host.data_to_send() == request


def test_after_reset_or_switch_processor_the_next_state_change_is_the_stop() -> None:
    host, target = broken_pair()
    host.send_manipulate(ManipulateApi.DbgKdSwitchProcessor)
    assert host.phase is Phase.TARGET_RUNNING  # until the switched-to processor reports
    host, target = broken_pair()
    wire = host.send_reset()
    assert host.phase is Phase.UNKNOWN
    drain(target, wire)
    assert [type(e) for e in drain(host, target.data_to_send())] == [Reset, StateChange]


def test_reset_from_host_resets_ids_and_target_answers_reset() -> None:
    host, target = broken_pair()
    wire = host.send_reset()
    assert wire == RESET
    events = drain(target, wire)
    assert [type(e) for e in events] == [Reset]
    out = target.data_to_send()
    assert out.startswith(RESET)
    assert target.current_id == INITIAL_PACKET_ID + 0  # the state change went out again
    events = drain(host, out)
    assert [type(e) for e in events] == [Reset, StateChange]
    assert events[1].packet_id == INITIAL_PACKET_ID
    assert host.data_to_send() == ack(INITIAL_PACKET_ID)  # host does not echo RESET


def test_reset_is_accepted_by_host_at_any_time_and_pending_is_restamped() -> None:
    host, target = broken_pair()
    req = host.send_manipulate(READ, read_request())
    assert req[8:12] == INITIAL_PACKET_ID.to_bytes(4, "little")
    drain(host, ack(INITIAL_PACKET_ID))
    req2 = host.send_manipulate(READ, read_request())
    assert req2[8:12] == (INITIAL_PACKET_ID | 1).to_bytes(4, "little")
    events = drain(host, RESET)
    assert [type(e) for e in events] == [Reset]
    resent = host.data_to_send()
    assert resent[8:12] == INITIAL_PACKET_ID.to_bytes(4, "little") and resent[16:] == req2[16:]


def test_ack_timeout_retransmits_with_same_bytes() -> None:
    target = KdConnection(Role.TARGET, ack_timeout=1.0, byte_time=0.0)
    first = target.send_debug_print(b"abc")
    assert target.check_timeouts(0.0) == b""
    assert target.check_timeouts(0.9) == b""
    assert target.check_timeouts(1.0) == first
    assert target.check_timeouts(1.5) == b""
    assert target.check_timeouts(2.0) == first


@pytest.mark.parametrize("kind", ["print", "load_symbols", "create_file"])
def test_droppable_packet_given_up_after_retries_and_debugger_absent(kind: str) -> None:
    target = KdConnection(Role.TARGET, ack_timeout=1.0, byte_time=0.0)
    if kind == "print":
        target.send_debug_print(b"lost")
    elif kind == "load_symbols":
        target.send_state_change(build_load_symbols_state_change(b"\\nt.exe", 0x1000, 0x2000))
    else:
        target.send_file_io(FileIoApi.DbgKdCreateFileApi, 0, dict(
            DesiredAccess=0, FileAttributes=0, ShareAccess=0, CreateDisposition=0,
            CreateOptions=0, Handle=0, Length=0), "x".encode("utf-16-le"))
    sent = [target.check_timeouts(float(t)) for t in range(KD_DEFAULT_RETRIES + 1)]
    assert sum(1 for s in sent if s) == KD_DEFAULT_RETRIES - 1  # retransmissions
    events = drain(target)
    assert [type(e) for e in events] == [SendAbandoned]
    assert not target.debugger_present and not target.awaiting_ack
    assert target.current_id == INITIAL_PACKET_ID | SYNC_PACKET_ID
    assert target.phase is Phase.RUNNING
    # Any leader heard marks the debugger present again.
    drain(target, b"iiii")
    target.send_debug_print(b"again")
    drain(target, ack(INITIAL_PACKET_ID))
    assert target.debugger_present


def test_exception_state_change_is_retried_forever() -> None:
    target = KdConnection(Role.TARGET, ack_timeout=1.0, byte_time=0.0)
    wire = target.send_state_change(build_exception_state_change(0x80000003, 0x1000))
    for t in range(1, 100):
        assert target.check_timeouts(float(t)) in (b"", wire)
    assert target.awaiting_ack and drain(target) == []
    assert target.stats["retransmissions"] >= 90


def test_host_gives_up_after_retries() -> None:
    host = KdConnection(Role.HOST, ack_timeout=1.0, byte_time=0.0, retries=3)
    host.send_manipulate(READ, read_request())
    for t in range(5):
        host.check_timeouts(float(t))
    events = drain(host)
    assert [type(e) for e in events] == [SendAbandoned] and not host.awaiting_ack


def running_target() -> KdConnection:
    """A target that has talked (a DbgPrint, ACKed) and runs: it polls for break-in."""
    target = KdConnection(Role.TARGET)
    target.send_debug_print(b"up\n")
    assert [type(e) for e in drain(target, ack(INITIAL_PACKET_ID))] == [Ack]
    return target


def test_running_target_discards_what_comes_before_a_breakin() -> None:
    noise = RESET + b"0000junk" + ack(1) + b"\x00b"
    events, target = events_three_ways(running_target, noise)
    assert [type(e) for e in events] == [BreakIn]
    assert events[0].offset == len(ack(0)) + len(noise) - 1
    assert target.data_to_send() == b""  # no RESET answer: the port is not read
    assert target.stats["discarded_while_running"] == len(noise) - 1


def test_running_target_without_breakin_discards_everything() -> None:
    noise = RESET + b"0000junk" + ack(1)
    events, target = events_three_ways(running_target, noise)
    assert events == [] and target.data_to_send() == b""
    assert target.stats["discarded_while_running"] == len(noise)


def test_bytes_after_a_breakin_wait_for_the_exchange_it_starts() -> None:
    # What a host attaching to a running target writes at once (kd-protocol.md §3.5).
    events, target = events_three_ways(running_target, b"b" + RESET)
    assert [type(e) for e in events] == [BreakIn] and target.data_to_send() == b""
    payload = build_exception_state_change(0x80000003, 0x1000)
    target.send_state_change(payload)
    assert [type(e) for e in drain(target)] == [Reset]
    # The RESET answered, the stop stamped again with the fresh id (Rule 5).
    assert target.data_to_send() == RESET + build_data_packet(
        PacketType.PACKET_TYPE_KD_STATE_CHANGE64, INITIAL_PACKET_ID, payload)
    assert target.stats["discarded_while_running"] == 0


def test_host_attach_to_a_running_target_needs_one_reset() -> None:
    host, target = KdConnection(Role.HOST), running_target()
    assert [type(e) for e in drain(target, host.send_breakin() + host.send_reset())] == [BreakIn]
    wire = target.send_state_change(build_exception_state_change(0x80000003, 0x1000))
    drain(target)
    events = drain(host, wire + target.data_to_send())
    assert [type(e) for e in events] == [DroppedPacket, Reset, StateChange]
    assert events[0].reason == "before_reset_answer"
    assert events[2].packet_id == INITIAL_PACKET_ID and host.phase is Phase.TARGET_BROKEN


def test_target_that_has_sent_nothing_keeps_what_arrives_for_its_first_packet() -> None:
    # kdcom has not read its port yet: a RESET crossing the first packet is answered.
    events, target = events_three_ways(lambda: KdConnection(Role.TARGET), RESET)
    assert events == [] and target.data_to_send() == b""
    payload = build_load_symbols_state_change(b"\\ntoskrnl.exe", 0x1000, 0x2000)
    first = target.send_state_change(payload)
    assert first[8:12] == (INITIAL_PACKET_ID | SYNC_PACKET_ID).to_bytes(4, "little")
    assert [type(e) for e in drain(target)] == [Reset]
    assert target.data_to_send() == RESET + build_data_packet(
        PacketType.PACKET_TYPE_KD_STATE_CHANGE64, INITIAL_PACKET_ID, payload)
    assert target.stats["discarded_while_running"] == 0


def test_breakin_seen_before_the_first_packet_is_reported_once() -> None:
    events, target = events_three_ways(lambda: KdConnection(Role.TARGET), RESET + b"b" + RESET)
    assert [type(e) for e in events] == [BreakIn] and events[0].offset == len(RESET)
    target.send_state_change(build_exception_state_change(0x80000003, 0x1000))
    assert [type(e) for e in drain(target)] == [Reset, Reset]


def test_truncated_packet_is_answered_with_resend_after_quiet_line() -> None:
    host = KdConnection(Role.HOST, byte_timeout=0.5)
    packet = build_data_packet(3, INITIAL_PACKET_ID, bytes(16) + b"text")
    host.receive_data(packet[:12])
    assert host.next_event() is NEED_DATA
    assert host.check_timeouts(0.0) == b""
    assert host.check_timeouts(0.4) == b""
    assert host.check_timeouts(0.6) == RESEND
    (event,) = drain(host)
    assert isinstance(event, BadPacket) and event.reason == "truncated"


def test_garbage_is_reported_and_counted() -> None:
    events, host = events_three_ways(lambda: KdConnection(Role.HOST), b"xyz" + RESEND)
    assert [type(e) for e in events] == [Garbage, Resend]
    assert events[0].raw == b"xyz" and host.stats["garbage_bytes"] == 3


def test_prompt_exchange_both_roles() -> None:
    host, target = broken_pair()
    prompt = b"Break, Ignore, Terminate Process or Terminate Thread (bipt)? "
    events = drain(host, target.send_debug_prompt(prompt, 2))
    assert [type(e) for e in events] == [DebugPrompt]
    assert events[0].prompt == prompt and events[0].max_length == 2
    assert host.phase is Phase.TARGET_PROMPTING
    drain(target, host.data_to_send())
    events = drain(target, host.send_prompt_reply(b"i\n"))
    assert [type(e) for e in events] == [PromptReply] and events[0].text == b"i\n"
    assert target.phase is Phase.BROKEN and host.phase is Phase.TARGET_BROKEN
    drain(host, target.data_to_send())
    assert not host.awaiting_ack


def test_file_io_create_answered_no_such_file() -> None:
    target = KdConnection(Role.TARGET)
    host = KdConnection(Role.HOST)
    name = "\\Windows\\system32\\x.sys".encode("utf-16-le")
    wire = target.send_file_io(FileIoApi.DbgKdCreateFileApi, 0, dict(
        DesiredAccess=1, FileAttributes=0, ShareAccess=1, CreateDisposition=1,
        CreateOptions=0, Handle=0, Length=0), name)
    (request,) = drain(host, wire)
    assert isinstance(request, FileIo) and request.data == name
    drain(target, host.data_to_send())
    reply = host.send_file_io(FileIoApi.DbgKdCreateFileApi, NtStatus.STATUS_NO_SUCH_FILE,
                              dict(request.message.u))
    (answer,) = drain(target, reply)
    assert isinstance(answer, FileIo) and answer.status == NtStatus.STATUS_NO_SUCH_FILE
    assert target.phase is Phase.RUNNING


def test_continue_puts_target_back_to_running() -> None:
    host, target = broken_pair()
    wire = send_continue(host)
    (event,) = drain(target, wire)
    assert isinstance(event, ManipulateRequest) and target.phase is Phase.RUNNING
    assert host.phase is Phase.TARGET_RUNNING
    with pytest.raises(LocalProtocolError):
        host.send_manipulate(READ, read_request())


def test_caller_misuse_raises_local_protocol_error() -> None:
    host, target = KdConnection(Role.HOST), KdConnection(Role.TARGET)
    with pytest.raises(LocalProtocolError):
        host.send_debug_print(b"x")
    with pytest.raises(LocalProtocolError):
        target.send_breakin()
    with pytest.raises(LocalProtocolError):
        target.send_manipulate(READ, read_request())  # not broken in
    with pytest.raises(LocalProtocolError):
        _broken_target().send_manipulate(READ, read_request(), bytes(4000))


def test_packets_sent_while_one_is_pending_queue_in_order() -> None:
    target = KdConnection(Role.TARGET)
    first = target.send_debug_print(b"one")
    assert target.send_debug_print(b"two") == b""
    drain(target, ack(INITIAL_PACKET_ID))
    second = target.data_to_send()
    assert second[8:12] == (INITIAL_PACKET_ID | 1).to_bytes(4, "little")
    assert second.endswith(b"two\xaa") and first.endswith(b"one\xaa")


def test_the_stop_reported_again_for_switch_processor_is_taken_though_its_ack_was_lost() -> None:
    host, target = broken_pair()
    ask = host.send_manipulate(ManipulateApi.DbgKdSwitchProcessor)
    assert [type(e) for e in drain(target, ask)] == [ManipulateRequest]
    target.data_to_send()  # the target's ACK of SwitchProcessor is lost on the line
    # The CPU asked reports the same stop again: the answer, not a repeat (Rule 12).
    again = target.send_state_change(build_exception_state_change(0x80000003, 0x1000))
    events = drain(host, again)
    assert [type(e) for e in events] == [StateChange]
    assert host.phase is Phase.TARGET_BROKEN and not host.awaiting_ack
