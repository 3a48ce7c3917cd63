"""dt -a, -c, -l, -p and Field[N]: the text from real PDB types over memory built in the
test, then on the simulated machine, where each display is checked against another
way of reading the same memory (plain dt, db /p, the module list the kernel keeps).
"""

from __future__ import annotations

import struct

import pytest

from kdcon.commands.types import _parse_options
from kdcon.errors import CommandError
from kdcon.render.types import subscript

from .test_golden_kernel_extensions import output_of
from .test_render_types import RECORD, nt, record, show, track  # noqa: F401 (fixtures)
from .transcripts import batch, check_golden

# -- the command line ---------------------------------------------------------------------------


def test_a_with_a_count_before_the_name_asks_for_instances():
    options, flags, rest, list_field = _parse_options(["-ca10", "ULONG", "1000"])
    assert options.arrays and options.array_count == 10 and options.compact
    assert "A" in flags and rest == ["ULONG", "1000"] and list_field is None


def test_a_after_the_name_is_for_the_fields_and_takes_every_element_without_a_count():
    options, flags, rest, _ = _parse_options(["mt1", "-a", "gn"])
    assert options.arrays and options.array_count is None and "A" not in flags


def test_l_takes_the_next_word_or_the_rest_of_its_own():
    assert _parse_options(["-l", "ListEntry.Flink", "_T", "1"])[3] == "ListEntry.Flink"
    assert _parse_options(["-lNext", "_T", "1"])[3] == "Next"
    with pytest.raises(CommandError, match="-l needs the name"):
        _parse_options(["_T", "1", "-l"])


def test_a_subscript_is_decimal_and_only_at_the_end():
    assert subscript("MajorFunction[12]") == ("MajorFunction", 12)
    assert subscript("MajorFunction") == ("MajorFunction", None)
    assert subscript("A[0x3]") == ("A[0x3]", None)


# -- the text ------------------------------------------------------------------------------------


def test_compact_puts_the_fields_on_one_line(track):
    lines = show(track.find("_TRACK_RECORD"), record(), RECORD, compact=True).lines
    assert len(lines) == 1
    assert lines[0].startswith("   +0x000 ListEntry _LIST_ENTRY [ 0xfffff800`01077000 - 0xfffff800`01077000 ]"
                               " +0x010 Value 0xfffffa80`00002000 +0x018 Size 0x20 ")
    assert lines[0].endswith(' +0x02c Source [41]  "d:\\dev\\trackdemo\\trackdemo.c"')


def test_a_subscripted_field_is_that_element_at_its_offset(nt):
    driver = nt.find("_DRIVER_OBJECT")
    major = next(m for m in driver.fields if m.name == "MajorFunction")
    memory = record()
    base = 0xFFFFFA8000003000
    memory.write(base, bytes(driver.size))
    memory.write(base + major.offset + 3 * 8, struct.pack("<Q", 0xFFFFF80001003DB4))
    display = show(driver, memory, base, fields=["MajorFunction[3]"])
    assert display.lines == [f"   +0x{major.offset + 24:03x} MajorFunction[3] : "
                             "0xfffff800`01003db4     long  +0"]
    assert show(driver, memory, base, fields=["MajorFunction[28]"]).matched == 0


def test_a_shows_the_first_n_elements_of_an_array_field(nt):
    driver = nt.find("_DRIVER_OBJECT")
    major = next(m for m in driver.fields if m.name == "MajorFunction")
    memory = record()
    base = 0xFFFFFA8000003000
    memory.write(base, bytes(driver.size))
    memory.write(base + major.offset, struct.pack("<3Q", 1, 2, 3))
    display = show(driver, memory, base, fields=["MajorFunction"], arrays=True, array_count=2)
    assert display.lines == [f"   +0x{major.offset:03x} MajorFunction : ",
                             "    [00] 0x00000000`00000001     long  +0",
                             "    [01] 0x00000000`00000002     long  +0"]


# -- on the simulated machine -------------------------------------------------------------------

FIRST = "poi(trackdemo!TrackRecordList)"
RECORD_TYPE = "trackdemo!_TRACK_RECORD"


@pytest.fixture(scope="module")
def tick() -> str:
    # The first stop is in trackdemo's DriverEntry, its DRIVER_OBJECT in rdi; the second
    # after its records are made.
    text, status = batch("g", "dt nt!_DRIVER_OBJECT @rdi MajorFunction[3] DriverName",
                         "dt nt!_DRIVER_OBJECT @rdi -a3 MajorFunction",
                         "dt nt!_DRIVER_OBJECT @rdi MajorFunction",
                         "bp trackdemo!TrackDemoTick", "g",
                         f"dt {RECORD_TYPE} -l ListEntry {FIRST} Allocator Line",
                         f"dt {RECORD_TYPE} -l ListEntry.Flink -c {FIRST} Value Size",
                         f"dt -c {RECORD_TYPE} {FIRST}",
                         f"dt -ca1 {RECORD_TYPE} {FIRST}",
                         "dt -ca4 trackdemo!TrackFunctionNames",
                         "dt -ca3 trackdemo!ULONG trackdemo!TrackMemoryStats",
                         "dt -a2 trackdemo!ULONG trackdemo!TrackMemoryStats",
                         "dt trackdemo!TrackMemoryStats",
                         "dt nt!_LIST_ENTRY nt!PsLoadedModuleList",
                         "dt -p nt!_LIST_ENTRY nt!PsLoadedModuleList-fffff80000000000",
                         "dt nt!_KLDR_DATA_TABLE_ENTRY -l InLoadOrderLinks.Flink BaseDllName "
                         "poi(nt!PsLoadedModuleList)")
    assert status == 0, text[-1500:]
    return text


