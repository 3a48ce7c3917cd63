"""The memory commands over a session double: WinDbg's line formats, lengths and
ranges, unreadable memory, writes, fills, compares, searches and files."""

from __future__ import annotations

import re

import pytest

from .memory_fake import RIP, SYMBOLS, Harness, pattern

TABLE = SYMBOLS["demo!Table"]


@pytest.fixture
def h() -> Harness:
    return Harness()


def addr(value: int) -> str:
    return f"{value >> 32:08x}`{value & 0xFFFFFFFF:08x}"


def hexbytes(start: int, count: int) -> list[str]:
    return [f"{pattern(a):02x}" for a in range(start, start + count)]


def chars(start: int, count: int) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in map(pattern, range(start, start + count)))


def dword(at: int) -> str:
    return f"{int.from_bytes(bytes(map(pattern, range(at, at + 4))), 'little'):08x}"


def qword(at: int) -> str:
    value = int.from_bytes(bytes(map(pattern, range(at, at + 8))), "little")
    return f"{value >> 32:08x}`{value & 0xFFFFFFFF:08x}"


# -- display formats ---------------------------------------------------------------------------


def test_db_line_has_sixteen_bytes_a_hyphen_after_the_eighth_and_the_ascii_column(h):
    start = 0x10005
    cells = hexbytes(start, 16)
    expected = f"{addr(start)}  {' '.join(cells[:8])}-{' '.join(cells[8:])}  {chars(start, 16)}"
    assert h.lines(f"db {start:x} L10") == [expected]


def test_db_default_is_128_bytes_in_lines_from_the_given_address(h):
    lines = h.lines("db 10003")
    assert [line.split()[0] for line in lines] == [addr(0x10003 + 16 * i) for i in range(8)]


def test_a_short_last_line_keeps_the_character_column_aligned(h):
    full, short = h.lines("db 10000 L15")
    assert short.index(chars(0x10010, 5)) == full.index(chars(0x10000, 16))
    assert short.endswith(chars(0x10010, 5))
    dc_full, dc_short = h.lines("dc 10000 L5")
    assert dc_short == f"{addr(0x10010)}  {dword(0x10010)}{' ' * 27}  {chars(0x10010, 4)}"
    assert len(dc_full) == len(dc_short) + 12


@pytest.mark.parametrize("cmd, per_line, width", [("dw", 8, 4), ("dd", 4, 8), ("dq", 2, 17)])
def test_word_dword_and_qword_lines_and_their_default_of_128_bytes(h, cmd, per_line, width):
    lines = h.lines(f"{cmd} 10000")
    assert len(lines) == 8
    cells = lines[0].split("  ", 1)[1].split(" ")
    assert len(cells) == per_line and all(len(cell) == width for cell in cells)


def test_dd_and_dq_values_are_little_endian_and_dq_has_the_backtick(h):
    assert h.lines("dd 10010 L2") == [f"{addr(0x10010)}  {dword(0x10010)} {dword(0x10014)}"]
    assert h.lines("dq 10010 L1") == [f"{addr(0x10010)}  {qword(0x10010)}"]
    assert h.lines("dp 10010 L1") == h.lines("dq 10010 L1")


def test_dc_and_dW_add_the_characters(h):
    assert h.lines("dc 10000 L4") == [
        f"{addr(0x10000)}  {' '.join(dword(0x10000 + 4 * i) for i in range(4))}  {chars(0x10000, 16)}"]
    line = h.lines("dW 10000 L8")[0]
    assert line.endswith("  " + chars(0x10000, 16)) and len(line.split()) == 10


def test_start_and_end_range_includes_the_end_address(h):
    assert len(h.lines("db 10000 1000f")) == 1
    assert len(h.lines("db 10000 10010")) == 2
    assert len(h.lines("dd 10000 1000f")) == 1


def test_columns_option_sets_values_a_line(h):
    lines = h.lines("dd /c 2 10000 L4")
    assert lines == [f"{addr(0x10000)}  {dword(0x10000)} {dword(0x10004)}",
                     f"{addr(0x10008)}  {dword(0x10008)} {dword(0x1000c)}"]


# -- unreadable memory --------------------------------------------------------------------------


