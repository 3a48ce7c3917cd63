"""The kernel's two interrupt-style entries, the clock interrupt (KiClockInterrupt) and
the user program's requests (KiSimIoEntry), carry unwind data: a stack walk from inside
them goes on into the code they interrupted and ends at the kernel's entry,
KiSystemStartup, as a debugger's ``k`` after a break-in or at a breakpoint in a
driver's dispatch routine shows it.  Walked with the console's own unwinder over
the images' ``.pdata`` in the machine's memory."""

from __future__ import annotations

import pytest

from kdcon.pdata import FunctionTable
from kdcon.symbols.pdb import open_pdb
from kdcon.tools.simtarget.events import BreakInStop, BreakpointHit, DebugPrintStop
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest
from kdcon.unwind import unwind
from tests.simtarget.wdkbuild import build, run_quiet

BUFFERED_CODE = 40000 << 16 | 0x902 << 2


@pytest.fixture(scope="module")
def ioctltest(tmp_path_factory):
    return build("ioctltest", tmp_path_factory.mktemp("ioctltest"))


def _symbols(pdb_path, *names):
    records = {r.name: r.rva for r in open_pdb(pdb_path).publics()}
    return [records[name] for name in names]


def _walk(machine: Machine) -> list[tuple[str, int]]:
    """(module name, RVA) of each frame's instruction pointer, from the CPU's registers."""
    tables = {m.name.lower(): (m.base, m.size, FunctionTable.from_memory(machine.read_virtual, m.base))
              for m in machine.modules}

    def function_for(address):
        for base, size, table in tables.values():
            if base <= address < base + size:
                return table
        return None

    def where(address):
        for name, (base, size, _) in tables.items():
            if base <= address < base + size:
                return name, address - base
        return "?", address

    ctx = machine.get_context()
    frames = unwind(ctx.Rip, ctx.Rsp, ctx.Rbp, read=machine.read_virtual, function_for=function_for)
    return [where(f.instruction_pointer) for f in frames]



def _run_to(machine: Machine, kind):
    """Run on past the prints until the machine stops with a ``kind`` event."""
    for _ in range(100):
        event = machine.run(budget=50_000_000)
        if not isinstance(event, DebugPrintStop):
            break
    assert isinstance(event, kind), event


def _function_start(machine: Machine, module: str):
    base = next(m.base for m in machine.modules if m.name.lower() == module)
    table = FunctionTable.from_memory(machine.read_virtual, base)

    def start(rva):
        entry = table.lookup(base + rva)
        return entry.begin - base if entry else None
    return start


def test_a_walk_from_a_drivers_dispatch_routine_goes_through_the_io_entry_to_the_kernels_start(ioctltest):
    machine = Machine(drivers=[ioctltest])
    machine.boot()
    run_quiet(machine)
    dispatch = _symbols(ioctltest.with_suffix(".pdb"), "TestDeviceControl")[0]
    module = next(m for m in machine.modules if m.name.lower() == "ioctltest.sys")
    machine.write_breakpoint(module.base + dispatch)
    machine.io.post(IoRequest.create(r"\\.\IoctlTestKsim"), IoRequest.ioctl(0, BUFFERED_CODE, b"a\0", 16))
    _run_to(machine, BreakpointHit)
    frames = _walk(machine)
    io_entry, startup = _symbols(IMAGES_DIR / "ntoskrnl.pdb", "KiSimIoEntry", "KiSystemStartup")
    start = _function_start(machine, "ntoskrnl.exe")
    assert frames[0] == ("ioctltest.sys", dispatch)
    starts = [start(rva) if name == "ntoskrnl.exe" else None for name, rva in frames]
    assert io_entry in starts
    assert starts.index(io_entry) < len(frames) - 1
    assert starts[-1] == startup


def test_a_walk_from_a_break_in_goes_through_the_clock_interrupt_to_the_kernels_start(ioctltest):
    machine = Machine(drivers=[ioctltest])
    machine.boot()
    run_quiet(machine)
    machine.request_breakin()
    _run_to(machine, BreakInStop)
    frames = _walk(machine)
    clock, startup = _symbols(IMAGES_DIR / "ntoskrnl.pdb", "KiClockInterrupt", "KiSystemStartup")
    start = _function_start(machine, "ntoskrnl.exe")
    starts = [start(rva) if name == "ntoskrnl.exe" else None for name, rva in frames]
    assert clock in starts
    assert starts.index(clock) < len(frames) - 1
    assert starts[-1] == startup
