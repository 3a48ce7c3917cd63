"""KD_PACKET: the 16-byte header, the checksum, and building whole packets.

What it does: the construct definition of KD_PACKET, the byte-sum checksum, and
functions that build data packets (header + payload + 0xAA) and control packets
(header only), plus the lone break-in byte. What it does not do: find packets in a
stream (buffer.py) or decide ids (state.py).
Spec: kd-protocol.md §1.2-§1.3 (KD_PACKET, KdpCalculateChecksum in windbgkd.h terms).

Layout on the wire::

    +--------+------+-----------+----------+----------+=========+------+
    | leader | type | ByteCount | PacketId | Checksum | payload | 0xAA |   data
    |  4     |  2   |    2      |    4     |    4     |  n      |  1   |
    +--------+------+-----------+----------+----------+=========+------+
    | "iiii" | type |     0     | PacketId |    0     |                    control
    +--------+------+-----------+----------+----------+
"""

from __future__ import annotations

import struct
import zlib

from construct import Const, Int16ul, Int32ul, Struct

from .constants import (
    BREAKIN_PACKET_BYTE,
    CONTROL_PACKET_LEADER,
    PACKET_LEADER,
    PACKET_MAX_SIZE,
    PACKET_TRAILING_BYTE,
)
from .errors import LocalProtocolError

__all__ = [
    "KD_PACKET",
    "KD_PACKET_DATA_HEADER",
    "KD_PACKET_CONTROL",
    "HEADER",
    "checksum",
    "build_data_packet",
    "build_control_packet",
    "check_payload_size",
    "BREAKIN_BYTES",
]

def _kd_packet(leader, byte_count=Int16ul, checksum=Int32ul) -> Struct:
    return Struct("PacketLeader" / leader, "PacketType" / Int16ul, "ByteCount" / byte_count,
                  "PacketId" / Int32ul, "Checksum" / checksum)


KD_PACKET = _kd_packet(Int32ul)
# The two concrete forms, for building with the leader filled in; a control packet
# carries no payload and no checksum.
KD_PACKET_DATA_HEADER = _kd_packet(Const(PACKET_LEADER, Int32ul))
KD_PACKET_CONTROL = _kd_packet(Const(CONTROL_PACKET_LEADER, Int32ul), Const(0, Int16ul),
                               Const(0, Int32ul))

# Header framing is on the hot path of every packet; the benchmark
# (tools/bench/protocol.py) shows construct's per-call cost dominates there, so the
# framer and builders use this precompiled struct with the same layout as KD_PACKET.
HEADER = struct.Struct("<IHHII")

BREAKIN_BYTES = bytes([BREAKIN_PACKET_BYTE])
_TRAILER = bytes([PACKET_TRAILING_BYTE])


# sum() over a 4000-byte payload costs ~19 µs, twice per ReadVirtualMemory transfer
# (bench/simtarget.py bulk figure). Adler-32's first half (RFC 1950 §8) is 1 + the byte
# sum modulo 65521, computed in C. Up to 256 bytes the sum (at most 65280) comes back
# exactly: every request and small reply takes one C call. Longer payloads go in
# 4096-byte chunks: the sum of the high nibbles (at most 61440) comes back exactly
# from the translated chunk, and the low nibbles' sum, also below 65521, is what the
# chunk's own sum modulo 65521 leaves.
_HIGH_NIBBLE = bytes(b >> 4 for b in range(256))
_EXACT_SUM_MAX = 256
_CHECKSUM_CHUNK = 4096
_ADLER_MOD = 65521


def checksum(payload: bytes) -> int:
    """Sum of the payload bytes as unsigned, modulo 2**32 (§1.3)."""
    if len(payload) <= _EXACT_SUM_MAX:
        return (zlib.adler32(payload) & 0xFFFF) - 1
    if not isinstance(payload, (bytes, bytearray)):
        payload = bytes(payload)  # translate() needs bytes
    total = 0
    for start in range(0, len(payload), _CHECKSUM_CHUNK):
        chunk = payload[start:start + _CHECKSUM_CHUNK]
        high = (zlib.adler32(chunk.translate(_HIGH_NIBBLE)) & 0xFFFF) - 1
        low = ((zlib.adler32(chunk) & 0xFFFF) - 1 - 16 * high) % _ADLER_MOD
        total += 16 * high + low
    return total & 0xFFFFFFFF


def check_payload_size(payload: bytes) -> None:
    """Raise LocalProtocolError if ``payload`` cannot travel in one packet (§1.4)."""
    if len(payload) > PACKET_MAX_SIZE:
        raise LocalProtocolError(
            f"payload of {len(payload)} bytes exceeds PACKET_MAX_SIZE {PACKET_MAX_SIZE}"
        )


def build_data_packet(packet_type: int, packet_id: int, payload: bytes) -> bytes:
    """Header + payload + trailer. Raises LocalProtocolError past PACKET_MAX_SIZE."""
    check_payload_size(payload)
    header = HEADER.pack(
        PACKET_LEADER, packet_type, len(payload), packet_id & 0xFFFFFFFF, checksum(payload)
    )
    return b"".join((header, payload, _TRAILER))


def build_control_packet(packet_type: int, packet_id: int = 0) -> bytes:
    """A 16-byte control packet: ByteCount 0, Checksum 0, no trailer (§1.2)."""
    return HEADER.pack(CONTROL_PACKET_LEADER, packet_type, 0, packet_id & 0xFFFFFFFF, 0)
