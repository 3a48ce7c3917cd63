"""Building the tests' own WDK-style drivers (tests/simtarget/wdkdrivers/NAME/*.c) with
``kdcon-sim build-driver``, and running a machine with them until it goes quiet."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdcon.tools.simtarget import drvbuild
from kdcon.tools.simtarget.events import BudgetExhausted, BugCheck, DebugPrintStop, StopEvent
from kdcon.tools.simtarget.machine import Machine
from tests.oracles import IN_CI, require_tool
from tests.simtarget.simhelpers import run_on_from

WDK_DRIVERS = Path(__file__).resolve().parent / "wdkdrivers"


def require_driver_toolchain() -> None:
    for tool in (drvbuild.CLANG_CL, drvbuild.LLD_LINK, drvbuild.LLVM_LIB):
        require_tool(tool)
    if not (drvbuild.DDK_INCLUDE / "wdm.h").is_file():
        message = "mingw-w64-common's DDK headers are not installed (.ci/setup.d installs them)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def build(name: str, out_dir: Path, integrity_check: bool = False) -> Path:
    """Build wdkdrivers/NAME into out_dir/NAME.sys (its PDB beside it)."""
    require_driver_toolchain()
    return drvbuild.build_driver([WDK_DRIVERS / name], out_dir / f"{name}.sys",
                                 integrity_check=integrity_check).image


def run_quiet(machine: Machine, budget: int = 3_000_000, limit: int = 400) -> list[StopEvent]:
    """Every stop until a slice passes with none (or a bug check), running on from each."""
    events: list[StopEvent] = []
    for _ in range(limit):
        event = machine.run(budget=budget)
        if isinstance(event, BudgetExhausted):
            return events
        events.append(event)
        if isinstance(event, BugCheck):
            return events
        run_on_from(machine, event)
    raise AssertionError(f"machine never went quiet: {events[-5:]}")


def printed(events: list[StopEvent], prefix: str = "") -> list[str]:
    """The DbgPrint lines among ``events`` that start with ``prefix``."""
    return [e.text.rstrip("\n") for e in events if isinstance(e, DebugPrintStop) and e.text.startswith(prefix)]
