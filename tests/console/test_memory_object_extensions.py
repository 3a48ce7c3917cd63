"""!pte, !vtop, !object and !handle on the simulated target.

The page walks are checked against the simulated machine's own translation (its page
tables' ``translate`` and the region map's ``virtual_to_physical``) for kernel code,
kernel data, the stack, the pool's 2 MB pages and unmapped addresses, and for what they
cost on the wire (an 8-byte physical read per level, nothing again at the same stop).
The object commands are checked against what the simulated user program reports
(``kdcon-sim: create event access=...: handle 0x4``), the handle tables' entries as
``dq`` shows them (Windows 7's EPROCESS.ObjectTable at +0x200, a level-0 table whose
entry 1 is handle 4), and trackdemo's source for the event's name. Golden transcripts
keep the layout.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kdcon.api import ExtensionFailed
from kdcon.extensions._paging import flag_text, walk
from kdcon.tools.simtarget.kernel import IMAGES_DIR

from .extension_session import Live
from .transcripts import batch, check_golden, without_kernel_pdb

TRACKDEMO_C = Path(__file__).resolve().parents[2] / "tools/simtarget/src/trackdemo/trackdemo.c"
USER_EVENT = ["--ioctl", r"\Device\TrackDemo,0x222000,hex:{event}00"]
# Three stops at the user I/O service: the event's creation, the create, the ioctl.
TO_USER_IO = ["bp nt!KiSimServiceIo", "g", "g", "g", "g", "bc *"]
# Handle 4's entry: the second of the level-0 table TableCode points at.
USER_ENTRY = "dq poi(poi(@$proc+200))+10 L2"
KERNEL_ENTRY = "dq poi(poi(nt!ObpKernelHandleTable))+10 L2"
KERNEL_OBJECT = "(poi(poi(poi(nt!ObpKernelHandleTable))+10)&0xfffffffffffffff8)+30"


def output_of(text: str, command: str) -> str:
    """What ``command`` printed in a transcript (up to the next prompt)."""
    return text.split(f"kd> {command}\n", 1)[1].split("\n0: kd> ", 1)[0]


def evaluated(live: Live, expression: str) -> int:
    line = live.ok(f"? {expression}")
    return int(line.rsplit("= ", 1)[1].replace("`", ""), 16)


class _Live(Live):
    """``Live`` whose ``ok`` and ``fails`` give what the command printed, without the
    echoed command line."""

    def run(self, line: str) -> str:
        text = super().run(line)
        return "".join(part for part in text.splitlines(True) if not part.startswith("0: kd> "))


@pytest.fixture(scope="module")
def live():
    session = _Live()
    yield session
    session.close()


def _addresses(live: Live) -> dict[str, int]:
    return {
        "kernel code": evaluated(live, "nt!KiSystemStartup"),
        "kernel data": evaluated(live, "nt!PsInitialSystemProcess"),
        "image header": evaluated(live, "nt"),
        "stack": evaluated(live, "@rsp"),
        "pool (2 MB page)": evaluated(live, "poi(nt!MmNonPagedPoolStart)") + 0x12345,
        "driver": evaluated(live, "trackdemo") + 0x1008,
    }


def _vtop_answer(text: str) -> int | None:
    found = re.search(r"^Virtual address [0-9a-f]+ translates to physical address "
                      r"([0-9a-f]+)\.$", text, re.M)
    return int(found.group(1), 16) if found else None


def test_vtop_translates_as_the_machine_does(live):
    memory = live.sim.machine.machine.memory
    for what, va in _addresses(live).items():
        expected = memory.page_tables.translate(va)
        assert expected is not None, what
        text = live.ok(f"!vtop 0 {va:x}")
        assert _vtop_answer(text) == expected[0] == memory.virtual_to_physical(va), what
        assert text.startswith(f"Amd64VtoP: Virt {va:016x}, pagedir 0000000000187000\n")
        large = "Amd64VtoP: Large page mapped phys" in text
        assert large == (what == "pool (2 MB page)"), what
        # The PFN and DirBase forms name the same tables.
        assert _vtop_answer(live.ok(f"!vtop 187 {va:x}")) == expected[0]
        assert _vtop_answer(live.ok(f"!vtop 187000 {va:x}")) == expected[0]


def test_pte_shows_the_leaf_the_machine_uses_with_kd_s_letters(live):
    memory = live.sim.machine.machine.memory
    for what, va in _addresses(live).items():
        physical, leaf = memory.page_tables.translate(va)
        text = live.ok(f"!pte {va:x}")
        lines = text.splitlines()
        assert lines[0].strip() == f"VA {va:016x}", what
        frames = re.findall(r"pfn ([0-9a-f]+) +([-A-Z]{11})", lines[3])
        pfn, letters = frames[-1]
        assert int(pfn, 16) == (leaf & 0xFFFFFFFFFF000) >> 12, what
        assert letters[-1] == "V" and letters[-3] == ("W" if leaf & 2 else "R"), what
        assert letters[-2] == ("-" if leaf >> 63 else "E"), what
        assert letters[7] == "K" and letters[1] == "G", what
        contains = re.findall(r"contains ([0-9A-F]{16})", lines[2])
        assert int(contains[-1], 16) == leaf, what
        if what == "pool (2 MB page)":
            assert len(contains) == 3 and letters[2] == "L"
            assert lines[3].endswith(f"LARGE PAGE pfn {physical >> 12:x}")
        else:
            assert len(contains) == 4 and letters[2] == "-"


def test_the_entries_are_where_the_self_map_puts_them(live):
    va = evaluated(live, "nt")
    text = live.ok(f"!pte {va:x}")
    # Windows 7's self-map addresses of this VA's entries, from the WinDbg examples'
    # arithmetic (PXE base FFFFF6FB7DBED000, PTE base FFFFF68000000000).
    at = [int(a, 16) for a in re.findall(r"(?:PXE|PPE|PDE|PTE) at ([0-9A-F]{16})", text)]
    assert at[0] == 0xFFFFF6FB7DBED000 + ((va >> 36) & 0xFF8) == 0xFFFFF6FB7DBEDF80
    assert at[3] == 0xFFFFF68000000000 + (va >> 9 & 0x7FFFFFFFF8)
    assert "not mapped" not in text
    # Each address holds, read as the debugger reads memory, what the contains row says.
    contains = [int(c, 16) for c in re.findall(r"contains ([0-9A-F]{16})", text)]
    shown = [int(word.replace("`", ""), 16) for a in at
             for word in re.findall(r"  ([0-9a-f]{8}`[0-9a-f]{8})", live.ok(f"dq {a:x} L1"))]
    assert len(at) == 4 and shown == contains


def test_without_a_self_map_the_entries_physical_addresses_are_shown(live):
    memory = live.sim.machine.machine.memory
    slot = 0x187000 + 0x1ED * 8
    saved = memory.read_physical(slot, 8)
    memory.write_physical(slot, bytes(8))
    live.console.session.physical.invalidate()
    live.console.session.memory.invalidate()
    try:
        text = live.ok(f"!pte {evaluated(live, 'nt'):x}")
    finally:
        memory.write_physical(slot, saved)
    assert "not mapped at FFFFF680`00000000" in text
    at = [int(a, 16) for a in re.findall(r"(?:PXE|PPE|PDE|PTE) at !([0-9A-F]+)", text)]
    contains = [int(c, 16) for c in re.findall(r"contains ([0-9A-F]{16})", text)]
    assert len(at) == 4
    assert [int.from_bytes(memory.read_physical(a, 8), "little") for a in at] == contains
    # Each entry lies in the table the one before names.
    for parent, child in zip(contains, at[1:]):
        assert child & ~0xFFF == parent & 0xFFFFFFFFFF000


def test_a_walk_costs_an_8_byte_read_per_level_once_a_stop(live):
    cache = live.console.session.physical
    va = evaluated(live, "nt!KiSystemStartup") + 0x3000
    live.ok("!pte nt")                   # reads the KPRCB and the self-map slot
    before = (cache.requests, cache.bytes_fetched)
    live.ok(f"!vtop 187 {va:x}")
    requests, fetched = cache.requests - before[0], cache.bytes_fetched - before[1]
    # The PML4E and PDPTE are shared with nt's first page (already read); the PDE too.
    assert fetched == 8 * requests and requests <= 4
    before = (cache.requests, cache.bytes_fetched)
    live.ok(f"!pte {va:x}")
    live.ok(f"!vtop 0 {va:x}")
    assert (cache.requests, cache.bytes_fetched) == before


def test_a_fresh_stop_walks_four_levels_in_four_reads():
    session = Live()
    try:
        cache = session.console.session.physical
        before = (cache.requests, cache.bytes_fetched)
        session.ok("!vtop 187 nt!KiSystemStartup")
        assert (cache.requests - before[0], cache.bytes_fetched - before[1]) == (4, 32)
        before = (cache.requests, cache.bytes_fetched)
        session.ok("!pte nt!KiSystemStartup")     # + the self-map slot
        assert (cache.requests - before[0], cache.bytes_fetched - before[1]) == (1, 8)
    finally:
        session.close()


@pytest.mark.parametrize("command, message", [
    ("!vtop 0 0", "Virtual address 0 translation fails, error 0xD0000147."),
    ("!vtop 0 fffff80000000000", "Virtual address fffff80000000000 translation fails"),
    ("!pte 8000000000000000", "8000000000000000 is not a canonical x64 address"),
    ("!vtop 0 0000800000000000", "0000800000000000 is not a canonical x64 address"),
    ("!pte nosuchsymbol", "Bad address 'nosuchsymbol'"),
    ("!pte", "Usage: !pte VirtualAddress"),
    ("!vtop 0", "Usage: !vtop DirBase VirtualAddress"),
    ("!vtop 0 nt nt", "Usage: !vtop DirBase VirtualAddress"),
    ("!object 1234", "0000000000001234: not an object"),
    ("!object nt", "fffff80001000000: not an object"),
    ("!object poi(nt!PsLoadedModuleList)", "not an object"),
    ("!object \\NoSuchName", "\\NoSuchName: no named object has this name"),
    ("!object 0 Event", "!object 0 TypeName (every object of a type) is not done"),
    ("!object", "Usage: !object Address"),
    ("!handle 0 3 1234", "Process 1234 has no handle table"),
    ("!handle 0 20", "Flags 0x20"),
    ("!handle 1 2 3 4", "Usage: !handle"),
])
def test_bad_input_is_one_line_and_fails_the_command(live, command, message):
    text = live.fails(command)
    assert "Traceback" not in text
    assert message in text.splitlines()[-1], text


def test_a_level_that_is_not_present_says_not_valid(live):
    # Between the images: a PML4E and PDPTE exist, no leaf does.
    va = evaluated(live, "nt") + 0x30000
    assert live.sim.machine.machine.memory.page_tables.translate(va) is None
    text = live.ok(f"!pte {va:x}")
    assert text.splitlines()[3].endswith("not valid")
    assert "Amd64VtoP: zero PTE" in live.fails(f"!vtop 0 {va:x}")


@pytest.fixture(scope="module")
def user_io():
    text, status = batch(*TO_USER_IO, USER_ENTRY, KERNEL_ENTRY,
                         "!handle", "!handle 4 1", "!handle 0 3 4", "!handle 0 13",
                         "!object \\", "!object \\basenamedobjects\\trackdemoevent",
                         "!object @$proc", f"!object {KERNEL_OBJECT} 0",
                         "? poi(nt!ObpRootDirectoryObject)", "dt nt!_OBJECT_HEADER",
                         extra=USER_EVENT)
    assert status == 0, text[-2000:]
    return text


def _entry(text: str, command: str) -> tuple[int, int, int]:
    """(address, header, access) of the handle table entry ``command`` dumps: its
    Object has the lock bit (0x1) set and the attribute bits clear."""
    line = output_of(text, command).splitlines()[0]
    address, value, second = line.replace("`", "").split()
    assert int(value, 16) & 7 == 1, line
    return int(address, 16), int(value, 16) & ~7, int(second, 16) & 0xFFFFFFFF


def test_handle_lists_the_user_program_s_event_as_it_reported_it(user_io):
    created = re.search(r"kdcon-sim: create event access=(0x[0-9a-f]+): status 0x00000000, "
                        r"handle (0x[0-9a-f]+)", user_io)
    access, value = int(created.group(1), 16), int(created.group(2), 16)
    entry, header, granted = _entry(user_io, USER_ENTRY)
    table = entry - 0x10
    assert granted == access and value == 4
    shown = output_of(user_io, "!handle")
    assert re.search(r"^PROCESS [0-9a-f]+\n.*\n.*\n    Image: ksimuser.exe\n", shown, re.M)
    assert f"Handle table at {table:016x} with 1 entries in use" in shown
    body = header + 0x30
    assert (f"{value:04x}: Object: {body:016x}  GrantedAccess: {access:08x} "
            f"Entry: {entry:016x}") in shown
    assert re.search(rf"^Object: {body:016x}  Type: \([0-9a-f]{{16}}\) Event$", shown, re.M)
    assert f"    ObjectHeader: {header:016x}\n        HandleCount: 1  PointerCount: 1" in shown
    only_entries = output_of(user_io, "!handle 4 1")
    assert "Type:" not in only_entries and f"Object: {body:016x}  GrantedAccess" in only_entries


def test_the_system_process_s_handles_are_the_kernel_table(user_io):
    entry, header, granted = _entry(user_io, KERNEL_ENTRY)
    table = entry - 0x10
    root = int(output_of(user_io, "? poi(nt!ObpRootDirectoryObject)").rsplit("= ", 1)[1]
               .replace("`", ""), 16)
    name = re.search(r'u"(\\\\BaseNamedObjects\\\\TrackDemoEvent)"', TRACKDEMO_C.read_text())
    event_name = name.group(1).replace("\\\\", "\\")
    for command in ("!handle 0 3 4", "!handle 0 13"):
        shown = output_of(user_io, command)
        assert f"0004: Object: {header + 0x30:016x}  GrantedAccess: {granted:08x}" in shown
        assert f"Directory Object: {root:016x}  Name: {event_name}" in shown
    assert "    Image: System" in output_of(user_io, "!handle 0 3 4")
    assert output_of(user_io, "!handle 0 13").startswith(
        f"Kernel handle table at {table:016x} with 1 entries in use")
    listed = output_of(user_io, "!object \\")
    assert listed.startswith(f"Object: {root:016x}  Type: (")
    assert "    Directory Object: 00000000  Name: \\\n" in listed
    assert re.search(rf"^     \d\d  {header + 0x30:016x} Event +{re.escape(event_name)}$",
                     listed, re.M)
    by_name = output_of(user_io, "!object \\basenamedobjects\\trackdemoevent")
    assert by_name.startswith(f"Object: {header + 0x30:016x}  Type: (")
    type_only = output_of(user_io, f"!object {KERNEL_OBJECT} 0")
    assert type_only.rstrip("\n") == by_name.splitlines()[0]


def test_object_names_are_escaped(live):
    if not evaluated(live, "poi(poi(nt!ObpKernelHandleTable))"):
        live.ok("bp trackdemo!TrackDemoDispatch")
        live.ok("g")
        live.ok("g")
        live.ok("bc *")
    body = evaluated(live, KERNEL_OBJECT)
    header = body - 0x30
    # The name information (0x20 bytes) right before the header; Name.Buffer at +0x10.
    assert evaluated(live, f"by({header:x}+1a)") & 2
    buffer = evaluated(live, f"poi({header:x}-10)")
    live.ok(f"ew {buffer:x} 1b")
    text = live.ok(f"!object {header + 0x30:x}")
    assert "\x1b" not in text and "Name: \\x1b" in text.replace("\\\\", "\\")


def test_without_the_kernel_pdb_pte_works_and_object_says_what_is_missing(tmp_path):
    # Only the driver's PDB on the symbol path: nt has exports, no types; the KPRCB's
    # Cr3 comes from the console's built-in Windows 7 layout.
    shutil.copy(IMAGES_DIR / "checked" / "trackdemo.pdb", tmp_path)
    with without_kernel_pdb(str(tmp_path)) as (app, stream):
        start = len(stream.getvalue())
        assert app.console.execute("!vtop 0 nt")
        assert stream.getvalue()[start:].endswith(
            "translates to physical address 1000000.\n")
        for command in ("!object 1234", "!handle"):
            start = len(stream.getvalue())
            assert not app.console.execute(command)
            said = stream.getvalue()[start:].strip().splitlines()
            assert len(said) == 1 and "nt!ObTypeIndexTable is not known" in said[0], said


def test_golden_page_walks():
    text, status = batch("!pte nt", "!pte poi(nt!MmNonPagedPoolStart)", "!pte @rsp",
                         "!pte nt+30000", "!vtop 0 nt!KiSystemStartup",
                         "!vtop 187 poi(nt!MmNonPagedPoolStart)+1234", "!vtop 0 0")
    assert status == 1                     # the last translation fails
    check_golden("mm_pte_vtop", text)


def test_golden_objects_and_handles(user_io):
    check_golden("mm_object_handle", user_io)


class _Tables:
    """Physical memory holding hand-made page tables: ``read_physical`` is all a walk
    uses."""

    def __init__(self, entries: dict[int, int], readable: int = 1 << 40) -> None:
        self.entries = entries
        self.readable = readable
        self.reads: list[tuple[int, int]] = []

    def read_physical(self, address: int, size: int) -> bytes:
        self.reads.append((address, size))
        if address >= self.readable:
            return b""
        return self.entries.get(address, 0).to_bytes(8, "little")[:size]


def test_a_1_gb_page_ends_the_walk_at_the_pdpte_and_pat_in_a_pte_is_not_large():
    va = 0xFFFF_8000_4123_4567           # PML4 slot 0x100, PDPT slot 1
    tables = _Tables({0x1000 + 0x100 * 8: 0x2000 | 0x23,
                      0x2000 + 1 * 8: 0x4000_0000 | 0x1E3})
    result = walk(tables, 0x1000, va)
    assert [e.name for e in result.entries] == ["PXE", "PPE"] and result.large
    assert result.page_size == 1 << 30 and result.physical == 0x4000_0000 + (va & 0x3FFF_FFFF)
    assert flag_text(result.entries[1]) == "-GLDA--KWEV" and tables.reads[-1][1] == 8
    # Bit 7 of a PTE is PAT: a 4 KB page all the same.
    va = 0x0000_0000_0040_3000
    tables = _Tables({0x1000: 0x2003, 0x2000: 0x3003, 0x3000 + 2 * 8: 0x5003,
                      0x5000 + 3 * 8: 0x8000_0000_0077_7085})
    result = walk(tables, 0x1000, va)
    assert len(result.entries) == 4 and not result.large and result.physical == 0x777000
    assert flag_text(result.entries[3]) == "-------UR-V"
    assert len(tables.reads) == 4


def test_a_table_that_cannot_be_read_is_one_line():
    tables = _Tables({0x1000: 0x9000_0000_0003}, readable=0x9000_0000_0000)
    with pytest.raises(ExtensionFailed, match=r"^Cannot read the PPE at physical address "
                                              r"900000000000$"):
        walk(tables, 0x1000, 0)
