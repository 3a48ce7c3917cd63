"""A small LZX compressor for the tests (no tests here), and LZX cabinets made with it.

No tool on Linux writes LZX cabinets (gcab does MSZIP only, makecab is Windows
only), so the tests make their own from the published format: verbatim, aligned
and stored blocks of chosen sizes (spanning frames or not), literals only or
greedy matches with the three repeated offsets, every tree-length code (0-16,
the zero runs 17 and 18, the same-value run 19), and the E8 call translation.
cabextract (libmspack) reads what this writes, which is what makes it an oracle
for ``kdcon.symbols.lzx``.
"""

from __future__ import annotations

import bisect
import heapq
import struct
from dataclasses import dataclass

from kdcon.symbols.cab import cab_checksum
from kdcon.symbols.lzx import FRAME_SIZE, position_slots

VERBATIM, ALIGNED, STORED = 1, 2, 3
_EXTRA = [0, 0, 0, 0] + [min((s - 2) // 2, 17) for s in range(4, 51)]
_BASE = [0]
for _e in _EXTRA[:-1]:
    _BASE.append(_BASE[-1] + (1 << _e))


class BitWriter:
    """16-bit little-endian words, filled from their most significant bit."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.count = 0

    def bits(self, value: int, count: int) -> None:
        assert 0 <= value < (1 << count) or count == 0
        self.acc = (self.acc << count) | value
        self.count += count
        while self.count >= 16:
            self.count -= 16
            self.out += ((self.acc >> self.count) & 0xFFFF).to_bytes(2, "little")
        self.acc &= (1 << self.count) - 1

    def align(self, always: bool = False) -> None:
        if self.count or always:
            self.bits(0, 16 - self.count)

    def raw(self, data: bytes) -> None:
        assert self.count == 0
        self.out += data


def huffman_lengths(freqs: list[int], limit: int) -> list[int]:
    """Code lengths for ``freqs``, at most ``limit`` bits, always a complete code (or none)."""
    used = [i for i, f in enumerate(freqs) if f]
    if not used:
        return [0] * len(freqs)
    weights = list(freqs)
    if len(used) == 1:
        partner = 0 if used[0] else 1
        weights[partner] = 1
        used = sorted({used[0], partner})
    while True:
        heap = [(weights[i], i, (i,)) for i in used]
        heapq.heapify(heap)
        depth = [0] * len(freqs)
        serial = len(freqs)
        while len(heap) > 1:
            w1, _, a = heapq.heappop(heap)
            w2, _, b = heapq.heappop(heap)
            for symbol in a + b:
                depth[symbol] += 1
            heapq.heappush(heap, (w1 + w2, serial, a + b))
            serial += 1
        if max(depth) <= limit:
            return depth
        weights = [(w + 1) // 2 if w else 0 for w in weights]


def canonical_codes(lengths: list[int]) -> list[int]:
    codes = [0] * len(lengths)
    code = 0
    for length in range(1, max(lengths, default=0) + 1):
        for symbol, l in enumerate(lengths):
            if l == length:
                codes[symbol] = code
                code += 1
        code <<= 1
    return codes


@dataclass
class Token:
    main: int
    length_symbol: int | None = None
    slot: int = 0
    footer: int = 0
    size: int = 1


class _Matcher:
    """Greedy LZ77 over 3-byte hash chains, repeated offsets tried first."""

    def __init__(self, data: bytes, window: int, depth: int = 24) -> None:
        self.data = data
        self.window = window
        self.depth = depth
        self.heads: dict[bytes, list[int]] = {}

    def insert(self, pos: int) -> None:
        key = self.data[pos:pos + 3]
        if len(key) == 3:
            self.heads.setdefault(key, []).append(pos)

    def _extend(self, pos: int, offset: int, limit: int) -> int:
        data = self.data
        n = 0
        while n < limit and data[pos + n] == data[pos - offset + n]:
            n += 1
        return n

    def best(self, pos: int, limit: int, repeats: tuple[int, int, int]) -> tuple[int, int]:
        best_len, best_off = 0, 0
        max_offset = min(pos, self.window - 3)
        for offset in repeats:
            if 0 < offset <= max_offset:
                n = self._extend(pos, offset, limit)
                if n > best_len:
                    best_len, best_off = n, offset
        chain = self.heads.get(self.data[pos:pos + 3], [])
        for candidate in reversed(chain[-self.depth:]):
            offset = pos - candidate
            if offset > max_offset:
                break
            n = self._extend(pos, offset, limit)
            if n > best_len + 1:       # a new offset costs footer bits: prefer repeats
                best_len, best_off = n, offset
        return (best_len, best_off) if best_len >= 2 else (0, 0)


def e8_forward(data: bytes, size: int) -> bytes:
    """What the compressor does before coding: relative CALL operands become absolute."""
    out = bytearray(data)
    for start in range(0, len(out), FRAME_SIZE):
        frame_end = min(start + FRAME_SIZE, len(out))
        if start // FRAME_SIZE >= 32768 or frame_end - start <= 10:
            continue
        limit = frame_end - 10
        i = start
        while i < limit:
            if out[i] != 0xE8:
                i += 1
                continue
            relative = int.from_bytes(out[i + 1:i + 5], "little", signed=True)
            if -i <= relative < size:
                absolute = relative + i if relative < size - i else relative - size
                out[i + 1:i + 5] = (absolute & 0xFFFFFFFF).to_bytes(4, "little")
            i += 5
    return bytes(out)


class LzxEncoder:
    """Writes one LZX stream; ``encode`` returns (compressed frame, output size) pairs."""

    def __init__(self, window_bits: int = 16, *, matches: bool = True, e8_size: int | None = None,
                 stored_r: tuple[int, int, int] | None = None) -> None:
        self.window_bits = window_bits
        self.window = 1 << window_bits
        self.main_size = 256 + position_slots(window_bits) * 8
        self.matches = matches
        self.e8_size = e8_size
        self.stored_r = stored_r
        self.r = [1, 1, 1]
        self.main_prev = [0] * self.main_size
        self.length_prev = [0] * 249
        self.pretree_codes_used: set[int] = set()

    # -- tokens ---------------------------------------------------------------------------

    def _tokens(self, matcher: _Matcher, start: int, end: int) -> list[Token]:
        tokens: list[Token] = []
        pos = start
        while pos < end:
            frame_end = (pos // FRAME_SIZE + 1) * FRAME_SIZE
            limit = min(end, frame_end, len(matcher.data)) - pos
            length, offset = matcher.best(pos, min(limit, 257), tuple(self.r)) if self.matches else (0, 0)
            if length < 2:
                tokens.append(Token(matcher.data[pos]))
                matcher.insert(pos)
                pos += 1
                continue
            tokens.append(self._match(length, offset))
            for p in range(pos, pos + length):
                matcher.insert(p)
            pos += length
        return tokens

    def _match(self, length: int, offset: int) -> Token:
        r = self.r
        footer = 0
        if offset == r[0]:
            slot = 0
        elif offset == r[1]:
            slot = 1
            r[0], r[1] = r[1], r[0]
        elif offset == r[2]:
            slot = 2
            r[0], r[2] = r[2], r[0]
        else:
            formatted = offset + 2
            slot = bisect.bisect_right(_BASE, formatted) - 1
            footer = formatted - _BASE[slot]
            r[2], r[1], r[0] = r[1], r[0], offset
        header = min(length - 2, 7)
        return Token(256 + slot * 8 + header, length - 9 if header == 7 else None, slot, footer, length)

    # -- trees ----------------------------------------------------------------------------

    def _pretree_tokens(self, prev: list[int], new: list[int]) -> list[tuple[int, int, int, int | None]]:
        """(code, extra value, extra bits, following code) for one range of lengths."""
        out: list[tuple[int, int, int, int | None]] = []
        x = 0
        while x < len(new):
            run = 1
            while x + run < len(new) and new[x + run] == new[x]:
                run += 1
            if new[x] == 0 and run >= 20:
                n = min(run, 51)
                out.append((18, n - 20, 5, None))
            elif new[x] == 0 and run >= 4:
                n = min(run, 19)
                out.append((17, n - 4, 4, None))
            elif run >= 4:
                n = min(run, 5)
                out.append((19, n - 4, 1, (prev[x] - new[x]) % 17))
            else:
                n = 1
                out.append(((prev[x] - new[x]) % 17, 0, 0, None))
            x += n
        return out

    def _write_lengths(self, w: BitWriter, prev: list[int], new: list[int]) -> None:
        tokens = self._pretree_tokens(prev, new)
        freqs = [0] * 20
        for code, _, _, follow in tokens:
            freqs[code] += 1
            if follow is not None:
                freqs[follow] += 1
        lengths = huffman_lengths(freqs, 15)
        codes = canonical_codes(lengths)
        for length in lengths:
            w.bits(length, 4)
        for code, extra, extra_bits, follow in tokens:
            self.pretree_codes_used.add(code)
            w.bits(codes[code], lengths[code])
            if extra_bits:
                w.bits(extra, extra_bits)
            if follow is not None:
                w.bits(codes[follow], lengths[follow])

    # -- blocks ---------------------------------------------------------------------------

    def encode(self, data: bytes, blocks: list[tuple[int, int]]) -> list[tuple[bytes, int]]:
        """``data`` coded as the ``(type, size)`` blocks given (the last one repeats)."""
        w = BitWriter()
        if self.e8_size is not None:
            w.bits(1, 1)
            w.bits(self.e8_size >> 16, 16)
            w.bits(self.e8_size & 0xFFFF, 16)
            coded = e8_forward(data, self.e8_size)
        else:
            w.bits(0, 1)
            coded = data
        matcher = _Matcher(coded, self.window)
        frames: list[tuple[bytes, int]] = []
        cut = 0
        pos = 0
        plan = list(blocks)
        index = 0

        def frame_done(position: int, stored: bool) -> None:
            nonlocal cut
            if not stored:
                w.align()
            frames.append((bytes(w.out[cut:]), position - (len(frames) * FRAME_SIZE)))
            cut = len(w.out)

        while pos < len(coded):
            kind, size = plan[min(index, len(plan) - 1)]
            index += 1
            size = min(size, len(coded) - pos)
            w.bits(kind, 3)
            w.bits(size >> 8, 16)
            w.bits(size & 0xFF, 8)
            if kind == STORED:
                w.align(always=True)
                r = list(self.stored_r) if self.stored_r else self.r
                self.r = list(r)
                w.raw(struct.pack("<III", *r))
                end = pos + size
                while pos < end:
                    step = min(end, (pos // FRAME_SIZE + 1) * FRAME_SIZE) - pos
                    w.raw(coded[pos:pos + step])
                    for p in range(pos, pos + step):
                        matcher.insert(p)
                    pos += step
                    if size & 1 and pos == end:
                        w.raw(b"\x00")
                    if pos % FRAME_SIZE == 0 or pos == len(coded):
                        frame_done(pos, stored=True)
                continue
            tokens = self._tokens(matcher, pos, pos + size)
            self._write_block_trees(w, kind, tokens)
            for token in tokens:
                self._write_token(w, kind, token)
                pos += token.size
                if pos % FRAME_SIZE == 0 or pos == len(coded):
                    frame_done(pos, stored=False)
        return frames

    def _write_block_trees(self, w: BitWriter, kind: int, tokens: list[Token]) -> None:
        main_freq = [0] * self.main_size
        length_freq = [0] * 249
        aligned_freq = [0] * 8
        for t in tokens:
            main_freq[t.main] += 1
            if t.length_symbol is not None:
                length_freq[t.length_symbol] += 1
            if kind == ALIGNED and t.slot > 2 and _EXTRA[t.slot] >= 3:
                aligned_freq[t.footer & 7] += 1
        self.main_lengths = huffman_lengths(main_freq, 16)
        self.length_lengths = huffman_lengths(length_freq, 16)
        self.main_codes = canonical_codes(self.main_lengths)
        self.length_codes = canonical_codes(self.length_lengths)
        if kind == ALIGNED:
            self.aligned_lengths = huffman_lengths(aligned_freq, 7) if any(aligned_freq) else [3] * 8
            self.aligned_codes = canonical_codes(self.aligned_lengths)
            for length in self.aligned_lengths:
                w.bits(length, 3)
        self._write_lengths(w, self.main_prev[:256], self.main_lengths[:256])
        self._write_lengths(w, self.main_prev[256:], self.main_lengths[256:])
        self._write_lengths(w, self.length_prev, self.length_lengths)
        self.main_prev = list(self.main_lengths)
        self.length_prev = list(self.length_lengths)

    def _write_token(self, w: BitWriter, kind: int, t: Token) -> None:
        w.bits(self.main_codes[t.main], self.main_lengths[t.main])
        if t.main < 256:
            return
        if t.length_symbol is not None:
            w.bits(self.length_codes[t.length_symbol], self.length_lengths[t.length_symbol])
        if t.slot <= 2:
            return
        extra = _EXTRA[t.slot]
        if kind == ALIGNED and extra >= 3:
            w.bits(t.footer >> 3, extra - 3)
            low = t.footer & 7
            w.bits(self.aligned_codes[low], self.aligned_lengths[low])
        elif extra:
            w.bits(t.footer, extra)


def lzx_frames(data: bytes, blocks: list[tuple[int, int]] | None = None, **options) -> list[tuple[bytes, int]]:
    """``data`` LZX-compressed, one (compressed bytes, output size) pair per 32 KiB frame."""
    return LzxEncoder(**options).encode(data, blocks or [(VERBATIM, 1 << 20)])


def lzx_cab(name: str, data: bytes, blocks: list[tuple[int, int]] | None = None, *,
            window_bits: int = 16, payloads: list[tuple[bytes, int]] | None = None, **options) -> bytes:
    """A one-file cabinet holding ``data`` as ``name`` in an LZX folder (one CFDATA per frame)."""
    frames = payloads if payloads is not None else \
        lzx_frames(data, blocks, window_bits=window_bits, **options)
    encoded = name.encode("latin-1") + b"\x00"
    files_at = 36 + 8
    data_at = files_at + 16 + len(encoded)
    body = b""
    for payload, size in frames:
        head = struct.pack("<HH", len(payload), size)
        body += struct.pack("<I", cab_checksum(head + payload)) + head + payload
    total = data_at + len(body)
    header = struct.pack("<4sIIIIIBBHHHHH", b"MSCF", 0, total, 0, files_at, 0, 3, 1, 1, 1, 0, 0x4C5A, 0)
    folder = struct.pack("<IHH", data_at, len(frames), 3 | (window_bits << 8))
    entry = struct.pack("<IIHHHH", len(data), 0, 0, 0x5A21, 0x6000, 0x20) + encoded
    return header + folder + entry + body
