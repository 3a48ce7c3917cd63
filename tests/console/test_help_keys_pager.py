"""``.help keys`` names the ``-- more --`` pager's keys beside the prompt's own."""

from __future__ import annotations

from tests.console.transcripts import batch


def test_help_keys_lists_the_pagers_keys():
    text, status = batch(".help keys")
    assert status == 0
    pager = [line.split(" at -- more --: ", 1) for line in text.splitlines() if " at -- more --: " in line]
    keys = {left.strip(): meaning for left, meaning in pager}
    assert set(keys) == {"Space", "Enter", "q, Ctrl+C"}
    assert "next page" in keys["Space"] and "one more line" in keys["Enter"]
    assert "cancel the command" in keys["q, Ctrl+C"]
