"""A loader entry read shifted the way the KD checksum cannot see (a duplicated and a
dropped byte of the same value) on a noisy line is read again until two reads agree:
``.reload`` lists the modules a clean line lists. The entry is smaller than the replies
KdHost asks for again itself, and a wrong base or name would last the session.

The damage is made on the received bytes of the in-process simulated target's link
): the next reply that carries exactly one loader entry
arrives with its DllBase onwards shifted by a byte, after a burst of line noise.
"""

from __future__ import annotations

import io

from kdcon.app import App
from kdcon.output import Output
from kdcon.protocol.transports.faulty_port import FaultyPort
from kdcon.tools.simtarget.loopback import SimTarget

from ..linecheck import checksum_blind_spot
from .test_blind_spot_read import HEADER, MANIPULATE, NOISE

ENTRY = 0x84                # the loader entry's bytes the walk reads (up to TimeDateStamp)
DLLBASE = 0x30


class EntryShift:
    """A receive-side line model (FaultyPort) for the next reply carrying one entry."""

    def __init__(self) -> None:
        self.armed = False
        self.damaged: list[tuple[bytes, bytes]] = []     # (as sent, as delivered)
        self._held = bytearray()

    def apply(self, data: bytes) -> bytes:
        if not self.armed:
            return data
        self._held += data
        out = bytearray()
        while self.armed and len(self._held) >= HEADER:
            if self._held[:4] != b"0000":
                out += self._held[:1]                   # not a data packet's start
                del self._held[:1]
                continue
            count = int.from_bytes(self._held[6:8], "little")
            if len(self._held) < HEADER + count + 1:
                break
            packet = bytes(self._held[:HEADER + count + 1])
            del self._held[:HEADER + count + 1]
            if count == MANIPULATE + ENTRY:
                packet = NOISE + self._shift(packet)
                self.armed = False
            out += packet
        if not self.armed:
            out += self._held
            self._held.clear()
        return bytes(out)

    def _shift(self, packet: bytes) -> bytes:
        start = HEADER + MANIPULATE + DLLBASE
        end = HEADER + MANIPULATE + ENTRY
        for i in range(start, end):
            for j in range(i + 2, end):
                if packet[j] == packet[i] and len(set(packet[i:j + 1])) > 1:
                    damaged = packet[:i] + packet[i:i + 1] + packet[i:j] + packet[j + 1:]
                    self.damaged.append((packet, damaged))
                    return damaged
        raise AssertionError("no two equal bytes in the entry to shift between")


def test_a_loader_entry_shifted_past_the_checksum_on_a_noisy_line_is_read_again():
    model = EntryShift()
    sim = SimTarget(seed=0, break_on_connect=True)
    screen = io.StringIO()
    app = App(FaultyPort(sim.connect(), model_rx=model), link_name="loopback",
              output=Output(screen))
    try:
        app.connect()
        before = [(m.name, m.base, m.size, m.timestamp) for m in app.session.modules]
        model.armed = True
        app.run_line(".reload")
        after = [(m.name, m.base, m.size, m.timestamp) for m in app.session.modules]
    finally:
        app.close()
        sim.close()
    assert len(model.damaged) == 1
    sent, delivered = model.damaged[0]
    assert sum(sent) == sum(delivered) and checksum_blind_spot(delivered, sent)
    assert len(before) >= 2
    assert after == before


def test_a_clean_line_reads_each_loader_entry_once():
    model = EntryShift()
    sim = SimTarget(seed=0, break_on_connect=True)
    app = App(FaultyPort(sim.connect(), model_rx=model), link_name="loopback",
              output=Output(io.StringIO()))
    reads: list[int] = []
    host = app.session.host
    plain = host.read_virtual

    def counted(address: int, size: int) -> bytes:
        if size == ENTRY:
            reads.append(address)
        return plain(address, size)

    host.read_virtual = counted
    try:
        app.connect()
        app.session.memory.invalidate()
        del reads[:]
        app.run_line(".reload")
        modules = len(app.session.modules)
        noisy = host.line_damaged()
    finally:
        app.close()
        sim.close()
    assert not noisy
    assert modules >= 2
    assert len(reads) == modules and len(set(reads)) == modules
