"""kc, kd, kf, the frame count, ``k = StackPtr InstructionPtr FrameCount`` and the option
letters together; dv and kp agreeing on a parameter the prolog has yet to store.

On the simulated machine the checks are against what it knows: at the breakpoint on
``trackdemo!TrackDemoTick``'s first instruction, frame 0's Child-SP is RSP, ``kd``'s
words are ``dq``'s at RSP (the first is the return address ``kn`` shows), ``kf``'s
Memory is the difference between the Child-SPs ``kn`` shows, ``kc`` is ``kn``'s call
sites without offsets, and a walk started at frame 1's Child-SP and return address is
``kn`` less its first frame.
"""

from __future__ import annotations

import pytest

from kdcon.commands.stack import _clean_name, _distances, _with_memory
from kdcon.unwind import Frame

from .test_golden_kernel_extensions import output_of
from .transcripts import batch, check_golden


def _frame(number: int, child_sp: int) -> Frame:
    return Frame(number, child_sp, 0, 0x1000 + number, None, (0, 0, 0, 0), "unwind")


# -- the pieces ----------------------------------------------------------------------------------


def test_kf_measures_each_frame_from_the_one_below_it():
    frames = [_frame(0, 0x1000), _frame(1, 0x1008), _frame(2, 0x10A0)]
    assert _distances(frames) == [None, 8, 0x98]


def test_kf_leaves_the_memory_blank_where_the_walk_changed_stacks():
    frames = [_frame(0, 0x80000), _frame(1, 0x1000), _frame(2, 0x1000 + 0x200000)]
    assert _distances(frames) == [None, None, None]


def test_kf_puts_the_memory_column_after_the_frame_number():
    lines = [" # Child-SP          RetAddr               Call Site",
             "00 fffff880`000ffd58 fffff800`0107414d     a!b",
             "01 fffff880`000ffd60 fffff800`0100408d     a!c+0x9d"]
    out = _with_memory(lines, [None, 8], numbered=True)
    assert out[0] == " #   Memory  Child-SP          RetAddr               Call Site"
    assert out[1] == "00           fffff880`000ffd58 fffff800`0107414d     a!b"
    assert out[2] == "01        8  fffff880`000ffd60 fffff800`0100408d     a!c+0x9d"
    plain = _with_memory([line[3:] for line in lines], [None, 0x120], numbered=False)
    assert plain[0].startswith("  Memory  Child-SP") and plain[2].startswith("     120  fffff880")


def test_kc_drops_the_offset_but_keeps_where_a_name_is_missing():
    assert _clean_name("trackdemo!TrackDemoDispatch+0x9d", 1) == "trackdemo!TrackDemoDispatch"
    assert _clean_name("nt!KiSystemLoop", 1) == "nt!KiSystemLoop"
    assert _clean_name("trackdemo+0x1234", 1) == "trackdemo+0x1234"
    assert _clean_name(None, 0xFFFFF80001074520) == "fffff800`01074520"


# -- on the simulated machine ----------------------------------------------------------------------

_AT_TICK = ("bp trackdemo!TrackDemoTick", "g", "g")


@pytest.fixture(scope="module")
def tick() -> str:
    text, status = batch(*_AT_TICK, "r rsp", "kn", "kc", "knc", "kf", "knf", "kbnf 3", "kvn 2", "kpn 2",
                         "kL 2", "kM 1", "k 2", "kd 6", "dq @rsp L6", "k = @rsp+8 poi(@rsp) 3",
                         "kn = @rsp+8 3", "k 0", "kx", "k = ", "kd 0")
    assert status != 0, text[-1500:]       # the four bad lines at the end fail
    return text


def _rows(text: str, command: str) -> list[list[str]]:
    return [line.split() for line in output_of(text, command).splitlines()[1:]]


def test_the_first_frame_is_at_the_stack_pointer(tick):
    rsp = output_of(tick, "r rsp").split("=")[1].strip()
    rows = _rows(tick, "kn")
    assert rows[0][1].replace("`", "") == rsp and rows[0][-1] == "trackdemo!TrackDemoTick"
    assert len(rows) >= 4 and [row[0] for row in rows] == [f"{n:02x}" for n in range(len(rows))]


def test_kc_is_kn_without_offsets_addresses_or_arguments(tick):
    sites = [row[-1].partition("+")[0] for row in _rows(tick, "kn")]
    assert output_of(tick, "kc").splitlines() == ["Call Site", *sites]
    assert output_of(tick, "knc").splitlines() == [" # Call Site",
                                                   *(f"{n:02x} {s}" for n, s in enumerate(sites))]


