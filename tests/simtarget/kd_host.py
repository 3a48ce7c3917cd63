"""A KD host for the target's tests: the protocol layer's KdLink in the HOST role.

Events go to a queue the test reads with ``wait_for`` (skipped ones stay in ``seen``;
DbgPrint texts also collect in ``prints``); ``request`` is KdLink's, with its timeout
and retry. Everything waits on queues with timeouts: no sleeps. Test plumbing only.

``continue2`` resumes as a debugger does: from a STATUS_BREAKPOINT stop on an ``int 3``
of the code (the control report shows 0xCC at the PC; a breakpoint the host set shows
its original byte), it first moves RIP past the ``int 3`` with GetContext/SetContext,
as dbgeng does on x64, where the target reports RIP on the ``int 3``.
"""

from __future__ import annotations

import queue
import time
from typing import Any

from kdcon.protocol import Role
from kdcon.protocol.constants import ContinueStatus, ManipulateApi as A
from kdcon.protocol.constants import NtStatus, StateChange as NewState
from kdcon.protocol.context import CONTEXT_CONTROL, Context, SpecialRegisters
from kdcon.protocol.events import DebugPrint, Event, ManipulateReply, StateChange
from kdcon.protocol.host import KdHost as ProtocolHost
from kdcon.protocol.link import KdLink, LinkClosed


class KdHost:
    def __init__(self, port: Any, *, start: bool = True) -> None:
        self.seen: list[Event] = []
        self.last_stop: StateChange | None = None
        self.prints: list[bytes] = []
        self._events: queue.Queue[Event] = queue.Queue()
        # start=False: ``reset`` starts the reader, so nothing is read before the attach.
        self.link = KdLink(port, Role.HOST, on_event=self._on_event, start=start)
        self.conn = self.link.connection
        self.api = ProtocolHost(self.link, timeout=10.0, retries=0)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, DebugPrint):
            self.prints.append(event.text)
        elif isinstance(event, StateChange):
            self.last_stop = event
        self._events.put(event)

    def send(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.link.call(method, *args, **kwargs)

    def wait_for(self, kind: type | tuple[type, ...], timeout: float = 10.0,
                 where: Any = None) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} within {timeout} s; saw {self.seen[-5:]}")
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(event)
            if isinstance(event, LinkClosed):
                raise EOFError(f"the target link closed: {event.reason}")
            if isinstance(event, kind) and (where is None or where(event)):
                return event

    def request(self, api: int, u: dict | None = None, data: bytes = b"", *,
                timeout: float = 10.0) -> ManipulateReply:
        reply = self.link.request(api, u, data, timeout=timeout, retries=0)
        assert reply is not None
        return reply

    # Typed requests are the protocol layer's (kdcon.protocol.host); these keep the
    # shapes the tests were written against.

    def read_virtual(self, address: int, size: int) -> bytes:
        return self.api.read_virtual(address, size)

    def read_physical(self, address: int, size: int) -> bytes:
        return self.api.read_physical(address, size)

    def write_physical(self, address: int, data: bytes) -> int:
        return self.api.write_physical(address, data)

    def write_virtual(self, address: int, data: bytes) -> int:
        return self.api.write_virtual(address, data)

    def special_registers(self) -> SpecialRegisters:
        """KSPECIAL_REGISTERS: control space index 2 (kd-protocol.md §5.5)."""
        return SpecialRegisters.from_bytes(self.api.read_special_registers())

    def get_context(self) -> Context:
        return Context.from_bytes(self.api.get_context())

    def set_context(self, context: Context, flags: int = CONTEXT_CONTROL) -> int:
        return self.request(A.DbgKdSetContextApi, dict(ContextFlags=flags), context.to_bytes()).return_status

    def stopped_on_break_instruction(self) -> bool:
        """The last stop is a STATUS_BREAKPOINT on an ``int 3`` of the code."""
        stop = self.last_stop
        if stop is None or stop.new_state != NewState.DbgKdExceptionStateChange:
            return False
        report = stop.message.ControlReport.Amd64ControlReport
        return (stop.message.u.ExceptionRecord.ExceptionCode == NtStatus.STATUS_BREAKPOINT
                and report.InstructionCount > 0 and report.InstructionStream[0] == 0xCC)

    def skip_break_instruction(self) -> None:
        """Move RIP one byte on, past the ``int 3`` the target stopped on."""
        context = self.get_context()
        assert self.set_context(context.replace(Rip=context.Rip + 1)) == 0

    def continue2(self, *, trace: bool = False, dr7: int = 0x400, skip_break: bool = True) -> None:
        if skip_break and self.stopped_on_break_instruction():
            self.skip_break_instruction()
        self.last_stop = None
        self.send("send_manipulate", A.DbgKdContinueApi2, dict(
            ContinueStatus=ContinueStatus.DBG_CONTINUE,
            ControlSet=dict(Amd64=dict(TraceFlag=int(trace), Dr7=dr7, CurrentSymbolStart=1,
                                       CurrentSymbolEnd=0))))

    def breakin(self) -> None:
        self.link.send_breakin()

    def reset(self, timeout: float = 20.0) -> StateChange:
        """Attach to a target that may already talk: KdLink.sync without a break-in, so
        a booting target is not stopped early. Returns the state change the target sends
        after answering RESET (one sent before that answer is superseded, §3.2)."""
        return self.link.sync(timeout, breakin=False)

    def next_stop(self, timeout: float = 10.0) -> StateChange:
        return self.wait_for(StateChange, timeout)

    def close(self) -> None:
        self.link.close()
