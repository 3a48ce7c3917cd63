"""The REPL's bottom toolbar: the link, the target's state, where it stopped, the wire.

What it does: ``toolbar_text(app, busy=...)`` says in one line what the console
knows now: the link (its URL and baud), the target state (``running``, ``halted
cpu0``, ``syncing``, ``lost``), ``module!function+0x10`` at the program counter of
the current stop, and what the last command cost on the wire (round trips, bytes,
resends). It reads only what the session already holds: the PC comes from the
cached stop and its name from symbols already loaded (a module whose symbols are
still deferred shows as ``module+0x...``), so drawing the toolbar never sends a
request nor reads a symbol file, and it is safe to call from the prompt's thread
while a command runs.
What it does not do: draw anything (repl.py hands the text to prompt_toolkit).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kdcon.symbols.module import SymbolState

from .output import printable
from .progress import format_progress
from .session import TargetState

if TYPE_CHECKING:
    from .app import App

__all__ = ["toolbar_text", "target_state_text", "pc_text", "wire_text"]

log = logging.getLogger(__name__)

_SEPARATOR = " | "


def target_state_text(session: Any, *, busy: bool = False, healer: Any = None) -> str:
    """``running``, ``halted cpu0``, ``syncing`` or ``lost`` (``busy`` while a command
    runs on a halted target; the reconnect attempt while a healer reopens the link)."""
    state = session.state
    if state is TargetState.HALTED:
        stop = session.stop
        text = f"halted cpu{stop.processor if stop is not None else 0}"
        return text + ", busy" if busy else text
    if state is TargetState.LOST:
        reason = getattr(session, "lost_reason", None) or ""
        # The healer's reason ends "; reconnecting, try 3 in 0.4 s": the part that
        # says when, which is what a glance at the toolbar wants.
        cause, _, retry = reason.rpartition("; ")
        if cause and retry.startswith("reconnecting"):
            return f"lost, {retry}"
        attempt = getattr(healer, "attempt", 0)
        if attempt:
            return f"lost, reconnecting (attempt {attempt})"
        return f"lost ({reason})" if reason else "lost"
    return state.value


def pc_text(session: Any, cache: dict[Any, str] | None = None) -> str:
    """``module!function+0x10`` at the current stop's PC, from loaded symbols only."""
    stop = session.stop
    if stop is None or session.state is not TargetState.HALTED:
        return ""
    pc = stop.pc
    symbols = session.symbols
    try:
        module = symbols.module_for(pc)
        if module is None:
            return f"{pc:#x}"
        key = (pc, id(module), module.state)
        if cache is not None and key in cache:
            return cache[key]
        if module.state is SymbolState.DEFERRED:
            # Naming it would load the module's symbols: not a toolbar's business.
            offset = pc - module.base
            text = f"{module.name}+{offset:#x}" if offset else module.name
        else:
            text = symbols.name_for(pc) or f"{pc:#x}"
    except Exception as exc:  # the command thread may be changing the module list
        log.debug("toolbar: no name for %#x: %s", pc, exc)
        return f"{pc:#x}"
    if cache is not None:
        if len(cache) > 64:
            cache.clear()
        cache[key] = text
    return text


def wire_text(console: Any, session: Any) -> str:
    """What the last command cost: round trips, bytes and the session's resends."""
    results = console.results
    resends = getattr(session, "resends", 0)
    if not results:
        return f"no command yet, {resends} resends"
    last = results[-1]
    trips = "round trip" if last.round_trips == 1 else "round trips"
    return f"last: {last.round_trips} {trips}, {last.wire_bytes} bytes, {resends} resends"


def toolbar_text(app: App, *, busy: bool = False, cache: dict[Any, str] | None = None) -> str:
    """The whole toolbar line."""
    session = app.session
    parts = [app.link_name, target_state_text(session, busy=busy,
                                              healer=getattr(app, "healer", None))]
    where = pc_text(session, cache)
    if where:
        parts.append(where)
    parts.append(wire_text(app.console, session))
    job = app.console.state.values.get("progress")
    if job is not None:
        parts.append(format_progress(job))
    # Module and symbol names come from the target: escaped like every other output.
    return " " + printable(_SEPARATOR.join(parts), newlines=False)
