"""Whole sessions against the simulated target, compared with golden transcripts."""

from __future__ import annotations

from .transcripts import batch, check_golden


def test_attach_and_evaluate():
    text, status = batch("? 1+2", "vertarget", "n 10", "? 10", "n 16", "? 10")
    assert status == 0
    check_golden("attach_evaluate", text)


def test_a_bad_command_is_one_line_and_the_batch_fails_with_1():
    text, status = batch("frobnicate", "? 1")
    assert status == 1
    assert "Couldn't resolve error at 'frobnicate'\n" in text
    assert "Evaluate expression: 1 = 00000000`00000001" in text
    assert "Traceback" not in text


def test_an_empty_line_continues_a_display_where_it_ended():
    text, status = batch("dq nt!KiSimRequest L2", "", "u nt!DbgBreakPoint L2", "")
    assert status == 0
    lines = text.splitlines()
    first = lines.index("0: kd> dq nt!KiSimRequest L2") + 1
    after_empty = lines.index("0: kd> ", first) + 1
    assert int(lines[after_empty].split()[0].replace("`", ""), 16) == \
        int(lines[first].split()[0].replace("`", ""), 16) + 0x10
    disasm = lines.index("0: kd> u nt!DbgBreakPoint L2")
    again = lines.index("0: kd> ", disasm) + 1
    listing = [line for line in lines[disasm + 1:again - 1] if not line.endswith(":")]
    continued = next(line for line in lines[again:] if not line.endswith(":"))

    def address(line: str) -> int:
        return int(line.split()[0].replace("`", ""), 16)

    assert len(listing) == 2
    assert address(continued) > address(listing[-1])