def test_kf_shows_the_distance_between_the_child_sps(tick):
    child_sps = [int(row[1].replace("`", ""), 16) for row in _rows(tick, "kn")]
    lines = output_of(tick, "knf").splitlines()
    assert lines[0].startswith(" #   Memory  Child-SP")
    memory = [line[3:11].strip() for line in lines[1:]]
    assert memory[0] == ""
    assert [int(m, 16) for m in memory[1:]] == [b - a for a, b in zip(child_sps, child_sps[1:])]
    assert [line[13:] for line in lines[1:]] == [line[3:] for line in output_of(tick, "kn").splitlines()[1:]]
    assert [line[10:] for line in output_of(tick, "kf").splitlines()[1:]] == \
        [line[3:] for line in output_of(tick, "kn").splitlines()[1:]]


def test_letters_combine_and_the_count_limits_the_frames(tick):
    kbnf = output_of(tick, "kbnf 3").splitlines()
    assert len(kbnf) == 4 and ": Args to Child" in kbnf[0] and kbnf[0].startswith(" #   Memory  ")
    assert len(output_of(tick, "kvn 2").splitlines()) == 3
    kpn = output_of(tick, "kpn 2").splitlines()
    assert kpn[1].startswith("00 ") and "trackdemo!TrackDemoTick(struct _TRACKDEMO_EXTENSION * Extension" in kpn[1]
    k2 = output_of(tick, "k 2").splitlines()
    assert len(k2) == 3 and k2[1:] == [line[3:] for line in output_of(tick, "kn").splitlines()[1:3]]
    # No source lines and no markup here: L and M change nothing.
    assert output_of(tick, "kL 2") == output_of(tick, "k 2")
    assert output_of(tick, "kM 1").splitlines() == k2[:2]


def test_kd_is_the_stack_a_pointer_a_line_with_symbols(tick):
    kd = output_of(tick, "kd 6").splitlines()
    words = []                              # (address, value) from dq's two a line
    for line in output_of(tick, "dq @rsp L6").splitlines():
        address, *values = line.split()
        start = int(address.replace("`", ""), 16)
        words += [(start + 8 * i, value) for i, value in enumerate(values)]
    assert len(kd) == 6
    assert [(int(line.split()[0].replace("`", ""), 16), line.split()[1]) for line in kd] == words
    # The first word is frame 0's return address, named as frame 1's call site.
    first = _rows(tick, "kn")
    assert kd[0].split()[1] == first[0][2] and kd[0].split()[2] == first[1][-1]


def test_a_walk_from_a_given_stack_and_instruction_pointer(tick):
    rows = _rows(tick, "kn")
    assert _rows(tick, "k = @rsp+8 poi(@rsp) 3") == [row[1:] for row in rows[1:4]]
    # Without an instruction pointer the walk starts at RIP on that stack.
    given = _rows(tick, "kn = @rsp+8 3")
    assert len(given) <= 3 and given[0][1] == rows[1][1] and given[0][-1] == "trackdemo!TrackDemoTick"


def test_bad_k_lines_say_why_in_one_line(tick):
    assert len(output_of(tick, "k 0").splitlines()) == len(output_of(tick, "kn").splitlines())
    assert output_of(tick, "kx").strip() == "Couldn't resolve error at 'kx'"
    assert output_of(tick, "k = ").strip().startswith("Numeric expression missing")
    assert output_of(tick, "kd 0").strip().startswith("Syntax error")


def test_stack_family_transcript(tick):
    start = tick.index("0: kd> kn\n")
    end = tick.index("0: kd> kd 6\n")
    check_golden("stack_family", tick[start:end])


# -- dv and kp agree ------------------------------------------------------------------------------


def test_dv_and_kp_agree_on_a_parameter_its_prolog_has_yet_to_store():
    text, status = batch(*_AT_TICK, "kp 1", "dv Extension", "dv /V Extension", "p", "p", "kp 1",
                         "dv Extension", "r rcx")
    assert status == 0, text[-1500:]
    before = output_of(text, "kp 1").splitlines()[1]
    assert before.endswith("Extension = <Value unavailable error>)")
    assert output_of(text, "dv Extension").strip() == "Extension = <value unavailable>"
    # dv /V still says where the PDB puts it, without an address that holds something else.
    where = output_of(text, "dv /V Extension").split()
    assert where[0].startswith("@rsp+0x") and where[1:] == ["Extension", "=", "<value", "unavailable>"]
    # Once the prolog stored it, both read the slot: the value rcx brought.
    rcx = output_of(text, "r rcx").split("=")[1].strip()
    later_kp = text.split("kd> kp 1\n")[2].splitlines()[1]
    later_dv = text.split("kd> dv Extension\n")[2].splitlines()[0]
    assert f"Extension = 0x{rcx[:8]}`{rcx[8:]})+0x" in later_kp
    assert later_dv.strip() == f"Extension = 0x{rcx[:8]}`{rcx[8:]}"
