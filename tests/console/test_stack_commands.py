"""kv's trap frames and kp/kP's parameters: the pieces on their own, then on the simulated
machine after the IRQL bug check its page fault causes in trackdemo's code.

The transcript is checked against what the machine and the console's own commands
say: the trap frame is the CONTEXT whose Rip is the faulting instruction (the bug
check's fourth argument) and whose Rsp is the next frame's Child-SP; the walk past it
reaches the frames the kernel's system loop called; kp's values are the bug check's
arguments and what ``dv`` reads for the same frame.
"""

from __future__ import annotations

import struct

import pytest

from kdcon.commands.stack import _with_parameters, c_type
from kdcon.pdata import FunctionTable
from kdcon.symbols.pdb.typeinfo import TypeInfo, builtin_info
from kdcon.trapframes import KTRAP_FRAME_RIP, context_registers
from kdcon.unwind import unwind

from .test_golden_kernel_extensions import output_of
from .transcripts import batch, check_golden
from .unwind_image import BASE, FUNCTIONS, IMAGE_SIZE, STACK_TOP, Cpu, build_image

# -- the unwinder reports machine frames ------------------------------------------------------


@pytest.mark.parametrize("name,error_code", [("interrupt", False), ("interrupt_error", True)])
def test_a_handler_frame_with_a_machine_frame_says_where_it_is(name, error_code):
    image = build_image()[0]
    table = FunctionTable.from_image(image, BASE, mapped=True)
    cpu = Cpu(image)
    handler_rsp = STACK_TOP - 0x800
    at = handler_rsp + 0x28
    if error_code:
        cpu.uc.mem_write(at, struct.pack("<Q", 0xE))
        at += 8
    cpu.uc.mem_write(at, struct.pack("<5Q", BASE + 0x1113, 0x10, 0x202, STACK_TOP - 0x400, 0x18))
    frames = unwind(BASE + FUNCTIONS[name].rva + 0x10, handler_rsp, 0, read=cpu.read,
                    function_for=lambda a: table if BASE <= a < BASE + IMAGE_SIZE else None,
                    max_frames=2)
    assert frames[0].machine_frame == at
    assert frames[1].machine_frame is None
    # kv's trap frame then starts where KTRAP_FRAME.Rip puts the machine frame's RIP.
    assert frames[0].machine_frame - KTRAP_FRAME_RIP == at - 0x168


# -- CONTEXT records --------------------------------------------------------------------------


def _context(rip: int, flags: int = 0x10001F) -> bytes:
    data = bytearray(0x4D0)
    struct.pack_into("<I", data, 0x30, flags)
    struct.pack_into("<16Q", data, 0x78, *range(0x100, 0x110))
    struct.pack_into("<Q", data, 0xF8, rip)
    return bytes(data)


def test_a_context_record_gives_its_registers_and_rip():
    registers = context_registers(_context(0xFFFFF80001074116))
    assert registers["rip"] == 0xFFFFF80001074116
    assert registers["rax"] == 0x100 and registers["rsp"] == 0x104 and registers["r15"] == 0x10F


def test_bytes_without_the_amd64_context_flag_or_too_short_are_no_context():
    assert context_registers(_context(1, flags=0x1F)) is None
    assert context_registers(_context(1)[:0xF8]) is None


# -- kp's text ----------------------------------------------------------------------------------


def test_kp_puts_the_parameters_between_the_name_and_the_offset():
    line = "fffff880`000ffd90 fffff800`01004228     trackdemo!TrackDemoDispatch+0x66"
    out = _with_parameters(line, "trackdemo!TrackDemoDispatch+0x66",
                           ["struct _DEVICE_OBJECT * DeviceObject = 0x1", "struct _IRP * Irp = 0x2"],
                           one_per_line=False)
    assert out.endswith("trackdemo!TrackDemoDispatch(struct _DEVICE_OBJECT * DeviceObject = 0x1, "
                        "struct _IRP * Irp = 0x2)+0x66")


def test_kP_puts_each_parameter_on_its_own_line():
    out = _with_parameters("x nt!F+0x10", "nt!F+0x10", ["int a = 0n1", "int b = 0n2"], one_per_line=True)
    assert out == "x nt!F(\n\t\t\tint a = 0n1, \n\t\t\tint b = 0n2)+0x10"


def test_a_function_without_parameters_shows_void_and_one_without_symbols_nothing():
    assert _with_parameters("x nt!F", "nt!F", [], one_per_line=False) == "x nt!F(void)"
    assert _with_parameters("x nt!F+0x3", "nt!F+0x3", None, one_per_line=False) == "x nt!F+0x3"


