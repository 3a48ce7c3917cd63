"""Misuses of DPCs, waits, work items, fast mutexes and critical regions that the WDK
documents as driver bugs stop the simulated kernel with the bug check Windows uses,
its parameters naming the culprit (wdkdrivers/kemisuse, one build per misuse)."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget import drvbuild
from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.wdkbuild import WDK_DRIVERS, printed, require_driver_toolchain, run_quiet


def boot_misuse(case: int, out_dir) -> tuple[Machine, list]:
    require_driver_toolchain()
    image = drvbuild.build_driver([WDK_DRIVERS / "kemisuse"], out_dir / "kemisuse.sys",
                                  defines=[f"MISUSE={case}"]).image
    machine = Machine(drivers=[image])
    machine.boot()
    return machine, run_quiet(machine)


@pytest.mark.parametrize("case, code", [(1, 0xC8), (2, 0xC), (3, 0xE1), (4, 0xBF), (5, 0x1)])
def test_the_misuse_ends_in_its_bug_check(tmp_path, case, code):
    machine, events = boot_misuse(case, tmp_path)
    assert printed(events, "misuse:") == [f"misuse: case {case}"]
    stops = [e for e in events if isinstance(e, BugCheck)]
    assert [s.code for s in stops] == [code]
    params = stops[0].params
    if case == 2:
        assert params[:2] == (4, 0)                  # the count and the missing array
    if case == 4:
        prcb = int.from_bytes(machine.read_virtual(machine.kernel_symbol("KiProcessorBlock"), 8), "little")
        current = int.from_bytes(machine.read_virtual(prcb + 8, 8), "little")   # KPRCB.CurrentThread
        assert params[1] == current                  # the owner that asked again
