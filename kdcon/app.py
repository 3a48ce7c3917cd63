"""Wiring: a link, a session, a console, an executor; the connect banner and the loops.

What it does: ``App`` opens nothing itself (the CLI hands it a port), attaches the
session, prints kd's connect lines and the first stop, then runs commands from a
list (``-c``, ``-cf``, ``--batch``) or reads them from a line prompt. Breakpoint
command strings run when a hit comes from ``g``; a time limit breaks in and ends the
run with status 3. In JSON mode every result and event is one JSON object per line.
A batch waits while a lost link heals (reconnect.py) and goes on with its next command;
the reconnecting loop's lines start below a waiting prompt, which is shown again after.
What it does not do: parse the command line (cli.py), parse commands (console.py).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from kdcon import __version__
from kdcon.protocol.errors import ProtocolError

from .console import Console
from .execution import Executor
from .extload import ExtensionManager
from .output import Output
from .reconnect import Healer
from .session import Session, TargetLost
from .stops import StopKind
from .target import Target

__all__ = ["App", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_TIMEOUT"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3


class App:
    """One console session over one already-open port."""

    def __init__(self, port: Any, *, link_name: str, symbol_path: str | None = None,
                 output: Output | None = None, json_stream: TextIO | None = None,
                 debug: bool = False, timeout: float | None = None,
                 prompt_answers: Iterable[str] = (), request_timeout: float = 5.0,
                 echo_commands: bool = True, ext_path: Iterable[str] = (),
                 started: float | None = None) -> None:
        self.output = output or Output()
        self._json_stream = json_stream
        self._json_lock = threading.Lock()
        sink = self._write_json if json_stream is not None else None
        if json_stream is not None:
            self.output.quiet = True
        self.link_name = link_name
        self.session = Session(port, output=self.output, symbol_path=symbol_path,
                               request_timeout=request_timeout,
                               on_event=lambda kind, fields: self._event(kind, fields))
        self.console = Console(self.session, self.output, debug=debug, json_sink=sink)
        self.executor = Executor(self.console)
        self.console.executor = self.executor
        self.console.target = Target(self.console)
        self.extensions = ExtensionManager(self.console, path=ext_path)
        self.extensions.load_all()
        # Reconnects once told how to reopen the link (watch); .restart in any case.
        self.healer = Healer(self)
        self.console.settings.prompt_answers = list(prompt_answers)
        self.session.prompt_answer = self._prompt_answer
        self.timeout = timeout
        # --timeout counts from here, or from when the CLI began waiting for the link.
        self.started = time.monotonic() if started is None else started
        self.echo_commands = echo_commands
        self.timed_out = False
        self.read_prompt_line: Callable[[str], str | None] | None = None
        # The REPL's redraw while it runs (repl.py): after a reconnect the prompt changes.
        self.redraw_prompt: Callable[[], None] | None = None
        # The plain prompt waits for a line; an event line has pushed it up the screen.
        self._prompt_waiting = False
        self._prompt_covered = False
        # -cfr: run again after every reconnect (reconnect.py).
        self.restart_commands: list[str] = []

    # -- JSON -----------------------------------------------------------------------------

    def _write_json(self, obj: dict[str, Any]) -> None:
        assert self._json_stream is not None
        with self._json_lock:
            self._json_stream.write(json.dumps(obj, default=_json_default) + "\n")
            self._json_stream.flush()

    def _event(self, kind: str, fields: dict[str, Any]) -> None:
        self.console.emit_event(kind, **fields)

    def _prompt_answer(self, prompt: str) -> str | None:
        answers = self.console.settings.prompt_answers
        if answers:
            return answers.pop(0)
        if self.read_prompt_line is not None:
            return self.read_prompt_line(prompt)
        return None

    # -- connecting -------------------------------------------------------------------------

    def connect(self, timeout: float = 30.0) -> None:
        """Attach, say so as kd does, and show the first stop the user should see."""
        out = self.output
        out.line(f"kdcon {__version__}: kernel debugger console")
        out.line(f"Opened {self.link_name}")
        out.line("Waiting to reconnect...")
        session = self.session
        self.executor.deadline = self._deadline()
        first = session.attach(timeout)
        version = session.version
        build = version.MinorVersion
        flavour = "Free" if version.MajorVersion == 0xF else "Checked"
        cpus = first.processor_count or 1
        out.line(f"Connected to Windows {build} x64 target, ptr64 TRUE")
        out.line("Kernel Debugger connection established.")
        out.line(f"Symbol search path is: {session.symbols.path or '*** Invalid ***'}")
        out.line(f"Windows Kernel Version {build} {'MP' if cpus > 1 else 'UP'} ({cpus} procs) "
                 f"{flavour} x64")
        fmt = self.console.format_address
        out.line(f"Kernel base = 0x{fmt(version.KernBase)} PsLoadedModuleList = "
                 f"0x{fmt(version.PsLoadedModuleList)}")
        self.console.emit_event("connected", link=self.link_name, build=build,
                                kernel_base=version.KernBase, processors=cpus,
                                modules=[m.name for m in session.modules])
        try:
            outcome = self.executor.judge(first)
            if outcome is None:
                outcome = self.executor.run()
            self.executor.show(outcome)
        except (ProtocolError, MemoryError) as exc:
            # Attached, but the target stopped answering while its first stop was shown:
            # one line, and the prompt (each command asks the target afresh).
            out.line(f"The first stop could not be shown: {exc}")

    def _deadline(self) -> float | None:
        return None if self.timeout is None else self.started + self.timeout

    # -- running commands ----------------------------------------------------------------------

    def prompt(self) -> str:
        if self.session.halted and self.session.stop is not None:
            return f"{self.session.stop.processor}: kd> "
        return "kd> "

    def run_line(self, line: str) -> bool:
        """Run one input line (echoed after the prompt when ``echo_commands``)."""
        if self.echo_commands:
            self.output.line(self.prompt() + line)
        self.executor.deadline = self._deadline()
        return self.console.execute(line)

    def run_commands(self, lines: Iterable[str]) -> int:
        """Batch: every line in order; the exit status kdcon --batch documents. When
        the link heals (reconnect.py), a loss fails the command in flight and the run
        waits for the session to come back, within ``--timeout``, before the next line."""
        for line in lines:
            if not self._wait_healed():
                return EXIT_TIMEOUT
            try:
                self.run_line(line)
            except TargetLost as exc:
                self.output.line(str(exc))
                self.console.failures += 1
                if not self.healer.watching:
                    return EXIT_FAILED
            if self.console.quit_requested or self._time_is_up():
                break
        if self.timed_out:
            return EXIT_TIMEOUT
        return EXIT_FAILED if self.console.failures else EXIT_OK

    def _wait_healed(self) -> bool:
        """Before a batch line: wait while the healer brings the link back; False (and
        one line) when --timeout expires first."""
        healer = self.healer
        if not healer.healing:
            return True
        self.output.event_text("The script waits for the target to come back before "
                               "its next command\n")
        if healer.wait_healed(self._deadline()):
            return True
        self.timed_out = True
        self.output.event_text("--timeout expired while the link to the target was lost; "
                               "the rest of the script was not run\n")
        return False

    def _time_is_up(self) -> bool:
        self.timed_out = self.timed_out or bool(self.console.state.values.get("timed_out"))
        return self.timed_out

    def run_prompt(self, stdin: TextIO) -> int:
        """The plain line prompt: ``0: kd> `` while halted; Ctrl+C breaks in."""
        previous = signal.getsignal(signal.SIGINT)

        def on_interrupt(signum: int, frame: Any) -> None:
            if not self.session.halted:
                self.session.break_requested.set()
            else:
                raise KeyboardInterrupt

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, on_interrupt)
        self.read_prompt_line = lambda prompt: stdin.readline().rstrip("\n")
        try:
            while not self.console.quit_requested:
                with self.output.lock:
                    self.output.write(self.prompt())
                    self._prompt_waiting, self._prompt_covered = True, False
                try:
                    line = stdin.readline()
                except KeyboardInterrupt:
                    self.output.line("")
                    continue
                finally:
                    self._prompt_waiting = False
                if not line:
                    self.output.line("")
                    break
                try:
                    self.console.execute(line.rstrip("\n"))
                except KeyboardInterrupt:
                    self.output.line("^C")
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, previous)
        return EXIT_FAILED if self.console.failures else EXIT_OK

    def event_line(self, text: str) -> None:
        """A line of an event (the reconnecting loop's steps) from any thread; under
        a plain prompt that waits for input it starts on a line of its own."""
        with self.output.lock:
            if self._prompt_waiting and not self._prompt_covered:
                self.output.event_text("\n")
                self._prompt_covered = True
            self.output.event_text(text + "\n")

    def prompt_again(self) -> None:
        """Show the prompt again after event lines covered it (a reconnect): the
        plain prompt is written anew, the REPL's is redrawn."""
        with self.output.lock:
            if self._prompt_waiting and self._prompt_covered:
                self.output.write(self.prompt())
                self._prompt_covered = False
        redraw = self.redraw_prompt
        if redraw is not None:
            redraw()

    def run_repl(self, **options: Any) -> int:
        """The interactive prompt on a terminal (repl.py; ``options`` go to ``Repl``)."""
        from .repl import Repl  # prompt_toolkit is loaded only for a terminal

        repl = Repl(self, **options)
        # prompt_toolkit's invalidate is safe from any thread (the reconnecting loop's).
        self.redraw_prompt = repl.prompt_session.app.invalidate
        try:
            return repl.run()
        finally:
            self.redraw_prompt = None

    def close(self) -> None:
        # First, or closing the link would look like a loss to it.
        self.healer.stop()
        self.session.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, StopKind):
        return value.value
    return str(value)

