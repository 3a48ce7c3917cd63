"""LZX decoding (CAB method 3): our encoder's streams, cabextract as the oracle, damaged input."""

from __future__ import annotations

import io
import random
import subprocess

import pytest

from kdcon.symbols.cab import expand_single
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.lzx import FRAME_SIZE, LzxDecoder, LzxError, position_slots

from .fuzz_support import run_chunk
from .lzx_encoder import ALIGNED, STORED, VERBATIM, BitWriter, LzxEncoder, e8_forward, lzx_cab, lzx_frames
from .test_store_cab_fixtures import HAL_PDB, KERNEL_EXE, KERNEL_PDB
from tests.oracles import require_tool


def _read(path: str, size: int | None = None) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size) if size else handle.read()


def _x86_like(size: int, seed: int) -> bytes:
    """Bytes dense in E8 (CALL rel32) opcodes, with operands near and far."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.3:
            out += b"\xE8" + rng.randrange(-70000, 70000).to_bytes(4, "little", signed=True)
        else:
            out += bytes(rng.choice(b"\x48\x89\x5c\x24\x08\x90\xc3\x00") for _ in range(rng.randint(1, 6)))
    return bytes(out[:size])


CASES = {
    "verbatim": (lambda: _read(KERNEL_PDB, 100000), [(VERBATIM, 1 << 20)], {}),
    "literals-only": (lambda: _read(HAL_PDB, 40000), [(VERBATIM, 15000)], {"matches": False}),
    "aligned": (lambda: _read(KERNEL_PDB, 100000), [(ALIGNED, 45000)], {}),
    "stored-odd": (lambda: _read(KERNEL_EXE, 70001), [(STORED, 33333)], {}),
    "mixed-across-frames": (lambda: _read(KERNEL_PDB, 140000),
                            [(VERBATIM, 1000), (STORED, 12345), (ALIGNED, 50001), (STORED, 32767),
                             (VERBATIM, 70000)], {}),
    "e8-calls": (lambda: _x86_like(90000, 7), [(ALIGNED, 30000), (STORED, 5001), (VERBATIM, 40000)],
                 {"e8_size": 60000}),
    "window-15": (lambda: _read(KERNEL_PDB, 80000), [(ALIGNED, 1 << 20)], {"window_bits": 15}),
    "window-21": (lambda: _read(KERNEL_PDB, 80000), [(VERBATIM, 1 << 20)], {"window_bits": 21}),
}


@pytest.fixture(scope="module")
def streams():
    """Each case: (original, frames, window bits), encoded once."""
    made = {}
    for name, (make, blocks, options) in CASES.items():
        data = make()
        made[name] = (data, lzx_frames(data, blocks, **options), options.get("window_bits", 16), blocks, options)
    return made


def _decode(pieces, frames, window_bits: int) -> bytes:
    decoder = LzxDecoder(window_bits, pieces)
    return b"".join(decoder.frame(size) for _, size in frames)


def _feeds(frames):
    joined = b"".join(payload for payload, _ in frames)
    return {
        "whole": [joined],
        "per-frame": [payload for payload, _ in frames],
        "byte-by-byte": (joined[i:i + 1] for i in range(len(joined))),
        "trailing-bytes": [joined + b"\xA5\x5A" * 40],
    }


@pytest.mark.parametrize("case", list(CASES))
def test_streams_decode_to_the_original_however_the_input_is_cut(streams, case):
    data, frames, window_bits, _, _ = streams[case]
    assert len(frames) == -(-len(data) // FRAME_SIZE)
    for how, pieces in _feeds(frames).items():
        assert _decode(pieces, frames, window_bits) == data, how


@pytest.mark.parametrize("case", ["verbatim", "aligned", "mixed-across-frames", "e8-calls", "window-21"])
def test_cabextract_and_our_reader_agree_on_lzx_cabinets(tmp_path, streams, case):
    tool = require_tool("cabextract")
    data, frames, window_bits, _, _ = streams[case]
    cab = lzx_cab("ntkrnlmp.pdb", data, window_bits=window_bits, payloads=frames)
    path = tmp_path / "ntkrnlmp.pd_"
    path.write_bytes(cab)
    theirs = subprocess.run([tool, "-p", str(path)], check=True, capture_output=True).stdout
    out = io.BytesIO()
    entry = expand_single(io.BytesIO(cab), out.write, expect="ntkrnlmp.pdb")
    assert theirs == data and out.getvalue() == data and entry.size == len(data)


def test_e8_translation_is_undone_for_calls_and_left_alone_elsewhere(streams):
    data, frames, window_bits, _, options = streams["e8-calls"]
    # The stream really carries translated operands, so a decoder that skipped
    # the translation would fail here.
    assert e8_forward(data, options["e8_size"]) != data
    assert _decode([b"".join(p for p, _ in frames)], frames, window_bits) == data
    # Without the header bit nothing is translated: the same bytes come back.
    plain = lzx_frames(data, [(VERBATIM, 1 << 20)])
    assert _decode([p for p, _ in plain], plain, 16) == data


def test_every_tree_length_code_is_used_by_the_encoder():
    encoder = LzxEncoder()
    frames = encoder.encode(_read(KERNEL_PDB, 100000), [(VERBATIM, 30000), (ALIGNED, 30000)])
    assert {17, 18, 19} <= encoder.pretree_codes_used and len(encoder.pretree_codes_used) > 8
    assert _decode([p for p, _ in frames], frames, 16) == _read(KERNEL_PDB, 100000)


def test_repeated_offsets_come_from_a_stored_block_header():
    data = bytes(random.Random(3).randrange(256) for _ in range(1001)) + b"ABCDE" * 3000
    encoder = LzxEncoder(stored_r=(5, 11, 17))
    frames = encoder.encode(data, [(STORED, 1001), (VERBATIM, 1 << 20)])
    assert _decode([p for p, _ in frames], frames, 16) == data
    # The same stream with R0 left at its initial 1 would repeat the wrong bytes.
    patched = bytearray(b"".join(p for p, _ in frames))
    at = patched.index((5).to_bytes(4, "little") + (11).to_bytes(4, "little"))
    patched[at:at + 4] = (1).to_bytes(4, "little")
    assert _decode([bytes(patched)], frames, 16) != data


@pytest.mark.parametrize("bits,slots", [(15, 30), (16, 32), (17, 34), (18, 36), (19, 38), (20, 42), (21, 50)])
def test_position_slots_follow_the_window_size(bits, slots):
    assert position_slots(bits) == slots


@pytest.mark.parametrize("bits", [0, 14, 22, 31])
def test_windows_outside_15_to_21_bits_are_refused(bits):
    with pytest.raises(LzxError, match="outside 2\\^15..2\\^21"):
        LzxDecoder(bits, [b""])


def _stream(*fields: tuple[int, int]) -> bytes:
    writer = BitWriter()
    for value, count in fields:
        writer.bits(value, count)
    writer.align()
    return bytes(writer.out)


@pytest.mark.parametrize("kind", [0, 4, 5, 6, 7])
def test_unknown_block_types_are_refused(kind):
    with pytest.raises(LzxError, match=f"block type {kind}"):
        LzxDecoder(16, [_stream((0, 1), (kind, 3), (0, 16), (100, 8))]).frame(100)


def test_over_full_pretree_is_refused():
    pretree = [(1, 4)] * 20
    with pytest.raises(LzxError, match="over-full"):
        LzxDecoder(16, [_stream((0, 1), (VERBATIM, 3), (0, 16), (100, 8), *pretree)]).frame(100)


def test_incomplete_pretree_is_refused():
    pretree = [(2, 4)] + [(0, 4)] * 19
    with pytest.raises(LzxError, match="incomplete"):
        LzxDecoder(16, [_stream((0, 1), (VERBATIM, 3), (0, 16), (100, 8), *pretree)]).frame(100)


@pytest.mark.parametrize("size", [0, -1, FRAME_SIZE + 1])
def test_frame_sizes_outside_one_to_32k_are_refused(size):
    with pytest.raises(LzxError, match="frame of"):
        LzxDecoder(16, [b""]).frame(size)


def test_truncated_streams_are_refused(streams):
    _, frames, window_bits, _, _ = streams["mixed-across-frames"]
    joined = b"".join(p for p, _ in frames)
    for cut in (0, 1, 7, len(joined) // 3, len(joined) - 200):
        with pytest.raises(LzxError, match="ends early|tree|block|match"):
            _decode([joined[:cut]], frames, window_bits)


class _FrameCrossingEncoder(LzxEncoder):
    """Lets matches run over frame boundaries, which the format forbids."""

    def _tokens(self, matcher, start, end):
        tokens, pos = [], start
        while pos < end:
            length, offset = matcher.best(pos, min(end - pos, 257), tuple(self.r))
            if length < 2:
                tokens.append(self._literal(matcher, pos))
                pos += 1
                continue
            tokens.append(self._match(length, offset))
            for p in range(pos, pos + length):
                matcher.insert(p)
            pos += length
        return tokens

    @staticmethod
    def _literal(matcher, pos):
        from .lzx_encoder import Token
        matcher.insert(pos)
        return Token(matcher.data[pos])


def test_a_match_over_a_frame_boundary_is_refused():
    data = b"0123456789" * 10000
    encoder = _FrameCrossingEncoder()
    payload = b"".join(p for p, _ in encoder.encode(data, [(VERBATIM, 1 << 20)]))
    decoder = LzxDecoder(16, [payload])
    with pytest.raises(LzxError, match="runs past the end"):
        decoder.frame(FRAME_SIZE)


def test_a_match_before_the_first_byte_is_refused():
    writer = BitWriter()
    writer.bits(0, 1)
    writer.bits(VERBATIM, 3)
    writer.bits(0, 16)
    writer.bits(10, 8)
    # Trees with exactly the two symbols "a" and the R0 match, one bit each.
    fresh = LzxEncoder()
    fresh.main_lengths = [0] * fresh.main_size
    fresh.main_lengths[ord("a")] = fresh.main_lengths[256] = 1
    fresh._write_lengths(writer, [0] * 256, fresh.main_lengths[:256])
    fresh._write_lengths(writer, [0] * (fresh.main_size - 256), fresh.main_lengths[256:])
    fresh._write_lengths(writer, [0] * 249, [0] * 249)
    writer.bits(1, 1)                          # the match symbol first: nothing to copy yet
    writer.align()
    with pytest.raises(LzxError, match="reaches 1 bytes back, 0 bytes are known"):
        LzxDecoder(16, [bytes(writer.out)]).frame(10)


@pytest.mark.parametrize("case", ["mixed-across-frames", "e8-calls", "literals-only"])
def test_mutated_streams_raise_only_lzx_error(streams, case):
    _, frames, window_bits, _, _ = streams[case]
    sizes = [size for _, size in frames[:2]]

    def target(data: bytes) -> None:
        decoder = LzxDecoder(window_bits, [data])
        for size in sizes:
            decoder.frame(size)

    seed = b"".join(payload for payload, _ in frames[:2])
    report = run_chunk(target, [seed], 150, seed=0x1A2, expected=LzxError)
    assert report["fed"] == 150 and report["unexpected"] == []


def test_lzx_store_entry_error_names_the_method_and_the_damage(streams):
    data, frames, window_bits, _, _ = streams["verbatim"]
    cab = bytearray(lzx_cab("x.pdb", data, window_bits=window_bits, payloads=frames))
    data_at = int.from_bytes(cab[36:40], "little")
    cab[data_at:data_at + 4] = bytes(4)        # no checksum: the damage reaches the decoder
    cab[data_at + 9] ^= 0x70                   # the block type: bits 14-12 of the first word
    with pytest.raises(SymbolFileError, match="LZX-compressed store entry is damaged: LZX"):
        expand_single(io.BytesIO(bytes(cab)), io.BytesIO().write)


def test_only_the_last_lzx_block_may_be_short(streams):
    data, frames, window_bits, _, _ = streams["aligned"]
    short = [(frames[0][0], 30000)] + frames[1:]
    cab = lzx_cab("x.pdb", data, window_bits=window_bits, payloads=short)
    with pytest.raises(SymbolFileError, match="only the last may be shorter"):
        expand_single(io.BytesIO(cab), io.BytesIO().write)
