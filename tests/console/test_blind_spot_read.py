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

HEADER = 16                 # leader, type, byte count, id, checksum
MANIPULATE = 56             # DBGKD_MANIPULATE_STATE64 before the memory
COMMAND = "db nt L200"
# Line noise before the damaged packet: the framing counts it, and the host's estimate
# of the line's faults per byte rises to where a shift in a large reply is likely.
NOISE = b"\x11\x22" * 32


class BlindSpot:
    """A receive-side line model (FaultyPort) that damages one large data packet."""

    def __init__(self, smallest: int) -> None:
        self.smallest = smallest
        self.armed = False
        self.damaged: list[tuple[bytes, bytes]] = []     # (as sent, as delivered)
        self._held = bytearray()

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
                self.armed = False                        # not where a packet starts
                break
            count = int.from_bytes(self._held[6:8], "little")
            size = HEADER + count + 1
            if len(self._held) < size:
                break
            packet = bytes(self._held[:size])
            del self._held[:size]
            if count >= self.smallest:
                packet = self._shift(packet)
                out += NOISE                            # what makes the line noisy
                self.armed = False
            out += packet
        if not self.armed:
            out += self._held
            self._held.clear()
        return bytes(out)

    def _shift(self, packet: bytes) -> bytes:
        start = HEADER + MANIPULATE + 8
        end = HEADER + int.from_bytes(packet[6:8], "little")
        for i in range(start, end):
            for j in range(i + 4, end):
                stretch = packet[i:j + 1]
                if packet[j] == packet[i] and len(set(stretch)) > 1:
                    damaged = packet[:i] + packet[i:i + 1] + packet[i:j] + packet[j + 1:]
                    self.damaged.append((packet, damaged))
                    return damaged
        raise AssertionError("no two equal bytes to shift between")


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


class ShiftedProgramCounter:
    """A receive-side line model: once armed, the next state change arrives with its
    ProgramCounter shifted by a duplicate and a drop of the same value (the sum and the
    length kept); the exception record's ExceptionAddress is untouched."""

    PC = HEADER + 0x18          # DBGKD_ANY_WAIT_STATE_CHANGE.ProgramCounter
    STATE_CHANGE64 = 7

    def __init__(self) -> None:
        self.armed = False
        self.damaged: list[tuple[bytes, bytes]] = []
        self._held = bytearray()

    def apply(self, data: bytes) -> bytes:
        if not self.armed:
            return data
        self._held += data
        out = bytearray()
        while self.armed and len(self._held) >= HEADER:
            if self._held[:4] == b"iiii":
                out += self._held[:HEADER]
                del self._held[:HEADER]
                continue
            count = int.from_bytes(self._held[6:8], "little")
            if self._held[:4] != b"0000" or len(self._held) < HEADER + count + 1:
                break
            packet = bytes(self._held[:HEADER + count + 1])
            del self._held[:HEADER + count + 1]
            if int.from_bytes(packet[4:6], "little") == self.STATE_CHANGE64:
                packet = self._shift(packet)
                self.armed = False
            out += packet
        if not self.armed:
            out += self._held
            self._held.clear()
        return bytes(out)

    def _shift(self, packet: bytes) -> bytes:
        for i in range(self.PC - 8, self.PC + 8):
            for j in range(max(i + 1, self.PC), self.PC + 8):
                damaged = packet[:i] + packet[i:i + 1] + packet[i:j] + packet[j + 1:]
                if packet[j] == packet[i] and damaged[self.PC:self.PC + 8] != \
                        packet[self.PC:self.PC + 8]:
                    self.damaged.append((packet, damaged))
                    return damaged
        raise AssertionError("no two equal bytes to shift the program counter with")


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
