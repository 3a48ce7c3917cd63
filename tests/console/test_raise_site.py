"""An exception a driver raises in software (wdkdrivers/sehtest calls RtlRaiseException
with 0x20000001) as the console shows it: WinDbg's banner, then the raise site in the
driver (the instruction after its call), ``k`` starting from that frame and ``r rip``
equal to it; ``g`` hands the exception to the driver's handler, whose DbgPrint follows.
The kernel's own debug-service trap (nt!DebugService) is never the stop."""

from __future__ import annotations

import re

import pytest

from tests.simtarget.wdkbuild import build

from .transcripts import batch

BANNER = "Unknown exception - code 20000001 (first chance)"
HANDLER = "seh: continue 1"


@pytest.fixture(scope="module")
def raise_transcript(tmp_path_factory):
    sehtest = build("sehtest", tmp_path_factory.mktemp("sehtest"))
    # The faults before it are not stopped at; the breakpoint leaves only the raise ahead,
    # and the filter for its code (by number, as kd takes it) makes it a stop.
    text, status = batch("sxd av", "sxd dz", "bu sehtest!SehContinueExecution", "g", "g", "sxe 20000001", "g",
                         "k", "r rip", "g", extra=["--driver", str(sehtest)])
    assert status == 0, text[-1500:]
    return text[text.index(BANNER):]


def test_the_stop_names_the_raise_site_in_the_driver(raise_transcript):
    site = raise_transcript.splitlines()[1]
    assert re.fullmatch(r"sehtest!SehContinueExecution\+0x[0-9a-f]+:", site), site
    assert "DebugService" not in raise_transcript.split("kd> g", 1)[0]


def test_k_starts_at_the_raise_site_and_r_rip_is_it(raise_transcript):
    lines = raise_transcript.splitlines()
    offset = lines[1].split("+", 1)[1].rstrip(":")
    address = lines[2].split()[0].replace("`", "")
    stack = raise_transcript.split("kd> k\n", 1)[1].split("kd> ", 1)[0].splitlines()
    assert stack[0].startswith("Child-SP")
    assert stack[1].split()[-1] == f"sehtest!SehContinueExecution+{offset}"
    assert any(line.split()[-1].startswith("sehtest!DriverEntry+") for line in stack[2:])
    rip = raise_transcript.split("kd> r rip\n", 1)[1].splitlines()[0]
    assert rip == f"rip={address}"


def test_g_from_the_raise_site_runs_the_drivers_handler(raise_transcript):
    after_g = raise_transcript.split("kd> r rip\n", 1)[1].split("kd> g\n", 1)[1]
    assert after_g.splitlines()[0] == HANDLER