def test_a_page_that_ends_mid_line_shows_question_marks_for_the_rest(h):
    line = h.lines("db 12ff8 L10")[0]
    assert line == (f"{addr(0x12ff8)}  {' '.join(hexbytes(0x12ff8, 8))}-"
                    f"{' '.join(['??'] * 8)}  {chars(0x12ff8, 8)}{'?' * 8}")
    assert h.lines("dd 12ffc L2") == [f"{addr(0x12ffc)}  {dword(0x12ffc)} ????????"]
    assert h.lines("dq 12ffc L1") == [f"{addr(0x12ffc)}  ????????`????????"]


def test_readable_memory_after_a_hole_in_one_range_is_shown(h):
    assert h.lines("dq 1fff8 L3") == [f"{addr(0x1fff8)}  ????????`???????? {qword(0x20000)}",
                                      f"{addr(0x20008)}  {qword(0x20008)}"]


def test_a_display_costs_one_request_and_a_second_costs_none(h):
    h.run("db 10000 L80")
    first = h.last.round_trips
    h.run("db 10000 L80")
    assert first == 1 and h.last.round_trips == 0
    h.run("dd 10000 L?800")
    assert h.last.round_trips <= 3


# -- continuing -------------------------------------------------------------------------------


def test_no_address_continues_where_the_last_display_ended(h):
    h.run("db 10000 L20")
    assert h.lines("db")[0].startswith(addr(0x10020))
    assert h.lines("dd L2")[0].startswith(addr(0x100a0))
    assert h.lines("dq")[0].startswith(addr(0x100a8))


def test_the_first_display_without_an_address_starts_at_rip(h):
    assert h.lines("dd")[0].startswith(addr(RIP))


def test_d_repeats_the_last_format_and_is_db_at_first(h):
    assert h.lines("d 10000 L10") == h.lines("db 10000 L10")
    h.run("dq 10000 L2")
    assert h.lines("d") == h.lines("dq 10010 L10")


def test_an_empty_line_repeats_a_display_without_address_as_a_continuation(h):
    h.run("dd 10000 L4")
    h.run("dd")
    assert h.lines("")[0].startswith(addr(0x10090))


def test_unknown_d_commands_are_not_taken_for_d(h):
    assert h.lines("dz foo") == ["Couldn't resolve error at 'dz foo'"]
    assert "not supported" in h.run("dD 10000")


# -- ranges and bad arguments ----------------------------------------------------------------------


def test_ranges_over_256_mb_need_l_question_mark(h):
    assert h.run("db 10000 L10000001").startswith("Range error")
    assert h.run("dd 10000 L4000001").startswith("Range error")
    assert h.run("db 10000 5000").startswith("Range error")


def test_bad_display_options_are_one_line(h):
    assert h.lines("db /x 10000") == ["Syntax error at '/x 10000'"]
    assert h.lines("dd /c 0 10000") == ["Column count must be 1 to 0x100"]
    assert h.lines("db 10000 L10 junk") == ["Syntax error at 'junk'"]


# -- strings ------------------------------------------------------------------------------------


def _put(h: Harness, address: int, data: bytes) -> None:
    assert h.session.virtual_space.write(address, data) == len(data)
    h.session.memory.invalidate()


def test_da_prints_32_characters_a_line_and_stops_at_the_nul(h):
    text = b"The quick brown fox jumps over the lazy dog, twice over!"
    _put(h, 0x10200, text + b"\0")
    assert h.lines("da 10200") == [f'{addr(0x10200)}  "{text[:32].decode()}"',
                                   f'{addr(0x10220)}  "{text[32:].decode()}"']


def test_a_string_of_exactly_32_characters_is_followed_by_an_empty_line(h):
    _put(h, 0x10200, b"A" * 32 + b"\0")
    assert h.lines("da 10200") == [f'{addr(0x10200)}  "{"A" * 32}"', f'{addr(0x10220)}  ""']


def test_da_stops_at_the_length_and_after_256_characters_by_default(h):
    _put(h, 0x10200, b"B" * 0x300)
    assert h.lines("da 10200 L5") == [f'{addr(0x10200)}  "BBBBB"']
    lines = h.lines("da 10200")
    assert len(lines) == 8 and lines[-1] == f'{addr(0x102e0)}  "{"B" * 32}"'


