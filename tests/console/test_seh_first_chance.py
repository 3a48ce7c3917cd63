"""An exception raised inside a driver's ``__try`` as the console sees it
(wdkdrivers/sehtest on the simulated kernel): the debugger is told first, with
WinDbg's first-chance banner and the faulting instruction, before any handler runs;
``g`` passes it on and the driver's own ``__except`` handler runs (its DbgPrint comes
after the stop).  With ``sxd av`` the console does not stop and the handler still runs."""

from __future__ import annotations

import pytest

from tests.simtarget.wdkbuild import build

from .transcripts import batch

BANNER = "Access violation - code c0000005 (first chance)"
HANDLER = "seh: null c0000005"


@pytest.fixture(scope="module")
def sehtest(tmp_path_factory):
    return build("sehtest", tmp_path_factory.mktemp("sehtest"))


def test_the_debugger_sees_the_fault_first_and_the_handler_runs_after_g(sehtest):
    text, status = batch("g", "g", "k", "g", extra=["--driver", str(sehtest)])
    assert status == 0, text[-1500:]
    assert BANNER in text and HANDLER in text
    stop = text.index(BANNER)
    assert text.index(HANDLER) > text.index("kd> g", stop)
    after = text[stop:].splitlines()
    assert after[1].startswith("sehtest!SehTouch+")
    stack = text[stop:].split("kd> k\n", 1)[1].split("kd> ", 1)[0]
    assert "sehtest!SehNullPointer" in stack
    assert "seh: null not reached" not in text


def test_with_the_exception_disabled_the_console_runs_on_to_the_handler(sehtest):
    text, status = batch("sxd av", "g", "g", "g", extra=["--driver", str(sehtest)])
    assert status == 0, text[-1500:]
    assert BANNER not in text and HANDLER in text
