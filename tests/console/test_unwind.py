"""The x64 unwinder: every unwind operation, prolog and epilog positions, chained info,
machine frames, the leaf and frame-pointer rules, what it reads, and WinDbg's k text.

The functions of ``unwind_image`` are run in unicorn one instruction at a time; at every
stop inside the function the unwound caller must be exactly what the CPU had before
the call: the return address after the stub's call, the stack pointer the stub had,
and the nonvolatile registers it had.
"""

from __future__ import annotations

import struct

import pytest

from kdcon.pdata import FunctionTable
from kdcon.unwind import Frame, format_stack, unwind

from .unwind_image import BASE, FUNCTIONS, IMAGE_SIZE, STACK_TOP, Cpu, build_image, stub_for

CALLER = {"rbx": 0x1111111111111111, "rbp": 0x5555555555555555, "rsi": 0x6666666666666666,
          "rdi": 0x7777777777777777, "r12": 0xC, "r13": 0xD, "r14": 0xE, "r15": 0xF}


@pytest.fixture(scope="module")
def image():
    return build_image()[0]


@pytest.fixture
def table(image):
    return FunctionTable.from_image(image, BASE, mapped=True)


def _function_for(table):
    return lambda address: table if BASE <= address < BASE + IMAGE_SIZE else None


def _inside(name: str, rip: int) -> bool:
    if name == "chained_main" and BASE + FUNCTIONS["chained_cold"].rva <= rip < BASE + FUNCTIONS["chained_cold"].end:
        return True
    if name == "tail_call" and BASE + FUNCTIONS["leaf"].rva <= rip < BASE + FUNCTIONS["leaf"].end:
        return True
    function = FUNCTIONS[name]
    return BASE + function.rva <= rip < BASE + function.end


@pytest.mark.parametrize("name", ["push_alloc", "alloc_large", "alloc_huge", "save_xmm", "frame_pointer",
                                  "chained_main", "tail_call"])
def test_every_instruction_of_a_function_unwinds_to_the_caller(image, table, name):
    cpu = Cpu(image)
    stub = stub_for(name)
    cpu.start(stub, **CALLER)
    cpu.step()                                    # the stub's call
    stops = 0
    while _inside(name, cpu.rip):
        frames = unwind(cpu.rip, cpu.rsp, cpu.registers()["rbp"], read=cpu.read,
                        function_for=_function_for(table), registers=cpu.registers(), max_frames=2)
        where = f"{name} at +{cpu.rip - BASE - FUNCTIONS[name].rva:#x}"
        assert frames[0].return_address == stub + 5, where
        caller = frames[1]
        assert caller.instruction_pointer == stub + 5, where
        assert caller.child_sp == STACK_TOP, where
        for register, value in CALLER.items():
            assert caller.registers[register] == value, (where, register)
        assert caller.registers["rax"] is None and caller.registers["r11"] is None, where
        cpu.step()
        stops += 1
    assert cpu.rip == stub + 5 and stops >= 5


def test_a_return_address_past_the_end_of_its_function_belongs_to_that_function(image, table):
    # calls_last ends with a call; its return address is where after_calls_last begins.
    cpu = Cpu(image)
    stub = stub_for("calls_last")
    cpu.start(stub, **CALLER)
    while cpu.rip != BASE + FUNCTIONS["halt"].rva:
        cpu.step()
    frames = unwind(cpu.rip, cpu.rsp, CALLER["rbp"], read=cpu.read, function_for=_function_for(table),
                    registers=cpu.registers(), max_frames=3)
    assert frames[1].instruction_pointer == BASE + FUNCTIONS["after_calls_last"].rva
    assert frames[1].return_address == stub + 5
    assert frames[2].child_sp == STACK_TOP and frames[2].registers["rbx"] == CALLER["rbx"]


def test_ret_n_in_an_epilog_releases_its_bytes_as_the_cpu_does(image, table):
    cpu = Cpu(image)
    stub = stub_for("ret_n")
    cpu.start(stub, **CALLER)
    while cpu.rip != BASE + FUNCTIONS["ret_n"].rva + 2:
        cpu.step()
    frames = unwind(cpu.rip, cpu.rsp, 0, read=cpu.read, function_for=_function_for(table), max_frames=2)
    cpu.step()
    assert (frames[1].instruction_pointer, frames[1].child_sp) == (cpu.rip, cpu.rsp) == (stub + 5, STACK_TOP + 0x10)


def test_epilog_is_simulated_not_undone_twice(image, table):
    # At "pop rsi" the fixed allocation is already gone; undoing ALLOC_SMALL again
    # would read the return address 28h bytes too high.
    cpu = Cpu(image)
    cpu.start(stub_for("push_alloc"), **CALLER)
    pop_rsi = BASE + FUNCTIONS["push_alloc"].rva + 0x13
    while cpu.rip != pop_rsi:
        cpu.step()
    frames = unwind(cpu.rip, cpu.rsp, CALLER["rbp"], read=cpu.read, function_for=_function_for(table),
                    max_frames=2)
    assert frames[0].how == "unwind" and frames[1].child_sp == STACK_TOP