def test_parameter_types_read_as_c_declarations():
    irp = TypeInfo(0x1000, "struct", "_IRP", 0xD0)
    pointer = TypeInfo(0x1001, "pointer", size=8, pointer_size=8)
    pointer._table, pointer._ref = type("T", (), {"by_index": lambda self, ti: irp})(), 0x1000
    assert c_type(pointer, "Irp") == "struct _IRP * Irp"
    assert c_type(builtin_info(0x0623), "P1") == "unsigned int64 * P1"
    assert c_type(builtin_info(0x0022), "Code") == "unsigned long Code"
    assert c_type(builtin_info(0x0603), "Context") == "void * Context"


# -- on the simulated machine -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bugcheck() -> str:
    text, status = batch("ed nt!KiSimRequest 8", "g", "g", ".bugcheck", "k", "kv", "kvn", "kp", "kP 3",
                         ".frame 3", "dv", extra=["--prompt-answer", "i"])
    assert status == 0, text[-1500:]
    return text


def _rows(text: str, command: str) -> list[list[str]]:
    return [line.split() for line in output_of(text, command).splitlines()[1:]]


def test_kv_marks_the_page_fault_frame_with_the_context_at_the_fault(bugcheck):
    arguments = output_of(bugcheck, ".bugcheck").splitlines()[1].split()[1:]
    faulting_pc = arguments[3]
    rows = _rows(bugcheck, "kv")
    marked = [row for row in rows if "(TrapFrame" in row]
    assert len(marked) == 1 and marked[0][-4] == "nt!KiPageFault+0x99"
    assert marked[0][1] == faulting_pc
    trap = int(marked[0][-1].rstrip(")").replace("`", ""), 16)
    text, status = batch("ed nt!KiSimRequest 8", "g", "g", f"dq {trap:x}+98 L1", f"dq {trap:x}+f8 L1",
                         f"dd {trap:x}+30 L1", extra=["--prompt-answer", "i"])
    assert status == 0, text[-1500:]
    saved_rsp = output_of(text, f"dq {trap:x}+98 L1").split()[1]
    saved_rip = output_of(text, f"dq {trap:x}+f8 L1").split()[1]
    flags = int(output_of(text, f"dd {trap:x}+30 L1").split()[1], 16)
    assert saved_rip == faulting_pc and flags & 0x100000
    after = rows[rows.index(marked[0]) + 1]
    assert after[0] == saved_rsp and after[-1] == "trackdemo!TrackDemoDispatch+0x66"


def test_the_walk_goes_on_past_the_trap_frame_to_the_system_loop(bugcheck):
    sites = [row[-1] for row in _rows(bugcheck, "k")]
    assert sites[:4] == ["nt!DbgBreakPointWithStatus", "nt!KeBugCheckEx+0x61", "nt!KiPageFault+0x99",
                         "trackdemo!TrackDemoDispatch+0x66"]
    assert "nt!KiSystemLoop" in sites[-2] and sites[-1].startswith("nt!KiSystemStartup+")
    child_sps = [int(row[0].replace("`", ""), 16) for row in _rows(bugcheck, "k")]
    assert child_sps == sorted(child_sps)


def test_kp_shows_the_bug_check_arguments_and_what_dv_reads(bugcheck):
    arguments = [a.replace("`", "") for a in output_of(bugcheck, ".bugcheck").splitlines()[1].split()[1:]]
    code = int(output_of(bugcheck, ".bugcheck").splitlines()[0].split()[-1], 16)
    kp = output_of(bugcheck, "kp")
    assert f"nt!KeBugCheckEx(unsigned long Code = 0x{code:x}, " in kp
    assert f"unsigned int64 P4 = 0x{arguments[3][:8]}`{arguments[3][8:]})+0x61" in kp
    assert f"nt!KiPageFault(unsigned int64 Va = 0x{arguments[0][:8]}`{arguments[0][8:]}, " in kp
    # Context came in r9: a volatile register, lost once KiPageFault called on.
    assert "void * Context = <Value unavailable error>)+0x99" in kp
    dv = {line.split(" = ")[0].strip(): line.split(" = ")[1]
          for line in output_of(bugcheck, "dv").splitlines()}
    assert (f"trackdemo!TrackDemoDispatch(struct _DEVICE_OBJECT * DeviceObject = {dv['DeviceObject']}, "
            f"struct _IRP * Irp = {dv['Irp']})+0x66") in kp


def test_kP_lists_one_parameter_a_line_and_stops_at_the_count(bugcheck):
    lines = output_of(bugcheck, "kP 3").splitlines()
    assert lines[2].endswith("nt!KeBugCheckEx(") and lines[3].startswith("\t\t\tunsigned long Code = ")
    assert lines[-1].startswith("\t\t\tvoid * Context = ") and lines[-1].endswith(")+0x99")
    assert sum(1 for line in lines if not line.startswith("\t")) == 4


def test_stack_commands_transcript(bugcheck):
    start = bugcheck.index("0: kd> .bugcheck")
    check_golden("stack_trap_frames", bugcheck[start:])


# -- the walk's trap frames, on a fake session ---------------------------------------------------


