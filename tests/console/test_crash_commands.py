"""Crash-analysis commands: .formats, !error, .exr, .cxr and .trap.

The pure pieces are checked against the debugger documentation's examples; the
commands run against the simulated machine and are checked against what the
console's own ``?`` and ``r`` say there, not against fixed kernel addresses.
"""

from __future__ import annotations

import struct

import pytest

from kdcon.commands.crash import exception_record_lines, trap_frame_context
from kdcon.registers import CONTEXT_SIZE, Registers
from kdcon.render.numbers import crt_float, format_number_block

from .test_golden_kernel_extensions import evaluated, output_of
from .transcripts import batch

# -- .formats ------------------------------------------------------------------------------------


def test_formats_on_a_32_bit_target_reads_as_the_documentation_example():
    # The .formats page's example, its time shown in UTC (the page's host was UTC-8).
    assert format_number_block(0x1C407E62, pointer_size=4) == [
        "Evaluate expression:",
        "  Hex:     1c407e62",
        "  Decimal: 473988706",
        "  Octal:   03420077142",
        "  Binary:  00011100 01000000 01111110 01100010",
        "  Chars:   .@~b",
        "  Time:    Mon Jan  7 23:31:46 1985",
        "  Float:   low 6.36908e-022 high 0",
        "  Double:  2.34182e-315",
    ]


def test_formats_on_x64_shows_eight_bytes_and_a_wide_value_as_a_filetime():
    lines = format_number_block(0x01D5A0F24C3E2F7A)
    assert lines[1] == "  Hex:     01d5a0f2`4c3e2f7a"
    assert lines[3] == "  Octal:   0007255017111417427572"
    assert lines[4].split()[1:] == ["00000001", "11010101", "10100000", "11110010",
                                    "01001100", "00111110", "00101111", "01111010"]
    assert lines[5] == "  Chars:   ....L>/z"
    assert lines[6] == "  Time:    Fri Nov 22 05:04:19.897 2019 (UTC + 0:00)"


def test_formats_shows_a_negative_value_signed_and_an_impossible_time_as_invalid():
    lines = format_number_block(-1)
    assert lines[2] == "  Decimal: -1"
    assert lines[6] == "  Time:    ***** Invalid FILETIME"


def test_floats_print_with_the_c_runtimes_three_digit_exponent():
    assert crt_float(6.36908e-22) == "6.36908e-022"
    assert crt_float(0.0) == "0"
    assert crt_float(1.5) == "1.5"


@pytest.fixture(scope="module")
def formats_session() -> str:
    # The last command fails, so the batch's status is 1: the text is what is checked.
    text, _ = batch(".formats @rip", "? @rip", ".formats 0n4660", ".formats")
    return text


def test_formats_evaluates_registers_as_question_mark_does(formats_session):
    rip = evaluated(formats_session, "@rip")
    shown = output_of(formats_session, ".formats @rip").splitlines()
    assert shown[0] == "Evaluate expression:"
    assert shown[1] == f"  Hex:     {rip >> 32:08x}`{rip & 0xFFFFFFFF:08x}"
    assert shown[2] == f"  Decimal: {rip - (1 << 64)}"


def test_formats_of_a_decimal_value_and_of_nothing(formats_session):
    assert output_of(formats_session, ".formats 0n4660").splitlines()[1] == \
        "  Hex:     00000000`00001234"
    assert output_of(formats_session, ".formats").strip() == "Numeric expression missing from '<EOL>'"


# -- !error --------------------------------------------------------------------------------------


def test_error_reads_a_small_value_as_win32_and_flag_1_as_ntstatus():
    from kdcon.extensions.errors import describe

    # The !error page's two examples.
    assert describe(2) == "Error code: (Win32) 0x2 (2) - The system cannot find the file specified."
    assert describe(2, 1) == "Error code: (NTSTATUS) 0x2 - STATUS_WAIT_2"


def test_error_reads_a_large_value_as_ntstatus_and_a_facility_win32_hresult_as_its_error():
    from kdcon.extensions.errors import describe

    assert describe(0xC0000005) == (
        "Error code: (NTSTATUS) 0xc0000005 (3221225477) - The instruction at 0x%p referenced "
        "memory at 0x%p. The memory could not be %s.")
    assert describe(0x80070005) == "Error code: (HRESULT) 0x80070005 (2147942405) - Access is denied."
    assert describe(0x12345678).endswith("(305419896) - <Unable to get error code text>")


