"""Stops: what a state change says, and the lines kd prints for it.

What it does: turns a ``StateChange`` event into a ``Stop`` (an exception with its
record and the control report's instruction bytes, or a module load or unload), and
gives the banner lines kd prints for each kind of exception, the bugcheck banner and
the break-in banner. Everything here comes from the state change itself: showing a
stop costs no request.
What it does not do: decide what happens next (session.py) or disassemble.
Spec: kd-protocol.md §4 (state change, exception record, control report); kd's text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kdcon.protocol.constants import NtStatus, StateChange as NewState
from kdcon.protocol.events import StateChange

__all__ = ["Stop", "StopKind", "exception_banner", "BREAKIN_BANNER", "bugcheck_banner",
           "EXCEPTION_NAMES", "SX_CODES"]


class StopKind(enum.Enum):
    EXCEPTION = "exception"
    LOAD = "load"
    UNLOAD = "unload"
    COMMAND = "command"


@dataclass(frozen=True, slots=True)
class Stop:
    """One stop of the target, as the state change reported it."""

    kind: StopKind
    processor: int
    processor_count: int
    thread: int
    pc: int
    code: int = 0
    first_chance: bool = True
    exception_address: int = 0
    parameters: tuple[int, ...] = ()
    instruction_stream: bytes = b""
    dr6: int = 0
    dr7: int = 0
    eflags: int = 0
    image_path: str = ""
    image_base: int = 0
    image_size: int = 0
    image_checksum: int = 0
    raw: StateChange | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_state_change(cls, event: StateChange) -> Stop:
        msg = event.message
        report = msg.ControlReport.Amd64ControlReport
        common = dict(processor=msg.Processor, processor_count=msg.NumberProcessors,
                      thread=msg.Thread, pc=msg.ProgramCounter,
                      instruction_stream=bytes(report.InstructionStream[:report.InstructionCount]),
                      dr6=report.Dr6, dr7=report.Dr7, eflags=report.EFlags, raw=event)
        if msg.NewState == NewState.DbgKdExceptionStateChange:
            record = msg.u.ExceptionRecord
            count = min(record.NumberParameters, 15)
            return cls(kind=StopKind.EXCEPTION, code=record.ExceptionCode,
                       first_chance=bool(msg.u.FirstChance),
                       exception_address=record.ExceptionAddress,
                       parameters=tuple(record.ExceptionInformation[:count]), **common)
        if msg.NewState == NewState.DbgKdLoadSymbolsStateChange:
            load = msg.u
            path = event.data.split(b"\0", 1)[0].decode("latin-1")
            return cls(kind=StopKind.UNLOAD if load.UnloadSymbols else StopKind.LOAD,
                       image_path=path, image_base=load.BaseOfDll, image_size=load.SizeOfImage,
                       image_checksum=load.CheckSum, **common)
        return cls(kind=StopKind.COMMAND, **common)

    @property
    def image_name(self) -> str:
        return self.image_path.replace("/", "\\").rsplit("\\", 1)[-1]

    @property
    def is_breakpoint(self) -> bool:
        return self.kind is StopKind.EXCEPTION and self.code == NtStatus.STATUS_BREAKPOINT

    @property
    def is_single_step(self) -> bool:
        return self.kind is StopKind.EXCEPTION and self.code == NtStatus.STATUS_SINGLE_STEP


# kd's names for the exceptions it announces; anything else is "Unknown exception".
EXCEPTION_NAMES = {
    0x80000003: "Break instruction exception",
    0x80000004: "Single step exception",
    0xC0000005: "Access violation",
    0xC0000094: "Integer divide-by-zero",
    0xC0000095: "Integer overflow",
    0xC000001D: "Illegal instruction",
    0xC0000096: "Privileged instruction",
    0x80000002: "Data misaligned",
    0xC00000FD: "Stack overflow",
    0xC0000409: "Security check failure or stack buffer overrun",
    0xC0000420: "Assertion failure",
    0xC000008E: "Floating-point division-by-zero",
    0xC0000090: "Floating-point invalid operation",
    0xC0000006: "In-page I/O error",
    0xC0000025: "Cannot continue",
}

# The event filters sxe/sxd/sxn/sxi take, by the short names kd uses.
SX_CODES = {
    "av": 0xC0000005, "bpe": 0x80000003, "sse": 0x80000004, "dz": 0xC0000094,
    "iov": 0xC0000095, "ii": 0xC000001D, "gp": 0xC0000096, "dm": 0x80000002,
    "sov": 0xC00000FD, "isc": 0xC0000409, "asrt": 0xC0000420, "ip": 0xC0000006,
    "c000008e": 0xC000008E,
}


def exception_banner(stop: Stop) -> str:
    name = EXCEPTION_NAMES.get(stop.code, "Unknown exception")
    chance = "first chance" if stop.first_chance else "!!! second chance !!!"
    return f"{name} - code {stop.code:08x} ({chance})"


BREAKIN_BANNER = """\
*******************************************************************************
*                                                                             *
*   You are seeing this message because you pressed either                    *
*       CTRL+C (if you run console kernel debugger) or,                       *
*       CTRL+BREAK (if you run GUI kernel debugger),                          *
*   on your debugger machine's keyboard.                                      *
*                                                                             *
*                   THIS IS NOT A BUG OR A SYSTEM CRASH                       *
*                                                                             *
* If you did not intend to break into the debugger, press the "g" key, then   *
* press the "Enter" key now.  This message might immediately reappear.  If it *
* does, press "g" and "Enter" again.                                          *
*                                                                             *
*******************************************************************************"""


def bugcheck_banner(code: int, parameters: tuple[int, int, int, int]) -> list[str]:
    """kd's lines when the target stops in KeBugCheckEx with the debugger attached.
    The ``*** Fatal System Error`` lines before them are the kernel's own DbgPrint."""
    del code, parameters
    return [
        "Break instruction exception - code 80000003 (first chance)",
        "",
        "A fatal system error has occurred.",
        "Debugger entered on first try; Bugcheck callbacks have not been invoked.",
        "",
        "A fatal system error has occurred.",
        "",
        "For analysis of this file, run !analyze -v",
    ]
