"""The extension API: everything a ``!`` extension may use, and nothing else.

What it does: an extension is one Python module whose docstring is its help and whose
functions are declared with ``@bang("name")``; each gets the ``Target`` and its
argument string (or the ``argparse`` namespace of a declared parser) and returns
nothing, text, a ``Table`` (or a list of row dicts), or ``False`` for failure; raising
``ExtensionFailed("one line")`` fails the command too, so ``kdcon --batch`` exits 1.
The ``Target`` reads and writes memory (typed reads, strings, ``typed()`` views of PDB
structures, ``containing_record``, ``walk_list``), evaluates MASM, looks up symbols and
types, lists modules, reads registers, prints text and tables, reports progress and
checks for cancellation, runs other commands (``run`` gives their text, ``.ok`` and
``.rows``), sets breakpoints whose Python callback returns ``BREAK`` or ``CONTINUE``
(pykd's model), resumes (``go``), and subscribes to events (``stop``, ``module_load``,
``module_unload``, ``dbgprint``, ``prompt``) with ``on`` or the ``@hook`` decorator.

Version: ``VERSION`` is ``major.minor``. A minor release only adds; a major one may
change or remove. ``require("1.0")`` at the top of an extension refuses to load it
into a kdcon whose API is older (or of another major version), in one clear line.
What it does not do: give access to the link, the session or the console's internals.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .console import CommandFailed
from .hooks import EVENT_KINDS, Event, Subscription
from .output import printable
from .target import Cancelled, CommandOutput, MemoryReadError
from .target import Target as _CoreTarget
from .typed import EnumValue, TypedArray, TypedView, TypeNotFound

__all__ = [
    "VERSION", "require", "ApiVersionError", "bang", "hook", "BangSpec", "Target",
    "ExtensionFailed", "Cancelled", "Table", "Column", "BREAK", "CONTINUE",
    "BreakpointHandle", "Event", "EVENT_KINDS", "TypedView", "TypedArray", "EnumValue",
    "TypeNotFound", "MemoryReadError", "CommandOutput", "printable",
]

log = logging.getLogger(__name__)

VERSION = "1.0"

# A breakpoint callback's answer (pykd's model): stop the target, or let it run on.
BREAK = True
CONTINUE = False

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ApiVersionError(ImportError):
    """The extension needs an extension API this kdcon does not provide."""


class ExtensionFailed(CommandFailed):
    """An extension's verdict is failure: the message is printed, the batch exits 1."""


def _parse_version(text: str) -> tuple[int, int]:
    parts = str(text).strip().split(".")
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        raise ApiVersionError(f"kdcon.api.require({text!r}): a version is 'major.minor', "
                              f"such as '1.0'")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


def require(version: str) -> None:
    """Refuse to run with an API older than ``version`` or of another major version."""
    major, minor = _parse_version(version)
    have_major, have_minor = _parse_version(VERSION)
    if major != have_major or minor > have_minor:
        raise ApiVersionError(f"this extension needs the kdcon extension API {major}.{minor}; "
                              f"this kdcon provides {VERSION}")


# -- declaring commands and hooks --------------------------------------------------------


@dataclass(frozen=True)
class BangSpec:
    """What ``@bang`` records on a function; the loader registers it as ``!name``."""

    name: str
    usage: str
    summary: str
    details: str
    needs_halt: bool = True
    parser: Any = None


def bang(name: str | Callable[..., Any] | None = None, *, usage: str = "",
         needs_halt: bool = True, parser: Any = None) -> Any:
    """Declare ``function(target, args)`` as the command ``!name`` (default: its name).

    The function docstring's first line is the summary ``.help`` lists; the module
    docstring is the help ``.help !name`` prints. ``parser`` (an ``argparse`` parser)
    parses the argument string first and the function gets the namespace.
    """

    def declare(function: Callable[..., Any]) -> Callable[..., Any]:
        bang_name = (name if isinstance(name, str) else function.__name__).lstrip("!")
        if not _NAME.match(bang_name):
            raise ValueError(f"@bang({bang_name!r}): a command name is letters, digits and _")
        doc = (function.__doc__ or "").strip()
        summary, _, details = doc.partition("\n")
        summary = summary.strip() or f"The {bang_name} extension command."
        function.__kdcon_bang__ = BangSpec(  # type: ignore[attr-defined]
            name=bang_name, usage=usage or f"!{bang_name}", summary=summary,
            details=details.strip(), needs_halt=needs_halt, parser=parser)
        return function

    if callable(name):
        return declare(name)
    return declare


