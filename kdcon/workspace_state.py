"""A session's workspace state out and in: the dict a workspace file holds.

What it does: ``capture(console)`` makes the workspace of a live session (the
connection given, symbol, source and extension paths, ``bp``/``bu``/``ba``
breakpoints, ``sx`` settings, aliases, the log, the output options);
``apply(console, data)`` puts one into a session, entry by entry: what it cannot use
is one line, and the rest still applies. A ``bu`` goes into the table as ``bu`` does it
(resolved now if its module is loaded and the target halted, else when the module
loads). A ``bp`` is kept with its address and a symbolic form of it (``mod!name+0x19``,
or ``mod+0x4519`` without symbols) and comes back at what that symbol resolves to now;
with no symbol, at its address, with a line when the module it was in has moved.
``ba`` and ``bp`` need an address now, and when they have none their entry is kept to
be written back as it was.
What it does not do: read or write files (workspace.py) or touch the target.
Spec: windbg.md §0.9 (what a WinDbg workspace keeps).
"""

from __future__ import annotations

import logging
from typing import Any

from .breakpoints import KERNEL_BREAKPOINT_LIMIT, Breakpoint
from .errors import CommandError, KdconError
from .stops import SX_CODES

__all__ = ["capture", "apply", "SCHEMA_VERSION", "KEPT_KINDS"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SX_MODES = ("sxe", "sxd", "sxn", "sxi")
_BREAK_ON_REBOOT = ("none", "initial", "first-load")
KEPT_KINDS = ("bp", "bu", "ba")
_SOURCE_PATH = "source_path"          # where .srcpath keeps it (commands/source.py)


def capture(console: Any, connection: dict[str, Any] | None = None,
            pending: list[Any] = ()) -> dict[str, Any]:
    """The workspace of ``console``'s session now; ``pending`` are breakpoint entries
    read from a file and not set in this session, written back as they were."""
    session, settings = console.session, console.settings
    data: dict[str, Any] = {"version": SCHEMA_VERSION}
    if connection:
        data["connection"] = dict(connection)
    symbol_path = str(session.symbols.path or "")
    if symbol_path:
        data["symbols"] = {"path": symbol_path}
    if console.extensions is not None and console.extensions.path:
        data["extensions"] = {"path": [str(p) for p in console.extensions.path]}
    data["output"] = {"radix": settings.radix, "step_registers": settings.step_registers,
                      "break_on_reboot": settings.break_on_reboot, "more": settings.more}
    if console.log is not None and not console.log.closed:
        data["log"] = {"file": str(console.log.path), "unicode": bool(console.log.unicode)}
    events: dict[str, Any] = dict(sorted(settings.exceptions.items()))
    if settings.load_filter:
        events["module"] = {"ld": settings.load_filter}
    data["events"] = events
    data["aliases"] = dict(console.scripts.aliases.values)
    source_path = console.state.values.get(_SOURCE_PATH)
    if source_path:
        data["source"] = {"path": ";".join(source_path)}
    entries = [_breakpoint_entry(console, bp) for bp in session.breakpoints
               if bp.kind in KEPT_KINDS]
    data["breakpoints"] = entries + list(pending)
    return data


def _breakpoint_entry(console: Any, bp: Breakpoint) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": bp.id, "kind": bp.kind, "expression": bp.expression,
                             "enabled": bp.enabled, "passes": bp.initial_passes,
                             "one_shot": bp.one_shot}
    if bp.hardware:
        entry.update(access=bp.access, size=bp.size)
    if bp.command is not None:
        entry["command"] = bp.command
    if bp.kind == "bp" and bp.address is not None:
        entry.update(_where(console, bp.address))
    return entry


