"""The built-in kernel layouts: every table builds, Windows 7 SP1's gives the published
offsets, the table is chosen by build, and what KDDEBUGGER_DATA64 reports wins."""

from __future__ import annotations

import struct

import pytest

from kdcon import layouts
from kdcon.layouts import LayoutError, LayoutTable, WindowsLayout, parse
from kdcon.layouts.table import moved
from kdcon.protocol.debugger_data import FIELD_OFFSETS, parse_debugger_data


def _offset(table: LayoutTable, type_name: str, path: str) -> int:
    info = table.find(type_name)
    offset = 0
    for part in path.split("."):
        member = next(f for f in info.fields if f.name == part)
        offset += member.offset
        info = member.type
    return offset


@pytest.mark.parametrize("layout", layouts.LAYOUTS, ids=lambda layout: layout.name)
def test_every_table_builds_and_keeps_its_members_inside_their_structures(layout):
    table = LayoutTable(layout.specs(), name=layout.name)
    assert {"_LIST_ENTRY", "_UNICODE_STRING", "_KLDR_DATA_TABLE_ENTRY", "_EPROCESS",
            "_KPROCESS", "_KTHREAD", "_ETHREAD", "_KPCR", "_KPRCB", "_POOL_HEADER",
            "_MMPFN"} <= set(table.names())
    for name in table.names():
        info = table.find(name)
        for member in info.fields:
            assert member.offset + member.type.size <= info.size, (name, member.name)


@pytest.mark.parametrize("layout", layouts.LAYOUTS, ids=lambda layout: layout.name)
def test_every_table_has_the_members_the_kernel_extensions_read(layout):
    table = LayoutTable(layout.specs())
    wanted = {
        "_EPROCESS": ["UniqueProcessId", "ActiveProcessLinks", "ImageFileName", "Peb",
                      "Pcb.DirectoryTableBase", "InheritedFromUniqueProcessId", "ObjectTable",
                      "ThreadListHead", "Pcb.ThreadListHead"],
        "_ETHREAD": ["Cid.UniqueProcess", "Cid.UniqueThread", "StartAddress",
                     "Win32StartAddress", "ThreadListEntry", "Tcb.ApcState.Process",
                     "Tcb.Teb", "Tcb.State", "Tcb.WaitReason", "Tcb.KernelStack",
                     "Tcb.StackBase", "Tcb.StackLimit", "Tcb.InitialStack", "Tcb.Priority"],
        "_KPCR": ["Self", "CurrentPrcb", "Irql", "Prcb.CurrentThread", "Prcb.Number"],
        "_KLDR_DATA_TABLE_ENTRY": ["InLoadOrderLinks", "DllBase", "SizeOfImage",
                                   "BaseDllName.Buffer", "FullDllName.Length"],
        "_POOL_HEADER": ["BlockSize", "PreviousSize", "PoolType", "PoolTag"],
        "_MMPFN": ["u3.e1.PageLocation", "u3.ReferenceCount", "u2.ShareCount", "u4.PteFrame",
                   "PteAddress"],
    }
    for type_name, paths in wanted.items():
        for path in paths:
            _offset(table, type_name, path)


# Windows 7 SP1 x64 (6.1.7601), as the ntdiff/headers transcription of Microsoft's public
# symbols gives them (Win7_SP1/x64/System32/ntoskrnl.exe): a second source for the table.
_WINDOWS_7_SP1 = [
    ("_EPROCESS", "Pcb.DirectoryTableBase", 0x28), ("_EPROCESS", "Pcb.ThreadListHead", 0x30),
    ("_EPROCESS", "CreateTime", 0x168), ("_EPROCESS", "UniqueProcessId", 0x180),
    ("_EPROCESS", "ActiveProcessLinks", 0x188), ("_EPROCESS", "ObjectTable", 0x200),
    ("_EPROCESS", "Token", 0x208), ("_EPROCESS", "InheritedFromUniqueProcessId", 0x290),
    ("_EPROCESS", "ImageFileName", 0x2E0), ("_EPROCESS", "ThreadListHead", 0x308),
    ("_EPROCESS", "ActiveThreads", 0x328), ("_EPROCESS", "Peb", 0x338),
    ("_ETHREAD", "Cid", 0x3B0), ("_ETHREAD", "Cid.UniqueThread", 0x3B8),
    ("_ETHREAD", "IrpList", 0x3E8), ("_ETHREAD", "ThreadListEntry", 0x420),
    ("_ETHREAD", "StartAddress", 0x388), ("_ETHREAD", "Win32StartAddress", 0x410),
]


