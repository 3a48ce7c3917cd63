"""The machine as the kd session and stub see it: names, dictionaries and stop reports.

What it does: wraps ``kdcon.tools.simtarget.machine.Machine`` in the narrow interface of
stub.KdMachine and the session's run interface. Registers travel as dictionaries of
CONTEXT / KSPECIAL_REGISTERS field names; each stop event becomes a StopReport that
says how a real x64 kernel reports it: breakpoints and break-ins as STATUS_BREAKPOINT
(one parameter, BREAKPOINT_BREAK, as the captured break-in), single steps and debug
register hits as STATUS_SINGLE_STEP, a bugcheck as the STATUS_BREAKPOINT of
DbgBreakPointWithStatus inside KeBugCheckEx, CPU faults as first-chance exceptions,
image loads and unloads as LoadSymbols. Continue's trace flag and Dr7 are kept for the
next run. What it does not do: any protocol.
Spec: kd-protocol.md §3.4, §4.3-§4.4, §5.3, §5.5; simulated-target.md §5.11.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from kdcon.protocol.constants import NtStatus

from ..events import (
    BreakInStop,
    BreakpointHit,
    BugCheck,
    DataBreakpoint,
    DebugPrintStop,
    DebugPromptStop,
    ExceptionEvent,
    LoadSymbols,
    Rebooted,
    SingleStep,
    UnloadSymbols,
)
from ..machine import Machine
from .session import StopReport

__all__ = ["MachineAdapter", "TRACKDEMO_FLAVOURS", "default_driver"]

log = logging.getLogger(__name__)

BREAKPOINT_BREAK = 0  # ExceptionInformation[0] of an int 3 (§4.7 capture: one parameter)
_VERSION_BLOCK_SIZE = 40
_IMAGES = Path(__file__).resolve().parent.parent / "images"
TRACKDEMO_FLAVOURS = ("checked", "free")


def default_driver(flavour: str = "checked") -> Path:
    """The committed trackdemo.sys of one build flavour."""
    return _IMAGES / flavour / "trackdemo.sys"


class MachineAdapter:
    """``Machine`` through the kd stub's and session's interface."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self._trace = False

    @classmethod
    def create(cls, *, seed: int = 0, drivers: Sequence[str | PathLike[str]] = (),
               break_on_connect: bool = False, include_trackdemo: bool = True,
               flavour: str = "checked") -> MachineAdapter:
        """A booted machine with trackdemo (unless left out) and the given drivers.

        Raises the machine's ImageLoadError / MissingImportsError for a bad driver.
        """
        paths = [default_driver(flavour)] if include_trackdemo else []
        paths += [Path(p) for p in drivers]
        machine = Machine(seed=seed, drivers=paths, break_on_connect=break_on_connect)
        machine.boot()
        return cls(machine)

    # -- running -----------------------------------------------------------------------

    def run(self, until: Callable[[], bool] | None = None) -> Any:
        trace, self._trace = self._trace, False
        return self.machine.run(until=until, trace=trace)

    def resume(self, trace: bool, dr7: int | None) -> None:
        if dr7 is not None:
            self.machine.set_dr7(dr7)
        self._trace = trace

    def request_breakin(self) -> None:
        self.machine.request_breakin()

    def answer_prompt(self, text: str) -> None:
        self.machine.answer_prompt(text)

    def reboot(self) -> None:
        self._trace = False
        self.machine.reboot()

    def cause_bugcheck(self) -> None:
        self.machine.cause_bugcheck()

    def describe(self, stop: Any) -> StopReport:
        handler = _DESCRIBE.get(type(stop))
        if handler is None:
            return StopReport(kind="none")
        return handler(stop)

    # -- state ---------------------------------------------------------------------------

    def read_virtual(self, address: int, size: int) -> bytes:
        return self.machine.read_virtual(address, size)

    def write_virtual(self, address: int, data: bytes) -> int:
        return self.machine.write_virtual(address, data)

    def read_physical(self, address: int, size: int) -> bytes:
        return self.machine.read_physical(address, size)

    def write_physical(self, address: int, data: bytes) -> int:
        return self.machine.write_physical(address, data)

    def get_context(self) -> dict[str, Any]:
        context = self.machine.get_context()
        return {**_integers(context), "Xmm": tuple(context.Xmm)}

    def set_context(self, context: dict[str, Any]) -> None:
        current = self.machine.get_context()
        names = {f.name for f in dataclasses.fields(current)}
        changes = {k: v for k, v in context.items() if k in names}
        self.machine.set_context(current.replace(**changes))

    def get_special_registers(self) -> dict[str, int]:
        return _integers(self.machine.get_special_registers())

    def set_special_registers(self, registers: dict[str, int]) -> None:
        # The kernel debug registers are the CPU's Dr0-Dr7 (§5.5 index 2); the other
        # special registers of this flat machine are fixed.
        context = self.machine.get_context()
        changes = {f"Dr{n}": registers[f"KernelDr{n}"] for n in (0, 1, 2, 3, 6, 7)
                   if f"KernelDr{n}" in registers}
        self.machine.set_context(context.replace(**changes))

    def control_pointer(self, index: int) -> int | None:
        m = self.machine
        value = {0: lambda: m.kpcr, 1: lambda: m.kprcb, 3: lambda: m.current_thread}.get(index)
        return None if value is None else value()

    def current_thread(self) -> int:
        return self.machine.current_thread

    def write_breakpoint(self, address: int) -> int:
        return self.machine.write_breakpoint(address) or 0

    def restore_breakpoint(self, handle: int) -> bool:
        return self.machine.restore_breakpoint(handle)

    def read_msr(self, msr: int) -> int | None:
        return self.machine.read_msr(msr)

    def write_msr(self, msr: int, value: int) -> bool:
        return self.machine.write_msr(msr, value)

    def query_memory(self, address: int) -> str | None:
        info = self.machine.query_memory(address)
        if info is None:
            return None
        return "".join(c for c, ok in (("r", info.readable), ("w", info.writable),
                                       ("x", info.executable)) if ok)

    def version_block(self) -> bytes:
        return self.machine.read_virtual(self.machine.kd_version_block, _VERSION_BLOCK_SIZE)

    def close(self) -> None:
        closer = getattr(self.machine, "close", None)
        if closer is not None:
            closer()


