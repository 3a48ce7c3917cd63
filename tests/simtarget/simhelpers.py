"""Shared helpers of the machine tests: booting, running to quiet, reading structs."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

from kdcon.tools.simtarget.events import BreakInStop, BreakpointHit, BudgetExhausted, BugCheck, StopEvent
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.machine import Machine

TESTDRV = IMAGES_DIR / "test" / "testdrv.sys"
TESTDRV_PDB = IMAGES_DIR / "test" / "testdrv.pdb"
MISSING = IMAGES_DIR / "test" / "missingimports.sys"


def boot_testdrv(**kwargs) -> Machine:
    machine = Machine(drivers=[TESTDRV], **kwargs)
    machine.boot()
    return machine


def run_until_quiet(machine: Machine, budget: int = 2_000_000, limit: int = 64) -> list[StopEvent]:
    """Events up to (not including) the first slice budget that passes with no event.

    Runs on as a debugger does: past an ``int 3`` of the code that stopped the machine.
    """
    events = []
    for _ in range(limit):
        event = machine.run(budget=budget)
        if isinstance(event, BudgetExhausted):
            return events
        events.append(event)
        run_on_from(machine, event)
    raise AssertionError(f"machine never went quiet: {events[-5:]}")


def run_on_from(machine: Machine, event: StopEvent) -> None:
    """What a debugger does before it resumes from ``event``: move RIP past an ``int 3``
    of the code (a Windows x64 kernel leaves RIP on it, and so does the machine)."""
    if isinstance(event, (BreakpointHit, BreakInStop, BugCheck)):
        machine.skip_break_instruction()


def q(machine: Machine, address: int) -> int:
    return struct.unpack("<Q", machine.read_virtual(address, 8))[0]


def d(machine: Machine, address: int) -> int:
    return struct.unpack("<I", machine.read_virtual(address, 4))[0]


def unicode_string(machine: Machine, address: int) -> str:
    length = struct.unpack("<H", machine.read_virtual(address, 2))[0]
    return machine.read_virtual(q(machine, address + 8), length).decode("utf-16-le")


def pdb_publics(llvm_pdbutil: str, pdb: Path, image_base: int, section_rvas: list[int]) -> dict[str, int]:
    """name -> address from `llvm-pdbutil dump -publics` (offsets are decimal)."""
    out = subprocess.run([llvm_pdbutil, "dump", "-publics", str(pdb)], capture_output=True, text=True,
                         check=True).stdout
    pattern = re.compile(r"S_PUB32 \[size = \d+\] `([^`]+)`\s+flags = [^,]*, addr = (\d+):(\d+)")
    return {m[1]: image_base + section_rvas[int(m[2]) - 1] + int(m[3]) for m in pattern.finditer(out)}


def booted_with_kernel_publics(llvm_pdbutil: str) -> tuple[Machine, dict[str, int]]:
    """A machine with the free trackdemo, run until quiet (no bug check), and the kernel
    PDB's publics at their addresses in it: the oracle for reading kernel structures."""
    import pefile

    from kdcon.tools.simtarget.kernel import trackdemo_image

    machine = Machine(drivers=[trackdemo_image("free")])
    machine.boot()
    assert not any(isinstance(e, BugCheck) for e in run_until_quiet(machine))
    kernel = IMAGES_DIR / "ntoskrnl.exe"
    rvas = [s.VirtualAddress for s in pefile.PE(str(kernel), fast_load=True).sections]
    return machine, pdb_publics(llvm_pdbutil, IMAGES_DIR / "ntoskrnl.pdb", machine.kern_base, rvas)