def _where(console: Any, address: int) -> dict[str, str]:
    """A ``bp`` address as the next session finds it again: the address (a string:
    TOML integers stop at 2**63), the symbol it is at, the module and its base."""
    where = {"address": f"{address:#x}"}
    symbols = console.session.symbols
    module = symbols.module_for(address)
    # Names come from the PDB only while halted (a running target cannot be read for it).
    name = console.symbolizer(address) if console.session.halted else None
    if module is not None:
        where.update(module=module.name, module_base=f"{module.base:#x}")
        offset = address - module.base
        name = name or (f"{module.name}+{offset:#x}" if offset else module.name)
    if name:
        where["symbol"] = name
    return where


def apply(console: Any, data: dict[str, Any], *, paths: bool = False
          ) -> tuple[list[str], list[str], list[Any]]:
    """Put ``data`` into ``console``'s session (with ``paths``, its symbol and extension
    paths too; at start the command line gets them first). Returns the settings that
    could not be used (lost if the file is saved over), the breakpoints that could
    not be set now, and those breakpoints' entries, to be written back as they were."""
    problems: list[str] = []
    version = data.get("version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        problems.append(f"version {version!r} is newer than this kdcon reads "
                        f"({SCHEMA_VERSION}); what it knows is used")
    if paths:
        _apply_paths(console, data, problems)
    _apply_output(console.settings, _table(data, "output", problems), problems)
    _apply_events(console.settings, _table(data, "events", problems), problems)
    _apply_aliases(console, _table(data, "aliases", problems), problems)
    _apply_log(console, _table(data, "log", problems), problems)
    _apply_source(console, _table(data, "source", problems), problems)
    unset: list[str] = []
    entries = data.get("breakpoints", [])
    if not isinstance(entries, list):
        problems.append("breakpoints is not an array of tables; ignored")
        entries = []
    pending = _apply_breakpoints(console, entries, unset)
    return problems, unset, pending


def _apply_paths(console: Any, data: dict[str, Any], problems: list[str]) -> None:
    symbols = _table(data, "symbols", problems).get("path")
    if isinstance(symbols, str) and symbols:
        console.session.symbols.set_path(symbols)
    elif symbols is not None:
        problems.append(f"symbols.path = {symbols!r}: use a symbol path string")
    directories = _table(data, "extensions", problems).get("path")
    if directories is None or console.extensions is None:
        return
    if not isinstance(directories, list) or not all(isinstance(d, str) for d in directories):
        problems.append(f"extensions.path = {directories!r}: use a list of directories")
        return
    try:
        console.extensions.set_path(directories)
    except KdconError as exc:
        problems.append(f"extensions.path: {exc}")


def _table(data: dict[str, Any], name: str, problems: list[str]) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        problems.append(f"[{name}] is not a table; ignored")
        return {}
    return value


def _apply_output(settings: Any, table: dict[str, Any], problems: list[str]) -> None:
    radix = table.get("radix", settings.radix)
    if radix in (8, 10, 16) and not isinstance(radix, bool):
        settings.radix = radix
    else:
        problems.append(f"output.radix = {radix!r}: use 8, 10 or 16")
    step = table.get("step_registers", settings.step_registers)
    if isinstance(step, bool):
        settings.step_registers = step
    else:
        problems.append(f"output.step_registers = {step!r}: use true or false")
    reboot = table.get("break_on_reboot", settings.break_on_reboot)
    if reboot in _BREAK_ON_REBOOT:
        settings.break_on_reboot = reboot
    else:
        problems.append(f"output.break_on_reboot = {reboot!r}: use "
                        f"{', '.join(_BREAK_ON_REBOOT)}")
    more = table.get("more", settings.more)
    if isinstance(more, bool):
        settings.more = more
    else:
        problems.append(f"output.more = {more!r}: use true or false")


def _apply_events(settings: Any, table: dict[str, Any], problems: list[str]) -> None:
    for name, mode in table.items():
        if name == "module" and isinstance(mode, dict):
            module = mode.get("ld")
            if module is None or (isinstance(module, str) and module):
                settings.load_filter = module
            else:
                problems.append(f"events.module.ld = {module!r}: use a module name")
            continue
        if not _event_name(name) or mode not in _SX_MODES:
            problems.append(f"events.{name} = {mode!r}: use an sx event name and one of "
                            f"{', '.join(_SX_MODES)}")
            continue
        settings.exceptions[name.lower()] = mode


