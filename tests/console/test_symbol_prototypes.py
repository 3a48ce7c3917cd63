"""``x`` and ``ln``'s exact matches show a function's prototype from its private PDB,
as WinDbg does: argument types for the simulated kernel's routines, ``(void)`` for
none, ``...`` for a variable list, ``(<no parameter info>)`` where the PDB gives no type."""

from __future__ import annotations

import pytest

from .test_golden_kernel_extensions import output_of
from .transcripts import batch


@pytest.fixture(scope="module")
def transcript() -> str:
    text, status = batch("x nt!KeSetEvent", "x nt!KeGetCurrentIrql", "ln nt!KeSetEvent",
                         "x nt!DbgPrint", "x nt!DbgBreakPointWithStatus")
    assert status == 0
    return text


def _names_and_rest(lines: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in lines.splitlines()]


def test_x_shows_the_argument_types_void_and_an_ellipsis(transcript):
    assert _names_and_rest(output_of(transcript, "x nt!KeSetEvent")) == \
        ["nt!KeSetEvent (struct _KEVENT *, long, unsigned char)"]
    assert _names_and_rest(output_of(transcript, "x nt!KeGetCurrentIrql")) == \
        ["nt!KeGetCurrentIrql (void)"]
    assert _names_and_rest(output_of(transcript, "x nt!DbgPrint")) == ["nt!DbgPrint (char *, ...)"]


def test_ln_exact_matches_show_the_same_prototype(transcript):
    lines = output_of(transcript, "ln nt!KeSetEvent").splitlines()
    assert lines[1:] == ["Exact matches:", "    nt!KeSetEvent (struct _KEVENT *, long, unsigned char)"]


def test_an_assembler_routine_without_a_type_has_no_parameter_info(transcript):
    assert _names_and_rest(output_of(transcript, "x nt!DbgBreakPointWithStatus")) == \
        ["nt!DbgBreakPointWithStatus (<no parameter info>)"]