def test_l_follows_the_list_back_to_the_first_record(tick):
    listed = output_of(tick, f"dt {RECORD_TYPE} -l ListEntry {FIRST} Allocator Line")
    heads = [line for line in listed.splitlines() if " at 0x" in line]
    flinks = output_of(tick, f"dt {RECORD_TYPE} -l ListEntry.Flink -c {FIRST} Value Size")
    assert [line.split(" at ")[1] for line in heads] == \
        [line.split(" at ")[1] for line in flinks.splitlines() if " at 0x" in line]
    # Every structure once, each under its rule, the first record's Flink leading to the second.
    assert len(set(heads)) == len(heads) >= 3
    assert all(block.splitlines()[1] == "-" * 45 for block in listed.strip().split("\n\n"))
    assert all(line.startswith("ListEntry at 0x") for line in heads)
    plain = output_of(tick, f"dt -c {RECORD_TYPE} {FIRST}")
    assert plain.startswith("   +0x000 ListEntry _LIST_ENTRY [ " + heads[1].split(" at ")[1] + " - ")


def test_l_over_the_loaded_module_list_names_every_module(tick):
    text = output_of(tick, "dt nt!_KLDR_DATA_TABLE_ENTRY -l InLoadOrderLinks.Flink BaseDllName "
                           "poi(nt!PsLoadedModuleList)")
    names = [line.split('"')[1] for line in text.splitlines() if "BaseDllName" in line]
    assert names[:4] == ["ntoskrnl.exe", "hal.dll", "kdcom.dll", "trackdemo.sys"]


def test_physical_dt_reads_what_the_virtual_one_does(tick):
    virtual = output_of(tick, "dt nt!_LIST_ENTRY nt!PsLoadedModuleList")
    physical = output_of(tick, "dt -p nt!_LIST_ENTRY nt!PsLoadedModuleList-fffff80000000000")
    assert physical == virtual and "Flink" in physical


def test_subscripts_and_a_agree_with_the_whole_array(tick):
    whole = output_of(tick, "dt nt!_DRIVER_OBJECT @rdi MajorFunction")
    offset = int(whole.split()[0], 16)
    first = whole.split(": [28] ", 1)[1]
    elements = output_of(tick, "dt nt!_DRIVER_OBJECT @rdi -a3 MajorFunction").splitlines()
    assert elements[0].split()[:2] == [f"+0x{offset:03x}", "MajorFunction"]
    assert elements[1:] == [f"    [{i:02d}] {first}" for i in range(3)]
    third = output_of(tick, "dt nt!_DRIVER_OBJECT @rdi MajorFunction[3] DriverName").splitlines()
    assert third[1] == f"   +0x{offset + 3 * 8:03x} MajorFunction[3] : {first}"
    assert third[0].split()[1] == "DriverName"


def test_a_before_a_type_shows_that_many_instances(tick):
    fields = [line.split(" : ")[1] for line in output_of(tick, "dt trackdemo!TrackMemoryStats").splitlines()]
    compact = output_of(tick, "dt -ca3 trackdemo!ULONG trackdemo!TrackMemoryStats").splitlines()
    assert compact == [f"[{i}] {value}" for i, value in enumerate(fields[:3])]
    blocks = output_of(tick, "dt -a2 trackdemo!ULONG trackdemo!TrackMemoryStats").split("\n\n")
    first, second = (block.splitlines() for block in blocks[:2])
    assert first[0].startswith("[0] @ fffff800`") and first[1] == "-" * 45 and first[2] == fields[0]
    start = int(first[0].split()[2].replace("`", ""), 16)
    assert second[0] == f"[1] @ {start + 4 >> 32:08x}`{start + 4 & 0xFFFFFFFF:08x} "
    assert second[2] == fields[1]
    names = [line.split('"')[1]
             for line in output_of(tick, "dt -ca4 trackdemo!TrackFunctionNames").splitlines()]
    assert names[0] == "ExAllocatePool" and len(names) == 4


def test_compact_instances_take_a_line_each(tick):
    plain = output_of(tick, f"dt -c {RECORD_TYPE} {FIRST}").strip()
    assert output_of(tick, f"dt -ca1 {RECORD_TYPE} {FIRST}").splitlines() == [f"[0] {plain}"]


def test_errors_are_one_line():
    text, status = batch("dt -l Flink nt!_LIST_ENTRY", "dt nt!_LIST_ENTRY -l Nope nt!PsLoadedModuleList",
                         "dt nt!_LIST_ENTRY -l Flink.Nope nt!PsLoadedModuleList")
    assert status != 0
    assert output_of(text, "dt -l Flink nt!_LIST_ENTRY") == "dt: -l needs an address"
    assert output_of(text, "dt nt!_LIST_ENTRY -l Nope nt!PsLoadedModuleList") == "dt: -l Nope: no such field"
    assert output_of(text, "dt nt!_LIST_ENTRY -l Flink.Nope nt!PsLoadedModuleList").strip() == \
        "dt: -l Flink.Nope: no such field"


def test_dt_options_transcript(tick):
    check_golden("types_dt_options", tick[tick.index("0: kd> dt "):])