@pytest.mark.parametrize("type_name, path, offset", _WINDOWS_7_SP1)
def test_the_windows_7_sp1_table_gives_the_published_offsets(type_name, path, offset):
    table = layouts.table_for(7601, 8)
    assert _offset(table, type_name, path) == offset


def test_the_windows_7_sp1_table_gives_the_published_sizes_and_types():
    table = layouts.table_for(7601, 8)
    assert (table.find("_EPROCESS").size, table.find("_ETHREAD").size,
            table.find("_KPROCESS").size) == (0x4D0, 0x498, 0x160)
    names = {f.name: f.type_name for f in table.find("_EPROCESS").fields}
    assert names["ImageFileName"] == "[15] UChar"
    assert names["ActiveProcessLinks"] == "_LIST_ENTRY"
    assert names["Peb"] == "Ptr64 _PEB"
    header = {f.name: f for f in table.find("_POOL_HEADER").fields}
    assert (header["BlockSize"].offset, header["BlockSize"].bit_position,
            header["BlockSize"].bit_width, header["BlockSize"].type_name) == (
        0, 16, 8, "Pos 16, 8 Bits")


@pytest.mark.parametrize("build, name", [
    (7601, "Windows 7 SP1 x64"), (17763, "Windows 10 1809 x64"),
    (19041, "Windows 10 2004-22H2 x64"), (19045, "Windows 10 2004-22H2 x64"),
    (22621, "Windows 11 22H2/23H2 x64"), (22631, "Windows 11 22H2/23H2 x64"),
])
def test_the_table_is_chosen_by_the_build_getversion_reports(build, name):
    assert layouts.layout_for(build, 8).name == name
    assert layouts.table_for(build, 8).name == name


@pytest.mark.parametrize("build, pointer_size", [(7600, 8), (26100, 8), (7601, 4), (0, 8)])
def test_a_build_without_a_table_gets_none(build, pointer_size):
    assert layouts.layout_for(build, pointer_size) is None
    assert layouts.table_for(build, pointer_size) is None


def test_the_windows_10_and_11_tables_differ_where_the_kernels_do():
    offsets = {build: _offset(layouts.table_for(build, 8), "_ETHREAD", "Cid")
               for build in (7601, 17763, 19045, 22631)}
    assert offsets == {7601: 0x3B0, 17763: 0x638, 19045: 0x478, 22631: 0x4C8}


def _kdbg(**fields: int) -> object:
    """A KDDEBUGGER_DATA64 as a 7601 kernel would serve it, with the named fields set."""
    block = bytearray(0x380)
    struct.pack_into("<II", block, 0x10, 0x4742444B, 0x380)
    widths = {"OffsetKThreadStackLimit": "<I"}
    for name, value in fields.items():
        struct.pack_into(widths.get(name, "<H"), block, FIELD_OFFSETS[name], value)
    return parse_debugger_data(bytes(block))


def test_offsets_and_sizes_the_kernel_reports_win_over_the_table():
    data = _kdbg(OffsetEprocessPeb=0x340, OffsetKThreadApcProcess=0x78,
                 OffsetEprocessDirectoryTableBase=0x28, SizeEProcess=0x500,
                 OffsetKThreadStackLimit=0x30)
    table = layouts.table_for(7601, 8, data)
    assert _offset(table, "_EPROCESS", "Peb") == 0x340
    # ApcState moves so that ApcState.Process lands where the kernel says.
    assert _offset(table, "_KTHREAD", "ApcState") == 0x58
    assert _offset(table, "_ETHREAD", "Tcb.ApcState.Process") == 0x78
    assert table.find("_EPROCESS").size == 0x500
    # What the block leaves at 0 says nothing: the table's value stays.
    assert _offset(table, "_KPRCB", "Number") == 0x24
    assert _offset(layouts.table_for(7601, 8), "_EPROCESS", "Peb") == 0x338