class _Session:
    """Stack memory for ``trapframes.walk``: reads are recorded."""

    def __init__(self, memory: dict[int, bytes]) -> None:
        self.memory = memory
        self.reads: list[tuple[int, int]] = []

    def read_virtual(self, address: int, size: int) -> bytes:
        self.reads.append((address, size))
        for start, data in self.memory.items():
            if start <= address < start + len(data):
                return data[address - start: address - start + size]
        return b""


def _frame(number, child_sp, ret, ip, machine_frame=None):
    from kdcon.unwind import Frame

    return Frame(number, child_sp, ret, ip, None, (0, 0, 0, 0), "unwind", {}, machine_frame)


def test_a_machine_frame_marks_its_frame_and_needs_no_read(monkeypatch):
    from kdcon import trapframes

    frames = [_frame(0, 0x1000, 0x5010, 0x4000, machine_frame=0x1200), _frame(1, 0x1300, 0, 0x5010)]
    monkeypatch.setattr(trapframes, "stack_frames", lambda session, limit: frames[:limit])
    session = _Session({})
    walked, traps = trapframes.walk(session, lambda a: "nt!KiSomething+0x10", 10)
    assert [f.number for f in walked] == [0, 1] and traps == {0: 0x1200 - 0x168}
    assert session.reads == []


def test_a_fault_handler_without_a_matching_context_is_no_trap_frame(monkeypatch):
    from kdcon import trapframes

    frames = [_frame(0, 0x1000, 0x5010, 0x4000), _frame(1, 0x1040, 0, 0x5010)]
    monkeypatch.setattr(trapframes, "stack_frames", lambda session, limit: frames[:limit])
    # A CONTEXT-looking record above the return slot, but its Rip is not the return address.
    session = _Session({0x1040: bytes(0x40) + _context(0x9999)})
    walked, traps = trapframes.walk(session, lambda a: "nt!KiPageFault+0x80" if a == 0x4000 else "x!y", 10)
    assert traps == {} and len(walked) == 2


def test_a_fault_handler_s_context_starts_the_walk_again_from_its_registers(monkeypatch):
    from kdcon import trapframes

    frames = [_frame(0, 0x1000, 0x5010, 0x4000), _frame(1, 0x1040, 0, 0x5010)]
    monkeypatch.setattr(trapframes, "stack_frames", lambda session, limit: frames[:limit])
    resumed = []

    def fake_unwind(rip, rsp, rbp, *, registers, read, function_for, max_frames):
        resumed.append((rip, rsp, rbp, max_frames))
        return [_frame(0, rsp, 0, rip)]

    monkeypatch.setattr(trapframes, "unwind", fake_unwind)
    session = _Session({0x1040: bytes(0x40) + _context(0x5010)})
    walked, traps = trapframes.walk(session, lambda a: "nt!KiPageFault+0x80" if a == 0x4000 else "x!y", 10)
    assert traps == {0: 0x1080}
    # _context puts 0x100 + n in the nth register: rsp is the fifth, rbp the sixth.
    assert resumed == [(0x5010, 0x104, 0x105, 10)]
    assert [(f.number, f.child_sp) for f in walked] == [(0, 0x1000), (1, 0x104)]


def test_kp_at_a_function_s_first_instruction_has_no_parameter_values_yet():
    # The checked trackdemo stores its parameters to the stack after its prolog; the PDB's
    # ranges start there, so at the breakpoint the slots hold something else.
    text, status = batch("bp trackdemo!TrackDemoDispatch", "g", "g", "kp 2", "p", "p", "p", "kp 1", "r rdx")
    assert status == 0, text[-1500:]
    first = output_of(text, "kp 2").splitlines()[1]
    assert first.endswith("trackdemo!TrackDemoDispatch(struct _DEVICE_OBJECT * DeviceObject = <Value "
                          "unavailable error>, struct _IRP * Irp = <Value unavailable error>)")
    later = output_of(text, "kp 1").splitlines()[1]
    rdx = output_of(text, "r rdx").split("=")[1].strip()
    assert f"struct _IRP * Irp = 0x{rdx[:8]}`{rdx[8:]})+0x" in later


def test_a_count_that_ends_at_the_fault_handler_still_marks_its_trap_frame(monkeypatch):
    from kdcon import trapframes

    frames = [_frame(0, 0x1000, 0x5010, 0x4000), _frame(1, 0x1040, 0, 0x5010)]
    asked = []

    def stack_frames(session, limit):
        asked.append(limit)
        return frames[:limit]

    monkeypatch.setattr(trapframes, "stack_frames", stack_frames)
    monkeypatch.setattr(trapframes, "unwind", lambda *a, **k: [_frame(0, 0x104, 0, 0x5010)])
    session = _Session({0x1040: bytes(0x40) + _context(0x5010)})
    walked, traps = trapframes.walk(session, lambda a: "nt!KiPageFault+0x80" if a == 0x4000 else "x!y", 1)
    assert asked == [2] and len(walked) == 1 and traps == {0: 0x1080}
