"""A stop's instruction bytes, carried in the state change with no request, are checked
against one read of the same memory when the line damaged packets lately: a stream
shifted the way the KD checksum cannot see (a duplicated and a dropped byte of the same
value) does not reach the stop line, the read seeds the stop's cache, and a clean line
makes no such read.

The damage is made on the received bytes of the in-process simulated target's link: once
armed, the next state change arrives after a burst of line noise (which makes the line
noisy) and, if asked, with its instruction stream shifted by a byte.
"""

from __future__ import annotations

import io

from kdcon.app import App
from kdcon.output import Output
from kdcon.protocol.transports.faulty_port import FaultyPort
from kdcon.tools.simtarget.loopback import SimTarget

from ..linecheck import checksum_blind_spot
from .packetdamage import HEADER, NOISE, STATE_CHANGE64, PacketDamage, shifted

# DBGKD_ANY_WAIT_STATE_CHANGE: the control report at 0xC0, its InstructionStream at 0x18.
STREAM = HEADER + 0xC0 + 0x18
BREAKPOINT = "trackdemo!TrackDemoTick"


class StateChangeDamage(PacketDamage):
    """The next state change, after line noise, with its instruction stream shifted by a
    byte when ``shift`` (or as sent)."""

    def __init__(self, *, shift: bool) -> None:
        super().__init__()
        self.shift = shift

    def damage(self, packet: bytes) -> bytes | None:
        if int.from_bytes(packet[4:6], "little") != STATE_CHANGE64:
            return None
        delivered = shifted(packet, STREAM, STREAM + 16) if self.shift else packet
        self.damaged.append((packet, delivered))
        return NOISE + delivered


def _session(model: StateChangeDamage):
    sim = SimTarget(seed=0, break_on_connect=True)
    screen = io.StringIO()
    app = App(FaultyPort(sim.connect(), model_rx=model), link_name="loopback",
              output=Output(screen))
    reads: list[tuple[int, int]] = []
    host = app.session.host
    plain = host.read_virtual

    def counted(address: int, size: int) -> bytes:
        reads.append((address, size))
        return plain(address, size)

    host.read_virtual = counted
    return sim, app, screen, reads


def _hit(model: StateChangeDamage, *, reports_again: bool = False):
    """Run to the breakpoint, then step with ``model`` armed for the step's state
    change: (app's stop,
    the stop line's instruction, the true one, reads made at the stop's PC, screen).
    Unless ``reports_again``, the session takes stops as first reported, as it does
    from a target that does not report a stop again (linedamage.py)."""
    sim, app, screen, reads = _session(model)
    app.session._reports_again = reports_again
    try:
        app.connect()
        app.run_line(f"bu {BREAKPOINT}")
        app.run_line("g")
        model.armed = True
        del reads[:]
        app.run_line("p")
        stop = app.session.stop
        shown = screen.getvalue().rsplit("0: kd> p\n", 1)[1].splitlines()
        sent = model.damaged[0][0][STREAM:STREAM + len(stop.instruction_stream)]
        true_line = app.console.location_lines(stop.pc, sent)[-1]
        at_pc = [read for read in reads if read[0] == stop.pc]
        app.run_line("u rip L1")
        after_u = [read for read in reads if read[0] == stop.pc]
    finally:
        app.close()
        sim.close()
    return stop, shown, true_line, at_pc, after_u, sent


def test_a_stream_shifted_past_the_checksum_on_a_noisy_line_is_taken_from_memory():
    model = StateChangeDamage(shift=True)
    stop, shown, true_line, at_pc, _, sent = _hit(model)
    packet, delivered = model.damaged[0]
    assert sum(packet) == sum(delivered) and len(packet) == len(delivered)
    assert checksum_blind_spot(delivered[STREAM:STREAM + 16], packet[STREAM:STREAM + 16])
    assert stop.instruction_stream == sent
    assert shown[-1] == true_line
    # One read showed the difference, a second one decided it.
    assert len(at_pc) == 2


def test_a_stream_shifted_past_the_checksum_is_replaced_by_the_stops_second_report():
    model = StateChangeDamage(shift=True)
    stop, shown, true_line, at_pc, _, sent = _hit(model, reports_again=True)
    assert stop.instruction_stream == sent
    assert shown[-1] == true_line
    # The two reports agreed on the undamaged stream: one read confirmed it.
    assert len(at_pc) == 1


def test_on_a_noisy_line_a_good_stream_costs_one_read_that_u_then_reuses():
    model = StateChangeDamage(shift=False)
    stop, shown, true_line, at_pc, after_u, sent = _hit(model)
    assert stop.instruction_stream == sent
    assert shown[-1] == true_line
    assert len(at_pc) == 1 and after_u == at_pc


def test_a_clean_line_reads_nothing_at_a_stop():
    model = StateChangeDamage(shift=False)
    sim, app, screen, reads = _session(model)
    try:
        app.connect()
        app.run_line(f"bu {BREAKPOINT}")
        app.run_line("g")
        del reads[:]
        trips = app.session.host.round_trips
        app.run_line("p")
        stop = app.session.stop
        during_p = app.session.host.round_trips - trips
        noisy = app.session.host.line_damaged()
    finally:
        app.close()
        sim.close()
    assert not noisy
    assert stop.instruction_stream
    assert not [read for read in reads if read[0] == stop.pc]
    assert model.damaged == []
    assert during_p >= 1
