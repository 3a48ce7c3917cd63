"""The byte vectors of kd-protocol.md §1.3, §1.6, §5.3 and §10.1, built and parsed exactly.

KDNET vectors carry no trailer; 0xAA is appended for serial as the reference says.
"""

from __future__ import annotations

from kdcon.protocol.buffer import ControlFrame, DataFrame
from kdcon.protocol.constants import DebugIoApi, ManipulateApi, PacketType
from kdcon.protocol.connection import KdConnection, Role
from kdcon.protocol.events import DebugPrint, ManipulateReply, Reset
from kdcon.protocol.manipulate import DBGKD_MANIPULATE_STATE64
from kdcon.protocol.messages import build_debug_print, build_manipulate
from kdcon.protocol.packet import build_control_packet, build_data_packet, checksum

from .kd_feeding import events_three_ways, frames_three_ways


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace("|", ""))


DATA_VECTOR = h("30303030 0200 0500 00088080 0f000000 0102030405 aa")
ACK_VECTOR = h("69696969 0400 0000 00008080 00000000")
RESEND_VECTOR = h("69696969 0500 0000 00000000 00000000")
RESET_VECTOR = h("69696969 0600 0000 60000080 00000000")
DBGPRINT_TEXT = b"BD: Boot Debugger Initialized\n"
DBGPRINT_VECTOR = (h("30303030 0300 2e00 00000000 df0b0000 30320000 0000 0000 1e000000 ff070000")
                   + DBGPRINT_TEXT + b"\xaa")
GETVERSION_REPLY = h(
    "30303030 0200 3800 04000000 aa090000 | 46310000 ffffffff 00000000 25000000 |"
    "0f04 5a29 06 02 0200 6486 0c 32 59 00 0000 | 00f0960000000000 | 605ead0000000000 |"
    "0000000000000000 aa")
GETVERSION_REQUEST_HEAD = h("30303030 0200 3800 00000080 c0100000 | 46310000 ffff ffff 03010000"
                            " 25000000")
CONTINUE2_REQUEST = h(
    "30303030 0200 3800 6e000080 24050000 | 3c310000 2500 0000 02000100 00000000 |"
    "02000100 00000000 00040000 00000000 | 01000000 00000000 00000000 00000000 |"
    "c0b2fb9dfe7f0000 aa")


def test_checksum_vector() -> None:
    assert checksum(b"\x03\x04\x05") == 0x0000000C


def test_data_packet_vector_builds_and_parses() -> None:
    assert build_data_packet(2, 0x80800800, b"\x01\x02\x03\x04\x05") == DATA_VECTOR
    frames = frames_three_ways(DATA_VECTOR)
    assert frames == [DataFrame(offset=0, packet_type=2, packet_id=0x80800800, checksum=0xF,
                                payload=b"\x01\x02\x03\x04\x05")]


def test_control_vectors_build_and_parse() -> None:
    assert build_control_packet(PacketType.PACKET_TYPE_KD_ACKNOWLEDGE, 0x80800000) == ACK_VECTOR
    assert build_control_packet(PacketType.PACKET_TYPE_KD_RESEND, 0) == RESEND_VECTOR
    assert build_control_packet(PacketType.PACKET_TYPE_KD_RESET, 0x80000060) == RESET_VECTOR
    frames = frames_three_ways(ACK_VECTOR + RESEND_VECTOR + RESET_VECTOR)
    assert [(f.packet_type, f.packet_id) for f in frames] == [
        (4, 0x80800000), (5, 0), (6, 0x80000060)]
    assert all(isinstance(f, ControlFrame) for f in frames)


def test_windows10_dbgprint_vector_builds_and_decodes() -> None:
    payload = build_debug_print(DBGPRINT_TEXT, unused=0x7FF)
    assert build_data_packet(3, 0, payload) == DBGPRINT_VECTOR
    events, _ = events_three_ways(lambda: KdConnection(Role.HOST), DBGPRINT_VECTOR)
    assert len(events) == 1 and isinstance(events[0], DebugPrint)
    assert events[0].text == DBGPRINT_TEXT
    assert events[0].message.ApiNumber == DebugIoApi.DbgKdPrintStringApi
    assert events[0].raw == payload and events[0].packet_id == 0


