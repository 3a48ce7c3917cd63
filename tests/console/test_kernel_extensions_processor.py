"""!pcr, !prcb and !irql show the current processor; another number is one line that
says how to make it current."""

from __future__ import annotations

import pytest

from .transcripts import batch


@pytest.mark.parametrize("command", ["!pcr 1", "!prcb 1", "!irql 1"])
def test_another_processor_is_refused_in_one_line_naming_the_switch(command):
    text, status = batch(command)
    assert status == 1
    name = command.split()[0]
    printed = text.split(f"kd> {command}\n", 1)[1].splitlines()
    assert printed == [f"{name}: only the current processor (0) can be shown: "
                       "~1s makes processor 1 current"]
