"""Crash-analysis commands: .formats, !error, .exr, .cxr and .trap.

The pure pieces are checked against the debugger documentation's examples; the
commands run against the simulated machine and are checked against what the
console's own ``?`` and ``r`` say there, not against fixed kernel addresses.
"""

from __future__ import annotations

import pytest

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
