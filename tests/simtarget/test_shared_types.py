"""The simulated target shares the protocol layer's CPU context and NTSTATUS values.

One ``Context``/``SpecialRegisters`` type lives in ``kdcon.protocol.context`` (which
must load without unicorn); every NTSTATUS the simulator reports is a member of
``kdcon.protocol.constants.NtStatus``; the machine's stop events do not reuse the
names of the protocol's wire events.
"""

from __future__ import annotations

import ast
import struct
import subprocess
import sys
from pathlib import Path

import kdcon.protocol.events as wire_events
import kdcon.tools.simtarget.events as stop_events
from kdcon.protocol.constants import NtStatus
from kdcon.protocol.context import (
    CONTEXT_ALL,
    CONTEXT_AMD64_SIZE,
    CONTEXT_CONTROL,
    CONTEXT_FULL,
    CONTEXT_INTEGER,
    KGDT64_R0_CODE,
    KGDT64_R0_DATA,
    KSPECIAL_REGISTERS_AMD64_SIZE,
    Context,
    SpecialRegisters,
)
from kdcon.tools.simtarget import machine as machine_module

SIMTARGET = Path(machine_module.__file__).resolve().parent


def test_protocol_context_loads_without_unicorn():
    code = ("import sys, kdcon.protocol.context as c; "
            "c.Context(); assert 'unicorn' not in sys.modules, 'unicorn imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_machine_hands_out_the_protocol_context_type():
    assert machine_module.Context is Context and machine_module.SpecialRegisters is SpecialRegisters


def test_context_flags_have_the_winnt_values():
    assert (CONTEXT_CONTROL, CONTEXT_INTEGER, CONTEXT_FULL, CONTEXT_ALL) == (0x100001, 0x100002, 0x10000B, 0x10001F)


def test_a_default_context_is_a_kernel_thread_and_round_trips():
    ctx = Context(Rip=0xFFFFF80000401000, Rsp=0xFFFFF80000F00000, Rax=1, Xmm=tuple(range(16)))
    raw = ctx.to_bytes()
    assert len(raw) == CONTEXT_AMD64_SIZE
    assert struct.unpack_from("<IIHHHHHHI", raw, 0x30) == (CONTEXT_ALL, 0x1F80, KGDT64_R0_CODE, 0x2B, 0x2B, 0x53,
                                                           0x2B, KGDT64_R0_DATA, 0x202)
    assert Context.from_bytes(raw + b"trailing") == ctx
    assert ctx.replace(Rax=2).Rax == 2 and ctx.Rax == 1


def test_special_registers_round_trip_with_trailing_bytes():
    special = SpecialRegisters(Cr3=0x187000, GdtrBase=0xFFFFF80000001000, GdtrLimit=0x7F, MsrGsBase=7)
    raw = special.to_bytes()
    assert len(raw) == KSPECIAL_REGISTERS_AMD64_SIZE
    assert SpecialRegisters.from_bytes(raw + b"\xff" * 8) == special
    assert special.replace(Cr3=0x1000).Cr3 == 0x1000


def test_short_buffers_are_refused_with_one_line():
    for cls, size in ((Context, CONTEXT_AMD64_SIZE), (SpecialRegisters, KSPECIAL_REGISTERS_AMD64_SIZE)):
        try:
            cls.from_bytes(bytes(size - 1))
        except ValueError as error:
            assert str(error).count("\n") == 0 and str(size) in str(error)
        else:
            raise AssertionError(f"{cls.__name__} accepted a short buffer")


def _status_assignments(path: Path) -> list[str]:
    """Module-level ``STATUS_x = <int literal>`` definitions in one source file."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, int):
            found += [f"{path.name}:{t.id}" for t in node.targets
                      if isinstance(t, ast.Name) and t.id.startswith("STATUS_")]
    return found


def test_no_simulator_module_defines_its_own_ntstatus_value():
    defined = [hit for path in sorted(SIMTARGET.rglob("*.py")) for hit in _status_assignments(path)]
    assert defined == []


def test_the_ntstatus_values_the_simulator_reports_are_named_by_the_protocol():
    for name, value in (("STATUS_INVALID_PARAMETER", 0xC000000D), ("STATUS_DATATYPE_MISALIGNMENT", 0x80000002),
                        ("STATUS_NO_SUCH_DEVICE", 0xC000000E), ("STATUS_INTEGER_DIVIDE_BY_ZERO", 0xC0000094),
                        ("STATUS_ILLEGAL_INSTRUCTION", 0xC000001D), ("STATUS_ASSERTION_FAILURE", 0xC0000420)):
        assert NtStatus[name] == value


def test_machine_stops_do_not_reuse_wire_event_names():
    stops = {n for n in stop_events.__all__ if isinstance(getattr(stop_events, n), type)}
    wire = {n for n in dir(wire_events) if isinstance(getattr(wire_events, n), type)}
    assert stops & wire == set()