def _machine_frame_stack(cpu: Cpu, handler_rsp: int, error_code: bool, interrupted_rsp: int,
                         interrupted_rip: int) -> None:
    frame = struct.pack("<5Q", interrupted_rip, 0x10, 0x202, interrupted_rsp, 0x18)
    at = handler_rsp + 0x28
    if error_code:
        cpu.uc.mem_write(at, struct.pack("<Q", 0xE))
        at += 8
    cpu.uc.mem_write(at, frame)


@pytest.mark.parametrize("name,error_code", [("interrupt", False), ("interrupt_error", True)])
def test_machine_frame_gives_the_interrupted_rip_and_rsp(image, table, name, error_code):
    # Interrupted at "pop rsi" in push_alloc's epilog: that frame's IP is where the CPU
    # was, not a return address, so its epilog must be recognised there.
    cpu = Cpu(image)
    stub = stub_for("push_alloc")
    interrupted_rsp = STACK_TOP - 0x400
    cpu.uc.mem_write(interrupted_rsp, struct.pack("<3Q", CALLER["rsi"], CALLER["rbx"], stub + 5))
    handler_rsp = STACK_TOP - 0x800
    _machine_frame_stack(cpu, handler_rsp, error_code, interrupted_rsp, BASE + 0x1113)
    frames = unwind(BASE + FUNCTIONS[name].rva + 0x10, handler_rsp, 0, read=cpu.read,
                    function_for=_function_for(table), max_frames=3)
    assert [f.instruction_pointer for f in frames[:3]] == [BASE + FUNCTIONS[name].rva + 0x10, BASE + 0x1113,
                                                           stub + 5]
    assert frames[1].child_sp == interrupted_rsp
    assert frames[2].child_sp == interrupted_rsp + 24
    assert frames[2].registers["rbx"] == CALLER["rbx"] and frames[2].registers["rsi"] == CALLER["rsi"]


def test_leaf_function_returns_through_rsp(image, table):
    cpu = Cpu(image)
    rsp = STACK_TOP - 0x100
    cpu.uc.mem_write(rsp, struct.pack("<Q", stub_for("leaf") + 5))
    frames = unwind(BASE + FUNCTIONS["leaf"].rva, rsp, 0, read=cpu.read, function_for=_function_for(table),
                    max_frames=2)
    assert frames[0].how == "leaf" and frames[0].return_address == stub_for("leaf") + 5
    assert frames[1].child_sp == rsp + 8


def test_frame_pointer_is_used_when_rsp_holds_no_return_address(image, table):
    cpu = Cpu(image)
    rsp, rbp = STACK_TOP - 0x200, STACK_TOP - 0x100
    cpu.uc.mem_write(rsp, struct.pack("<Q", 0x1234))                # not in any image
    cpu.uc.mem_write(rbp, struct.pack("<2Q", STACK_TOP - 0x80, stub_for("leaf") + 5))
    frames = unwind(0xDEAD0000, rsp, rbp, read=cpu.read, function_for=_function_for(table), max_frames=2)
    assert frames[0].how == "frame-pointer" and frames[0].return_address == stub_for("leaf") + 5
    assert frames[1].child_sp == rbp + 16 and frames[1].frame_pointer == STACK_TOP - 0x80


def test_walk_ends_at_a_zero_return_address(image, table):
    cpu = Cpu(image)
    rsp = STACK_TOP - 0x100
    cpu.uc.mem_write(rsp, bytes(8))
    frames = unwind(BASE + FUNCTIONS["leaf"].rva, rsp, 0, read=cpu.read, function_for=_function_for(table))
    assert len(frames) == 1 and frames[0].return_address == 0


def test_walk_ends_at_unreadable_stack(image, table):
    cpu = Cpu(image)
    frames = unwind(BASE + FUNCTIONS["push_alloc"].rva + 6, 0x10, 0, read=cpu.read,
                    function_for=_function_for(table))
    assert len(frames) == 1 and frames[0].return_address == 0


