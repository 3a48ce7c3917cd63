"""kdcon-kdtrace items tile the input: every byte in exactly one item, however fed.

Random captures mix good data and control packets, damaged packets (bad checksum,
bad trailer, a dropped byte, an absurd ByteCount, cut short), garbage and break-in
bytes. The framing resumes scanning inside a damaged packet, which used to make a
damaged packet and the garbage after its leader cover the same bytes.
"""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from kdcon.protocol.packet import build_control_packet, build_data_packet
from kdcon.tools.kdtrace import trace
from tests.programs import run_program

LEADER_BYTES = b"0ib"


def _payload(clean: bool):
    alphabet = st.integers(0, 255).filter(lambda b: b not in LEADER_BYTES) if clean else st.integers(0, 255)
    return st.lists(alphabet, max_size=48).map(bytes)


def _good(clean: bool):
    data = st.builds(build_data_packet, st.sampled_from([2, 3, 7]),
                     st.sampled_from([0x80800000, 0x80800001]), _payload(clean))
    control = st.builds(build_control_packet, st.sampled_from([4, 5, 6]),
                        st.sampled_from([0x80800000, 0x80800001]))
    return st.one_of(data, control)


@st.composite
def _damaged(draw, clean: bool) -> bytes:
    packet = bytearray(build_data_packet(2, 0x80800000, draw(_payload(clean).filter(len))))
    how = draw(st.sampled_from(["checksum", "trailer", "drop", "count", "cut"]))
    if how == "checksum":
        at = draw(st.integers(16, len(packet) - 2))
        packet[at] = (packet[at] + draw(st.integers(1, 255))) & 0xFF
        if clean and packet[at] in LEADER_BYTES:
            packet[at] = 0xFE
    elif how == "trailer":
        packet[-1] = 0x55
    elif how == "drop":
        del packet[draw(st.integers(4, len(packet) - 1))]
    elif how == "count":
        packet[6:8] = (4001).to_bytes(2, "little")
    else:
        del packet[draw(st.integers(5, len(packet) - 1)):]
    return bytes(packet)


def _garbage(clean: bool):
    alphabet = st.integers(0, 255).filter(lambda b: b not in b"0i") if clean else st.integers(0, 255)
    return st.lists(alphabet, min_size=1, max_size=32).map(bytes)


def _pieces(clean: bool):
    return st.lists(st.one_of(
        _good(clean).map(lambda p: ("good", p)),
        _damaged(clean).map(lambda p: ("damaged", p)),
        _garbage(clean).map(lambda p: ("garbage", p)),
        st.just(("breakin", b"b")),
    ), max_size=12)


class Chunks(io.RawIOBase):
    """A stream that hands out ``data`` in the given chunk sizes, then the rest."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.pos = data, list(sizes), 0

    def read(self, size: int = -1) -> bytes:
        step = self.sizes.pop(0) if self.sizes else len(self.data)
        chunk = self.data[self.pos:self.pos + min(step, size if size >= 0 else step)]
        self.pos += len(chunk)
        return chunk


def _rows(data: bytes, sizes: list[int] | None = None) -> list[dict]:
    return list(trace(Chunks(data, sizes) if sizes is not None else io.BytesIO(data)))


def _assert_tiles(rows: list[dict], size: int) -> None:
    at = 0
    for row in rows:
        assert row["offset"] == at, (row, at)
        assert row["length"] >= 1, row
        at += row["length"]
    assert at == size


@settings(max_examples=300, deadline=None)
@given(_pieces(clean=False), st.lists(st.integers(1, 40), max_size=20))
def test_items_tile_any_stream_fed_whole_or_in_pieces(pieces, sizes):
    data = b"".join(p for _, p in pieces)
    whole = _rows(data)
    _assert_tiles(whole, len(data))
    assert _rows(data, sizes) == whole
    assert _rows(data, [1] * len(data)) == whole
    with_tail = _rows(data + b"\xfe\xfd")
    _assert_tiles(with_tail, len(data) + 2)


@settings(max_examples=300, deadline=None)
@given(_pieces(clean=True))
def test_every_good_packet_after_a_separator_is_its_own_item(pieces):
    # A byte that is no leader byte before each good packet keeps a damaged packet's
    # remains from lending it a leader byte; then every good packet must be found.
    data, starts = b"", []
    for kind, piece in pieces:
        if kind == "good":
            data += b"\xff"
            starts.append((len(data), len(piece)))
        data += piece
    rows = {row["offset"]: row for row in _rows(data)}
    for offset, length in starts:
        row = rows.get(offset)
        assert row is not None and row["length"] == length and row["checksum_ok"] is not False, (offset, row)


def test_a_damaged_packet_and_the_garbage_after_its_leader_do_not_overlap():
    good = build_data_packet(2, 0x80800000, bytes(range(0x40, 0x40 + 56)))
    bad = bytearray(good)
    bad[30] ^= 0x01
    data = b"\xee" * 1020 + bytes(bad) + good
    rows = _rows(data)
    _assert_tiles(rows, len(data))
    assert [(r["offset"], r["length"], r["text"]) for r in rows] == [
        (0, 1020, None), (1020, 73, "bad checksum"), (1093, 73, None)]


def test_the_installed_program_prints_tiling_items():
    good = build_data_packet(2, 0x80800000, b"\x41" * 20)
    bad = bytearray(good)
    bad[20] ^= 0x01
    data = b"\xee" * 7 + bytes(bad) + b"b" + good + good[:9]
    result = run_program("kdcon-kdtrace", "-", "--json", input=data, text=False)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    _assert_tiles(rows, len(data))
    assert [r["kind"] for r in rows] == ["garbage", "data", "breakin", "data", "data"]


def test_a_good_packet_inside_a_cut_packets_header_is_still_its_own_item():
    # A packet cut off after 7 bytes at the end of a capture, whose header reads on into
    # the next (whole) packet: the cut one is reported and the next one found too.
    good = build_data_packet(2, 0x80800000, b"")
    data = b"0000\x02\x00\x01" + b"\x01" + b"\xff" + good
    rows = _rows(data)
    _assert_tiles(rows, len(data))
    found = [row for row in rows if row["offset"] == 9]
    assert found and found[0]["length"] == len(good) and found[0]["checksum_ok"] is not False
