"""A memory reply damaged the way the KD checksum cannot see (a duplicated and a dropped
byte of the same value) on a noisy line is caught by asking again: ``db`` shows what a
clean line shows.

The damage is made on the received bytes of the in-process simulated target's link:
once armed, the next data packet large enough arrives with one stretch of its memory
shifted by a byte and a burst of line noise before it (which makes the line noisy).
"""

from __future__ import annotations

import io

from kdcon.app import App
from kdcon.output import Output
from kdcon.protocol.transports.faulty_port import FaultyPort
from kdcon.tools.simtarget.loopback import SimTarget

from ..linecheck import checksum_blind_spot
from .packetdamage import HEADER, MANIPULATE, NOISE, STATE_CHANGE64, PacketDamage, shifted

COMMAND = "db nt L200"


class BlindSpot(PacketDamage):
    """Damages the first data packet of at least ``smallest`` data bytes, after noise."""

    def __init__(self, smallest: int) -> None:
        super().__init__()
        self.smallest = smallest

    def damage(self, packet: bytes) -> bytes | None:
        if int.from_bytes(packet[6:8], "little") < self.smallest:
            return None
        end = HEADER + int.from_bytes(packet[6:8], "little")
        damaged = shifted(packet, HEADER + MANIPULATE + 8, end, gap=4)
        self.damaged.append((packet, damaged))
        return NOISE + damaged          # the noise makes the line noisy


def test_a_read_shifted_past_the_checksum_on_a_noisy_line_is_read_again():
    model = BlindSpot(smallest=MANIPULATE + 0x100)
    sim = SimTarget(seed=0, break_on_connect=True)
    screen = io.StringIO()
    app = App(FaultyPort(sim.connect(), model_rx=model), link_name="loopback",
              output=Output(screen))
    try:
        app.connect()
        model.armed = True
        app.run_line(COMMAND)
        host = app.session.host
        caught = host.disagreements
        # The same memory again, undamaged, past the per-stop cache.
        app.session.memory.invalidate()
        app.run_line(COMMAND)
    finally:
        app.close()
        sim.close()
    assert len(model.damaged) == 1
    sent, delivered = model.damaged[0]
    assert sum(sent) == sum(delivered) and checksum_blind_spot(delivered, sent)
    assert caught == 1
    shown, again = screen.getvalue().split(f"0: kd> {COMMAND}\n")[1:]
    assert shown.startswith("fffff800`01000000  4d 5a")
    assert shown == again


class ShiftedProgramCounter(PacketDamage):
    """A receive-side line model: once armed, the next state change arrives with its
    ProgramCounter shifted by a duplicate and a drop of the same value (the sum and the
    length kept); the exception record's ExceptionAddress is untouched."""

    PC = HEADER + 0x18          # DBGKD_ANY_WAIT_STATE_CHANGE.ProgramCounter

    def damage(self, packet: bytes) -> bytes | None:
        if int.from_bytes(packet[4:6], "little") != STATE_CHANGE64:
            return None
        damaged = shifted(packet, self.PC - 8, self.PC + 8, gap=1,
                          changes=slice(self.PC, self.PC + 8))
        self.damaged.append((packet, damaged))
        return damaged


def test_a_stop_whose_program_counter_was_shifted_takes_rip_from_the_context():
    model = ShiftedProgramCounter()
    sim = SimTarget(seed=0, break_on_connect=True)
    screen = io.StringIO()
    app = App(FaultyPort(sim.connect(), model_rx=model), link_name="loopback",
              output=Output(screen))
    try:
        app.connect()
        model.armed = True
        app.run_line("p")
        stop_pc = app.session.stop.pc
        app.session.registers.invalidate()
        rip = app.session.registers.get("rip")
    finally:
        app.close()
        sim.close()
    assert len(model.damaged) == 1
    sent, delivered = model.damaged[0]
    assert sum(sent) == sum(delivered) and sent != delivered
    assert stop_pc == rip
    shown = screen.getvalue().split("0: kd> p\n", 1)[1]
    assert f"\n{rip >> 32:08x}`{rip & 0xFFFFFFFF:08x} " in "\n" + shown
