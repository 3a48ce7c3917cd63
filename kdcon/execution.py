"""Running the target: resume, step, and what each stop means to the user.

What it does: ``Executor`` resumes the target the way kd does and keeps the
breakpoint table true in the target: it steps off a breakpoint at the current
instruction before continuing, moves past a break instruction that is in the code
(``DbgBreakPoint``: an x64 kernel reports it with RIP on the ``int 3``, and the
debugger moves past it), writes the breakpoints the target lacks, arms the debug
registers for ``ba``. Each stop is then judged: module loads and unloads update the
module list and resolve deferred breakpoints, pass counts and event filters
(``sx*``) decide whether it is shown or the target goes on, and a stop shown prints
kd's lines (``Breakpoint 0 hit``, exception banners, the bugcheck and break-in
banners, ``module!function+0x10:`` and the instruction, from the state change alone).
What it does not do: parse commands (commands/execution.py) or wait on the wire
itself (session.py).

Rule (x64 kd64, ReactOS KdpSetCommonState, facts only): when the target reports a
stop it deletes its breakpoints inside the reported instruction stream; a debugger
keeps them in its own table and writes them again before resuming.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kdcon.protocol.constants import ContinueStatus
from kdcon.protocol.host import DR7_DEFAULT, TargetError

from .breakpoints import Breakpoint
from .stops import BREAKIN_BANNER, SX_CODES, Stop, StopKind, bugcheck_banner, exception_banner

if TYPE_CHECKING:
    from .console import Console

__all__ = ["Executor", "StopOutcome"]

log = logging.getLogger(__name__)

_INT3 = 0xCC
_KSPECIAL_DR_OFFSET = 0x20          # KernelDr0 in KSPECIAL_REGISTERS (x64)
_SX_BY_CODE = {code: name for name, code in SX_CODES.items()}


@dataclass
class StopOutcome:
    """A stop as shown to the user."""

    stop: Stop
    breakpoint: Breakpoint | None = None
    bugcheck: tuple[int, tuple[int, int, int, int]] | None = None


class Executor:
    """Resume, step and stop handling for one console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.session = console.session
        self.output = console.output
        self.deadline: float | None = None
        self.continue_requested = False     # a ``g`` inside a breakpoint command string
        self.in_breakpoint_commands = False
        self.last: StopOutcome | None = None
        self._dr7 = DR7_DEFAULT
        self._armed: dict[int, int] = {}     # slot -> address written to KernelDrN

    # -- breakpoints in the target -------------------------------------------------------

    def _insert_breakpoints(self, skip: int | None = None) -> None:
        done: dict[int, int] = {}
        for bp in self.session.breakpoints:
            if bp.hardware or not bp.enabled or bp.address is None or bp.address == skip:
                continue
            if bp.handle is not None:
                done[bp.address] = bp.handle
                continue
            if bp.address in done:
                bp.handle = done[bp.address]
                continue
            try:
                bp.handle = self._write_breakpoint(bp)
                done[bp.address] = bp.handle
            except TargetError:
                self.output.line(f"Unable to insert breakpoint {bp.id} at "
                                 f"{self.console.format_address(bp.address)}, the target refused it")

    def _write_breakpoint(self, bp: Breakpoint) -> int:
        host = self.session.host
        assert bp.address is not None
        try:
            return host.write_breakpoint(bp.address)
        except TargetError:
            if bp.stale_handle is None:
                raise
            # The target kept the entry this stop was thought to have deleted.
            host.restore_breakpoint(bp.stale_handle)
            return host.write_breakpoint(bp.address)
        finally:
            bp.stale_handle = None

    def forget_written(self) -> None:
        """A target that was reattached holds none of our breakpoints as far as the
        table knows: every one, and the debug registers, are written at the next resume."""
        for bp in self.session.breakpoints:
            bp.handle = bp.stale_handle = None
        self._armed = {}

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        """Take ``bp`` out of the target (when halted) unless another id shares it."""
        handle = bp.handle if bp.handle is not None else bp.stale_handle
        bp.handle = bp.stale_handle = None
        if handle is None or not self.session.halted:
            return
        if any(other is not bp and other.handle == handle for other in self.session.breakpoints):
            return
        self.session.host.restore_breakpoint(handle)

    def _forget_in_stream(self, stop: Stop) -> None:
        """The target dropped its breakpoints inside the instruction stream it sent."""
        end = stop.pc + max(1, len(stop.instruction_stream))
        for bp in self.session.breakpoints:
            if bp.handle is not None and bp.address is not None and stop.pc <= bp.address < end:
                bp.stale_handle, bp.handle = bp.handle, None

    def _arm_hardware(self) -> int:
        wanted = {bp.slot: bp for bp in self.session.breakpoints
                  if bp.hardware and bp.enabled and bp.address is not None and bp.slot is not None}
        addresses = {slot: bp.address for slot, bp in wanted.items()}
        dr7 = DR7_DEFAULT
        for slot, bp in wanted.items():
            rw = {"e": 0, "w": 1, "i": 2, "r": 3}[bp.access]
            size = {1: 0, 2: 1, 8: 2, 4: 3}[bp.size]
            dr7 |= 1 << (2 * slot) | (rw | size << 2) << (16 + 4 * slot)
        if addresses != self._armed:
            host = self.session.host
            special = bytearray(host.read_special_registers())
            for slot in range(4):
                struct.pack_into("<Q", special, _KSPECIAL_DR_OFFSET + 8 * slot,
                                 addresses.get(slot, 0) or 0)
            host.write_control_space(2, bytes(special[:_KSPECIAL_DR_OFFSET + 0x30]))
            self._armed = dict(addresses)  # type: ignore[arg-type]
        return dr7

    # -- resuming --------------------------------------------------------------------------

    def resume(self, *, trace: bool = False, status: int | None = None) -> Stop:
        """Resume (or trace one instruction) from the current stop and wait for the next."""
        session = self.session
        session.require_halted()
        # The target goes on from its own registers, not from a .cxr/.trap view of them.
        session.registers.clear_override()
        stop = session.stop
        assert stop is not None
        pc = session.current_pc()
        at_breakpoint = [bp for bp in session.breakpoints.at(pc) if bp.enabled]
        if stop.is_breakpoint and not at_breakpoint and stop.exception_address == pc and \
                stop.instruction_stream[:1] == bytes([_INT3]):
            # A break instruction in the code: the debugger moves past it (x64 reports
            # RIP on the int 3; kd-protocol.md, simulated-target docs).
            session.registers.set("rip", pc + 1)
            pc += 1
        if status is None:
            status = ContinueStatus.DBG_CONTINUE
            if stop.kind is StopKind.EXCEPTION and not (stop.is_breakpoint or stop.is_single_step):
                status = ContinueStatus.DBG_EXCEPTION_NOT_HANDLED
        if at_breakpoint and not trace:
            # Step off our own breakpoint first, then write it again.
            for bp in at_breakpoint:
                self.remove_breakpoint(bp)
            self._insert_breakpoints(skip=pc)
            session.resume(trace=True, dr7=self._arm_hardware())
            stepped = self._wait()
            if not stepped.is_single_step or stepped.dr6 & 0xF:
                return stepped
        elif at_breakpoint:
            for bp in at_breakpoint:
                self.remove_breakpoint(bp)
            self._insert_breakpoints(skip=pc)
            session.resume(trace=True, status=status, dr7=self._arm_hardware())
            return self._wait()
        self._insert_breakpoints()
        dr7 = self._arm_hardware()
        session.resume(trace=trace, status=status, dr7=dr7)
        return self._wait()

    def _wait(self) -> Stop:
        stop = self.session.wait(self.deadline)
        if stop.kind is StopKind.EXCEPTION:
            self._forget_in_stream(stop)
        return stop

    def run(self, *, trace: bool = False, stepping: bool = False) -> StopOutcome:
        """Resume until a stop the user should see, handling the others on the way."""
        stop = self.resume(trace=trace)
        while True:
            outcome = self.judge(stop, stepping=stepping)
            if outcome is not None:
                self.last = outcome
                return outcome
            stop = self.resume()

    # -- judging stops -----------------------------------------------------------------------

    def judge(self, stop: Stop, *, stepping: bool = False) -> StopOutcome | None:
        """What ``stop`` means: None when the target should simply go on."""
        settings = self.console.settings
        if stop.kind is StopKind.LOAD:
            info = self.session.module_loaded(stop)
            self.console.emit_event("module_load", name=info.name, base=info.base,
                                    size=info.size)
            self.resolve_deferred()
            mode = settings.exceptions.get("ld", "sxn")
            wanted = settings.load_filter
            if mode in ("sxe", "sxn"):
                self.output.event_text(f"ModLoad: {self.console.format_address(info.base)} "
                                       f"{self.console.format_address(info.base + info.size)}"
                                       f"   {info.name}\n")
            if mode == "sxe" and (wanted is None or _module_matches(info.name, wanted)):
                return StopOutcome(stop)
            return None
        if stop.kind is StopKind.UNLOAD:
            gone = self.session.module_unloaded(stop)
            name = gone.name if gone is not None else stop.image_name
            self.console.emit_event("module_unload", name=name, base=stop.image_base)
            self._forget_module(name)
            if settings.exceptions.get("ud", "sxn") in ("sxe", "sxn"):
                self.output.event_text(f"Unload module {name} at "
                                       f"{self.console.format_address(stop.image_base)}\n")
            return StopOutcome(stop) if settings.exceptions.get("ud") == "sxe" else None
        if stop.kind is not StopKind.EXCEPTION:
            return StopOutcome(stop)
        if stop.is_breakpoint:
            ours = [bp for bp in self.session.breakpoints.at(stop.pc) if bp.enabled]
            if ours:
                return self._hit(stop, ours[0], stepping)
            return StopOutcome(stop, bugcheck=self._bugcheck(stop))
        if stop.is_single_step:
            if stop.dr6 & 0xF:
                slot = (stop.dr6 & 0xF).bit_length() - 1
                bp = next((b for b in self.session.breakpoints if b.hardware and b.slot == slot), None)
                if bp is not None:
                    return self._hit(stop, bp, stepping)
            return StopOutcome(stop)
        name = _SX_BY_CODE.get(stop.code, f"{stop.code:x}")
        mode = settings.exceptions.get(name, settings.exceptions.get("*", "sxd"))
        if mode == "sxe" or not stop.first_chance:
            return StopOutcome(stop)
        if mode == "sxn":
            self.output.event_text(exception_banner(stop) + "\n")
        return None

    def _hit(self, stop: Stop, bp: Breakpoint, stepping: bool) -> StopOutcome | None:
        bp.hits += 1
        if bp.passes > 1 and not stepping:
            bp.passes -= 1
            return None
        # The callback runs at every hit; a step always ends where it stopped.
        if bp.callback is not None and not bp.callback(bp) and not stepping:
            return None
        if bp.one_shot:
            self.remove_breakpoint(bp)
            self.session.breakpoints.remove(bp)
        return StopOutcome(stop, breakpoint=bp)

    def _bugcheck(self, stop: Stop) -> tuple[int, tuple[int, int, int, int]] | None:
        name = self.session.symbols.name_for(stop.pc) or ""
        data = self.session.debugger_data
        # A block cut short (a damaged or hostile reply) leaves the field None.
        if not name.startswith("nt!DbgBreakPointWithStatus") or data is None \
                or not data.KiBugcheckData:
            return None
        raw = self.session.read_virtual(data.KiBugcheckData, 40)
        if len(raw) < 40:
            return None
        code, *params = struct.unpack("<5Q", raw)
        if not code:
            return None
        return code & 0xFFFFFFFF, tuple(params)  # type: ignore[return-value]

    # -- module events ---------------------------------------------------------------------

    def resolve_deferred(self) -> list[Breakpoint]:
        """Resolve every unresolved ``bu`` whose module is now known."""
        resolved = []
        for bp in self.session.breakpoints:
            if bp.address is not None or bp.hardware:
                continue
            address = self.console.try_resolve(bp.expression)
            if address is not None:
                bp.address = address
                module = self.session.symbols.module_for(address)
                bp.module = module.name if module is not None else None
                resolved.append(bp)
        return resolved

    def _forget_module(self, name: str) -> None:
        module = name.rsplit(".", 1)[0].casefold()
        for bp in list(self.session.breakpoints):
            if bp.module is None or bp.module.casefold() != module:
                continue
            bp.handle = bp.stale_handle = None
            if bp.kind == "bp":
                self.session.breakpoints.remove(bp)
            else:
                bp.address = None

    # -- showing a stop -------------------------------------------------------------------------

    def show(self, outcome: StopOutcome, *, registers: bool = False, banner: bool = True) -> None:
        stop = outcome.stop
        state = self.console.state
        state.next_unassemble = state.next_dump = None
        lines: list[str] = []
        if outcome.bugcheck is not None:
            code, params = outcome.bugcheck
            lines += bugcheck_banner(code, params)
        elif outcome.breakpoint is not None:
            lines.append(f"Breakpoint {outcome.breakpoint.id} hit")
        elif stop.kind is StopKind.EXCEPTION and not stop.is_single_step and banner:
            lines.append(exception_banner(stop))
            name = self.session.symbols.name_for(stop.pc) or ""
            if stop.is_breakpoint and name == "nt!DbgBreakPointWithStatus":
                lines.append(BREAKIN_BANNER)
        elif stop.is_single_step and not registers and outcome.breakpoint is None \
                and not self.console.state.values.get("stepping"):
            lines.append(exception_banner(stop))
        if registers:
            from .registers import format_registers

            lines += format_registers(self.session.registers)
        location = self.console.location_lines(stop.pc, stop.instruction_stream)
        if len(location) > 1:
            from .commands.source import source_suffix

            suffix = source_suffix(self.console, stop.pc)
            if suffix:
                location[0] = location[0][:-1] + suffix + ":"
        lines += location
        self.output.event_text("\n".join(lines) + "\n")
        self.console.emit_event("stop", **self.describe(outcome))

    def describe(self, outcome: StopOutcome) -> dict:
        stop = outcome.stop
        fields: dict = {"reason": stop.kind.value, "pc": stop.pc, "processor": stop.processor,
                        "symbol": self.session.symbols.name_for(stop.pc)}
        if stop.kind is StopKind.EXCEPTION:
            fields["code"] = stop.code
            fields["first_chance"] = stop.first_chance
        if outcome.breakpoint is not None:
            fields["reason"] = "breakpoint"
            fields["breakpoint"] = outcome.breakpoint.id
        if outcome.bugcheck is not None:
            fields["reason"] = "bugcheck"
            fields["bugcheck"] = {"code": outcome.bugcheck[0], "parameters": list(outcome.bugcheck[1])}
        if stop.kind in (StopKind.LOAD, StopKind.UNLOAD):
            fields["module"] = stop.image_name
        return fields


def _module_matches(image_name: str, wanted: str) -> bool:
    import fnmatch

    stem = image_name.rsplit(".", 1)[0]
    return fnmatch.fnmatch(stem.lower(), wanted.lower()) or \
        fnmatch.fnmatch(image_name.lower(), wanted.lower())