def hook(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare ``function(target, event)`` as a callback for ``kind`` events while the
    extension is loaded (see ``EVENT_KINDS``)."""
    if kind != "*" and kind not in EVENT_KINDS:
        raise ValueError(f"@hook({kind!r}): one of {', '.join(EVENT_KINDS)} or '*'")

    def declare(function: Callable[..., Any]) -> Callable[..., Any]:
        kinds = list(getattr(function, "__kdcon_hooks__", ()))
        function.__kdcon_hooks__ = (*kinds, kind)  # type: ignore[attr-defined]
        return function

    return declare


# -- tables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column: the row field it shows, its header, how values are formatted
    (``"address"``, a format spec such as ``"x"`` or ``"08x"``, or a callable) and its
    alignment (``"<"`` or ``">"``; numbers go right by default)."""

    name: str
    header: str | None = None
    format: str | Callable[[Any], str] | None = None
    align: str | None = None


class Table:
    """Rows that print as WinDbg-style columns and reach ``--json`` as rows."""

    def __init__(self, *columns: str | Column) -> None:
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.rows: list[dict[str, Any]] = []

    def add(self, **fields: Any) -> None:
        if not self.columns:
            self.columns = [Column(name) for name in fields]
        self.rows.append(fields)

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]]) -> Table:
        table = cls()
        for row in rows:
            table.add(**row)
        return table

    def _cell(self, column: Column, value: Any, format_address: Callable[[int], str]) -> str:
        if value is None:
            return ""
        if callable(column.format):
            return str(column.format(value))
        if column.format == "address" and isinstance(value, int):
            return format_address(value)
        if column.format and isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, column.format)
        if isinstance(value, EnumValue):
            return value.name or str(int(value))
        return printable(str(value), newlines=False)

    def lines(self, format_address: Callable[[int], str]) -> list[str]:
        """The text: a header line, then one line per row."""
        cells = [[self._cell(c, row.get(c.name), format_address) for c in self.columns]
                 for row in self.rows]
        headers = [c.header if c.header is not None else c.name for c in self.columns]
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
        right = [c.align == ">" or (c.align is None and any(
            isinstance(row.get(c.name), (int, float)) and not isinstance(row.get(c.name), bool)
            and c.format != "address" for row in self.rows)) for c in self.columns]

        def line(values: list[str]) -> str:
            return "  ".join(v.rjust(w) if r else v.ljust(w)
                             for v, w, r in zip(values, widths, right)).rstrip()

        return [line(headers)] + [line(row) for row in cells]


# -- the target an extension sees -----------------------------------------------------------


class BreakpointHandle:
    """A breakpoint an extension set: its id, address, hit count; ``remove()`` clears it."""

    def __init__(self, target: Target, breakpoint: Any) -> None:
        self._target = target
        self._bp = breakpoint

    @property
    def id(self) -> int:
        return self._bp.id

    @property
    def address(self) -> int | None:
        return self._bp.address

    @property
    def hits(self) -> int:
        return self._bp.hits

    def remove(self) -> None:
        if self._bp in list(self._target._console.session.breakpoints):
            self._target.run(f"bc {self._bp.id:x}")

    def __repr__(self) -> str:
        return f"<breakpoint {self.id} at {self.address or 0:#x}>"