def test_error_on_the_console_evaluates_its_value_and_refuses_no_value():
    text, _ = batch("!error 0n5", "!error 0xc0000094", "!error")
    assert output_of(text, "!error 0n5").strip() == "Error code: (Win32) 0x5 (5) - Access is denied."
    assert output_of(text, "!error 0xc0000094").strip() == (
        "Error code: (NTSTATUS) 0xc0000094 (3221225620) - {EXCEPTION} Integer division by zero.")
    assert output_of(text, "!error").strip() == "Usage: !error Value [Flags]"


# -- the register override ---------------------------------------------------------------------


def _context_image(rip: int, rsp: int) -> bytes:
    data = bytearray(CONTEXT_SIZE)
    struct.pack_into("<I", data, 0x30, 0x10000B)
    struct.pack_into("<16Q", data, 0x78, *range(0x100, 0x110))
    struct.pack_into("<Q", data, 0x98, rsp)
    struct.pack_into("<Q", data, 0xF8, rip)
    return bytes(data)


def test_an_override_answers_every_register_and_writes_nothing_to_the_target():
    fetched, stored = [], []
    regs = Registers(lambda at, n: fetched.append((at, n)) or bytes(n),
                     lambda at, data: stored.append((at, data)))
    regs.override(_context_image(0xFFFFF80001001000, 0xFFFFF88000001000))
    regs.prefetch("rip", "rsp", "rbx")
    assert regs.get("rip") == 0xFFFFF80001001000 and regs.get("rsp") == 0xFFFFF88000001000
    assert regs.get("rbx") == 0x103 and regs.get("ebx") == 0x103 and regs.cached("rax") == 0x100
    regs.set("rax", 7)
    assert regs.get("rax") == 7
    assert fetched == [] and stored == []
    assert regs.clear_override() and not regs.clear_override()
    assert regs.get("rax") == 0 and fetched            # the thread's own registers again


def test_the_next_stop_forgets_the_override():
    regs = Registers(lambda at, n: bytes(n), lambda at, data: None)
    regs.override(_context_image(0x1234, 0x5678))
    regs.invalidate()
    assert not regs.overridden and regs.get("rip") == 0


def test_a_trap_frame_gives_its_volatile_registers_and_zero_for_the_rest():
    frame = bytearray(0x190)
    for name, at in (("rax", 0x30), ("rcx", 0x38), ("r11", 0x60), ("rbp", 0x158),
                     ("rip", 0x168), ("rsp", 0x180)):
        struct.pack_into("<Q", frame, at, hash(name) & 0xFFFFFFFFFFFF)
    struct.pack_into("<H", frame, 0x170, 0x10)
    struct.pack_into("<I", frame, 0x178, 0x10286)
    frame[0x140:0x158] = b"\xAA" * 0x18          # Rbx/Rdi/Rsi: not reliably saved
    regs = Registers(lambda at, n: bytes(n), lambda at, data: None)
    regs.override(trap_frame_context(bytes(frame)))
    for name in ("rax", "rcx", "r11", "rbp", "rip", "rsp"):
        assert regs.get(name) == hash(name) & 0xFFFFFFFFFFFF
    assert regs.get("cs") == 0x10 and regs.get("efl") == 0x10286
    assert [regs.get(n) for n in ("rbx", "rsi", "rdi", "r12", "r15")] == [0] * 5


def test_an_exception_record_names_its_code_and_says_what_an_access_violation_touched():
    lines = exception_record_lines(0xC0000005, 0, 0xFFFFF80001084116, (0, 0x18),
                                   "trackdemo!TrackDemoDispatch+0x66")
    assert lines == [
        "ExceptionAddress: fffff800`01084116 (trackdemo!TrackDemoDispatch+0x66)",
        "   ExceptionCode: c0000005 (Access violation)",
        "  ExceptionFlags: 00000000",
        "NumberParameters: 2",
        "   Parameter[0]: 0000000000000000",
        "   Parameter[1]: 0000000000000018",
        "Attempt to read from address 0000000000000018",
    ]


# -- .exr, .cxr and .trap on the simulated machine's IRQL bug check ------------------------------

_BUGCHECK = ("ed nt!KiSimRequest 8", "g", "g")


@pytest.fixture(scope="module")
def stopped() -> str:
    text, status = batch(*_BUGCHECK, ".bugcheck", "kv", "? @rip", "r rax", ".frame 3", "dv",
                         ".exr -1", extra=["--prompt-answer", "i"])
    assert status == 0, text[-1500:]
    return text


def _trap_address(text: str) -> int:
    marked = [line for line in output_of(text, "kv").splitlines() if "(TrapFrame @" in line]
    return int(marked[0].rsplit("@ ", 1)[1].rstrip(")").replace("`", ""), 16)