def test_a_reported_size_that_would_cut_off_a_member_is_ignored():
    table = layouts.table_for(7601, 8, _kdbg(SizeEThread=0x10, SizeEProcess=0x4D0))
    assert table.find("_ETHREAD").size == 0x498
    assert table.find("_EPROCESS").size == 0x4D0


def test_a_reported_offset_outside_the_structure_is_ignored():
    specs = parse("_A (0x10)\n +0x000 X : Uint4B\n +0x008 Y : Uint8B\n")
    result = moved(specs, {("_A", "Y"): 0x40, ("_A", "Nope"): 0x4, ("_B", "X"): 0},
                   {"_A": 0x20})
    assert result["_A"].member("Y").offset == 8
    assert result["_A"].size == 0x20


def test_a_block_without_the_fields_changes_nothing():
    assert layouts.debugger_data_overrides(None) == ((), ())
    short = bytearray(0x300)
    struct.pack_into("<II", short, 0x10, 0x4742444B, 0x2A0)
    offsets, sizes = layouts.debugger_data_overrides(parse_debugger_data(bytes(short)))
    assert offsets == () and sizes == ()


@pytest.mark.parametrize("text, message", [
    ("  +0x000 X : Uint4B", "line 1: a member before any structure"),
    ("_A (0x8)\n +0x000 X : Uint4B\n +0x004 X : Uint4B", "line 3: _A.X given twice"),
    ("_A (0x8)\n_A (0x8)", "line 2: _A defined twice"),
    ("_A 8", "line 1: neither"),
])
def test_a_malformed_layout_text_is_refused_with_its_line(text, message):
    with pytest.raises(LayoutError, match=message):
        parse(text)


def test_a_member_of_an_unknown_type_is_refused_when_the_table_is_built():
    with pytest.raises(LayoutError, match="_A: unknown member type '_NOWHERE'"):
        LayoutTable(parse("_A (0x8)\n +0x000 X : _NOWHERE\n"))
    with pytest.raises(LayoutError, match="unit must be a built-in"):
        LayoutTable(parse("_A (0x8)\n +0x000 X : Pos 0, 3 Bits of _A\n"))


def test_a_pointer_to_a_structure_the_table_leaves_out_stays_a_pointer():
    table = LayoutTable(parse("_A (0x10)\n +0x008 Table : Ptr64 _HANDLE_TABLE # out\n"))
    member = table.find("_A").fields[0]
    assert member.type_name == "Ptr64 _HANDLE_TABLE"
    assert member.type.kind == "pointer" and member.type.type.forward
    assert table.find("_HANDLE_TABLE") is None
    assert table.find("_a") is table.find("_A")


def test_the_message_for_an_unknown_build_names_it_and_asks_for_a_symbol_path():
    line = layouts.missing_message("nt!_EPROCESS", 26100, 8)
    assert line == ("Type nt!_EPROCESS not found: the kernel has no PDB and kdcon has no "
                    "built-in layout for Windows build 26100 (x64); set a symbol path to the "
                    "kernel's PDB (.sympath, then .reload)")
    assert "\n" not in layouts.missing_message("nt!_FOO", 7601, 8)
    assert "Windows 7 SP1 x64 layout does not describe it" in layouts.missing_message(
        "nt!_FOO", 7601, 8)


def test_a_layout_is_hashable_and_parsed_once():
    layout = WindowsLayout("x", (1,), "test", "_A (0x8)\n +0x000 X : Uint8B\n")
    assert hash(layout) == hash(WindowsLayout("x", (1,), "test", layout.text))
    assert layout.specs() == layout.specs()
