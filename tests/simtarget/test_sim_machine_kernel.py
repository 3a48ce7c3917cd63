"""Kernel behaviour seen from the machine: pool accounting, time, guest-initiated reboot."""

from __future__ import annotations

import struct

from kdcon.tools.simtarget.events import LoadSymbols, Rebooted

from .simhelpers import boot_testdrv, q, run_until_quiet


def tag_counts(machine, tag: bytes) -> tuple[int, int, int]:
    table = q(machine, machine.kernel_symbol("PoolTrackTable"))
    size = q(machine, machine.kernel_symbol("PoolTrackTableSize"))
    for i in range(size):
        key, allocs, frees, _pad, nbytes = struct.unpack("<IiiIQ", machine.read_virtual(table + 0x28 * i, 24))
        if key == int.from_bytes(tag, "little"):
            return allocs, frees, nbytes
    return 0, 0, 0


def test_pool_track_table_counts_allocations_and_frees_per_tag():
    machine = boot_testdrv()
    run_until_quiet(machine)
    # DriverEntry: 64 bytes allocated and freed, then 0x2345 bytes kept (a big-pool block).
    assert tag_counts(machine, b"Test") == (2, 1, 0x2345)
    machine.set_request(1)                       # KiSimRequest.LEAK: 40 bytes tagged 'Leak'
    run_until_quiet(machine)
    allocs, frees, nbytes = tag_counts(machine, b"Leak")
    assert (allocs, frees) == (1, 0) and nbytes == 64      # 40 bytes + header, in 16-byte units


def test_guest_clock_follows_instructions_not_the_wall_clock():
    a, b = boot_testdrv(), boot_testdrv()
    for m in (a, b):
        run_until_quiet(m)
        m.run(budget=3_000_000)
    assert a.ports.time_100ns == b.ports.time_100ns == a.instructions // 10


def test_hal_return_to_firmware_reboots_the_machine():
    machine = boot_testdrv()
    run_until_quiet(machine)
    hal = next(m for m in machine.modules if m.name == "hal.dll")
    machine.set_context(machine.get_context().replace(Rip=hal.exports["HalReturnToFirmware"]))
    assert machine.run() == Rebooted()
    events = run_until_quiet(machine)
    assert sum(isinstance(e, LoadSymbols) for e in events) == 4


def call_kernel(machine, routine: str, *args: int) -> int:
    """Call a kernel export from a scratch pool page whose return lands on an int 3."""
    from kdcon.tools.simtarget import layout
    from kdcon.tools.simtarget.events import BreakpointHit
    scratch = layout.POOL_BASE + layout.POOL_SIZE - 0x1000
    machine.write_virtual(scratch, b"\xcc")
    ctx = machine.get_context()
    rsp = ((ctx.Rsp - 0x100) & ~0xF) - 8
    machine.write_virtual(rsp, struct.pack("<Q", scratch))
    regs = dict(zip(("Rcx", "Rdx", "R8", "R9"), args))
    machine.set_context(ctx.replace(Rip=machine.kernel_symbol(routine), Rsp=rsp, **regs))
    event = machine.run()
    assert event == BreakpointHit(pc=scratch, handle=None), event
    return machine.get_context().Rax


def test_mm_get_system_routine_address_finds_exports_and_only_them():
    from kdcon.tools.simtarget import layout
    machine = boot_testdrv()
    run_until_quiet(machine)
    names = layout.POOL_BASE + layout.POOL_SIZE - 0x800

    def lookup(name: str) -> int:
        text = name.encode("utf-16-le")
        machine.write_virtual(names + 16, text)
        machine.write_virtual(names, struct.pack("<HHIQ", len(text), len(text), 0, names + 16))
        return call_kernel(machine, "MmGetSystemRoutineAddress", names)

    assert lookup("KeBugCheckEx") == machine.kernel_symbol("KeBugCheckEx")
    assert lookup("DbgPrint") == machine.kernel_symbol("DbgPrint")
    assert lookup("KeBugCheck") == machine.kernel_symbol("KeBugCheck")
    assert lookup("NoSuchRoutine") == 0
