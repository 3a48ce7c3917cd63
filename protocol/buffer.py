"""KD framing and resynchronisation: bytes in, frames out. No I/O, no clock.

What it does: finds packets in a byte stream exactly as the ReactOS kdcom leader scan
does (kd-protocol.md §2.4), checks ByteCount, trailer and checksum (§2.3), and turns
every byte of the stream into exactly one frame: a good data packet, a control packet,
a lone break-in byte, a run of garbage, or a bad packet the receiver must answer with
RESEND. What it does not do: packet ids, ACKs, retries (state.py / connection.py), or
decoding payloads (windbgkd.py).
Spec: KD_PACKET (windbgkd.h); kd-protocol.md §1.2-§1.4, §2.3, §2.4.

Outcomes, each named by a test in tests/protocol/test_framing_*.py:

- bytes before a leader: one ``GarbageFrame`` per run (runs are cut at 65536 bytes,
  the scan cap that keeps a streaming line from pinning the receiver, §2.4);
- half leaders (``000`` + another byte): all four bytes are garbage; a differing leader
  byte restarts the leader (``00iiii`` is two garbage bytes and a control leader);
- a lone ``b`` (0x62) outside a packet: a ``BreakInFrame``. ReactOS forgets a ``b``
  that a leader byte overwrites; we report every one, as the QEMU stub does, because a
  host only ever sends it meaning "break in";
- ByteCount above PACKET_MAX_SIZE, a trailer that is not 0xAA, a checksum mismatch:
  a ``BadFrame`` (the receiver sends RESEND); scanning resumes right after the bad
  packet's leader, so a packet that a dropped byte ran into is still found;
- a packet cut short by a quiet line: ``expire_partial()`` (called by the owner when
  its inter-byte timeout passes) turns it into ``BadFrame(reason="truncated")``, and
  ``close()`` does the same at end of stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .constants import (
    BREAKIN_PACKET_BYTE,
    CONTROL_PACKET_LEADER,
    KD_PACKET_HEADER_SIZE,
    PACKET_MAX_SIZE,
    PACKET_TRAILING_BYTE,
)
from .packet import HEADER, checksum

__all__ = [
    "Frame",
    "DataFrame",
    "ControlFrame",
    "BreakInFrame",
    "GarbageFrame",
    "BadFrame",
    "FrameBuffer",
    "GARBAGE_RUN_MAX",
]

GARBAGE_RUN_MAX = 65536

# §2.4: the ReactOS scan completes a leader at the first place where four equal
# leader bytes end; any other byte (including 'b') restarts it. That is exactly the
# leftmost match of this pattern, which lets the scan run in C.
_SCAN = re.compile(rb"0000|iiii|b")
_LEADER_PREFIX = re.compile(rb"(?:0{1,3}|i{1,3})\Z")
_LEADERS = (b"0000", b"iiii")


@dataclass(frozen=True, slots=True)
class DataFrame:
    """A data packet whose ByteCount, trailer and checksum are all good."""

    offset: int
    packet_type: int
    packet_id: int
    checksum: int
    payload: bytes

    @property
    def length(self) -> int:
        return KD_PACKET_HEADER_SIZE + len(self.payload) + 1


@dataclass(frozen=True, slots=True)
class ControlFrame:
    """A control packet (leader ``iiii``); ByteCount and Checksum kept as received."""

    offset: int
    packet_type: int
    packet_id: int
    byte_count: int
    checksum: int

    @property
    def length(self) -> int:
        return KD_PACKET_HEADER_SIZE


@dataclass(frozen=True, slots=True)
class BreakInFrame:
    """A lone 0x62 seen while scanning for a leader."""

    offset: int

    @property
    def length(self) -> int:
        return 1


@dataclass(frozen=True, slots=True)
class GarbageFrame:
    """A run of bytes that belong to no packet."""

    offset: int
    data: bytes

    @property
    def length(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A data packet that must be answered with RESEND.

    ``reason`` is one of ``byte_count``, ``trailer``, ``checksum``, ``truncated``.
    ``raw`` holds the bytes the packet claimed (header, payload and trailer as far as
    they arrived); scanning resumed after its leader, so ``raw`` may overlap the
    frames that follow.
    """

    offset: int
    reason: str
    packet_type: int | None
    packet_id: int | None
    byte_count: int | None
    checksum: int | None
    computed_checksum: int | None
    raw: bytes

    @property
    def length(self) -> int:
        return len(self.raw)


Frame = DataFrame | ControlFrame | BreakInFrame | GarbageFrame | BadFrame


