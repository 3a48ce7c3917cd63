"""``sx`` alone lists every event filter, as WinDbg's does; the sx* commands set them."""

from __future__ import annotations

from .test_golden_kernel_extensions import output_of
from .transcripts import batch


def test_sx_lists_each_event_and_what_it_does_after_a_change():
    text, status = batch("sxe ld", "sx", "sx ld")
    listing = output_of(text, "sx").splitlines()
    assert "      ld - break" in listing
    assert "      av - break" in listing
    assert "      ud - ignore" in listing
    assert output_of(text, "sx ld").strip() == \
        "Syntax error at 'ld': sx only lists; sxe, sxd, sxn or sxi sets an event"
    assert status == 1


def test_an_exception_code_sets_its_named_filter_or_one_of_its_own():
    text, status = batch("sxi c0000005", "sxn 0x20000001", "sx")
    listing = output_of(text, "sx").splitlines()
    assert "      av - ignore" in listing
    assert "20000001 - output" in listing
    assert status == 0