class Target(_CoreTarget):
    """The ``Target`` of the core (memory, registers, symbols, types, ``run``) plus what
    extensions add: output helpers, tables, progress, breakpoints, ``go`` and events."""

    def __init__(self, console: Any) -> None:
        super().__init__(console)
        core = getattr(console, "target", None)
        if core is not None:
            self.cancel_event = core.cancel_event   # one Ctrl+C cancels any of them
        self.owner: str | None = None               # the extension now running

    # -- output --------------------------------------------------------------------------

    def write(self, text: str) -> None:
        self._console.output.write(text)

    def warn(self, text: str) -> None:
        self._console.output.line(f"WARNING: {text}")

    def row(self, **fields: Any) -> None:
        """One structured row of this command's result (``--json``), printing nothing."""
        self._console.output.row(**fields)

    def table(self, table: Table | Iterable[dict[str, Any]]) -> None:
        if not isinstance(table, Table):
            table = Table.from_rows(table)
        if not table.rows:
            return
        self._console.output.lines(table.lines(self.format_address))
        for row in table.rows:
            self.row(**row)

    def progress(self, done: int, total: int, what: str = "") -> None:
        """Say how far a long job is (a ``progress`` event) and stop if it was cancelled."""
        self._console.emit_event("progress", command=self.owner, what=what, done=done,
                                 total=total)
        self.check_cancelled()

    # -- running ----------------------------------------------------------------------------

    def go(self) -> Event:
        """Resume until the next stop the user sees (shown as ``g`` shows it); its event."""
        console = self._console
        if not console.execute("g", nested=True):
            raise ExtensionFailed("")
        outcome = console.executor.last
        fields = console.executor.describe(outcome) if outcome is not None else {}
        return Event("stop", fields)

    def breakpoint(self, where: str | int, callback: Callable[..., Any] | None = None, *,
                   one_shot: bool = False) -> BreakpointHandle:
        """A breakpoint at an expression or address, deferred (``bu``) until its module
        loads. ``callback(target, handle)`` runs at each hit: ``CONTINUE`` (False) lets
        the target run on, ``BREAK`` (True, or None) stops it. A callback that raises
        is reported in one line and stops the target. It runs while the target is
        halted at the hit: it may read and write, but must not resume (``go``, ``g``)."""
        expression = where if isinstance(where, str) else f"0x{where:x}"
        session = self._console.session
        before = {bp.id for bp in session.breakpoints}
        out = self.run(f"bp{' /1' if one_shot else ''} {expression}")
        if not out.ok:
            raise ExtensionFailed(out.strip().splitlines()[-1] if out.strip()
                                  else f"Cannot set a breakpoint at {expression}")
        created = [bp for bp in session.breakpoints if bp.id not in before]
        address = self._console.try_resolve(expression)
        bp = created[0] if created else next(
            (b for b in session.breakpoints
             if (address is not None and b.address == address) or b.expression == expression),
            None)
        if bp is None:
            raise ExtensionFailed(f"Cannot set a breakpoint at {expression}")
        handle = BreakpointHandle(self, bp)
        if callback is not None:
            bp.callback = self._guarded(callback, handle)
        extensions = self._console.extensions
        if extensions is not None and self.owner is not None:
            extensions.own_breakpoint(self.owner, bp)
        return handle

    def _guarded(self, callback: Callable[..., Any], handle: BreakpointHandle
                 ) -> Callable[[Any], bool]:
        owner = self.owner

        def fire(bp: Any) -> bool:
            try:
                answer = callback(self, handle)
            except Exception as exc:  # one line; the breakpoint breaks as a plain one does
                log.debug("breakpoint callback failed", exc_info=exc)
                who = f" of extension {owner}" if owner else ""
                self._console.output.event_text(
                    f"Breakpoint {bp.id} callback{who} failed: {type(exc).__name__}: {exc}\n")
                return True
            return True if answer is None else bool(answer)

        return fire

    def on(self, kind: str, callback: Callable[[Target, Event], Any]) -> Subscription:
        """Call ``callback(target, event)`` on every ``kind`` event until ``remove()``."""
        return self._console.events.subscribe(kind, lambda event: callback(self, event),
                                              owner=self.owner)


def show_result(target: Target, result: Any, name: str) -> None:
    """Print what a bang function returned; False (or a non-zero int) is failure."""
    if result is None or result is True:
        return
    if result is False:
        raise ExtensionFailed(f"!{name} reported failure")
    if isinstance(result, int) and not isinstance(result, bool):
        if result:
            raise ExtensionFailed(f"!{name} reported failure (status {result})")
        return
    if isinstance(result, str):
        target.write(result if result.endswith("\n") else result + "\n")
        return
    if isinstance(result, Table):
        target.table(result)
        return
    if isinstance(result, Iterable):
        target.table(list(result))
        return
    target.out(str(result))
