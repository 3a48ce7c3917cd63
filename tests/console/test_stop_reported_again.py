"""A state change damaged the way the KD checksum cannot see (a duplicated and a dropped
byte of the same value) in a field no memory read can check, its exception code, is
caught on a noisy line by having the CPU report its stop again (SwitchProcessor to
itself) until two reports agree: the console shows what a clean line shows.
"""

from __future__ import annotations

import io

from kdcon.app import App
from kdcon.output import Output
from kdcon.protocol.transports.faulty_port import FaultyPort
from kdcon.tools.simtarget.loopback import SimTarget

from .packetdamage import HEADER, NOISE, STATE_CHANGE64, PacketDamage, shifted

CODE = HEADER + 0x20        # DBGKD_ANY_WAIT_STATE_CHANGE.Exception.ExceptionRecord.ExceptionCode


class ShiftedExceptionCode(PacketDamage):
    """Once armed, the next state change arrives after line noise with its exception
    code shifted (the sum and the length kept)."""

    def damage(self, packet: bytes) -> bytes | None:
        if int.from_bytes(packet[4:6], "little") != STATE_CHANGE64:
            return None
        damaged = shifted(packet, CODE - 8, CODE + 8, gap=1, changes=slice(CODE, CODE + 4))
        self.damaged.append((packet, damaged))
        return NOISE + damaged


def _step(model: PacketDamage | None) -> tuple[str, int, list[int]]:
    """The screen after ``p``, the stop's exception code and the processors the console
    asked to report again."""
    sim = SimTarget(seed=0, break_on_connect=True)
    screen = io.StringIO()
    port = sim.connect() if model is None else FaultyPort(sim.connect(), model_rx=model)
    app = App(port, link_name="loopback", output=Output(screen))
    asked: list[int] = []
    try:
        app.connect()
        host = app.session.host
        switch = host.switch_processor

        def recorded(processor: int) -> None:
            asked.append(processor)
            switch(processor)

        host.switch_processor = recorded
        if model is not None:
            model.armed = True
        app.run_line("p")
        code = app.session.stop.code
    finally:
        app.close()
        sim.close()
    return screen.getvalue().split("0: kd> p\n", 1)[1], code, asked


def test_a_stop_whose_exception_code_was_shifted_is_reported_again():
    clean, clean_code, clean_asked = _step(None)
    model = ShiftedExceptionCode()
    shown, code, asked = _step(model)
    assert len(model.damaged) == 1
    sent, delivered = model.damaged[0]
    assert sum(sent) == sum(delivered)
    assert sent[CODE:CODE + 4] != delivered[CODE:CODE + 4]
    assert asked and set(asked) == {0}
    assert code == clean_code == 0x80000004
    assert shown == clean


def test_a_clean_line_takes_each_stop_as_first_reported():
    _, _, asked = _step(None)
    assert asked == []
