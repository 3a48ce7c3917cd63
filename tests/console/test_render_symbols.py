"""WinDbg's text for symbol answers, compared as whole strings with WinDbg's own output.

The expected lines are WinDbg's forms as printed in public transcripts: ``ln`` with
``Exact matches:``, ``x`` for publics, untyped and typed globals, ``lm`` rows with and
without a mismatch letter.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kdcon.render.symbols import describe, format_address, render_lm_row, render_ln, render_x
from kdcon.symbols import session as session_module
from kdcon.symbols.model import SymbolKind, SymbolRecord
from kdcon.symbols.session import DataType, ModuleRow, NearSymbols, SymbolMatch, data_type_for

NT = SimpleNamespace(name="nt")
DRV = SimpleNamespace(name="HelloWorldDriver")


def _match(module, name, address, kind=SymbolKind.PUBLIC, data_type=None, type_name=None):
    return SymbolMatch(module, SymbolRecord(name, 0, kind, type_name=type_name), address, data_type)


@pytest.mark.parametrize("address, size, text", [
    (0xFFFFF8031A2B3C40, 8, "fffff803`1a2b3c40"),
    (0x140001000, 8, "00000001`40001000"),
    (0x8040A2B0, 4, "8040a2b0"),
    (0x1_8040A2B0, 4, "8040a2b0"),
])
def test_format_address_is_windbgs(address, size, text):
    assert format_address(address, size) == text


def test_ln_with_an_exact_match():
    found = _match(NT, "NtCreateFile", 0xFFFFF800FC901270)
    near = NearSymbols(address=0xFFFFF800FC901270, before=found, displacement=0, past_end=False,
                       after=_match(NT, "NtOpenKey", 0xFFFFF800FC9012F4), exact=(found,))
    assert render_ln(near) == (
        "(fffff800`fc901270)   nt!NtCreateFile   |  (fffff800`fc9012f4)   nt!NtOpenKey\n"
        "Exact matches:\n"
        "    nt!NtCreateFile (<no parameter info>)\n")


def test_ln_inside_a_function_on_a_32_bit_target():
    near = NearSymbols(address=0x8056F084, before=_match(NT, "NtQueryDirectoryFile", 0x8056F074),
                       displacement=0x10, past_end=False,
                       after=_match(NT, "NtNotifyChangeDirectoryFile", 0x8056F0DA), exact=())
    assert render_ln(near, 4) == \
        "(8056f074)   nt!NtQueryDirectoryFile+0x10   |  (8056f0da)   nt!NtNotifyChangeDirectoryFile\n"
    assert render_ln(None) == ""


def test_x_for_publics_and_untyped_data():
    matches = [_match(NT, "ViCreateProcessCallbackInternal", 0xFFFFF800030821CC),
               _match(NT, "PspCreateProcessNotifyRoutine", 0xFFFFF80002CECE00, SymbolKind.DATA)]
    assert render_x(matches) == (
        "fffff800`030821cc nt!ViCreateProcessCallbackInternal (<no parameter info>)\n"
        "fffff800`02cece00 nt!PspCreateProcessNotifyRoutine = <no type information>\n")


def test_x_for_typed_globals_shows_aggregates_by_type_and_scalars_by_value():
    memory = {0x9110C000: (0x911005A1).to_bytes(4, "little"), 0x9110C010: (-1).to_bytes(4, "little", signed=True),
              0x9110C020: (0xFFFFF8031A2B3C40).to_bytes(8, "little"), 0x9110C030: (3).to_bytes(4, "little")}
    read = lambda address, size: memory.get(address)  # noqa: E731
    matches = [
        _match(DRV, "KeTickCount", 0x9110B000, SymbolKind.DATA, DataType("aggregate", "struct _KSYSTEM_TIME", 12)),
        _match(DRV, "__security_cookie", 0x9110C000, SymbolKind.DATA, DataType("unsigned", "unsigned int", 4)),
        _match(DRV, "Level", 0x9110C010, SymbolKind.DATA, DataType("signed", "long", 4)),
        _match(DRV, "Head", 0x9110C020, SymbolKind.DATA, DataType("pointer", "struct _LIST_ENTRY *", 8)),
        _match(DRV, "State", 0x9110C030, SymbolKind.DATA,
               DataType("enum", "enum _STATE", 4, (("Idle", 0), ("Busy", 3)))),
        _match(DRV, "Gone", 0x9110C040, SymbolKind.DATA, DataType("unsigned", "unsigned long", 4)),
    ]
    assert render_x(matches, 4, read) == (
        "9110b000 HelloWorldDriver!KeTickCount = struct _KSYSTEM_TIME\n"
        "9110c000 HelloWorldDriver!__security_cookie = 0x911005a1\n"
        "9110c010 HelloWorldDriver!Level = 0n-1\n"
        "9110c020 HelloWorldDriver!Head = 0xfffff803`1a2b3c40\n"
        "9110c030 HelloWorldDriver!State = 0n3 ( Busy )\n"
        "9110c040 HelloWorldDriver!Gone = <Memory access error>\n")
    assert describe(matches[1], 4) == "= <Memory access error>"


def test_lm_rows_align_as_windbg_aligns_them():
    assert render_lm_row(ModuleRow(0xFFFFF80002A49000, 0xFFFFF80003030000, "nt", "", "pdb symbols",
                                   r"D:\sym\ntkrnlmp.pdb\2E37F962D699492CAAF3F9F4E9770B1D2\ntkrnlmp.pdb")) == (
        "fffff800`02a49000 fffff800`03030000   nt         (pdb symbols)          "
        r"D:\sym\ntkrnlmp.pdb\2E37F962D699492CAAF3F9F4E9770B1D2\ntkrnlmp.pdb")
    assert render_lm_row(ModuleRow(0xFFFFF880033BC000, 0xFFFFF880033CB000, "man", "T", "no symbols", None)) == \
        "fffff880`033bc000 fffff880`033cb000   man      T (no symbols)           "
    assert render_lm_row(ModuleRow(0xFFFFF80000BAC000, 0xFFFFF80000BD6000, "kdcom", "", "deferred", None)) == \
        "fffff800`00bac000 fffff800`00bd6000   kdcom      (deferred)             "
    assert render_lm_row(ModuleRow(0x804D7000, 0x806CFE00, "nt", "", "pdb symbols",
                                   r"c:\windows\symbols\xp\exe\ntkrnlpa.pdb"), 4) == \
        r"804d7000 806cfe00   nt         (pdb symbols)          c:\windows\symbols\xp\exe\ntkrnlpa.pdb"


class _Types:
    def __init__(self, **infos):
        self.infos = infos

    def find(self, name):
        return self.infos.get(name)


def test_data_types_from_dt_names():
    types = _Types(_OBJ=SimpleNamespace(kind="struct", name="_OBJ", size=48, enumerators=[]),
                   _STATE=SimpleNamespace(kind="enum", name="_STATE", size=4, enumerators=[("Idle", 0)]))
    assert data_type_for("_OBJ", types) == DataType("aggregate", "struct _OBJ", 48)
    assert data_type_for("Uint4B", types) == DataType("unsigned", "unsigned long", 4)
    assert data_type_for("Ptr64 _OBJ", types) == DataType("pointer", "struct _OBJ *", 8)
    assert data_type_for("Ptr32 Uint2B", types) == DataType("pointer", "unsigned short *", 4)
    assert data_type_for("[16] Int4B", types) == DataType("aggregate", "long [16]", 0)
    assert data_type_for("_STATE", types) == DataType("enum", "enum _STATE", 4, (("Idle", 0),))
    assert data_type_for("_MISSING", None).kind == "unknown"


def test_the_symbols_layer_holds_no_windbg_text():
    assert not [name for name in ("format_address", "ln_text", "x_text") if hasattr(session_module, name)
                or hasattr(session_module.SymbolSession, name)]
