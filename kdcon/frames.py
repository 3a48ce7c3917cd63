"""The local context: which stack frame ``dv`` and ``.frame`` look at, and its variables.

What it does: ``selected_frame`` / ``select_frame`` keep the frame number ``.frame``
chose; the choice lapses when the target runs or the registers change (the
documented rule), which is checked by remembering the stop and RIP and RSP with it. ``frame_locals``
reads the procedure's variables from the module's PDB (``kdcon.symbols.pdb.locals``)
and works out where each one is in that frame: RSP-relative variables against the
frame's stack pointer after its prolog (its caller's Child-SP, less the return
address, the callee-saved pushes and the fixed allocation the PDB records, so a
frame stopped inside its prolog still finds them), others against the register's
value in that frame. A variable whose PDB location ranges do not cover the frame's
address (``Local.live``) has no place at all: its value is unavailable there, for
``dv`` as for ``kp``.
What it does not do: format values (commands/types.py with kdcon.render.types).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kdcon.symbols.errors import SymbolError
from kdcon.symbols.pdb.locals import Local, ProcedureLocals, procedure_locals
from kdcon.symbols.pdb.pdbfile import open_pdb

from .trapframes import walk
from .unwind import Frame

if TYPE_CHECKING:
    from .console import Console

__all__ = ["Variable", "FrameLocals", "FrameRegisters", "selected_frame", "select_frame",
           "frames_to", "frame_locals", "NoLocals"]

log = logging.getLogger(__name__)

_KEY = "local_context"


class NoLocals(Exception):
    """The frame's module has no PDB with private symbols for this procedure."""


@dataclass(frozen=True)
class Variable:
    local: Local
    type: Any                      # TypeInfo, None when the type index is unknown
    address: int | None            # where it lives in memory, None for a register
    register_value: int | None     # a variable held in a register: its value


@dataclass(frozen=True)
class FrameLocals:
    procedure: ProcedureLocals
    variables: list[Variable]


def _context_now(console: Console) -> tuple[Any, int, int]:
    regs = console.session.registers
    return console.session.stop, regs.get("rip"), regs.get("rsp")


def selected_frame(console: Console) -> int:
    """The frame ``.frame`` chose, 0 once the target ran or the registers changed."""
    chosen = console.state.values.get(_KEY)
    if not chosen:
        return 0
    number, stop, rip, rsp = chosen
    now_stop, now_rip, now_rsp = _context_now(console)
    if stop is not now_stop or (rip, rsp) != (now_rip, now_rsp):
        console.state.values.pop(_KEY, None)
        return 0
    return number


def select_frame(console: Console, number: int) -> None:
    console.state.values[_KEY] = (number, *_context_now(console))


def frames_to(console: Console, number: int) -> list[Frame]:
    """The walk as far as frame ``number`` and one more (its caller says where its
    return address is)."""
    return walk(console.session, console.symbolizer, number + 2)[0]


def frame_locals(console: Console, frames: list[Frame], number: int) -> FrameLocals:
    frame = frames[number]
    session = console.session
    module = session.symbols.module_for(frame.instruction_pointer)
    if module is None:
        raise NoLocals("no module holds this frame's code")
    try:
        module.index  # loads the module's symbols, which names its symbol file
        path = module.symbol_file
        table = module.types
    except SymbolError as exc:
        raise NoLocals(str(exc)) from exc
    if not path or not path.lower().endswith(".pdb") or table is None:
        raise NoLocals(f"{module.name} has no PDB")
    # A return address points after its call: the call itself is what the frame runs.
    at = frame.instruction_pointer - (1 if number else 0) - module.base
    try:
        with open_pdb(path) as pdb:
            procedure = procedure_locals(pdb, at)
    except (SymbolError, OSError) as exc:
        raise NoLocals(f"{path}: {exc}") from exc
    if procedure is None:
        raise NoLocals(f"{module.name} has no private symbols for this address")
    base = _stack_base(frames, number, procedure)
    variables = []
    for local in procedure.variables:
        try:
            info = table.by_index(local.type_index)
        except SymbolError as exc:
            log.debug("type 0x%x: %s", local.type_index, exc)
            info = None
        variables.append(_place(local, info, frame, base, session))
    return FrameLocals(procedure, variables)


def _stack_base(frames: list[Frame], number: int, procedure: ProcedureLocals) -> int:
    """The frame's RSP after its prolog."""
    frame = frames[number]
    if number + 1 < len(frames):
        return_slot = frames[number + 1].child_sp - 8
        return return_slot - procedure.callee_saved - procedure.frame_size
    return frame.child_sp


def _place(local: Local, info: Any, frame: Frame, base: int, session: Any) -> Variable:
    register = local.register
    # No location record covers the frame's address (a parameter its prolog has yet
    # to store, say): the place the PDB names holds something else, so dv and kp
    # both say the value is unavailable rather than show it.
    if register is None or not local.live:
        return Variable(local, info, None, None)
    if local.offset is None:
        return Variable(local, info, None, _register(frame, register, session))
    if register in ("rsp", "esp"):
        return Variable(local, info, base + local.offset, None)
    value = _register(frame, register, session)
    return Variable(local, info, None if value is None else value + local.offset, None)


_FULL_REGISTER = {"eax": "rax", "ebx": "rbx", "ecx": "rcx", "edx": "rdx", "esi": "rsi",
                  "edi": "rdi", "ebp": "rbp", "esp": "rsp"}


def _register(frame: Frame, name: str, session: Any) -> int | None:
    # A 32-bit value in a 64-bit register: the PDB names the low half (esi for rsi).
    name = _FULL_REGISTER.get(name, name)
    value = frame.registers.get(name) if frame.registers else None
    if value is None and name == "rbp" and frame.frame_pointer is not None:
        value = frame.frame_pointer
    if value is None and frame.number == 0:
        value = session.registers.get(name)
    return value


class FrameRegisters:
    """A frame's registers where the walk knows them, the thread's otherwise."""

    def __init__(self, frame: Frame, registers: Any) -> None:
        self._frame = frame
        self._registers = registers

    def get(self, name: str) -> int:
        if name == "rip":
            return self._frame.instruction_pointer
        if name == "rsp":
            return self._frame.child_sp
        known = self._frame.registers.get(name) if self._frame.registers else None
        return known if known is not None else self._registers.get(name)
