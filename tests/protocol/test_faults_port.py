"""FaultyPort over a real socket pair, and the wrong-baud line model it can carry."""

from __future__ import annotations

import pytest

from kdcon.protocol.transports import (
    BaudMismatch,
    FaultModel,
    FaultyPort,
    resample_at_wrong_baud,
    socket_pair,
)
from kdcon.protocol.transports.uart import frame_bits

ALL_BYTES = bytes(range(256))


def _collect(port, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = port.read(max(1, port.in_waiting))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def test_faulty_port_applies_each_direction_model_to_real_traffic():
    a, b = socket_pair(timeout=0.5)
    tx = FaultModel(21, drop=0.01, duplicate=0.01)
    rx = FaultModel(22, bit_flip=0.01)
    faulty = FaultyPort(a, model_tx=tx, model_rx=rx)
    data = ALL_BYTES * 40
    assert faulty.write(data) == len(data)  # the caller sees a normal write
    expected_tx = FaultModel(21, drop=0.01, duplicate=0.01).apply(data)
    assert _collect(b, len(expected_tx)) == expected_tx
    b.write(data)
    assert _collect(faulty, len(data)) == FaultModel(22, bit_flip=0.01).apply(data)
    assert tx.counts.drops > 0 and rx.counts.bit_flips > 0
    # A reader that looks for the fast read of our transports must not go around
    # the faults to the socket beneath (KdLink falls back to read/in_waiting).
    assert faulty.read_available is None
    faulty.close()
    b.close()


def test_faulty_port_keeps_surplus_bytes_for_the_next_read():
    a, b = socket_pair(timeout=0.5)
    faulty = FaultyPort(a, model_rx=FaultModel(1, duplicate=1.0))
    b.write(b"0i")
    assert faulty.read(1) == b"0"
    assert faulty.in_waiting == 2  # the duplicate "0" kept here, "i" still in the socket
    assert faulty.read(3) == b"0ii"
    faulty.close()
    b.close()


def test_faulty_port_forwards_other_attributes_to_the_inner_port():
    a, b = socket_pair(timeout=0.5)
    faulty = FaultyPort(a)
    assert faulty.portstr == "socketpair:a" and faulty.is_open
    faulty.close()
    assert not a.is_open
    b.close()


def test_frames_are_start_lsb_first_data_stop():
    assert frame_bits(b"\x01") == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert frame_bits(b"\x80") == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_same_baud_passes_everything_through():
    assert resample_at_wrong_baud(ALL_BYTES, 57600, 57600) == ALL_BYTES


def test_sender_twice_as_fast_turns_zero_into_f8():
    # Receiver bit = 2 sender bits. Samples at sender bits 1,3,...,17 read
    # start=0, d0..d2 = 0 (data zeros), d3..d7 = 1 (stop bit and idle); stop at 19 = idle 1.
    assert resample_at_wrong_baud(b"\x00", 115200, 57600) == b"\xf8"


def test_sender_twice_as_slow_splits_each_byte_and_reports_framing_errors_as_nul():
    # 0x00 at half speed: 9 low sender bits = 18 receiver bits. The receiver reads 0x00
    # with a low stop bit (framing error -> NUL), then sees the rest as another NUL frame.
    out = resample_at_wrong_baud(b"\x00", 57600, 115200)
    assert out[:1] == b"\x00" and set(out) == {0}


def test_wrong_baud_model_never_reproduces_kd_leaders():
    leaders = b"0000\x02\x00" + b"iiii\x04\x00"
    for tx, rx in [(115200, 57600), (57600, 115200), (115200, 19200), (38400, 115200), (115200, 38400)]:
        out = resample_at_wrong_baud(leaders * 4, tx, rx)
        assert b"0000" not in out and b"iiii" not in out, (tx, rx)


@pytest.mark.parametrize("tx, rx", [(115200, 57600), (57600, 115200), (19200, 115200)])
def test_wrong_baud_is_deterministic_per_burst_and_byte_count_tracks_the_ratio(tx, rx):
    data = ALL_BYTES * 4
    model = BaudMismatch(tx, rx)
    out = model.apply(data)
    assert out == model.apply(data)
    if tx > rx:
        assert len(out) < len(data)  # a slow receiver misses frames
    else:
        assert len(out) >= len(data)  # a fast receiver finds several frames in one


def test_bad_baud_rates_raise_value_error():
    with pytest.raises(ValueError):
        resample_at_wrong_baud(b"x", 0, 115200)