@pytest.fixture(scope="module")
def viewed(stopped) -> tuple[str, int]:
    trap = _trap_address(stopped)
    record = "@rsp-800"
    text, _ = batch(*_BUGCHECK, f".trap {trap:x}", "k", "u", "r rip", "? @rsp", ".cxr", "? @rip",
                    f".cxr {trap:x}", "dv", "r rax=1234", "r rax", f"dq {trap:x}+78 L1", ".cxr",
                    "r rax", f"ed {record} c0000005 0", f"eq {record}+10 {trap:x} 2",
                    f"eq {record}+20 1 0x18", f".exr {record}", f".cxr {trap:x}", "g", "? @rip",
                    ".exr 0", ".cxr", extra=["--prompt-answer", "i"])
    return text, trap


def _register_line_value(text: str, name: str) -> int:
    for line in text.splitlines():
        for cell in line.split():
            if cell.startswith(f"{name}="):
                return int(cell.split("=")[1], 16)
    raise AssertionError(f"no {name} in {text!r}")


def test_trap_makes_the_fault_the_register_context_for_r_and_k(stopped, viewed):
    text, trap = viewed
    faulting_pc = int(output_of(stopped, ".bugcheck").splitlines()[1].split()[4].replace("`", ""), 16)
    kv = [line.split() for line in output_of(stopped, "kv").splitlines()[1:]]
    after_trap = kv[[i for i, row in enumerate(kv) if "(TrapFrame" in row][0] + 1]
    shown = output_of(text, f".trap {trap:x}")
    assert _register_line_value(shown, "rip") == faulting_pc
    assert shown.splitlines()[-2] == f"{after_trap[-1]}:"
    frames = [line.split() for line in output_of(text, "k").splitlines()[1:]]
    assert frames[0][0] == after_trap[0] and frames[0][-1] == after_trap[-1]
    listing = output_of(text, "u").splitlines()
    assert listing[0] == f"{after_trap[-1]}:" and listing[1].startswith(
        f"{faulting_pc >> 32:08x}`{faulting_pc & 0xFFFFFFFF:08x} ")
    assert output_of(text, "r rip").strip() == f"rip={faulting_pc:016x}"
    assert evaluated(text, "@rsp") == int(after_trap[0].replace("`", ""), 16)


def test_cxr_alone_resets_the_scope_to_the_stop(stopped, viewed):
    text, _ = viewed
    assert output_of(text, ".cxr").strip().startswith("Resetting default scope")
    assert evaluated(text, "@rip") == evaluated(stopped, "@rip")


def test_cxr_gives_dv_the_faulting_frames_locals(stopped, viewed):
    text, _ = viewed
    assert output_of(text, "dv") == output_of(stopped, "dv")


def test_a_register_changed_under_cxr_changes_neither_the_record_nor_the_thread(stopped, viewed):
    text, trap = viewed
    assert output_of(text, "r rax").strip() == "rax=0000000000001234"
    saved = output_of(text, f"dq {trap:x}+78 L1").split()[1]
    assert saved != "00000000`00001234"
    # After .cxr the thread's own RAX, as it was before .trap and .cxr.
    assert text.split("kd> r rax\n")[2].split("\n")[0] == output_of(stopped, "r rax").strip()


def test_exr_reads_a_record_from_memory_and_the_last_exception(stopped, viewed):
    text, trap = viewed
    lines = output_of(text, ".exr @rsp-800").splitlines()
    assert lines[0].startswith(f"ExceptionAddress: {trap >> 32:08x}`{trap & 0xFFFFFFFF:08x}")
    assert lines[1:] == ["   ExceptionCode: c0000005 (Access violation)", "  ExceptionFlags: 00000000",
                         "NumberParameters: 2", "   Parameter[0]: 0000000000000001",
                         "   Parameter[1]: 0000000000000018", "Attempt to write to address 0000000000000018"]
    rip = evaluated(stopped, "@rip")
    last = output_of(stopped, ".exr -1").splitlines()
    assert last[0] == f"ExceptionAddress: {rip >> 32:08x}`{rip & 0xFFFFFFFF:08x} (nt!DbgBreakPointWithStatus)"
    assert last[1] == "   ExceptionCode: 80000003 (Break instruction exception)"
    assert output_of(text, ".exr 0").strip() == "Unable to read the exception record at 00000000`00000000"


def test_the_target_resumes_from_its_own_registers_and_the_next_stop_drops_the_view(stopped, viewed):
    text, _ = viewed
    after = text.split("kd> g\n", 3)[3]
    assert "Break instruction exception" in after
    assert evaluated(after, "@rip") == evaluated(stopped, "@rip")
