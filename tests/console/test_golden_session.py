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