def test_du_reads_utf16_and_shows_non_ascii_letters(h):
    _put(h, 0x10200, "Grüße, 世界".encode("utf-16-le") + b"\0\0")
    assert h.lines("du 10200") == [f'{addr(0x10200)}  "Grüße, 世界"']


def test_a_string_running_into_unreadable_memory_ends_with_question_marks(h):
    _put(h, 0x12ffc, b"abcd")
    assert h.lines("da 12ffc") == [f'{addr(0x12ffc)}  "abcd{"?" * 28}"']


@pytest.mark.parametrize("cmd", ["da", "du", "db", "dc", "dW"])
def test_target_control_characters_never_reach_the_terminal(h, cmd):
    hostile = b"\x1b[31m\x07\x9b\x0d\x0a\x08\x7f" + "\u202e\u200f".encode("utf-16-le")
    _put(h, 0x10200, hostile + b"\0\0")
    text = h.run(f"{cmd} 10200 L10")
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]", text)


# -- pointers ---------------------------------------------------------------------------------


def test_dps_shows_each_pointer_and_the_symbol_it_names(h):
    pointers = [SYMBOLS["demo!Table"], SYMBOLS["demo!Text"] + 0x10, 0x99990000]
    _put(h, 0x10300, b"".join(p.to_bytes(8, "little") for p in pointers))
    assert h.lines("dps 10300 L3") == [
        f"{addr(0x10300)}  {addr(pointers[0])} demo!Table",
        f"{addr(0x10308)}  {addr(pointers[1])} demo!Text+0x10",
        f"{addr(0x10310)}  {addr(pointers[2])}"]
    assert h.lines("dqs 12ff8 L2")[1] == f"{addr(0x13000)}  ????????`????????"
    assert len(h.lines("dps 10300")) == 16


def test_dpa_and_dpu_show_the_string_each_pointer_points_to(h):
    _put(h, 0x10400, b"ansi\0" + b"\0" * 3 + "wide".encode("utf-16-le") + b"\0\0")
    _put(h, 0x10300, (0x10400).to_bytes(8, "little") + (0x10408).to_bytes(8, "little"))
    assert h.lines("dpa 10300 L1") == [f'{addr(0x10300)}  {addr(0x10400)} "ansi"']
    assert h.lines("dpu 10308 L1") == [f'{addr(0x10308)}  {addr(0x10408)} "wide"']
    assert h.lines("dpp 10300 L1") == [f"{addr(0x10300)}  {addr(0x10400)} 00000000`69736e61"]
    assert h.lines("dda 10300 L2") == [f'{addr(0x10300)}  00010400 "ansi"', f"{addr(0x10304)}  00000000"]


def test_d_repeats_a_pointer_display_too(h):
    h.run("dqs 10300 L2")
    assert h.lines("d L1") == h.lines("dqs 10310 L1")


# -- physical memory --------------------------------------------------------------------------


def test_slash_p_reads_physical_memory_with_the_usual_address_column(h):
    assert h.lines("db /p 1000 L4") == [
        f"{addr(0x1000)}  {' '.join(hexbytes(0x1000, 4))}{' ' * 36}  {chars(0x1000, 4)}"]
    assert all(kind == "read physical" for kind, *_ in h.session.requests)


def test_bang_db_prints_the_hash_column_and_does_not_pad(h):
    assert h.lines("!db 1000 L14") == [
        f"#    1000 {' '.join(hexbytes(0x1000, 8))}-{' '.join(hexbytes(0x1008, 8))} "
        f"{chars(0x1000, 16)}",
        f"#    1010 {' '.join(hexbytes(0x1010, 4))} {chars(0x1010, 4)}"]
    assert h.lines("!dq 1000 L1") == [f"#    1000 {qword(0x1000)}"]


def test_physical_entries_and_fills_go_to_physical_memory(h):
    h.run("eb /p 1000 41 42")
    h.run("fp [c] 1002 L3 43")
    assert h.session.physical_space.read(0x1000, 5) == b"ABCCC"
    assert h.session.host.fills[-1][3] is True
    assert h.session.virtual_space.read(0x10000, 2) == bytes(map(pattern, (0x10000, 0x10001)))
    _put_physical = h.session.physical_space.write
    _put_physical(0x1100, "hi".encode("utf-16-le") + b"\0\0")
    assert h.lines("!du 1100") == ['#    1100 "hi"']


