"""LZX decompression as cabinets use it (CAB folder method 3).

Microsoft's symbol server and ``symstore add /compress`` pack entries with LZX.
This decoder follows the published format ("Microsoft LZX Data Compression
Format" in the Cabinet SDK, restated in [MS-PATCH] "LZX DELTA" §2): a folder is
one bitstream whose output is cut into 32 KiB frames; it does not do LZX DELTA's
reference data or reset intervals, which cabinets never use.

Bitstream::

    16-bit little-endian words, each read from its most significant bit.
    header   e8:1 [translation size hi:16 lo:16]             once, at the start
    block    type:3 size:24 (output bytes), then by type:
      1 verbatim    main tree, length tree, symbols
      2 aligned     aligned tree (8 x 3 bits), main tree, length tree, symbols
      3 stored      pad to a word (1-16 bits), R0 R1 R2 (u32 each), bytes,
                    one pad byte when the size is odd
    tree     20 x 4-bit pretree lengths, then pretree codes that give each
             length as a change from the previous block's (mod 17), or runs:
             17 zeros x 4-19, 18 zeros x 20-51, 19 same value x 4-5
    symbol   main < 256: literal; else slot = (main-256) >> 3,
             length = (main-256) & 7 (+ length tree when 7) + 2;
             slots 0-2 reuse the last three offsets, higher slots carry
             footer bits (aligned blocks code the low three with the aligned tree)

After each frame the input realigns to a word (except inside a stored block),
and when the header asked for it the frame's E8 (x86 CALL) operands are turned
back from absolute to relative (for the first 32768 frames). A match may not
cross a frame or block boundary, nor reach before the first byte output.

Every inconsistency raises ``LzxError`` (a ``SymbolFileError``); nothing else escapes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from .errors import SymbolFileError

__all__ = ["FRAME_SIZE", "LzxDecoder", "LzxError", "position_slots"]

log = logging.getLogger(__name__)

FRAME_SIZE = 32768
_MIN_MATCH = 2
_NUM_CHARS = 256
_NUM_PRIMARY_LENGTHS = 7
_NUM_SECONDARY_LENGTHS = 249
_PRETREE_SIZE = 20
_ALIGNED_SIZE = 8
_MAX_CODE_BITS = 16
_E8_FRAMES = 32768
_MAX_OVERRUN = 16           # zero bytes read past the input before it counts as truncated

_VERBATIM, _ALIGNED, _STORED = 1, 2, 3

# extra_bits[slot] and position_base[slot] (LZX format, "position slots").
_EXTRA_BITS = [0, 0, 0, 0] + [min((slot - 2) // 2, 17) for slot in range(4, 51)]
_POSITION_BASE = [0]
for _bits in _EXTRA_BITS[:-1]:
    _POSITION_BASE.append(_POSITION_BASE[-1] + (1 << _bits))
_SLOTS = {15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}
_MASKS = tuple((1 << n) - 1 for n in range(65))


class LzxError(SymbolFileError):
    """The LZX data is damaged: the decoder cannot go on."""


def position_slots(window_bits: int) -> int:
    """How many position slots a window of ``2**window_bits`` bytes has."""
    try:
        return _SLOTS[window_bits]
    except KeyError:
        raise LzxError(f"LZX window of 2^{window_bits} bytes is outside 2^15..2^21") from None


def _decode_table(lengths: bytes | bytearray, what: str) -> tuple[list[int], int] | None:
    """A lookup table for the canonical code with these lengths: ``(entries, bits)``.

    Entry ``table[next bits]`` is ``symbol << 5 | length``. An all-zero set of
    lengths is an empty tree (None); an over-full or incomplete code is an error.
    """
    bits = max(lengths, default=0)
    if bits == 0:
        return None
    if bits > _MAX_CODE_BITS:
        raise LzxError(f"LZX {what} tree has a {bits}-bit code")
    counts = [0] * (bits + 1)
    for length in lengths:
        counts[length] += 1
    space = 1 << bits
    used = sum(counts[n] << (bits - n) for n in range(1, bits + 1))
    if used != space:
        state = "over-full" if used > space else "incomplete"
        raise LzxError(f"LZX {what} tree is {state}")
    # Canonical codes: shorter codes first, then by symbol (as in deflate).
    next_code = [0] * (bits + 2)
    code = 0
    for n in range(1, bits + 1):
        code = (code + counts[n - 1]) << 1 if n > 1 else 0
        next_code[n] = code
    table = [0] * space
    for symbol, length in enumerate(lengths):
        if length:
            start = next_code[length] << (bits - length)
            next_code[length] += 1
            span = 1 << (bits - length)
            table[start:start + span] = [(symbol << 5) | length] * span
    return table, bits


class LzxDecoder:
    """One LZX stream: pulls compressed bytes from ``source``, returns frames.

    ``source`` yields the compressed input in pieces of any size (a cabinet's
    CFDATA payloads, one byte at a time, ...); ``frame(size)`` decodes the next
    ``size`` output bytes, 32 KiB for every frame but the last.
    """

    def __init__(self, window_bits: int, source: Iterable[bytes]) -> None:
        slots = position_slots(window_bits)
        self._window = 1 << window_bits
        self._main_size = _NUM_CHARS + slots * 8
        self._source: Iterator[bytes] | None = iter(source)
        self._buf = bytearray()
        self._pos = 0
        self._base = 0
        self._bitbuf = 0
        self._bitcount = 0
        self._overrun = 0
        self._out = bytearray()
        self._dropped = 0
        self._total = 0
        self._frames = 0
        self._header_read = False
        self._e8_size = 0
        self._block_type = 0
        self._block_length = 0
        self._block_remaining = 0
        self._r0 = self._r1 = self._r2 = 1
        self._main_lengths = bytearray(self._main_size)
        self._length_lengths = bytearray(_NUM_SECONDARY_LENGTHS)
        self._main_table: tuple[list[int], int] | None = None
        self._length_table: tuple[list[int], int] | None = None
        self._aligned_table: tuple[list[int], int] | None = None

    # -- input ---------------------------------------------------------------------------

    def _pull(self) -> bool:
        """Append the next piece of input to the buffer; False at the end of the input."""
        chunk = next(self._source, None) if self._source is not None else None
        if chunk is None:
            self._source = None
            return False
        if self._pos:
            # Drop what has been read; ``_base`` keeps positions absolute.
            del self._buf[:self._pos]
            self._base += self._pos
            self._pos = 0
        self._buf += chunk
        return True

    def _need(self, count: int) -> None:
        """At least ``count`` (<= 32) bits in the bit buffer.

        Past the end of the input zero bytes stand in, since a final code may be
        shorter than the bits the table looks at; a few, then it is truncation.
        """
        while self._bitcount < count:
            while self._pos + 2 > len(self._buf):
                if not self._pull():
                    missing = self._pos + 2 - len(self._buf)
                    self._overrun += missing
                    if self._overrun > _MAX_OVERRUN:
                        raise LzxError("LZX data ends early (truncated)")
                    self._buf += bytes(missing)
            buf, pos = self._buf, self._pos
            self._bitbuf = ((self._bitbuf & _MASKS[self._bitcount]) << 16) | (buf[pos + 1] << 8) | buf[pos]
            self._pos = pos + 2
            self._bitcount += 16

    def _bits(self, count: int) -> int:
        if count == 0:
            return 0
        self._need(count)
        self._bitcount -= count
        return (self._bitbuf >> self._bitcount) & _MASKS[count]

    def _symbol(self, tree: tuple[list[int], int] | None, what: str) -> int:
        if tree is None:
            raise LzxError(f"LZX data uses the empty {what} tree")
        table, bits = tree
        self._need(bits)
        entry = table[(self._bitbuf >> (self._bitcount - bits)) & _MASKS[bits]]
        self._bitcount -= entry & 31
        return entry >> 5

    def _align_word(self, always: bool) -> None:
        """Skip to the next word boundary; with ``always``, a whole word when already there."""
        consumed = (self._base + self._pos) * 8 - self._bitcount
        skip = 16 - consumed % 16 if (consumed % 16 or always) else 0
        if skip:
            self._bits(skip)

    def _enter_bytes(self) -> None:
        """Give the loaded but unread bits (whole words here) back to the byte position."""
        self._pos -= self._bitcount // 8
        self._bitbuf = self._bitcount = 0
        if self._overrun:
            raise LzxError("LZX stored block ends early (truncated)")

    def _raw(self, count: int) -> bytes:
        """``count`` bytes straight from the input (stored blocks; the bit buffer is empty)."""
        pieces: list[bytes] = []
        while count:
            if self._pos >= len(self._buf) and not self._pull():
                raise LzxError("LZX stored block ends early (truncated)")
            take = min(count, len(self._buf) - self._pos)
            pieces.append(bytes(self._buf[self._pos:self._pos + take]))
            self._pos += take
            count -= take
        return b"".join(pieces)

    # -- trees ---------------------------------------------------------------------------

    def _read_lengths(self, lengths: bytearray, first: int, last: int, what: str) -> None:
        pre = bytearray(self._bits(4) for _ in range(_PRETREE_SIZE))
        pretree = _decode_table(pre, f"{what} pre")
        x = first
        while x < last:
            code = self._symbol(pretree, f"{what} pre")
            if code <= 16:
                lengths[x] = (lengths[x] - code) % 17
                x += 1
                continue
            if code == 17:
                run, value = self._bits(4) + 4, 0
            elif code == 18:
                run, value = self._bits(5) + 20, 0
            else:
                run = self._bits(1) + 4
                same = self._symbol(pretree, f"{what} pre")
                if same > 16:
                    raise LzxError(f"LZX {what} tree: run code {same} after code 19")
                value = (lengths[x] - same) % 17
            if x + run > last:
                raise LzxError(f"LZX {what} tree: a run of {run} passes its end")
            lengths[x:x + run] = bytes([value]) * run
            x += run

    def _read_block_header(self) -> None:
        if self._block_type == _STORED and self._block_length & 1:
            self._raw(1)
        kind = self._bits(3)
        length = (self._bits(16) << 8) | self._bits(8)
        if kind not in (_VERBATIM, _ALIGNED, _STORED):
            raise LzxError(f"LZX block type {kind} is not verbatim, aligned or stored")
        if length == 0:
            raise LzxError("LZX block of 0 bytes")
        self._block_type, self._block_length, self._block_remaining = kind, length, length
        if kind == _STORED:
            self._align_word(always=True)
            self._enter_bytes()
            r = self._raw(12)
            self._r0, self._r1, self._r2 = (int.from_bytes(r[i:i + 4], "little") for i in (0, 4, 8))
            return
        if kind == _ALIGNED:
            aligned = bytearray(self._bits(3) for _ in range(_ALIGNED_SIZE))
            self._aligned_table = _decode_table(aligned, "aligned offset")
        self._read_lengths(self._main_lengths, 0, _NUM_CHARS, "main")
        self._read_lengths(self._main_lengths, _NUM_CHARS, self._main_size, "main")
        self._main_table = _decode_table(self._main_lengths, "main")
        if self._main_table is None:
            raise LzxError("LZX block has an empty main tree")
        self._read_lengths(self._length_lengths, 0, _NUM_SECONDARY_LENGTHS, "length")
        self._length_table = _decode_table(self._length_lengths, "length")

    # -- frames --------------------------------------------------------------------------

    def frame(self, size: int) -> bytes:
        """The next ``size`` (1..32768) bytes of output."""
        if not 0 < size <= FRAME_SIZE:
            raise LzxError(f"LZX frame of {size} bytes")
        if not self._header_read:
            self._header_read = True
            if self._bits(1):
                self._e8_size = (self._bits(16) << 16) | self._bits(16)
        out = self._out
        start = len(out)
        end = start + size
        while len(out) < end:
            if self._block_remaining == 0:
                self._read_block_header()
            run = min(self._block_remaining, end - len(out))
            if self._block_type == _STORED:
                out += self._raw(run)
            else:
                self._decode_symbols(run, self._block_type == _ALIGNED)
            self._block_remaining -= run
        if self._block_type != _STORED:
            self._align_word(always=False)
        data = bytes(out[start:])
        if self._e8_size and self._frames < _E8_FRAMES and size > 10:
            data = self._undo_e8(data)
        self._frames += 1
        self._total += size
        if len(out) > 2 * self._window:
            # Only the last window can be referred to; deleting from the front is cheap.
            excess = len(out) - self._window
            del out[:excess]
            self._dropped += excess
        return data

    def _decode_symbols(self, run: int, aligned: bool) -> None:
        """Decode exactly ``run`` output bytes of a verbatim or aligned block."""
        out = self._out
        goal = len(out) + run
        dropped = self._dropped
        window = self._window
        main_table, main_bits = self._main_table  # type: ignore[misc]
        main_mask = _MASKS[main_bits]
        r0, r1, r2 = self._r0, self._r1, self._r2
        while len(out) < goal:
            # Inline fast path of _need(16) + _symbol(main): the hot loop.
            bitcount = self._bitcount
            if bitcount < 16:
                self._need(16)
                bitcount = self._bitcount
            entry = main_table[(self._bitbuf >> (bitcount - main_bits)) & main_mask]
            self._bitcount = bitcount - (entry & 31)
            symbol = entry >> 5
            if symbol < _NUM_CHARS:
                out.append(symbol)
                continue
            symbol -= _NUM_CHARS
            length = symbol & 7
            if length == _NUM_PRIMARY_LENGTHS:
                length += self._symbol(self._length_table, "length")
            length += _MIN_MATCH
            slot = symbol >> 3
            if slot > 2:
                extra = _EXTRA_BITS[slot]
                if aligned and extra >= 3:
                    offset = _POSITION_BASE[slot] + (self._bits(extra - 3) << 3) \
                        + self._symbol(self._aligned_table, "aligned offset")
                else:
                    offset = _POSITION_BASE[slot] + self._bits(extra)
                offset -= 2
                r0, r1, r2 = offset, r0, r1
            elif slot == 0:
                offset = r0
            elif slot == 1:
                offset, r0, r1 = r1, r1, r0
            else:
                offset, r0, r2 = r2, r2, r0
            if len(out) + length > goal:
                raise LzxError("LZX match runs past the end of its block or frame")
            if offset > len(out) + dropped or offset >= window:
                raise LzxError(f"LZX match reaches {offset} bytes back, "
                                      f"{len(out) + dropped} bytes are known")
            source = len(out) - offset
            if offset >= length:
                out += out[source:source + length]
            else:
                pattern = out[source:]
                out += (pattern * (length // offset + 1))[:length]
        self._r0, self._r1, self._r2 = r0, r1, r2

    def _undo_e8(self, data: bytes) -> bytes:
        """Turn the absolute CALL targets the compressor wrote back into relative ones."""
        limit = len(data) - 10
        position = data.find(0xE8, 0, limit)
        if position < 0:
            return data
        frame = bytearray(data)
        size = self._e8_size
        base = self._total
        while position >= 0:
            current = base + position
            value = int.from_bytes(frame[position + 1:position + 5], "little", signed=True)
            if -current <= value < size:
                relative = value - current if value >= 0 else value + size
                frame[position + 1:position + 5] = (relative & 0xFFFFFFFF).to_bytes(4, "little")
            position = frame.find(0xE8, position + 5, limit)
        return bytes(frame)
