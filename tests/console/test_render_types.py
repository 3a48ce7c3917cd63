"""dt's text from real PDB types (the simulated target's) over memory built in the test:
layouts, every value form, selections, recursion and unreadable memory."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kdcon.render.types import DisplayOptions, Selection, TypeDisplay, derived_type
from kdcon.symbols.pdb.pdbfile import open_pdb
from kdcon.symbols.pdb.typeinfo import TypeInfo, builtin_info

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"
RECORD = 0xFFFFFA8000001000
HEAD = 0xFFFFF80001077000


@pytest.fixture(scope="module")
def track():
    with open_pdb(IMAGES / "checked" / "trackdemo.pdb") as pdb:
        yield pdb.types


@pytest.fixture(scope="module")
def nt():
    with open_pdb(IMAGES / "ntoskrnl.pdb") as pdb:
        yield pdb.types


class Memory:
    """Sparse memory: what the test writes can be read, the rest cannot."""

    def __init__(self) -> None:
        self.bytes: dict[int, int] = {}

    def write(self, address: int, data: bytes) -> None:
        for index, byte in enumerate(data):
            self.bytes[address + index] = byte

    def read(self, address: int, size: int) -> bytes:
        out = bytearray()
        for at in range(address, address + size):
            if at not in self.bytes:
                break
            out.append(self.bytes[at])
        return bytes(out)


def record(source: bytes = b"d:\\dev\\trackdemo\\trackdemo.c", allocator: int = 1) -> Memory:
    memory = Memory()
    memory.write(RECORD, struct.pack("<QQQQIII", HEAD, HEAD, 0xFFFFFA8000002000, 0x20,
                                     allocator, 433, 3) + source.ljust(41, b"\0") + b"\0" * 3)
    memory.write(HEAD, struct.pack("<QQ", RECORD, RECORD))
    return memory


def show(info, memory=None, address=None, fields=None, symbolizer=None, **options):
    display = TypeDisplay(memory.read if memory else (lambda a, n: b""), 8, symbolizer,
                          DisplayOptions(**options))
    display.show(info, address, Selection(fields) if fields else None)
    return display


# -- layouts -----------------------------------------------------------------------------------


def test_a_layout_pads_names_to_sixteen_and_names_each_member_type(track):
    assert show(track.find("_TRACK_RECORD")).lines == [
        "   +0x000 ListEntry        : _LIST_ENTRY",
        "   +0x010 Value            : Uint8B",
        "   +0x018 Size             : Uint8B",
        "   +0x020 Allocator        : _TRACK_FUNCTION",
        "   +0x024 Line             : Uint4B",
        "   +0x028 Flags            : Uint4B",
        "   +0x02c Source           : [41] Char",
    ]


def test_a_long_member_name_pushes_its_colon_out(nt):
    lines = show(nt.find("_KLDR_DATA_TABLE_ENTRY")).lines
    assert "   +0x018 ExceptionTableSize : Uint4B" in lines


def test_bit_fields_show_position_and_width(nt):
    assert show(nt.find("_POOL_HEADER")).lines[:2] == [
        "   +0x000 PreviousSize     : Pos 0, 8 Bits",
        "   +0x000 PoolIndex        : Pos 8, 8 Bits",
    ]


def test_r1_expands_embedded_structures_one_level(track):
    lines = show(track.find("_TRACK_RECORD"), depth=1).lines
    assert lines[:3] == [
        "   +0x000 ListEntry        : _LIST_ENTRY",
        "      +0x000 Flink            : Ptr64 _LIST_ENTRY",
        "      +0x008 Blink            : Ptr64 _LIST_ENTRY",
    ]


def test_r2_follows_pointers_to_structures_one_level_more(track):
    lines = show(track.find("_TRACK_RECORD"), depth=2).lines
    assert lines[1:4] == [
        "      +0x000 Flink            : Ptr64 _LIST_ENTRY",
        "         +0x000 Flink            : Ptr64 _LIST_ENTRY",
        "         +0x008 Blink            : Ptr64 _LIST_ENTRY",
    ]
    assert not any(line.startswith(" " * 12) for line in lines)


def test_an_enum_lists_its_names_and_values(track):
    lines = show(track.find("_TRACK_FUNCTION")).lines
    assert lines[0] == "   TrackFnExAllocatePool = 0n0"
    assert lines[-1] == "   TrackFnCount = 0n29"


def test_verbose_gives_sizes_counts_and_enum_totals(track):
    lines = show(track.find("_TRACK_RECORD"), verbose=True).lines
    assert lines[0] == "struct _TRACK_RECORD, 7 elements, 0x58 bytes"
    assert lines[1] == "   +0x000 ListEntry        : struct _LIST_ENTRY, 2 elements, 0x10 bytes"
    assert lines[4] == "   +0x020 Allocator        : Enum _TRACK_FUNCTION,  30 total enums"


# -- values ------------------------------------------------------------------------------------


def test_a_record_shows_list_links_numbers_enum_name_and_source_text(track):
    assert show(track.find("_TRACK_RECORD"), record(), RECORD).lines == [
        "   +0x000 ListEntry        : _LIST_ENTRY [ 0xfffff800`01077000 - 0xfffff800`01077000 ]",
        "   +0x010 Value            : 0xfffffa80`00002000",
        "   +0x018 Size             : 0x20",
        "   +0x020 Allocator        : 1 ( TrackFnExAllocatePoolWithTag )",
        "   +0x024 Line             : 0x1b1",
        "   +0x028 Flags            : 3",
        '   +0x02c Source           : [41]  "d:\\dev\\trackdemo\\trackdemo.c"',
    ]


def test_an_enum_value_without_a_name_is_only_the_number(track):
    lines = show(track.find("_TRACK_RECORD"), record(allocator=77), RECORD).lines
    assert lines[3] == "   +0x020 Allocator        : 0x4d"


def test_target_text_cannot_reach_the_terminal_with_control_characters(track):
    memory = record(source=b"evil\x1b[2J\x07\x9b.c")
    source = show(track.find("_TRACK_RECORD"), memory, RECORD).lines[-1]
    assert "\x1b" not in source and "\x07" not in source and "\x9b" not in source
    assert source.endswith('"evil\\x1b[2J\\x07\\x9b.c"')


def test_a_list_head_shows_its_links_first_then_each_pointer_with_the_pointee(track):
    lines = show(track.find("_LIST_ENTRY"), record(), HEAD).lines
    assert lines[0] == " [ 0xfffffa80`00001000 - 0xfffffa80`00001000 ]"
    assert lines[1] == ("   +0x000 Flink            : 0xfffffa80`00001000 _LIST_ENTRY "
                        "[ 0xfffff800`01077000 - 0xfffff800`01077000 ]")


def test_r1_follows_a_pointer_to_a_structure_with_the_pointee_fields(track):
    lines = show(track.find("_LIST_ENTRY"), record(), HEAD, depth=1).lines
    assert lines[2].startswith("      +0x000 Flink            : 0xfffff800`01077000 _LIST_ENTRY")


def test_unreadable_memory_is_question_marks_and_the_first_bad_address_is_kept(track):
    display = show(track.find("_TRACK_RECORD"), Memory(), RECORD)
    assert display.lines[1] == "   +0x010 Value            : ??"
    assert display.failed_at == RECORD


def test_a_field_selection_pads_to_the_longest_name_asked_for(track):
    lines = show(track.find("_TRACK_RECORD"), record(), RECORD, fields=["Line", "Size"]).lines
    assert lines == ["   +0x018 Size : 0x20", "   +0x024 Line : 0x1b1"]


def test_a_field_path_shows_the_parent_then_the_member(track):
    lines = show(track.find("_TRACK_RECORD"), record(), RECORD, fields=["ListEntry.Blink"]).lines
    assert lines == [
        "   +0x000 ListEntry       :  [ 0xfffff800`01077000 - 0xfffff800`01077000 ]",
        "      +0x008 Blink           : 0xfffff800`01077000 _LIST_ENTRY "
        "[ 0xfffffa80`00001000 - 0xfffffa80`00001000 ]",
    ]


def test_a_trailing_period_expands_the_field_and_matches_by_prefix(track):
    lines = show(track.find("_TRACK_RECORD"), fields=["List."]).lines
    assert lines == [
        "   +0x000 ListEntry : ",
        "      +0x000 Flink : Ptr64 _LIST_ENTRY",
        "      +0x008 Blink : Ptr64 _LIST_ENTRY",
    ]


def test_a_star_matches_every_field_with_the_prefix(track):
    display = show(track.find("_TRACK_RECORD"), fields=["S*"])
    assert [line.split()[1] for line in display.lines] == ["Size", "Source"]


def test_an_unknown_field_matches_nothing(track):
    assert show(track.find("_TRACK_RECORD"), fields=["Nope"]).matched == 0


def test_bit_fields_show_binary_and_their_value_from_five_bits(nt):
    memory = Memory()
    memory.write(0x1000, struct.pack("<IIQ", 0x0211A04B, 0x76697244, 0))
    lines = show(nt.find("_POOL_HEADER"), memory, 0x1000).lines
    assert lines[0] == "   +0x000 PreviousSize     : 0y01001011 (0x4b)"
    assert lines[1] == "   +0x000 PoolIndex        : 0y10100000 (0xa0)"
    assert lines[6] == "   +0x008 ProcessBilled    : (null) "


class _Builtins:
    def by_index(self, ti: int) -> TypeInfo:
        return builtin_info(ti)


@pytest.mark.parametrize("width, raw, text", [
    (1, 0b1000, "0y1"), (4, 0x50, "0y1010"), (5, 0x50, "0y01010 (0xa)"), (5, 0, "0y00000 (0)"),
])
def test_narrow_bit_fields_show_only_binary(width, raw, text):
    bits = TypeInfo(1, "bitfield", size=4, table=_Builtins(), ref=0x75, bit_position=3,
                    bit_width=width)
    memory = Memory()
    memory.write(0x10, struct.pack("<I", raw))
    assert TypeDisplay(memory.read, 8)._value(bits, 0x10) == text


@pytest.mark.parametrize("type_name, data, text", [
    ("Int4B", struct.pack("<i", -8192), "0n-8192"),
    ("Int2B", struct.pack("<h", 336), "0n336"),
    ("Uint4B", struct.pack("<I", 9), "9"),
    ("Uint4B", struct.pack("<I", 10), "0xa"),
    ("Uint8B", struct.pack("<Q", 0x174E7AD64), "0x00000001`74e7ad64"),
    ("Uint8B", struct.pack("<Q", 0x100000), "0x100000"),
    ("UChar", b"\x00", "0 ''"),
    ("UChar", b"\x01", "0x1 ''"),
    ("UChar", b"A", "0x41 'A'"),
    ("Char", b"w", "119 'w'"),
    ("Char", b"\x02", "2 ''"),
])
def test_integers_and_characters_take_windbg_forms(type_name, data, text):
    memory = Memory()
    memory.write(0x20, data)
    info = derived_type(type_name, lambda name: None)
    assert TypeDisplay(memory.read, 8)._value(info, 0x20) == text


def test_pointers_show_strings_pointees_and_void(track):
    memory = Memory()
    memory.write(0x100, struct.pack("<QQQQ", 0x200, 0x300, 0, 0x400))
    memory.write(0x200, b"ExAllocatePool\0")
    memory.write(0x300, struct.pack("<Q", 0x200))
    display = TypeDisplay(memory.read, 8)
    find = track.find
    assert display._value(derived_type("Ptr64 Char", find), 0x100) == \
        '0x00000000`00000200  "ExAllocatePool"'
    assert display._value(derived_type("Ptr64 Ptr64 Void", find), 0x108) == \
        "0x00000000`00000300  -> 0x00000000`00000200 Void"
    assert display._value(derived_type("Ptr64 Void", find), 0x110) == "(null) "
    assert display._value(derived_type("Ptr64 Char", find), 0x118) == \
        '0x00000000`00000400  "--- memory read error at address 0x00000000`00000400 ---"'


def test_an_array_shows_its_first_element_and_a_char_array_its_text(track):
    memory = Memory()
    memory.write(0x100, struct.pack("<QQ", 0x200, 0))
    memory.write(0x200, b"Tag\0")
    info = derived_type("[29] Ptr64 Char", track.find)
    assert TypeDisplay(memory.read, 8)._value(info, 0x100) == '[29] 0x00000000`00000200  "Tag"'


def test_a_function_pointer_shows_the_return_type_and_its_symbol(nt):
    memory = Memory()
    memory.write(0x100, struct.pack("<QQ", 0xFFFFF80001073900, 0xFFFFF80001001CD2))
    names = {0xFFFFF80001073900: "trackdemo!DriverEntry",
             0xFFFFF80001001CD2: "nt!IopInvalidDeviceRequest+0x10"}
    driver = nt.find("_DRIVER_OBJECT")
    init = next(f for f in driver.fields if f.name == "DriverInit")
    display = TypeDisplay(memory.read, 8, names.get)
    assert display._value(init.type, 0x100) == \
        "0xfffff800`01073900     long  trackdemo!DriverEntry+0"
    assert display._value(init.type, 0x108) == \
        "0xfffff800`01001cd2     long  nt!IopInvalidDeviceRequest+10"


def test_a_unicode_string_shows_its_text(nt):
    memory = Memory()
    text = "\\Driver\\trackdemo".encode("utf-16-le")
    memory.write(0x100, struct.pack("<HHIQ", len(text), len(text) + 2, 0, 0x200))
    memory.write(0x200, text)
    lines = show(nt.find("_UNICODE_STRING"), memory, 0x100).lines
    assert lines[0] == ' "\\Driver\\trackdemo"'
    assert lines[1] == "   +0x000 Length           : 0x22"


def test_blocks_expand_arrays_of_structures_element_by_element(nt):
    memory = Memory()
    memory.write(0x100, b"\0" * 0x150)
    lines = show(nt.find("_KSIM_LOADER_BLOCK"), memory, 0x100, blocks=True).lines
    assert "   +0x050 Drivers          : " in lines
    assert "    [00] (null) " in lines and "    [31] (null) " in lines


def test_a_path_whose_end_names_no_field_matches_nothing(track):
    display = show(track.find("_TRACK_RECORD"), fields=["ListEntry.Nope"])
    assert display.matched == 0 and display.lines == []