def test_a_walk_reads_each_unwind_info_once_and_stack_slots_in_one_range_per_frame(image):
    cpu = Cpu(image)
    stub = stub_for("chained_main")
    cpu.start(stub, **CALLER)
    while cpu.rip != BASE + FUNCTIONS["chained_cold"].rva + 5:
        cpu.step()
    reads: list[tuple[int, int]] = []

    def counting(address: int, size: int) -> bytes:
        reads.append((address, size))
        return cpu.read(address, size)

    memory_table = FunctionTable.from_memory(counting, BASE)
    function_for = _function_for(memory_table)
    first = unwind(cpu.rip, cpu.rsp, 0, read=counting, function_for=function_for, max_frames=2)
    image_reads = [r for r in reads if BASE <= r[0] < BASE + IMAGE_SIZE]
    stack_reads = [r for r in reads if not BASE <= r[0] < BASE + IMAGE_SIZE]
    assert len(stack_reads) == len(first) == 2
    (first_at, first_size), (second_at, _) = sorted(stack_reads)
    assert first_at + first_size <= second_at                   # no stack byte read twice
    assert sum(size for _, size in reads) < 600
    reads.clear()
    second = unwind(cpu.rip, cpu.rsp, 0, read=counting, function_for=function_for, max_frames=2)
    assert second == first
    code_reads = [r for r in reads if BASE <= r[0] < BASE + IMAGE_SIZE]
    assert code_reads == [(cpu.rip, 32)]          # only the epilog check at frame 0
    assert len(image_reads) > len(code_reads)


# -- WinDbg's k text ------------------------------------------------------------------------

FRAMES = [
    Frame(0, 0xFFFF83803ABDAC08, 0xFFFFF8033A080620, 0xFFFFF80339E00000, 0,
          (0x101, 0xC, 0, 0xFFFF83803B458180), "unwind"),
    Frame(1, 0xFFFF83803ABDAC10, 0x7FFB71042454, 0xFFFFF8033A080620, 0, (0, 0, 0xFFFF83803ABC0180, 0), "unwind"),
    Frame(2, 0x14FBD8, 0, 0x7FFB71042454, 0, (1, 2, 3, 4), "leaf"),
]
NAMES = {0xFFFFF80339E00000: "nt!KeBugCheckEx", 0xFFFFF8033A080620: "nt!KeAccumulateTicks+0x24cb90"}


def test_k_lines():
    assert format_stack(FRAMES, symbolizer=NAMES.get) == [
        "Child-SP          RetAddr               Call Site",
        "ffff8380`3abdac08 fffff803`3a080620     nt!KeBugCheckEx",
        "ffff8380`3abdac10 00007ffb`71042454     nt!KeAccumulateTicks+0x24cb90",
        "00000000`0014fbd8 00000000`00000000     0x00007ffb`71042454",
    ]


def test_kn_lines_number_frames_in_hex():
    frames = FRAMES + [Frame(n, 0x1000 + n, 0, 0x1, 0, (0, 0, 0, 0), "leaf") for n in range(3, 17)]
    lines = format_stack(frames, symbolizer=NAMES.get, numbered=True)
    assert lines[0] == " # Child-SP          RetAddr               Call Site"
    assert lines[1] == "00 ffff8380`3abdac08 fffff803`3a080620     nt!KeBugCheckEx"
    assert lines[-1] == "10 00000000`00001010 00000000`00000000     0x1"


def test_kb_lines_show_the_home_space_as_args_to_child():
    assert format_stack(FRAMES[:1], symbolizer=NAMES.get, numbered=True, args=True) == [
        " # Child-SP          RetAddr               : Args to Child                                    "
        "                       : Call Site",
        "00 ffff8380`3abdac08 fffff803`3a080620     : 00000000`00000101 00000000`0000000c 00000000`00000000 "
        "ffff8380`3b458180 : nt!KeBugCheckEx",
    ]


# -- on the simulated machine ----------------------------------------------------------------

def _run_to(machine, handle):
    from kdcon.tools.simtarget.events import BreakpointHit
    for _ in range(200):
        event = machine.run(budget=2_000_000)
        if isinstance(event, BreakpointHit) and event.handle == handle:
            return
        if isinstance(event, BreakpointHit) and event.handle is None:
            # An int 3 compiled into the code (DriverEntry's break-in): a debugger steps past it.
            skip = getattr(machine, "skip_break_instruction", None)
            if skip is not None:
                skip()
    raise AssertionError(f"breakpoint {handle} never hit; last event {event}")


