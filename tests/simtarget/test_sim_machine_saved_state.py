"""Where a halted machine saves its CPU for the debugger (KPRCB.ProcessorState): the
KPRCB address is read once a stop, and a debugger's write that moves KiProcessorBlock
is followed."""

from __future__ import annotations

import struct

from kdcon.tools.simtarget import layout
from kdcon.tools.simtarget.events import BreakInStop

from .simhelpers import boot_testdrv, q, run_until_quiet

POOL_BASE = 0xFFFFFA8000000000  # the kernel's nonpaged pool, 16 MiB mapped
CONTEXT_RIP = 0xF8


def _broken_in():
    machine = boot_testdrv()
    run_until_quiet(machine)
    machine.request_breakin()
    for _ in range(8):
        stop = machine.run(budget=2_000_000)
        if isinstance(stop, BreakInStop):
            return machine
    raise AssertionError("the break-in never stopped the machine")


def _saved_rip(machine, prcb: int) -> int:
    return q(machine, prcb + layout.KPRCB_SPECIAL_REGISTERS + 0xE0 + CONTEXT_RIP)


def test_processor_state_is_saved_in_the_kprcb_on_the_first_read_of_it() -> None:
    machine = _broken_in()
    rip = machine.get_context().Rip
    assert q(machine, machine.kernel_symbol("PsLoadedModuleList")) != 0  # any other read
    assert _saved_rip(machine, machine.kprcb) == rip


def test_a_debugger_moving_kiprocessorblock_moves_where_the_state_is_saved() -> None:
    machine = _broken_in()
    rip = machine.get_context().Rip
    old = machine.kprcb  # read, and kept for this stop
    moved = POOL_BASE + 0x00F00000
    assert _saved_rip(machine, moved) != rip
    block = machine.kernel_symbol("KiProcessorBlock")
    assert machine.write_virtual(block, struct.pack("<Q", moved)) == 8
    assert _saved_rip(machine, moved) == rip
    assert machine.write_virtual(block, struct.pack("<Q", old)) == 8
