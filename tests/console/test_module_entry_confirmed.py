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
from .packetdamage import HEADER, MANIPULATE, NOISE, PacketDamage, shifted

ENTRY = 0x84                # the loader entry's bytes the walk reads (up to TimeDateStamp)
DLLBASE = 0x30


class EntryShift(PacketDamage):
    """The next reply carrying exactly one loader entry, after line noise, shifted by a
    byte from its DllBase on."""

    def damage(self, packet: bytes) -> bytes | None:
        if int.from_bytes(packet[6:8], "little") != MANIPULATE + ENTRY:
            return None
        damaged = shifted(packet, HEADER + MANIPULATE + DLLBASE, HEADER + MANIPULATE + ENTRY)
        self.damaged.append((packet, damaged))
        return NOISE + damaged


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
