"""The console engine: command lines in, output and results out.

What it does: ``Console.execute(line)`` cuts a line into commands, finds each in the
registry, runs it with a ``CommandContext``, and turns every failure a user can cause
or meet (a wrong command, a bad expression, a target error, a lost link) into one
line of text while the console carries on. Each command's result (ok, its text or
rows, what it cost on the wire) is kept for the JSON renderer and the batch exit
status. An empty line repeats the last repeatable command (``p``, ``t``, ``dd``...).
What it does not do: read input (repl.py / cli.py) or own the target (session.py).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kdcon.protocol.errors import ProtocolError, TargetTimeout, TransportError
from kdcon.protocol.host import TargetError
from kdcon.symbols.errors import SymbolError

from .argtypes import Args
from .errors import CommandError, KdconError
from .evaluation import SessionEvalContext, UserRegisters
from .expr import ExprError, evaluate, evaluate_prefix
from .hooks import EventBus
from .output import Output
from .registry import REGISTRY, Command, Registry
from .scripting import ControlFlow, Interpreter
from .session import NotHalted, Session, TargetLost, TargetState

__all__ = ["Console", "CommandContext", "CommandResult", "CommandFailed", "Settings"]

log = logging.getLogger(__name__)


class CommandFailed(KdconError):
    """A command reports failure after printing its own explanation (an extension's
    verdict, a search that found nothing to do). The batch exit status is 1."""


@dataclass
class CommandResult:
    command: str
    ok: bool = True
    text: str = ""
    rows: list[dict[str, Any]] | None = None
    error: str | None = None
    round_trips: int = 0
    wire_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "result", "command": self.command, "ok": self.ok}
        if self.rows:
            out["rows"] = self.rows
        out["text"] = self.text
        if self.error is not None:
            out["error"] = self.error
        out["wire"] = {"round_trips": self.round_trips, "bytes": self.wire_bytes}
        return out


@dataclass
class Settings:
    """What the user set for the session (``n``, ``sx*``, display toggles)."""

    radix: int = 16
    step_registers: bool = True            # ``pr``/``tr`` toggle the register dump
    # Event filters: break (sxe), second chance (sxd), output (sxn), ignore (sxi).
    exceptions: dict[str, str] = field(default_factory=lambda: {
        "av": "sxe", "bpe": "sxe", "sse": "sxe", "dz": "sxe", "iov": "sxe", "ii": "sxe",
        "gp": "sxe", "dm": "sxe", "sov": "sxe", "isc": "sxe", "asrt": "sxe", "ip": "sxe",
        "c000008e": "sxe", "ld": "sxi", "ud": "sxi", "ibp": "sxd", "*": "sxd",
    })
    load_filter: str | None = None         # ``sxe ld:module``
    prompt_answers: list[str] = field(default_factory=list)
    # After a reboot (Ctrl+K cycles it, kd's post-reboot break state): "none",
    # "initial" (break in as soon as the target can, -b) or "first-load" (-d).
    break_on_reboot: str = "none"
    more: bool = False                     # ``.more``: the REPL pauses long output


class CommandContext:
    """What a command sees: the session, the output, arguments and the console."""

    def __init__(self, console: Console, cmd: Command, text: str, args: str) -> None:
        self.console = console
        self.session = console.session
        self.out = console.output
        self.command = cmd
        self.text = text
        self.args = Args(args, self.evaluate_prefix, command=text)
        self.state = console.state

    @property
    def target(self) -> Any:
        return self.console.target

    def evaluate(self, text: str) -> int:
        return evaluate(text, self.console.eval_context, radix=self.console.settings.radix)

    def evaluate_prefix(self, text: str) -> tuple[int, int]:
        return evaluate_prefix(text, self.console.eval_context, radix=self.console.settings.radix)

    def run(self, line: str) -> bool:
        return self.console.execute(line, nested=True)


class ConsoleState:
    """Values commands keep between runs: where ``d``/``u`` continue, the last format."""

    def __init__(self) -> None:
        self.next_dump: int | None = None
        self.dump_format = "db"
        self.next_unassemble: int | None = None
        self.repeating = False          # running the last command again for an empty line
        self.values: dict[str, Any] = {}


class _ConsoleHelpers:
    """Formatting and lookups every command family shares."""

    session: Session
    settings: Settings
    json_sink: Callable[[dict[str, Any]], None] | None
    events: EventBus
    eval_context: SessionEvalContext

    def format_address(self, address: int) -> str:
        from .disasm import format_address

        return format_address(address, self.session.pointer_size)

    def symbolizer(self, address: int) -> str | None:
        """``module!name+0x10`` for an address inside a known module (operands, stacks)."""
        try:
            return self.session.symbols.name_for(address)
        except SymbolError as exc:
            log.debug("symbol lookup at %#x failed: %s", address, exc)
            return None

    def location_lines(self, pc: int, stream: bytes = b"") -> list[str]:
        """``module!function+0x10:`` and the instruction at ``pc``, as kd shows a stop.
        The instruction comes from the state change's bytes when they hold it."""
        from .disasm import decode, format_instruction

        lines: list[str] = []
        name = self.symbolizer(pc)
        if name:
            lines.append(f"{name}:")
        code = stream
        stop = self.session.stop
        if not code and stop is not None and stop.pc == pc:
            # The state change carried the bytes at the stop: no request needed.
            code = stop.instruction_stream
        if not code and self.session.halted:
            code = self.session.read_virtual(pc, 16)
        decoded = decode(code, pc, symbolizer=self.symbolizer) if code else []
        if decoded:
            lines.append(format_instruction(decoded[0], self.session.pointer_size))
        else:
            lines.append(f"{self.format_address(pc)} ??              ???")
        return lines

    def try_resolve(self, expression: str) -> int | None:
        """The value of ``expression`` if it resolves now, else None (for ``bu``)."""
        try:
            return evaluate(expression, self.eval_context, radix=self.settings.radix)
        except (ExprError, CommandError, SymbolError, MemoryError):
            return None

    def emit_event(self, kind: str, **fields: Any) -> None:
        self.events.emit(kind, fields)
        if self.json_sink is not None:
            self.json_sink({"type": "event", "event": kind, **fields})


