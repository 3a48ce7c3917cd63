"""What MASM expressions see of the session: symbols, registers, pseudo-registers, memory.

What it does: ``SessionEvalContext`` answers the expression evaluator's questions
from the live session: ``module!name`` and bare names through the symbol session,
registers through the current stop's register windows, and the pseudo-registers kd
defines (``$ip``, ``$ra``, ``$csp``, ``$retreg``, ``$thread``, ``$proc``, ``$prcb``,
``$pcr``, ``$exentry``, ``$ptrsize``, ``$pagesize``, ``$bpN``, ``$t0``-``$t19``, ``$ea``,
``$p``), reading the target only for those that need it.
What it does not do: parse expressions (expr.py).
Spec: windbg.md §0.4; WinDbg's pseudo-register table.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .registers import REGISTERS

if TYPE_CHECKING:
    from .session import Session

__all__ = ["SessionEvalContext", "UserRegisters"]

# KPCR/KPRCB facts of x64 Windows: KPCR.CurrentPrcb at 0x20 is unused here (control
# space gives both), KPRCB.CurrentThread at 0x8, KTHREAD.ApcState.Process at 0xB8 for
# the kernels whose PDB does not say (the simulated kernel's PDB does).
_PRCB_CURRENT_THREAD = 0x8


class UserRegisters:
    """``$t0``-``$t19`` and the values the console remembers between commands."""

    def __init__(self) -> None:
        self.values = [0] * 20
        self.last_effective_address = 0
        self.last_value = 0


class SessionEvalContext:
    """The evaluator's view of a ``Session``."""

    def __init__(self, session: Session, user: UserRegisters) -> None:
        self.session = session
        self.user = user

    @property
    def pointer_size(self) -> int:
        return self.session.pointer_size

    def symbol(self, name: str) -> int | None:
        session = self.session
        address = session.symbols.address_of(name)
        if address is None and "!" in name:
            module_name, _, rest = name.partition("!")
            if not rest:
                module = session.symbols.module(module_name)
                return module.base if module is not None else None
        if address is None and "!" not in name:
            module = session.symbols.module(name)
            if module is not None:
                return module.base
        return address

    def source_line(self, spec: str) -> int | None:
        """The address of a source-line expression (without its grave accents)."""
        # Only a line without a file needs the current instruction's file.
        pc = self.register("$ip") if spec.rpartition("!")[2].startswith(":") else None
        return self.session.symbols.address_of_line(spec, pc)

    def register(self, name: str) -> int | None:
        name = name.lower()
        if name.startswith("$"):
            return self._pseudo(name[1:])
        if name in REGISTERS:
            return self.session.registers.get(name)
        return None

    def read_virtual(self, address: int, size: int) -> bytes:
        return self.session.read_virtual(address, size)

    def read_physical(self, address: int, size: int) -> bytes:
        return self.session.read_physical(address, size)

    def _pseudo(self, name: str) -> int | None:
        session = self.session
        if name.startswith("t") and name[1:].isdigit() and int(name[1:]) < 20:
            return self.user.values[int(name[1:])]
        if name.startswith("bp") and name[2:].isdigit():
            bp = session.breakpoints.get(int(name[2:], 10))
            return bp.address if bp is not None and bp.address is not None else None
        if name == "ptrsize":
            return session.pointer_size
        if name == "pagesize":
            return 0x1000
        if name == "ea":
            return self.user.last_effective_address
        if name == "p":
            return self.user.last_value
        if name == "ip":
            return session.registers.get("rip")
        if name == "csp":
            return session.registers.get("rsp")
        if name in ("retreg", "retreg64"):
            return session.registers.get("rax")
        if name == "ra":
            return self._return_address()
        if name == "exentry":
            return self._kernel_entry()
        if name == "pcr":
            return self._control_pointer(0)
        if name == "prcb":
            return self._control_pointer(1)
        if name == "thread":
            if session.stop is not None and session.stop.thread:
                return session.stop.thread
            return self._control_pointer(3)
        if name == "proc":
            return self._current_process()
        return None

    def _control_pointer(self, index: int) -> int | None:
        data = self.session.host.read_control_space(index, 8)
        return struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else None

    def _return_address(self) -> int | None:
        from .stack import stack_frames

        frames = stack_frames(self.session, limit=2)
        return frames[0].return_address if frames else None

    def _kernel_entry(self) -> int | None:
        module = self.session.symbols.module("nt")
        if module is None or module.image is None:
            return None
        entry = getattr(module.image, "entry_point", None)
        return module.base + entry if entry else None

    def _current_process(self) -> int | None:
        thread = self._pseudo("thread")
        if not thread:
            return None
        offset = self.session.field_offset("nt!_KTHREAD", "ApcState.Process")
        if offset is None:
            offset = self.session.field_offset("nt!_KTHREAD", "Process")
        if offset is None:
            return None
        data = self.session.read_virtual(thread + offset, 8)
        return struct.unpack("<Q", data)[0] if len(data) == 8 else None