def _event_name(name: str) -> bool:
    lowered = name.lower()
    if lowered in SX_CODES or lowered in ("ld", "ud", "ibp", "asrt", "ip", "*"):
        return True
    try:
        int(lowered, 16)
    except ValueError:
        return False
    return True


def _apply_aliases(console: Any, table: dict[str, Any], problems: list[str]) -> None:
    for name, value in table.items():
        if not isinstance(value, str):
            problems.append(f"aliases.{name} = {value!r}: an alias is text")
            continue
        try:
            console.scripts.aliases.set(name, value)
        except CommandError as exc:
            problems.append(str(exc))


def _apply_source(console: Any, table: dict[str, Any], problems: list[str]) -> None:
    path = table.get("path")
    if path is None:
        return
    if not isinstance(path, str):
        problems.append(f"source.path = {path!r}: use a source path string (a;b)")
        return
    directories = [part.strip() for part in path.split(";") if part.strip()]
    console.state.values[_SOURCE_PATH] = list(dict.fromkeys(directories))


def _apply_log(console: Any, table: dict[str, Any], problems: list[str]) -> None:
    name = table.get("file")
    if name is None or (console.log is not None and not console.log.closed):
        return                          # none kept, or -logo/-loga chose one already
    from .commands.logs import open_log

    if not isinstance(name, str) or not name:
        problems.append(f"log.file = {name!r}: use a file name")
        return
    try:
        # Appended to: reopening a workspace never empties a log it names.
        open_log(console, name, append=True, unicode=table.get("unicode") is True)
    except CommandError as exc:
        problems.append(str(exc))


def _apply_breakpoints(console: Any, entries: list[Any], problems: list[str]) -> list[Any]:
    pending: list[Any] = []
    for entry in entries:
        reason = _set_breakpoint(console, entry, problems) if isinstance(entry, dict) else \
            f"breakpoints entry {entry!r} is not a table"
        if reason is not None:
            problems.append(reason)
            pending.append(entry)
    _resolve_now(console)
    return pending


def _set_breakpoint(console: Any, entry: dict[str, Any], notes: list[str]) -> str | None:
    """Add one entry to the table; the reason it could not be, or None."""
    table = console.session.breakpoints
    kind, expression = entry.get("kind", "bu"), entry.get("expression")
    passes, wanted = entry.get("passes", 1), entry.get("id")
    what = f"breakpoint {expression!r}"
    if kind not in KEPT_KINDS or not isinstance(expression, str) or not expression.strip():
        return f"{what}: kind must be bp, bu or ba and expression a non-empty string"
    if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
        return f"{what}: passes must be a number from 1"
    flags = {key: entry.get(key, default) for key, default in
             (("enabled", True), ("one_shot", False))}
    if not all(isinstance(value, bool) for value in flags.values()):
        return f"{what}: enabled and one_shot are true or false"
    command = entry.get("command")
    if command is not None and not isinstance(command, str):
        return f"{what}: command must be a string"
    if wanted is not None and (not isinstance(wanted, int) or isinstance(wanted, bool)
                               or not 0 <= wanted < 0x1000):
        return f"{what}: id must be a number from 0"
    bp = Breakpoint(id=-1, kind=kind, expression=expression.strip(), passes=passes,
                    initial_passes=passes, command=command, **flags)
    if kind in ("ba", "bp"):
        reason = _hardware(console, bp, entry) if kind == "ba" else \
            _software(console, bp, entry, notes)
        if reason is not None:
            return f"{what}: {reason}; kept in the workspace file"
    elif "!" in bp.expression:
        bp.module = bp.expression.partition("!")[0]
    # The same breakpoint again (.wopen twice): by expression, or for bp by address.
    same = next((b for b in table if b.kind == kind and (b.expression.casefold()
                 == bp.expression.casefold() or kind == "bp" and b.address == bp.address)),
                None)
    if same is not None:
        console.executor.remove_breakpoint(same)
        table.remove(same)
        bp.id = same.id
    elif isinstance(wanted, int) and table.get(wanted) is None:
        bp.id = wanted
    else:
        bp.id = table.next_id()
    table.add(bp)
    return None