class Console(_ConsoleHelpers):
    """Runs commands against one session."""

    def __init__(self, session: Session, output: Output, *, registry: Registry | None = None,
                 debug: bool = False, json_sink: Callable[[dict[str, Any]], None] | None = None
                 ) -> None:
        from . import commands  # noqa: F401 - declares every built-in command

        self.session = session
        self.output = output
        self.registry = registry or REGISTRY
        self.debug = debug
        self.json_sink = json_sink
        # Commands an extension runs through Target.run are its own business: they
        # are neither results of their own in --json nor failures of the batch.
        self.inner_runs = 0
        self.settings = Settings()
        self.state = ConsoleState()
        self.user_registers = UserRegisters()
        self.eval_context = SessionEvalContext(session, self.user_registers)
        self.results: list[CommandResult] = []
        self.failures = 0
        self.last_repeatable: str | None = None
        self.resumed = False          # the last command resumed the target
        self.quit_requested = False
        self.executor: Any = None
        self.target: Any = None
        self.log: Any = None          # the open log file (commands/logs.py)
        self.scripts = Interpreter(self)
        self.extensions: Any = None
        self.healer: Any = None       # the reconnecting loop (reconnect.py), when there is one
        self.workspace: Any = None    # the workspace file this session uses (workspace.py)
        # Held while a command line runs, and by the reconnecting loop while it restores
        # the session; a line typed then is refused at once rather than left waiting.
        self.lock = threading.RLock()
        # Extension hooks; a failing one is an event line, not part of a command's text.
        self.events = EventBus(lambda line: output.event_text(line + "\n"))

    # -- running commands ---------------------------------------------------------------

    def execute(self, line: str, *, nested: bool = False) -> bool:
        """Run every command of ``line``; False if any failed. A command that resumes
        the target ends a nested list (breakpoint command strings, windbg.md §0.2)."""
        if not self.lock.acquire(timeout=0.25):
            self.output.line("The console is reconnecting to the target; the command "
                             "was not run: type it again once it says it is back")
            self.failures += 1
            return False
        try:
            if not nested and hasattr(self.session, "begin_command"):
                self.session.begin_command()
            return self._execute(line, nested)
        finally:
            self.lock.release()

    def _execute(self, line: str, nested: bool) -> bool:
        if not line.strip():
            if self.last_repeatable and not nested:
                # A repeated display goes on where the last one ended (kd's Enter).
                self.state.repeating = True
                try:
                    return self.execute(self.last_repeatable)
                finally:
                    self.state.repeating = False
            return True
        # Aliases, blocks, control flow and the ';' rules: scripting.py.
        return self.scripts.execute(line, nested=nested)

    def run_one(self, text: str) -> CommandResult:
        result = CommandResult(command=text)
        session = self.session
        before = session.wire()
        resolved = self.registry.resolve(text)
        capture = self.json_sink is not None
        # A nested command (Target.run) keeps its own rows and leaves its caller's alone.
        outer_rows = self.output.rows
        self.output.rows = [] if capture or outer_rows is not None else None
        if capture:
            self.output.begin_capture()
        self.resumed = False
        signal: ControlFlow | None = None
        try:
            if resolved is None:
                raise CommandError(f"Couldn't resolve error at '{text}'"
                                   if not text.startswith("!")
                                   else f"No export {text[1:].split()[0]} found")
            cmd, args = resolved
            if cmd.needs_halt:
                session.require_halted()
            ctx = CommandContext(self, cmd, text, args)
            cmd.handler(ctx, ctx.args)
            if cmd.repeatable:
                self.last_repeatable = text
            elif cmd.name not in (".echo",):
                self.last_repeatable = None
            if cmd.resumes:
                self.resumed = True
        except ControlFlow as exc:
            # .break, .leave or an error ending a command program: past this command.
            signal = exc
            result.ok = not exc.failed
        except Exception as exc:  # every failure is one line; tracebacks only with --debug
            result.ok = False
            if self.scripts.cancelled():
                # Ctrl+C: whatever the command raised on its way out, the line ends.
                signal = self.scripts.cancellation(result, exc)
            else:
                result.error = self._describe(exc)
                if result.error:
                    self.output.line(result.error)
                if self.debug:
                    self.output.write(traceback.format_exc())
        finally:
            if capture:
                result.text = self.output.end_capture()
            result.rows = self.output.rows or None
            self.output.rows = outer_rows
        after = session.wire()
        result.round_trips = after.round_trips - before.round_trips
        result.wire_bytes = after.total - before.total
        if not result.ok and signal is None and not self.inner_runs:
            self.failures += 1
        self.results.append(result)
        if self.json_sink is not None and not self.inner_runs:
            self.json_sink(result.to_json())
        if signal is not None:
            raise signal
        return result

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, CommandFailed):
            return str(exc)
        if isinstance(exc, (ExprError, CommandError, NotHalted, TargetLost)):
            return str(exc)
        if isinstance(exc, TargetError):
            return f"Target error: {exc}"
        if isinstance(exc, TargetTimeout):
            return f"The target did not answer: {exc}"
        if isinstance(exc, TransportError):
            self.session.state = TargetState.LOST
            return f"The link to the target is lost: {exc}"
        if isinstance(exc, ProtocolError):
            return f"Protocol error: {exc}"
        if isinstance(exc, SymbolError):
            return f"Symbol error: {exc}"
        if isinstance(exc, MemoryError):
            return str(exc) or "Memory access error"
        if isinstance(exc, KdconError):
            return str(exc)
        log.debug("command failed", exc_info=exc)
        return f"Internal error in this command ({type(exc).__name__}: {exc}); run with --debug for details"

