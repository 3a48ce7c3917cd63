"""Framing and resync (buffer.py): each defined outcome of kd-protocol.md §2.3-§2.4."""

from __future__ import annotations

from kdcon.protocol.buffer import (
    GARBAGE_RUN_MAX,
    BadFrame,
    BreakInFrame,
    ControlFrame,
    DataFrame,
    FrameBuffer,
    GarbageFrame,
)
from kdcon.protocol.packet import build_control_packet, build_data_packet

from .kd_feeding import frames_three_ways

PKT = build_data_packet(2, 0x80800800, b"\x01\x02\x03\x04\x05")
ACK = build_control_packet(4, 0x80800000)


def test_good_data_packet_decodes_to_one_frame() -> None:
    frames = frames_three_ways(PKT)
    assert frames == [DataFrame(offset=0, packet_type=2, packet_id=0x80800800,
                                checksum=15, payload=b"\x01\x02\x03\x04\x05")]


def test_control_packet_decodes_without_trailer() -> None:
    frames = frames_three_ways(ACK + PKT)
    assert frames[0] == ControlFrame(offset=0, packet_type=4, packet_id=0x80800000,
                                     byte_count=0, checksum=0)
    assert isinstance(frames[1], DataFrame) and frames[1].offset == 16


def test_garbage_before_leader_is_skipped_and_reported_once() -> None:
    frames = frames_three_ways(b"\x01\x02xyz" + PKT)
    assert frames[0] == GarbageFrame(offset=0, data=b"\x01\x02xyz")
    assert isinstance(frames[1], DataFrame) and frames[1].offset == 5


def test_half_leader_then_other_byte_is_all_garbage() -> None:
    frames = frames_three_ways(b"000X" + PKT)
    assert frames[0] == GarbageFrame(offset=0, data=b"000X")
    assert isinstance(frames[1], DataFrame)


def test_differing_leader_byte_restarts_the_leader() -> None:
    # "00" then "iiii": the first 'i' restarts the scan, the control leader completes.
    frames = frames_three_ways(b"00" + ACK)
    assert frames == [GarbageFrame(offset=0, data=b"00"),
                      ControlFrame(offset=2, packet_type=4, packet_id=0x80800000,
                                   byte_count=0, checksum=0)]


def test_lone_breakin_byte_is_reported() -> None:
    assert frames_three_ways(b"b") == [BreakInFrame(offset=0)]


def test_half_leader_then_breakin_is_garbage_and_breakin() -> None:
    frames = frames_three_ways(b"000b" + PKT)
    assert frames[:2] == [GarbageFrame(offset=0, data=b"000"), BreakInFrame(offset=3)]
    assert isinstance(frames[2], DataFrame)


def test_breakin_byte_inside_payload_is_payload() -> None:
    packet = build_data_packet(3, 1, b"bbbb0000iiii")
    frames = frames_three_ways(packet)
    assert len(frames) == 1 and frames[0].payload == b"bbbb0000iiii"


def test_bad_checksum_is_a_bad_frame_and_next_packet_still_found() -> None:
    bad = bytearray(PKT)
    bad[12] ^= 0x01  # checksum field
    frames = frames_three_ways(bytes(bad) + PKT)
    assert isinstance(frames[0], BadFrame) and frames[0].reason == "checksum"
    assert frames[0].computed_checksum == 15
    assert any(isinstance(f, DataFrame) and f.offset == len(bad) for f in frames)


def test_bad_trailer_is_a_bad_frame() -> None:
    bad = PKT[:-1] + b"\x00"
    frames = frames_three_ways(bad)
    assert isinstance(frames[0], BadFrame) and frames[0].reason == "trailer"


def test_absurd_byte_count_is_rejected_without_waiting() -> None:
    header = b"0000" + (2).to_bytes(2, "little") + (4001).to_bytes(2, "little") + bytes(8)
    frames = frames_three_ways(header + PKT)
    assert isinstance(frames[0], BadFrame) and frames[0].reason == "byte_count"
    assert frames[0].byte_count == 4001
    assert isinstance(frames[-1], DataFrame)


def test_max_size_packet_is_accepted() -> None:
    payload = bytes(range(256)) * 15 + bytes(160)
    assert len(payload) == 4000
    frames = frames_three_ways(build_data_packet(2, 7, payload))
    assert len(frames) == 1 and frames[0].payload == payload


def test_dropped_byte_packet_runs_into_next_which_is_still_found() -> None:
    cut = PKT[:20] + PKT[21:]  # one payload byte lost on the line
    frames = frames_three_ways(cut + PKT)
    assert isinstance(frames[0], BadFrame)
    good = [f for f in frames if isinstance(f, DataFrame)]
    assert len(good) == 1 and good[0].offset == len(cut)


def test_truncated_packet_expires_as_truncated() -> None:
    frames = frames_three_ways(PKT[:10])
    assert len(frames) == 1 and isinstance(frames[0], BadFrame)
    assert frames[0].reason == "truncated"
    buf = FrameBuffer()
    buf.receive_data(PKT[:19])
    assert buf.next_frame() is None and buf.in_packet
    frame = buf.expire_partial()
    assert isinstance(frame, BadFrame) and frame.reason == "truncated"
    assert frame.packet_id == 0x80800800


def test_duplicated_packet_gives_two_identical_frames() -> None:
    frames = frames_three_ways(PKT + PKT)
    assert [type(f) for f in frames] == [DataFrame, DataFrame]
    assert frames[0].payload == frames[1].payload and frames[1].offset == len(PKT)


def test_ack_and_packets_in_one_read_are_each_found_and_the_rest_waits() -> None:
    # What one read of a live link brings: an ACK with a packet (a request or a
    # reply), a second packet around the 256-byte checksum step, a packet begun.
    small = build_data_packet(2, 0x80800001, bytes(range(56)))
    large = build_data_packet(2, 0x80800000, bytes(range(256)) + b"\xff")
    frames = frames_three_ways(ACK + small + large + PKT[:7], close=False)
    assert [type(f) for f in frames] == [ControlFrame, DataFrame, DataFrame]
    assert [f.offset for f in frames] == [0, 16, 16 + len(small)]
    assert [f.checksum for f in frames[1:]] == [sum(range(56)), sum(range(256)) + 255]
    buf = FrameBuffer()
    buf.receive_data(ACK + small + PKT[:7])
    assert [type(buf.next_frame()) for _ in range(3)] == [ControlFrame, DataFrame, type(None)]
    assert buf.in_packet and buf.pending == 7


def test_endless_garbage_is_cut_into_capped_runs() -> None:
    data = b"\x01" * (GARBAGE_RUN_MAX + 10)
    frames = frames_three_ways(data)
    assert [len(f.data) for f in frames] == [GARBAGE_RUN_MAX, 10]
    assert all(isinstance(f, GarbageFrame) for f in frames)


def test_every_byte_of_a_noisy_stream_is_accounted_for() -> None:
    data = b"xx" + PKT + b"00" + ACK + b"b" + PKT[:-1] + b"\x00" + b"000"
    frames = frames_three_ways(data)
    covered = sum(f.length for f in frames if not isinstance(f, BadFrame))
    bad = [f for f in frames if isinstance(f, BadFrame)]
    assert len(bad) == 1
    # The bad packet's own leader is the only part not re-reported as garbage.
    assert covered + 4 == len(data)