class FrameBuffer:
    """Accumulates received bytes and cuts them into frames."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self._garbage = bytearray()
        self._garbage_offset = 0
        self.garbage_bytes = 0
        self.bad_packets = 0
        self.received = 0
        self.closed = False

    @property
    def pending(self) -> int:
        """Bytes received but not yet cut into a frame (a partial packet or leader)."""
        return len(self._buf) + len(self._garbage)

    @property
    def in_packet(self) -> bool:
        """True while a leader has been seen and the rest of its packet is awaited."""
        return len(self._buf) >= 4 and self._buf[:4] in (b"0000", b"iiii")

    def receive_data(self, data: bytes) -> None:
        self._buf += data
        self.received += len(data)

    def breakin_at(self, start: int = 0) -> int | None:
        """The stream offset of the first break-in byte at or after offset ``start`` among
        the bytes not yet cut into a frame, or None. A running target polls with it."""
        self._unskip()
        found = self._buf.find(BREAKIN_PACKET_BYTE, max(0, start - self._base))
        return None if found < 0 else self._base + found

    def discard(self, end: int | None = None) -> int:
        """Drop the bytes not yet cut into a frame that lie before stream offset ``end``
        (all of them: None); how many. What a running target's break-in poll consumes."""
        self._unskip()
        count = len(self._buf) if end is None else max(0, min(len(self._buf), end - self._base))
        self._consume(count)
        return count

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None when more bytes are needed."""
        buf = self._buf
        if not self._garbage and buf.startswith(_LEADERS):
            # A packet at the start, as nearly every read brings: what the scan below
            # would find first, without it.
            return self._packet_at_start()
        while True:
            if self._garbage and len(self._garbage) >= GARBAGE_RUN_MAX:
                return self._take_garbage(GARBAGE_RUN_MAX)
            if not buf:
                return None
            m = _SCAN.search(buf)
            if m is None:
                # Keep a possible leader prefix at the end; the rest is garbage.
                tail = _LEADER_PREFIX.search(buf)
                keep = len(buf) - tail.start() if tail else 0
                self._skip(len(buf) - keep)
                if self._garbage and len(self._garbage) >= GARBAGE_RUN_MAX:
                    continue
                return None
            start = m.start()
            if start:
                self._skip(start)
                buf = self._buf
            if self._garbage:
                return self._take_garbage(len(self._garbage))
            if buf[0] == 0x62:
                offset = self._base
                self._consume(1)
                return BreakInFrame(offset=offset)
            frame = self._packet_at_start()
            if frame is None:
                return None
            return frame

    def expire_partial(self) -> Frame | None:
        """The line went quiet: report a started packet as truncated, or flush garbage."""
        if self.in_packet:
            return self._drop_truncated()
        return self._flush_tail()

    def close(self) -> list[Frame]:
        """End of stream: every remaining byte as frames (truncated packet, garbage)."""
        self.closed = True
        frames: list[Frame] = []
        while True:
            frame = self.next_frame()
            if frame is None:
                break
            frames.append(frame)
        while self._buf or self._garbage:
            frame = self.expire_partial()
            if frame is None:
                break
            frames.append(frame)
        return frames

    # -- internals -----------------------------------------------------------------

    def _packet_at_start(self) -> Frame | None:
        buf = self._buf
        if len(buf) < KD_PACKET_HEADER_SIZE:
            return None
        leader, ptype, count, pid, csum = HEADER.unpack_from(buf, 0)
        offset = self._base
        if leader == CONTROL_PACKET_LEADER:
            del buf[:KD_PACKET_HEADER_SIZE]
            self._base = offset + KD_PACKET_HEADER_SIZE
            return ControlFrame(
                offset=offset, packet_type=ptype, packet_id=pid, byte_count=count, checksum=csum
            )
        if count > PACKET_MAX_SIZE:
            return self._bad(offset, "byte_count", ptype, pid, count, csum, None,
                             bytes(buf[:KD_PACKET_HEADER_SIZE]))
        end = KD_PACKET_HEADER_SIZE + count
        if len(buf) < end + 1:
            return None
        payload = bytes(buf[KD_PACKET_HEADER_SIZE:end])
        raw_len = end + 1
        if buf[end] != PACKET_TRAILING_BYTE:
            return self._bad(offset, "trailer", ptype, pid, count, csum, checksum(payload),
                             bytes(buf[:raw_len]))
        computed = checksum(payload)
        if computed != csum:
            return self._bad(offset, "checksum", ptype, pid, count, csum, computed,
                             bytes(buf[:raw_len]))
        del buf[:raw_len]
        self._base = offset + raw_len
        return DataFrame(offset=offset, packet_type=ptype, packet_id=pid, checksum=csum,
                         payload=payload)

    def _bad(self, offset: int, reason: str, ptype: int | None, pid: int | None,
             count: int | None, csum: int | None, computed: int | None,
             raw: bytes) -> BadFrame:
        # Resume right after the leader: a packet that ran into the next one (a dropped
        # byte) leaves that next packet's leader inside what we just rejected.
        self._consume(4)
        self.bad_packets += 1
        return BadFrame(offset=offset, reason=reason, packet_type=ptype, packet_id=pid,
                        byte_count=count, checksum=csum, computed_checksum=computed, raw=raw)

    def _drop_truncated(self) -> BadFrame:
        buf = self._buf
        raw = bytes(buf)
        ptype = pid = count = csum = None
        if len(buf) >= KD_PACKET_HEADER_SIZE:
            _, ptype, count, pid, csum = HEADER.unpack_from(buf, 0)
        offset = self._base
        self._consume(len(buf))
        self.bad_packets += 1
        return BadFrame(offset=offset, reason="truncated", packet_type=ptype, packet_id=pid,
                        byte_count=count, checksum=csum, computed_checksum=None, raw=raw)

    def _flush_tail(self) -> Frame | None:
        if self._buf:
            self._skip(len(self._buf))
        if self._garbage:
            return self._take_garbage(len(self._garbage))
        return None

    def _skip(self, n: int) -> None:
        if not self._garbage:
            self._garbage_offset = self._base
        self._garbage += self._buf[:n]
        self._consume(n)

    def _take_garbage(self, n: int) -> GarbageFrame:
        data = bytes(self._garbage[:n])
        offset = self._garbage_offset
        del self._garbage[:n]
        self._garbage_offset += n
        self.garbage_bytes += n
        return GarbageFrame(offset=offset, data=data)

    def _unskip(self) -> None:
        """Put skipped bytes not yet reported as garbage back in front of the buffer:
        they are the stream just before ``_base``."""
        if self._garbage:
            self._buf[:0] = self._garbage
            self._base = self._garbage_offset
            self._garbage.clear()

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._base += n
