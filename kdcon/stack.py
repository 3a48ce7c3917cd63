"""Stack walks for the session: unwind data from the local image first, the target second.

What it does: ``stack_frames(session)`` unwinds the current thread with
``unwind.unwind``, giving it, per module, the function table of the image file found
on the symbol path (matched by timestamp and size: no wire bytes for headers or
unwind data) or, failing that, the one read from target memory. Tables are kept for
the session, keyed by module base.
What it does not do: format frames (unwind.format_stack) or parse ``k`` options.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kdcon.symbols.errors import SymbolError

from .pdata import FunctionTable, UnwindError
from .registers import UNWIND_REGISTERS
from .unwind import Frame, unwind

if TYPE_CHECKING:
    from .session import Session

__all__ = ["stack_frames", "function_table_for"]

log = logging.getLogger(__name__)


def function_table_for(session: Session, address: int) -> FunctionTable | None:
    module = session.symbols.module_for(address)
    if module is None:
        return None
    tables: dict[int, FunctionTable | None] = session.__dict__.setdefault("_function_tables", {})
    if module.base in tables:
        return tables[module.base]
    table = _local_table(module)
    if table is None:
        table = FunctionTable.from_memory(lambda a, n: session.memory.read(a, n), module.base)
    tables[module.base] = table
    return table


def _local_table(module) -> FunctionTable | None:
    if not module.timestamp:
        return None
    try:
        found = module.locator.find(module.image_name, module.image_identity(),
                                    image_ext=module.image_name.rsplit(".", 1)[-1].lower())
    except (SymbolError, OSError) as exc:
        log.debug("%s: no local image: %s", module.name, exc)
        return None
    if not found.found or found.match is None or found.match.letter not in ("", "C"):
        return None
    try:
        with open(found.path, "rb") as handle:
            return FunctionTable.from_image(handle.read(), module.base)
    except (OSError, UnwindError) as exc:
        log.debug("%s: %s", found.path, exc)
        return None


# A walk reads the stack upwards in small pieces: fetch ahead to this much (to the
# page's end) so that one request serves several frames. A frame near the page's end
# also has its return address and four home slots read (40 bytes), so the fetch goes
# that far past the end: a walk to the top of a stack then costs no request of its own
# (a hole there is a short read, remembered as one).
_STACK_READ_AHEAD = 0x400
_FRAME_TAIL = 40


def stack_frames(session: Session, *, limit: int = 256, start: tuple[int, int] | None = None) -> list[Frame]:
    """The current thread's frames, or those from ``start`` (RIP, RSP: ``k = ...``)."""
    regs = session.registers
    regs.prefetch(*UNWIND_REGISTERS)      # one read of just the span the walk needs
    rip, rsp = start if start is not None else (regs.get("rip"), regs.get("rsp"))

    def read(address: int, size: int) -> bytes:
        if rsp <= address < rsp + 0x10000:
            ahead = min(_STACK_READ_AHEAD, 0x1000 - (address & 0xFFF) + _FRAME_TAIL)
            if ahead > size:
                session.read_virtual(address, ahead)
        return session.read_virtual(address, size)

    # Nonvolatile registers keep their values up the stack until a frame saved them.
    nonvolatile = {name: regs.get(name) for name in ("rbx", "rsi", "rdi", "r12", "r13", "r14", "r15")}
    return unwind(rip, rsp, regs.get("rbp"), registers=nonvolatile,
                  read=read,
                  function_for=lambda a: function_table_for(session, a), max_frames=limit)