def test_bang_d_continues_and_stops_at_unreadable_physical_memory(h):
    h.run("!dd 2ff0 L4")
    assert h.lines("!dd") == ["physical memory read at 3000 failed"]
    assert not h.last.ok


# -- e* --------------------------------------------------------------------------------------


def test_eb_writes_and_the_next_display_shows_the_new_bytes(h):
    h.run("db 10000 L4")
    assert h.run("eb 10000 1 'A' 0n16 ff") == ""
    assert h.lines("db 10000 L4")[0].startswith(f"{addr(0x10000)}  01 41 10 ff")


@pytest.mark.parametrize("cmd, value, stored", [
    ("ew", "1234", "34 12"), ("ed", "12345678", "78 56 34 12"),
    ("eq", "1122334455667788", "88 77 66 55 44 33 22 11"), ("ep", "1", "01 00 00 00 00 00 00 00"),
    ("ed", "(-2)", "fe ff ff ff"), ("ed", "'VUTS'", "53 54 55 56")])
def test_e_values_are_stored_little_endian(h, cmd, value, stored):
    h.run(f"{cmd} 10000 {value}")
    assert h.lines(f"db 10000 L{len(stored.split()):x}")[0].startswith(f"{addr(0x10000)}  {stored}")


def test_string_entries_and_their_terminators(h):
    h.run('eza 10000 "hi"')
    assert h.session.virtual_space.read(0x10000, 3) == b"hi\0"
    h.run('ezu 10010 "hi"')
    assert h.session.virtual_space.read(0x10010, 6) == "hi\0".encode("utf-16-le")
    h.run('ea 10020 "xy"')
    assert h.session.virtual_space.read(0x10020, 3) == b"xy" + bytes([pattern(0x10022)])
    h.run('e 10030 "zz"')
    assert h.session.virtual_space.read(0x10030, 2) == b"zz"


@pytest.mark.parametrize("line, message", [
    ("eb 10000 100", "Overflow error at '100'"),
    ("ew 10000 10000", "Overflow error at '10000'"),
    ("eb 13000 1", "Memory access error at '00000000`00013000'"),
    ("eb 10000", "eb needs the values to enter: interactive entry (Input>) is not supported"),
    ("ea 10000 41", "Syntax error at '41': ea takes a string in double quotes"),
    ("eb", "Numeric expression missing from 'eb'"),
])
def test_bad_entries_are_one_line_and_write_nothing(h, line, message):
    before = h.session.virtual_space.read(0x10000, 16)
    assert h.lines(line) == [message]
    assert h.session.virtual_space.read(0x10000, 16) == before


# -- f, c, m ---------------------------------------------------------------------------------


def test_fill_repeats_the_pattern_in_one_request(h):
    h.run("f 10001 L7 'A' 'B' 'C'")
    assert h.session.virtual_space.read(0x10001, 7) == b"ABCABCA"
    assert [r[0] for r in h.session.requests] == ["fill"]
    h.run("f 10100 L2 1 2 3")
    assert h.session.virtual_space.read(0x10100, 3) == bytes([1, 2, pattern(0x10102)])


def test_fill_falls_back_to_writes_when_the_target_does_not_fill(h):
    h.session.host.fill_works = False
    h.run("f 10000 L5 1 2")
    assert h.session.virtual_space.read(0x10000, 5) == bytes([1, 2, 1, 2, 1])


def test_compare_prints_each_differing_byte_pair(h):
    _put(h, 0x10000, b"same\x01ame")
    _put(h, 0x20000, b"same\x02amX")
    assert h.lines("c 10000 L8 20000") == [
        f"{addr(0x10004)}  01 - {addr(0x20004)}  02",
        f"{addr(0x10007)}  65 - {addr(0x20007)}  58"]
    assert h.lines("c 10000 L4 20000") == []


def test_move_copies_overlapping_ranges(h):
    _put(h, 0x10000, b"abcdef")
    h.run("m 10000 L4 10002")
    assert h.session.virtual_space.read(0x10000, 6) == b"ababcd"
    assert h.lines("m 12ffe L4 10000") == ["Memory access error at '00000000`00013000'"]


