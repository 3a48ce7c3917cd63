"""``kdcon-sim --run``: boot the simulated kernel with the given drivers and no
debugger, play a user program's requests into them (``--ioctl``), print what the
kernel prints (DbgPrint) and each reply, unload the drivers and exit.

Status 0 when the machine ran to the end, 1 when it bug checked (the bug check is
printed).  Breakpoints in the code (DbgBreakPoint) are stepped over and assertion
prompts answered "i" (ignore), as nobody is there to ask.

Does not listen for a debugger (``kdcon-sim --listen`` does, and takes ``--ioctl`` too).
"""

from __future__ import annotations

import logging
from typing import TextIO

from .events import BreakInStop, BreakpointHit, BudgetExhausted, BugCheck, DebugPrintStop, DebugPromptStop, StopEvent
from .layout import KiSimRequest
from .machine import Machine
from .userio import IoRequest

__all__ = ["replay"]

log = logging.getLogger(__name__)

_QUIET_BUDGET = 2_000_000
_MAX_STOPS = 200_000


def _run_until_quiet(machine: Machine, out: TextIO) -> BugCheck | None:
    """Run, printing, until a slice passes with no stop and no request under way."""
    for _ in range(_MAX_STOPS):
        event: StopEvent = machine.run(budget=_QUIET_BUDGET)
        if isinstance(event, BudgetExhausted):
            if not machine.io.busy:
                return None
            continue
        if isinstance(event, DebugPrintStop):
            out.write(event.text)
        elif isinstance(event, DebugPromptStop):
            out.write(event.text + "i\n")
            machine.answer_prompt("i")
        elif isinstance(event, BugCheck):
            params = ", ".join(f"{p:#x}" for p in event.params)
            out.write(f"kdcon-sim: bug check {event.code:#x} ({params})\n")
            return event
        elif isinstance(event, (BreakpointHit, BreakInStop)):
            machine.skip_break_instruction()
    raise RuntimeError("the machine never went quiet")


def replay(machine: Machine, requests: list[IoRequest], out: TextIO) -> int:
    """Boot ``machine``, run the requests, unload every driver; the exit status."""
    machine.boot()
    machine.io.on_result = lambda result: out.write(f"kdcon-sim: {result.describe()}\n")
    if _run_until_quiet(machine, out):
        return 1
    machine.io.post(*requests)
    if _run_until_quiet(machine, out):
        return 1
    machine.set_request(KiSimRequest.UNLOAD)
    if _run_until_quiet(machine, out):
        return 1
    out.flush()
    return 0
