"""A stack walk reads only the CONTEXT span the unwinder needs (RIP, RSP, RBP and the
nonvolatile registers: 112 bytes from Rbx to Rip) where the general registers' window
is 200; a later question outside the span reads only the rest of the window, and
``r`` prints the same block either way."""

from __future__ import annotations

import io
import struct

import pytest

from kdcon.app import App
from kdcon.output import Output
from kdcon.registers import INTEGER_WINDOW, UNWIND_REGISTERS, Registers, format_registers
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.loopback import SimTarget

# A CONTEXT whose every byte says where it is.
CONTEXT = bytes(i & 0xFF for i in range(0x4D0))


class _Target:
    def __init__(self) -> None:
        self.context = bytearray(CONTEXT)
        self.reads: list[tuple[int, int]] = []

    def fetch(self, offset: int, size: int) -> bytes:
        self.reads.append((offset, size))
        return bytes(self.context[offset: offset + size])

    def store(self, offset: int, data: bytes) -> None:
        self.context[offset: offset + len(data)] = data


def _registers(target: _Target) -> Registers:
    return Registers(target.fetch, target.store)


def _value(name_offset: int, size: int = 8) -> int:
    return int.from_bytes(CONTEXT[name_offset: name_offset + size], "little")


def test_the_unwinders_registers_are_one_read_of_112_bytes():
    target = _Target()
    regs = _registers(target)
    regs.prefetch(*UNWIND_REGISTERS)
    values = {name: regs.get(name) for name in UNWIND_REGISTERS}
    assert target.reads == [(0x90, 112)]
    assert values["rbx"] == _value(0x90) and values["rip"] == _value(0xF8)
    assert regs.cached("rsp") == _value(0x98) and regs.cached("rax") is None


def test_a_register_outside_the_span_reads_only_the_rest_of_its_window():
    target = _Target()
    regs = _registers(target)
    regs.prefetch(*UNWIND_REGISTERS)
    assert regs.get("rax") == _value(0x78)
    assert regs.get("efl") == _value(0x44, 4) and regs.get("r15") == _value(0xF0)
    assert target.reads == [(0x90, 112), (0x38, 0x90 - 0x38)]
    assert format_registers(regs) == format_registers(_registers(_Target()))
    assert len(target.reads) == 2


def test_a_walk_after_the_whole_window_reads_nothing_more():
    target = _Target()
    regs = _registers(target)
    regs.get("rax")
    regs.prefetch(*UNWIND_REGISTERS)
    assert target.reads == [INTEGER_WINDOW]


def test_a_write_to_a_prefetched_register_survives_the_window_being_completed():
    target = _Target()
    regs = _registers(target)
    regs.prefetch(*UNWIND_REGISTERS)
    regs.set("rbx", 0x1122334455667788)
    regs.set("bl", 0x99)
    assert regs.get("rax") == _value(0x78)
    assert regs.get("rbx") == 0x1122334455667799
    assert struct.unpack_from("<Q", target.context, 0x90)[0] == 0x1122334455667799


def test_a_short_answer_is_one_error():
    regs = Registers(lambda offset, size: b"\0" * (size - 1), lambda offset, data: None)
    with pytest.raises(OSError, match="111 of 112"):
        regs.prefetch(*UNWIND_REGISTERS)


# -- on the simulated target -------------------------------------------------------------------

@pytest.fixture(scope="module")
def console():
    sim = SimTarget(seed=0, break_on_connect=True)
    stream = io.StringIO()
    app = App(sim.connect(), link_name="kdsim", output=Output(stream=stream),
              symbol_path=f"{IMAGES_DIR};{IMAGES_DIR / 'checked'}", timeout=60)
    try:
        app.connect()
        yield app, stream
    finally:
        app.close()
        sim.close()


def _printed(app: App, stream: io.StringIO, command: str) -> str:
    start = len(stream.getvalue())
    app.console.execute(command)
    return stream.getvalue()[start:]


def test_the_first_k_after_a_stop_asks_for_112_context_bytes_and_r_is_unchanged(console):
    app, stream = console
    host = app.session.host
    asked: list[tuple[int, int]] = []
    original = host.get_context_ex

    def counted(offset: int, count: int, **kwargs) -> bytes:
        asked.append((offset, count))
        return original(offset, count, **kwargs)

    host.get_context_ex = counted
    try:
        app.session.registers.invalidate()
        stack = _printed(app, stream, "k")
        assert asked == [(0x90, 112)]
        assert "nt!DbgBreakPointWithStatus" in stack
        after_walk = _printed(app, stream, "r")
        assert asked == [(0x90, 112), (0x38, 0x58)]
        app.session.registers.invalidate()
        alone = _printed(app, stream, "r")
        assert asked[2:] == [INTEGER_WINDOW]
        assert after_walk == alone and "rip=" in alone
        assert _printed(app, stream, "k") == stack
    finally:
        host.get_context_ex = original
