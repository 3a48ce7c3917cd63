"""Driving the real REPL headlessly: a loopback App, pipe input, dummy output.

``loopback_app()`` connects an ``App`` to the in-process simulated target with its
text going to a ``StringIO`` through a ``TerminalStream``. ``ReplDriver`` runs
``Repl.run()`` on the calling (main) thread, as the CLI does, while a script types
into the prompt from a second thread and waits on what the REPL shows with bounded
polls; whatever happens, the script's end makes the REPL quit, so a failing test
cannot hang.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from kdcon.app import App
from kdcon.output import Output
from kdcon.repl import Repl
from kdcon.session import TargetState
from kdcon.terminal import TerminalStream
from kdcon.tools.simtarget.loopback import SimTarget

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"
UP = "\x1b[A"
F2 = "\x1bOQ"
CTRL_B, CTRL_C, CTRL_D, CTRL_K, CTRL_R = "\x02", "\x03", "\x04", "\x0b", "\x12"


class Loopback:
    """An App attached to the simulated target; ``text`` is what it printed."""

    def __init__(self) -> None:
        self.sim = SimTarget(break_on_connect=True)
        port = self.sim.connect()
        self.buffer = io.StringIO()
        self.stream = TerminalStream(self.buffer)
        self.app = App(port, link_name="kdsim (test)",
                       symbol_path=f"{IMAGES};{IMAGES / 'checked'}", output=Output(self.stream))
        self.app.connect()
        # Past DriverEntry's DbgBreakPoint: from here ``g`` runs until a break-in.
        self.app.console.execute("g")

    @property
    def text(self) -> str:
        with self.app.output.lock:
            return self.buffer.getvalue()

    def close(self) -> None:
        self.app.close()
        self.sim.close()


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class ReplDriver:
    """One ``Repl`` over a loopback App, typed into from a script thread."""

    def __init__(self, loop: Loopback, *, history: Path | None = None, colour: bool = False,
                 paging: bool | None = None) -> None:
        self.loop = loop
        self.app = loop.app
        self._input_context = create_pipe_input()
        self.input = self._input_context.__enter__()
        self.repl = Repl(loop.app, stream=loop.stream, colour=colour, history=history,
                         input=self.input, output=DummyOutput(), paging=paging)
        self.status: int | None = None

    @property
    def buffer(self):
        return self.repl.prompt_session.default_buffer

    def type(self, text: str) -> None:
        self.input.send_text(text)

    def run_command(self, line: str, timeout: float = 10.0) -> None:
        """Type ``line`` and Enter, and wait until it ran."""
        count = len(self.app.console.results)
        self.wait_prompt()
        self.type(line + "\r")
        wait_until(lambda: len(self.app.console.results) > count and not self.repl.runner.busy,
                   f"{line!r} to run", timeout)

    def wait_prompt(self) -> None:
        wait_until(lambda: self.repl.prompt_session.app.is_running, "the prompt")

    def wait_text(self, needle: str, timeout: float = 10.0) -> None:
        wait_until(lambda: needle in self.loop.text, repr(needle), timeout)

    def run(self, script: Callable[[ReplDriver], None]) -> int:
        errors: list[BaseException] = []

        def typist() -> None:
            try:
                script(self)
            except BaseException as exc:  # re-raised on the test's thread below
                errors.append(exc)
            finally:
                self.repl.quit()

        thread = threading.Thread(target=typist, name="repl-typist", daemon=True)
        thread.start()
        try:
            self.status = self.repl.run()
        finally:
            thread.join(10)
            self._input_context.__exit__(None, None, None)
        if errors:
            raise errors[0]
        return self.status


def go(driver: ReplDriver) -> None:
    """``g`` from a stop past the driver's own break: the target then runs until a
    break-in (the loopback fixture starts there and no test leaves a breakpoint)."""
    session = driver.app.session
    driver.wait_prompt()
    driver.type("g\r")
    wait_until(lambda: session.state is TargetState.RUNNING, "the target to run")