class ShadowStack:
    """Calls seen by a unicorn code hook over one image: (slot, return address) pairs of
    the calls not yet returned from, outermost first."""

    def __init__(self, machine, begin: int, end: int) -> None:
        from iced_x86 import Decoder, FlowControl
        from unicorn import UC_HOOK_CODE
        from unicorn import x86_const as X

        self.calls: list[tuple[int, int]] = []
        kinds: dict[int, bool] = {}
        calls = (FlowControl.CALL, FlowControl.INDIRECT_CALL)

        def on_code(uc, address, size, _user):
            # Code running above a recorded slot has consumed that return address.
            rsp = uc.reg_read(X.UC_X86_REG_RSP)
            while self.calls and self.calls[-1][0] < rsp:
                self.calls.pop()
            is_call = kinds.get(address)
            if is_call is None:
                instruction = Decoder(64, bytes(uc.mem_read(address, size)), ip=address).decode()
                is_call = kinds[address] = instruction.flow_control in calls
            if is_call:
                self.calls.append((rsp - 8, address + size))

        # Added before the image's code first runs: code translated earlier would run
        # without the hook.
        self._uc = machine._uc
        self._hook = self._uc.hook_add(UC_HOOK_CODE, on_code, None, begin, end - 1)

    def close(self) -> None:
        self._uc.hook_del(self._hook)

    def live(self, machine, rsp: int, top: int) -> list[int]:
        """Return addresses of the calls still on the stack between rsp and top (an older
        frame's stack pointer: slots above it may hold stale copies), innermost first."""
        live = [(slot, ret) for slot, ret in self.calls
                if rsp <= slot < top and struct.unpack("<Q", machine.read_virtual(slot, 8))[0] == ret]
        return [ret for _, ret in sorted(live)]


def test_stack_of_a_track_allocation_matches_the_machines_shadow_call_stack():
    from kdcon.symbols.session import SymbolSession
    from kdcon.tools.simtarget.kernel import IMAGES_DIR, trackdemo_image
    from kdcon.tools.simtarget.machine import Machine

    machine = Machine(drivers=[trackdemo_image("free")])
    machine.boot()
    symbols = SymbolSession(f"{IMAGES_DIR};{IMAGES_DIR / 'free'}")
    for module in machine.modules:
        symbols.add_module(module.name, module.base, module.size,
                           read=lambda rva, size, base=module.base: machine.read_virtual(base + rva, size))
    trackdemo = next(m for m in machine.modules if m.name.lower() == "trackdemo.sys")
    dispatch = symbols.address_of("trackdemo!TrackDemoDispatch")
    insert = symbols.address_of("trackdemo!TrackInsertRecord")

    shadow = ShadowStack(machine, trackdemo.base, trackdemo.base + trackdemo.size)
    try:
        # TrackDemoDispatch's entry on an IOCTL tick: [rsp] is the return address the CPU pushed.
        handle = machine.write_breakpoint(dispatch)
        _run_to(machine, handle)
        machine.restore_breakpoint(handle)
        dispatch_rsp = machine.get_context().Rsp
        dispatch_return = struct.unpack("<Q", machine.read_virtual(dispatch_rsp, 8))[0]
        handle = machine.write_breakpoint(insert)
        _run_to(machine, handle)
    finally:
        shadow.close()
    context = machine.get_context()
    truth = shadow.live(machine, context.Rsp, dispatch_rsp) + [dispatch_return]
    assert len(truth) >= 4

    reads = []

    def read(address: int, size: int) -> bytes:
        reads.append(size)
        return machine.read_virtual(address, size)

    tables: dict[int, FunctionTable | None] = {}

    def function_for(address: int) -> FunctionTable | None:
        module = next((m for m in machine.modules if m.base <= address < m.base + m.size), None)
        if module is None:
            return None
        if module.base not in tables:
            tables[module.base] = FunctionTable.from_memory(read, module.base)
        return tables[module.base]

    frames = unwind(context.Rip, context.Rsp, context.Rbp, read=read, function_for=function_for)
    assert frames[0].instruction_pointer == insert
    assert [f.return_address for f in frames[:len(truth)]] == truth
    assert [f.how for f in frames] == ["unwind"] * len(frames) and frames[-1].return_address == 0
    # On the wire every read also costs 178 bytes of packets: small tables are read
    # whole (one request) rather than probed entry by entry (a request each).  The
    # kernel's .pdata is one of the tables read whole, so the bound moves with its size
    # (8000 bytes when it held 180 functions).
    kernel_pdata = machine.modules[0].image.pe.OPTIONAL_HEADER.DATA_DIRECTORY[3].Size
    assert sum(reads) + 178 * len(reads) < 8000 - 180 * 12 + kernel_pdata and len(reads) < 25

    # The same walk with the tables taken from the image files instead of target memory.
    files = {m.base: FunctionTable.from_image((IMAGES_DIR / m.name).read_bytes() if m is not trackdemo
                                              else trackdemo_image("free").read_bytes(), m.base)
             for m in machine.modules if (IMAGES_DIR / m.name).exists() or m is trackdemo}
    from_files = unwind(context.Rip, context.Rsp, context.Rbp, read=machine.read_virtual,
                        function_for=lambda a: next((t for b, t in files.items() if t.contains(a)), None))
    assert from_files == frames

    lines = format_stack(frames, symbolizer=symbols.name_for, numbered=True)
    sites = [line.split()[-1] for line in lines[1:5]]
    assert sites[0] == "trackdemo!TrackInsertRecord"
    assert sites[3].startswith("trackdemo!TrackDemoDispatch+0x")