def _hardware(console: Any, bp: Breakpoint, entry: dict[str, Any]) -> str | None:
    access, size = entry.get("access"), entry.get("size")
    if access not in ("e", "r", "w") or size not in (1, 2, 4, 8) or (access == "e" and size != 1):
        return "ba needs access e, r or w and size 1, 2, 4 or 8 (e: 1)"
    address = console.try_resolve(bp.expression) if console.session.halted else None
    if address is None:
        return "its address is not known now"
    if address % size:
        return f"its address {address:#x} is not a multiple of {size}"
    slot = console.session.breakpoints.free_slot()
    if slot is None:
        return "the four debug registers are taken"
    module = console.session.symbols.module_for(address)
    bp.access, bp.size, bp.address, bp.slot = access, size, address, slot
    bp.module = module.name if module is not None else None
    return None


def _software(console: Any, bp: Breakpoint, entry: dict[str, Any],
              notes: list[str]) -> str | None:
    """A ``bp`` at its symbol now, else at its saved address; None when set."""
    symbol, saved = entry.get("symbol"), _number(entry.get("address"))
    if symbol is not None and not (isinstance(symbol, str) and symbol.strip()):
        return "symbol must be a non-empty string"
    if symbol is None and saved is None:
        return "a bp needs its address (a number as a string) or its symbol"
    if not console.session.halted:
        return "its address is not known now"
    symbols = console.session.symbols
    address = console.try_resolve(symbol.strip()) if symbol is not None else None
    if address is not None:
        bp.expression = symbol.strip()
    elif symbol is not None:
        return f"its symbol {symbol} does not resolve now"
    else:
        address = saved
        bp.expression = console.format_address(saved)
        moved = _moved(console, entry, saved)
        if moved:
            notes.append(moved)
    table = console.session.breakpoints
    if address not in {b.address for b in table if not b.hardware} and \
            table.software_in_use() >= KERNEL_BREAKPOINT_LIMIT:
        return f"a kernel target allows {KERNEL_BREAKPOINT_LIMIT} breakpoints"
    module = symbols.module_for(address)
    bp.address, bp.module = address, module.name if module is not None else None
    return None


def _moved(console: Any, entry: dict[str, Any], address: int) -> str:
    """The line for a bp set again at its saved address; "" when its module is where
    it was (or it was in none)."""
    name, base = entry.get("module"), _number(entry.get("module_base"))
    if not isinstance(name, str) or base is None:
        return ""
    where = console.format_address(address)
    module = console.session.symbols.module(name)
    if module is None:
        return f"breakpoint at {where}: module {name} is not loaded now; set at its " \
            "saved address"
    if module.base == base:
        return ""
    return (f"breakpoint at {where}: module {name} moved from "
            f"{console.format_address(base)} to {console.format_address(module.base)}; "
            "set at its saved address")


def _number(value: Any) -> int | None:
    """An address kept as a string (``0xfffff800...``, with or without the backtick)."""
    if not isinstance(value, str):
        return None
    try:
        number = int(value.replace("`", ""), 16)
    except ValueError:
        return None
    return number if 0 <= number < 1 << 64 else None


def _resolve_now(console: Any) -> None:
    """Resolve the ``bu`` whose module is loaded; the others wait for their load."""
    if console.executor is None or not console.session.halted:
        return
    try:
        console.executor.resolve_deferred()
    except KdconError as exc:
        log.debug("resolving workspace breakpoints: %s", exc)