def _integers(record: Any) -> dict[str, int]:
    return {k: v for k, v in dataclasses.asdict(record).items() if isinstance(v, int)}


def _text(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1", "replace")


def _image(stop: LoadSymbols | UnloadSymbols, unload: bool) -> StopReport:
    image = stop.image
    return StopReport(kind="load", path=image.path, base=image.base, size=image.size,
                      checksum=image.checksum, unload=unload)


_DESCRIBE: dict[type, Callable[[Any], StopReport]] = {
    DebugPrintStop: lambda s: StopReport(kind="print", text=_text(s.text)),
    DebugPromptStop: lambda s: StopReport(kind="prompt", text=_text(s.text), max_length=s.max_len),
    LoadSymbols: lambda s: _image(s, False),
    UnloadSymbols: lambda s: _image(s, True),
    BreakpointHit: lambda s: StopReport(kind="exception", code=NtStatus.STATUS_BREAKPOINT, address=s.pc,
                                        parameters=(BREAKPOINT_BREAK,)),
    BreakInStop: lambda s: StopReport(kind="exception", code=NtStatus.STATUS_BREAKPOINT, address=s.pc,
                                      parameters=(BREAKPOINT_BREAK,)),
    BugCheck: lambda s: StopReport(kind="exception", code=NtStatus.STATUS_BREAKPOINT, address=s.pc,
                                   parameters=(BREAKPOINT_BREAK,)),
    SingleStep: lambda s: StopReport(kind="exception", code=NtStatus.STATUS_SINGLE_STEP, address=s.pc),
    DataBreakpoint: lambda s: StopReport(kind="exception", code=NtStatus.STATUS_SINGLE_STEP,
                                         address=s.pc),
    ExceptionEvent: lambda s: StopReport(kind="exception", code=s.code, address=s.address,
                                         parameters=tuple(s.params),
                                         first_chance=s.first_chance),
    Rebooted: lambda s: StopReport(kind="rebooted"),
}
