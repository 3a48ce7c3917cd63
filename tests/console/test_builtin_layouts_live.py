"""Built-in layouts on the simulated kernel (build 7601): without ntoskrnl.pdb on the
symbol path, typed views walk the module, process and thread lists from the Windows 7
SP1 table (the simulated kernel keeps Windows 7 SP1's offsets for the members it
defines); with the PDB, the PDB's types win and the table gives only the types the PDB
lacks."""

from __future__ import annotations

import io
import shutil

import pytest

from kdcon import layouts
from kdcon.app import App
from kdcon.output import Output
from kdcon.tools.simtarget import layout as sim_layout
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.loopback import SimTarget
from kdcon.typed import TypeNotFound


class _Console:
    def __init__(self, symbol_path: str) -> None:
        self.sim = SimTarget(seed=0, break_on_connect=True)
        self.app = App(self.sim.connect(), link_name="kdsim",
                       output=Output(stream=io.StringIO()), symbol_path=symbol_path,
                       timeout=60)
        self.app.connect()
        self.target = self.app.console.target
        self.session = self.app.session

    def close(self) -> None:
        self.app.close()
        self.sim.close()


@pytest.fixture(scope="module")
def without_pdb(tmp_path_factory):
    """The console with only the demo driver's PDB on its symbol path."""
    symbols = tmp_path_factory.mktemp("symbols")
    shutil.copy(IMAGES_DIR / "checked" / "trackdemo.pdb", symbols)
    console = _Console(str(symbols))
    yield console
    console.close()


@pytest.fixture(scope="module")
def with_pdb():
    console = _Console(f"{IMAGES_DIR};{IMAGES_DIR / 'checked'}")
    yield console
    console.close()


def _processes(console):
    head = console.session.debugger_data["PsActiveProcessHead"]
    return list(console.target.walk_list(head, "nt!_EPROCESS", "ActiveProcessLinks"))


def test_without_the_kernel_pdb_the_windows_7_sp1_layout_stands_in(without_pdb):
    assert without_pdb.session.symbols.module("nt").types is None
    assert without_pdb.target.builtin_layout == "Windows 7 SP1 x64"


def test_the_module_list_walks_from_the_builtin_layout(without_pdb):
    target = without_pdb.target
    entries = list(target.walk_list(without_pdb.session.version.PsLoadedModuleList,
                                    "nt!_KLDR_DATA_TABLE_ENTRY", "InLoadOrderLinks"))
    walked = [(e.BaseDllName.string(), e.DllBase, e.SizeOfImage) for e in entries]
    known = [(m.name, m.base, m.size) for m in without_pdb.session.modules]
    assert walked == known
    assert [name for name, _, _ in walked][:3] == ["ntoskrnl.exe", "hal.dll", "kdcom.dll"]
    assert entries[0].FullDllName.string().lower().endswith("ntoskrnl.exe")


def test_the_process_list_and_its_threads_walk_from_the_builtin_layout(without_pdb):
    target = without_pdb.target
    processes = _processes(without_pdb)
    assert [(p.UniqueProcessId, p.ImageFileName.string()) for p in processes] == [(4, "System")]
    system = processes[0]
    assert system.Pcb.DirectoryTableBase == sim_layout.CR3_VALUE
    assert (system.ActiveThreads, system.Peb, system.InheritedFromUniqueProcessId) == (1, 0, 0)
    threads = list(target.walk_list(system.address_of("Pcb.ThreadListHead"), "nt!_KTHREAD",
                                    "ThreadListEntry"))
    assert [t.address for t in threads] == [target.evaluate("@$thread")]
    thread = threads[0]
    assert thread.Process == thread.ApcState.Process == system.address
    assert thread.State == 2                     # Running
    assert thread.InitialStack > thread.StackLimit and thread.Teb == 0
    # $proc follows $thread through field_offset, which uses the same table.
    assert target.evaluate("@$proc") == system.address
    assert target.field_offset("nt!_ETHREAD", "Tcb.ApcState.Process") == 0x70


def test_offsets_the_kernel_reports_win_over_the_table(without_pdb):
    target = without_pdb.target
    data = without_pdb.session.debugger_data
    # The simulated KPRCB keeps its vendor string where its KDDEBUGGER_DATA64 says,
    # not where Windows 7 SP1 does (0x4bb8).
    assert target.field_offset("nt!_KPRCB", "VendorString") == data["OffsetPrcbVendorString"]
    prcb = target.typed(target.evaluate("@$prcb"), "nt!_KPRCB")
    assert prcb.VendorString.string().startswith("KsimVirtual")
    assert prcb.MHz == 1000 and prcb.CurrentThread == target.evaluate("@$thread")


