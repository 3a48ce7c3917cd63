"""Properties of the framing and of both roles on arbitrary input (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kdcon.protocol.buffer import BadFrame, ControlFrame, DataFrame
from kdcon.protocol.connection import NEED_DATA, KdConnection, Role
from kdcon.protocol.packet import build_control_packet, build_data_packet

from .kd_feeding import frames_three_ways

# Noise with no leader inside and no leader byte at its end (which would glue onto the
# next packet's leader and shift it: a real, defined outcome tested elsewhere).
noise = st.binary(max_size=64).filter(
    lambda b: b"0000" not in b and b"iiii" not in b and b[-1:] not in (b"0", b"i"))
packets = st.builds(build_data_packet, st.integers(0, 12), st.integers(0, 2**32 - 1),
                    st.binary(max_size=300))
controls = st.builds(build_control_packet, st.integers(4, 6), st.integers(0, 2**32 - 1))


def _consumed(frames: list) -> int:
    total = 0
    for frame in frames:
        if isinstance(frame, BadFrame):
            total += len(frame.raw) if frame.reason == "truncated" else 4
        else:
            total += frame.length
    return total


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_every_byte_of_any_stream_is_accounted_for_exactly_once(data: bytes) -> None:
    frames = frames_three_ways(data)
    assert _consumed(frames) == len(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(noise, st.one_of(packets, controls)), max_size=6))
def test_packets_between_noise_without_leaders_are_all_found(parts) -> None:
    data = b"".join(n + p for n, p in parts)
    frames = frames_three_ways(data)
    sent = [p for _, p in parts]
    assert not [f for f in frames if isinstance(f, BadFrame)]
    good = [build_data_packet(f.packet_type, f.packet_id, f.payload)
            for f in frames if isinstance(f, DataFrame)]
    assert good == [p for p in sent if p.startswith(b"0000")]
    assert sum(1 for f in frames if isinstance(f, ControlFrame)) == sum(
        1 for p in sent if p.startswith(b"iiii"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([Role.HOST, Role.TARGET]),
       st.floats(0, 5))
def test_no_input_makes_a_connection_raise(data: bytes, role: Role, later: float) -> None:
    conn = KdConnection(role)
    if role is Role.TARGET:
        conn.send_debug_print(b"x")  # waiting for an ACK: the target parses everything
    for start in range(0, len(data), 7):
        conn.receive_data(data[start:start + 7])
        while conn.next_event() is not NEED_DATA:
            pass
        conn.check_timeouts(later)
        conn.check_timeouts(later + 1.0)
    assert isinstance(conn.data_to_send(), bytes)