# -- s ---------------------------------------------------------------------------------------


def test_search_prints_each_hit_as_a_db_line_overlaps_included(h):
    _put(h, 0x10500, b"QQQQQ")
    lines = h.lines("s 10000 L3000 'Q' 'Q' 'Q'")
    assert lines == [h.lines(f"db {a:x} L10")[0] for a in (0x10500, 0x10501, 0x10502)]


def test_search_finds_a_pattern_across_its_read_windows_but_not_across_a_hole(h, monkeypatch):
    from kdcon.commands import memory_edit

    monkeypatch.setattr(memory_edit, "_WINDOW", 0x1000)
    _put(h, 0x11ffe, b"WXYZ")
    _put(h, 0x12ffe, b"WX")
    _put(h, 0x20000, b"YZ")
    assert h.lines('s -[1]a 10000 L?10010 "WXYZ"') == [addr(0x11ffe)]
    assert h.lines('s -[1]a 10000 L?10010 "WX"') == [addr(0x11ffe), addr(0x12ffe)]


def test_search_reads_its_range_in_few_large_requests(h):
    h.run("s -b 10000 L3000 ff ee dd")
    reads = [r for r in h.session.requests if r[0] == "read"]
    assert len(reads) <= 4 and sum(size for _, _, size in reads) >= 0x3000


def test_a_hit_must_lie_wholly_inside_the_range(h):
    _put(h, 0x10600, b"ABCD")
    assert h.lines('s -[1]a 10600 L3 "ABCD"') == []
    assert h.lines('s -[1]a 10600 L4 "ABCD"') == [addr(0x10600)]


def test_dword_search_finds_only_aligned_hits_and_prints_dc_lines(h):
    _put(h, 0x10700, b"STUV" + b"\0" * 3 + b"STUV")
    assert h.lines("s -d 10700 L20 'VUTS'") == h.lines("dc 10700 L4")
    assert h.lines("s -[1]q 10700 L20 'VUTS'") == []
    _put(h, 0x10800, "wide".encode("utf-16-le"))
    assert h.lines('s -[1]u 10000 L3000 "wide"') == [addr(0x10800)]


@pytest.mark.parametrize("line, message", [
    ("s -z 10000 L10 1", "Syntax error at '-z': s takes -b, -w, -d, -q, -a or -u"),
    ("s -[s]b 10000 L10 1", "Search flags [s] are not supported: only [1]"),
    ("s -b 10000 L10", "Numeric expression missing from 's -b 10000 L10'"),
    ("s -a 10000 L10 41", "Syntax error at '41': s -a takes a string in double quotes"),
    ("s", "Numeric expression missing from 's'"),
])
def test_bad_searches_are_one_line(h, line, message):
    assert h.lines(line) == [message]


# -- files ---------------------------------------------------------------------------------------


def test_writemem_writes_the_range_and_says_so_with_a_dot_a_2kb(h, tmp_path):
    target = tmp_path / "out.bin"
    assert h.lines(f".writemem {target} 10000 L834") == ["Writing 834 bytes.."]
    assert target.read_bytes() == bytes(map(pattern, range(0x10000, 0x10834)))
    assert h.lines(f'.writemem "{target}" 10000 L5') == ["Writing 5 bytes."]
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_writemem_of_unreadable_memory_leaves_no_file_behind(h, tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    assert h.lines(f".writemem {target} 12000 L2000") == [
        "Memory access error at '00000000`00013000'"]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_readmem_copies_the_file_or_the_length_given(h, tmp_path):
    source = tmp_path / "in.bin"
    source.write_bytes(bytes(range(0x90)) * 0x20)
    assert h.lines(f".readmem {source} 10000") == ["Reading 1200 bytes..."]
    assert h.session.virtual_space.read(0x10000, 0x1200) == source.read_bytes()
    assert h.lines(f".readmem {source} 20000 L3") == ["Reading 3 bytes."]
    assert h.session.virtual_space.read(0x20000, 4) == bytes([0, 1, 2, pattern(0x20003)])
    assert h.lines(f".readmem {tmp_path / 'none'} 10000")[0].startswith("Unable to read")