def test_getversion_reply_vector_builds_and_decodes() -> None:
    version = dict(MajorVersion=0x040F, MinorVersion=10586, ProtocolVersion=6,
                   KdSecondaryVersion=2, Flags=2, MachineType=0x8664, MaxPacketType=12,
                   MaxStateChange=0x32, MaxManipulate=0x59, Simulation=0, Unused=0,
                   KernBase=0x96F000, PsLoadedModuleList=0xAD5E60, DebuggerDataList=0)
    payload = DBGKD_MANIPULATE_STATE64.build(dict(
        ApiNumber=ManipulateApi.DbgKdGetVersionApi, ProcessorLevel=0xFFFF, Processor=0xFFFF,
        ReturnStatus=0, Pad=0x25, u=version))
    assert build_data_packet(2, 4, payload) == GETVERSION_REPLY
    events, _ = events_three_ways(lambda: KdConnection(Role.HOST), GETVERSION_REPLY)
    (reply,) = events
    assert isinstance(reply, ManipulateReply) and reply.return_status == 0
    u = reply.message.u
    assert (u.MajorVersion, u.MinorVersion, u.MachineType, u.KernBase, u.PsLoadedModuleList) == (
        0x040F, 10586, 0x8664, 0x96F000, 0xAD5E60)
    assert (u.MaxStateChange, u.MaxManipulate, u.DebuggerDataList) == (0x32, 0x59, 0)


def test_getversion_request_vector_header_parses() -> None:
    frames = frames_three_ways(GETVERSION_REQUEST_HEAD, close=False)
    assert frames == []  # the junk union is not in the reference: still incomplete
    msg = DBGKD_MANIPULATE_STATE64.parse(GETVERSION_REQUEST_HEAD[16:] + bytes(40))
    assert msg.ApiNumber == ManipulateApi.DbgKdGetVersionApi
    assert (msg.ProcessorLevel, msg.Processor, msg.ReturnStatus, msg.Pad) == (
        0xFFFF, 0xFFFF, 0x103, 0x25)
    ours = build_manipulate(ManipulateApi.DbgKdGetVersionApi)
    assert ours[:4] == GETVERSION_REQUEST_HEAD[16:20] and len(ours) == 56


def test_captured_continue2_request_decodes_with_amd64_control_set() -> None:
    frames = frames_three_ways(CONTINUE2_REQUEST)
    (frame,) = frames
    assert isinstance(frame, DataFrame) and frame.packet_id == 0x8000006E
    msg = DBGKD_MANIPULATE_STATE64.parse(frame.payload)
    assert msg.ApiNumber == ManipulateApi.DbgKdContinueApi2
    assert msg.ReturnStatus == 0x10002 and msg.ProcessorLevel == 0x25
    assert msg.u.ContinueStatus == 0x10002
    cs = msg.u.ControlSet.Amd64
    assert (cs.TraceFlag, cs.Dr7, cs.CurrentSymbolStart, cs.CurrentSymbolEnd) == (0, 0x400, 1, 0)
    rebuilt = build_manipulate(ManipulateApi.DbgKdContinueApi2, dict(
        ContinueStatus=0x10002, ControlSet=dict(Amd64=dict(
            TraceFlag=0, Dr7=0x400, CurrentSymbolStart=1, CurrentSymbolEnd=0))),
        return_status=0x10002, processor_level=0x25)
    # Identical except the 8 bytes of stack junk WinDbg left in the union tail.
    assert rebuilt[:48] == frame.payload[:48] and rebuilt[48:] == bytes(8)


def test_reset_vector_answered_by_target_with_reset_id_zero() -> None:
    events, conn = events_three_ways(lambda: KdConnection(Role.TARGET), b"")
    target = KdConnection(Role.TARGET)
    target.send_state_change(_small_state_change())
    target.receive_data(RESET_VECTOR)
    assert isinstance(target.next_event(), Reset)
    out = target.data_to_send()
    assert out.startswith(build_control_packet(6, 0))
    # The pending state change goes out again with the fresh INITIAL id, no SYNC bit.
    assert out[16 + 8:16 + 12] == (0x80800000).to_bytes(4, "little")
    assert events == [] and conn.current_id == 0x80800800


def _small_state_change() -> bytes:
    from kdcon.protocol.messages import build_exception_state_change
    return build_exception_state_change(0x80000003, 0x1000)