def test_a_type_no_layout_gives_ends_in_one_line(without_pdb):
    with pytest.raises(TypeNotFound) as failure:
        without_pdb.target.typed(0, "nt!_OBJECT_SYMBOLIC_LINK")
    assert str(failure.value) == (
        "Type nt!_OBJECT_SYMBOLIC_LINK not found: the kernel has no PDB and the built-in Windows 7 "
        "SP1 x64 layout does not describe it; set a symbol path to the kernel's PDB "
        "(.sympath, then .reload)")


def test_a_build_without_a_table_gets_no_fallback_and_one_line(without_pdb, monkeypatch):
    monkeypatch.setattr(layouts, "LAYOUTS", [])
    target = without_pdb.target
    assert target.builtin_layout is None
    assert target.field_offset("nt!_EPROCESS", "UniqueProcessId") is None
    with pytest.raises(TypeNotFound, match=r"^Type nt!_EPROCESS not found: the kernel has no "
                       r"PDB and kdcon has no built-in layout for Windows build 7601 \(x64\); "
                       r"set a symbol path to the kernel's PDB \(\.sympath, then \.reload\)$"):
        target.typed(0, "nt!_EPROCESS")


def test_the_windows_7_table_reads_the_threads_cid_and_thread_list(without_pdb):
    target = without_pdb.target
    assert target.builtin_layout.startswith("Windows 7 SP1")
    system = _processes(without_pdb)[0]
    threads = list(target.walk_list(system.address_of("ThreadListHead"), "nt!_ETHREAD",
                                    "ThreadListEntry"))
    assert threads[0].address == target.evaluate("@$thread")
    assert (threads[0].Cid.UniqueProcess, threads[0].Cid.UniqueThread) == (4, 8)
    assert all(t.Tcb.Process == system.address for t in threads)


def test_with_the_kernel_pdb_its_types_win(with_pdb):
    target, symbols = with_pdb.target, with_pdb.session.symbols
    assert symbols.module("nt").types is not None
    assert target.builtin_layout is None
    for name in ("nt!_KLDR_DATA_TABLE_ENTRY", "nt!_POOL_HEADER", "nt!_KPRCB"):
        assert symbols.find_type(name) is not None
        assert target.find_type(name) is symbols.find_type(name)
        assert target.type_layout(name) is None
    pdb = symbols.find_type("nt!_KLDR_DATA_TABLE_ENTRY")
    assert [target.field_offset("nt!_KLDR_DATA_TABLE_ENTRY", f.name) for f in pdb.fields] == \
        [f.offset for f in pdb.fields]


def test_a_type_the_kernel_pdb_lacks_comes_from_the_builds_layout(with_pdb):
    # The simulated kernel's PDB has no process or thread structures.
    target, symbols = with_pdb.target, with_pdb.session.symbols
    for name in ("nt!_EPROCESS", "nt!_ETHREAD", "nt!_KTHREAD"):
        assert symbols.find_type(name) is None
        assert target.find_type(name) is not None
        assert target.type_layout(name) == "Windows 7 SP1 x64 (7601)"
    assert target.field_offset("nt!_ETHREAD", "Tcb.ApcState.Process") == 0x70
    system = _processes(with_pdb)[0]
    assert (system.UniqueProcessId, system.ImageFileName.string()) == (4, "System")
    assert target.evaluate("@$proc") == system.address


def test_a_type_neither_the_pdb_nor_the_layout_gives_ends_in_one_line(with_pdb):
    target = with_pdb.target
    assert target.find_type("trackdemo!_EPROCESS") is None
    assert target.type_layout("nt!_OBJECT_SYMBOLIC_LINK") is None
    with pytest.raises(TypeNotFound, match="are the module's symbols loaded"):
        target.typed(0, "nt!_OBJECT_SYMBOLIC_LINK")


def test_dt_shows_a_kernel_type_from_the_builtin_layout_without_the_pdb(without_pdb):
    stream = without_pdb.app.output._stream
    without_pdb.app.run_line("dt nt!_KLDR_DATA_TABLE_ENTRY")
    text = stream.getvalue().rsplit("kd> dt nt!_KLDR_DATA_TABLE_ENTRY", 1)[1]
    assert "   +0x030 DllBase" in text and "   +0x058 BaseDllName" in text
