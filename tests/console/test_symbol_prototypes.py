"""``x`` and ``ln``'s exact matches show a function's prototype from its private PDB,
as WinDbg does: argument types for the simulated kernel's routines, ``(void)`` for
none, ``...`` for a variable list, ``(<no parameter info>)`` where the PDB gives no type."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from kdcon.render.symbols import render_x
from kdcon.symbols.model import SymbolKind, SymbolRecord
from kdcon.symbols.pdb.pdbfile import open_pdb
from kdcon.symbols.session import DataType, SymbolMatch
from kdcon.tools.simtarget.kernel import IMAGES_DIR

from .test_golden_kernel_extensions import output_of
from .transcripts import batch


@pytest.fixture(scope="module")
def transcript() -> str:
    text, status = batch("x nt!KeSetEvent", "x nt!KeGetCurrentIrql", "ln nt!KeSetEvent",
                         "x nt!DbgPrint", "x nt!DbgBreakPointWithStatus", "x /v nt!KeSetEvent",
                         "x /v /t nt!KdDebuggerEnabled", "x /t nt!KeSetEvent")
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


def test_x_v_shows_source_kind_and_the_functions_length(transcript):
    with open_pdb(str(IMAGES_DIR / "ntoskrnl.pdb")) as pdb:
        length = next(r.size for r in pdb.procedures() if r.name == "KeSetEvent")
    line = output_of(transcript, "x /v nt!KeSetEvent")
    found = re.fullmatch(r"prv func   ([0-9a-f`]{17}) +([0-9a-f]+) (.*)", line)
    assert found is not None, line
    assert len(line.split(" nt!")[0]) == len("prv func   ") + 17 + 5
    assert int(found.group(2), 16) == length
    assert found.group(3) == "nt!KeSetEvent (struct _KEVENT *, long, unsigned char)"


def test_x_t_puts_a_globals_type_before_its_name_and_leaves_functions_as_they_are(transcript):
    assert _names_and_rest(output_of(transcript, "x /t nt!KeSetEvent")) == \
        ["nt!KeSetEvent (struct _KEVENT *, long, unsigned char)"]
    line = output_of(transcript, "x /v /t nt!KdDebuggerEnabled")
    assert re.fullmatch(r"prv global [0-9a-f`]{17}    1 unsigned char nt!KdDebuggerEnabled = 0x1",
                        line), line


def test_x_v_and_t_lines_in_the_documentations_form():
    vuln = SimpleNamespace(name="vuln")
    cookie = SymbolMatch(vuln, SymbolRecord("__security_cookie", 0, SymbolKind.DATA, type_name="Uint4B"),
                         0x0109E030, DataType("unsigned", "unsigned int", 4))
    check = SymbolMatch(vuln, SymbolRecord("__security_check_cookie", 0, SymbolKind.FUNCTION, 0x11),
                        0x010375B8, None, ())
    untyped = SymbolMatch(SimpleNamespace(name="myModule"),
                          SymbolRecord("_NLG_Destination", 0, SymbolKind.DATA), 0x00427D14)
    read = {0x0109E030: (0x1344D51E).to_bytes(4, "little")}.get
    assert render_x([cookie, check], 4, lambda a, n: read(a), verbose=True) == (
        "prv global 0109e030    4 vuln!__security_cookie = 0x1344d51e\n"
        "prv func   010375b8   11 vuln!__security_check_cookie (void)\n")
    assert render_x([untyped], 4, types=True) == \
        "00427d14 <NoType> myModule!_NLG_Destination = <no type information>\n"
