"""Receive-side line models (FaultyPort's ``model_rx``) that damage one KD data packet
the way the byte-sum checksum cannot see: a byte duplicated and a later byte of the same
value dropped, so the length and the sum are kept and the bytes between move by one.

``PacketDamage`` holds back what the target sends while armed, hands each whole data
packet to ``damage`` and passes control packets and stray bytes on untouched; the
packet ``damage`` answers for is delivered as it says and disarms the model.
"""

from __future__ import annotations

HEADER = 16                 # leader, type, byte count, id, checksum
MANIPULATE = 56             # DBGKD_MANIPULATE_STATE64 before a reply's data
STATE_CHANGE64 = 7          # the packet type of a state change
# Line noise before the damaged packet: the framing counts it, and the host's estimate
# of the line's faults per byte rises to where such a shift is likely.
NOISE = b"\x11\x22" * 32


class PacketDamage:
    """Damages the first data packet ``damage`` answers for."""

    def __init__(self) -> None:
        self.armed = False
        self.damaged: list[tuple[bytes, bytes]] = []     # (as sent, as delivered)
        self._held = bytearray()

    def damage(self, packet: bytes) -> bytes | None:
        """The bytes to deliver for ``packet``, or None to let it pass."""
        raise NotImplementedError

    def apply(self, data: bytes) -> bytes:
        if not self.armed:
            return data
        self._held += data
        out = bytearray()
        while self.armed and len(self._held) >= HEADER:
            if self._held[:4] == b"iiii":                 # a control packet: no data
                out += self._held[:HEADER]
                del self._held[:HEADER]
                continue
            if self._held[:4] != b"0000":
                out += self._held[:1]                     # not a data packet's start
                del self._held[:1]
                continue
            size = HEADER + int.from_bytes(self._held[6:8], "little") + 1
            if len(self._held) < size:
                break
            packet = bytes(self._held[:size])
            del self._held[:size]
            delivered = self.damage(packet)
            if delivered is not None:
                self.armed = False
                packet = delivered
            out += packet
        if not self.armed:
            out += self._held
            self._held.clear()
        return bytes(out)


def shifted(packet: bytes, start: int, end: int, gap: int = 2, changes: slice | None = None) -> bytes:
    """``packet`` with the first byte in [start, end) duplicated and a later byte of the
    same value, at least ``gap`` on, dropped, so that the bytes between change (in
    ``changes`` when given); AssertionError when no two such bytes exist."""
    for i in range(start, end):
        for j in range(i + gap, end):
            if packet[j] != packet[i] or len(set(packet[i:j + 1])) < 2:
                continue
            damaged = packet[:i] + packet[i:i + 1] + packet[i:j] + packet[j + 1:]
            if changes is None or damaged[changes] != packet[changes]:
                return damaged
    raise AssertionError(f"no two equal bytes between {start:#x} and {end:#x} to shift between")
