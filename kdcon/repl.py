"""The interactive console: a prompt_toolkit prompt over a command thread.

What it does: ``Repl(app).run()`` keeps a ``PromptSession`` on screen inside
``patch_stdout``, so DbgPrint lines, stops and command output land above the line
being typed. Lines go to one command thread that runs them in order, so the prompt
stays live while ``g`` waits for the target: it reads ``kd> `` while the target
runs and ``0: kd> `` while it is halted, and a bottom toolbar (toolbar.py) says what
the session knows now. History is kept in the user's state directory (platformdirs,
``history`` under ``kdcon``), searched by prefix with Up/Down and incrementally with
Ctrl+S, and suggested as you type. Completion comes from completion.py.

Keys (``terminal.KEYS``, printed by ``.help keys``): Ctrl+C breaks into a running
target (the command thread's wait sends the break-in), cancels a command running on a
halted target (``Target.cancel_event``: the line ends at its next statement, loop
round, line of output or checked chunk, scripting.py Rule 6; an extension still
computing on its own half a second later gets a KeyboardInterrupt raised in it), and
clears the line when nothing runs. Ctrl+D at an empty prompt quits and leaves the
target as it is; Ctrl+B quits leaving it running (``qd``); Ctrl+R resynchronises
(``Session.resync``, or ``.restart`` when the link is lost); Ctrl+K cycles
``Settings.break_on_reboot``; F2 turns the packet trace on and off through
``.kdtrace`` when the console has it. A DbgPrompt from the
target (an ASSERT's ``(bipt)?``) takes the next line typed as its answer.
With ``.more on`` (off by default) a command's output longer than the terminal
pauses at ``-- more --`` on the prompt line (output.py ``Pager``): space shows the
next page, Enter one more line, q stops the output and ends the line quietly
(kd's q), Ctrl+C does too and says the command was cancelled; only on a
terminal, never for other threads' text (DbgPrint) or in logs.
What it does not do: parse or run commands (console.py), or decide what colour
means (terminal.py).
Spec: windbg.md §0 (keys and prompts); STYLE.md 16-17.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, get_common_complete_suffix
from prompt_toolkit.search import SearchDirection, start_search
from prompt_toolkit.filters import Condition, is_searching
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output.color_depth import ColorDepth
from prompt_toolkit.patch_stdout import patch_stdout

from .commandthread import CommandThread, in_extension_code, raise_in
from .completion import LOADING, KdCompleter
from .output import Pager
from .session import TargetLost, TargetState
from .terminal import Interrupted, TerminalStream
from .toolbar import toolbar_text

if TYPE_CHECKING:
    from .app import App

__all__ = ["Repl", "CommandThread", "history_path", "BREAK_ON_REBOOT"]

log = logging.getLogger(__name__)

# Ctrl+K's cycle (kd's post-reboot break states): run on, break in as soon as the
# rebooted kernel can (-b), break at the first module load (-d).
BREAK_ON_REBOOT = {
    "none": "the target runs on after a reboot",
    "initial": "break in as soon as the rebooted target can (-b)",
    "first-load": "break in at the first module load after a reboot (-d)",
}
MORE = "-- more --"
_CTRL_C = "\x03"         # Ctrl+C's answer at -- more --: q that also says it cancelled
_QUIT_WAIT = 5.0             # how long quitting waits for a command on a halted target
_FORCE_AFTER = 0.5           # how long Ctrl+C waits for a natural stop before forcing one


def history_path() -> Path:
    """``<user state dir>/kdcon/history`` (``~/.local/state/kdcon/history`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("kdcon")) / "history"


def _open_history(path: Path | None) -> tuple[History, str | None]:
    """A file history at ``path``, or one kept in memory and a line saying why."""
    if path is None:
        return InMemoryHistory(), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return InMemoryHistory(), (f"History is not kept across sessions: cannot write "
                                   f"{path} ({exc.strerror or exc})")
    return FileHistory(str(path)), None


def _loading(buffer: Buffer) -> bool:
    """Whether the menu shows only the ``loading symbols`` entry."""
    state = buffer.complete_state
    return state is not None and bool(state.completions) and \
        all(c.display_meta_text == LOADING for c in state.completions)


class Repl:
    """The interactive loop over one connected ``App``."""

    def __init__(self, app: App, *, stream: TerminalStream | None = None, colour: bool = False,
                 history: Path | None | str = "default", input: Any = None, output: Any = None,
                 paging: bool | None = None) -> None:
        self.app = app
        self.console = app.console
        self.session = app.session
        self.stream = stream
        self.colour = colour
        self.runner = CommandThread(on_done=self._job_done)
        self._lock = threading.Lock()
        self._quit = False
        self._closing = False
        self._force_lock = threading.Lock()
        self._line_number = 0
        self._line_running = False
        self._cancel_for = -1
        # Paging (.more): only on a terminal (or when a test asks for it).
        self._more: queue.Queue[str] | None = None
        if paging is None:
            target = stream.target if stream is not None else sys.stdout
            isatty = getattr(target, "isatty", None)
            paging = bool(isatty and isatty())
        self._pageable = paging
        self.pager = Pager(self._rows, self._ask_more, self._paged)
        self._running_loop: Any = None
        self._answer: queue.Queue[str] | None = None
        self._trace_on = False
        self._toolbar_cache: dict[Any, str] = {}
        path = history_path() if history == "default" else (Path(history) if history else None)
        self.history, self.history_warning = _open_history(path)
        self.completer = KdCompleter(self.console, may_query=self._may_query_symbols,
                                     schedule=self.runner.submit_background,
                                     on_ready=self._names_ready,
                                     can_load=lambda: self.session.halted)
        self.prompt_session: PromptSession[str] = PromptSession(
            history=self.history,
            auto_suggest=AutoSuggestFromHistory(),
            enable_history_search=True,
            completer=self.completer,
            complete_while_typing=False,
            bottom_toolbar=self.toolbar,
            refresh_interval=0.5,
            key_bindings=self._key_bindings(),
            color_depth=None if colour else ColorDepth.DEPTH_1_BIT,
            input=input,
            output=output,
        )
        self.prompt_session.default_buffer.on_text_insert += self._complete_symbols_as_typed

    # -- what the prompt shows ---------------------------------------------------------------

    def message(self) -> str:
        if self._more is not None:
            return MORE
        if self._answer is not None:
            return ""
        return self.app.prompt()

    def toolbar(self) -> str:
        if self._more is not None:
            return " space: the next page, Enter: one more line, q or Ctrl+C: stop"
        if self._answer is not None:
            return " The target asks: type the answer and Enter"
        return toolbar_text(self.app, busy=self.runner.busy and self.session.halted,
                            cache=self._toolbar_cache)

    def _may_query_symbols(self) -> bool:
        # Loading a module's symbols may read its headers from the target: only
        # while the command thread is idle and the target halted.
        return not self.runner.active and self.session.halted

    def _names_ready(self) -> None:
        """A module's names were sorted in the background (command thread): a menu
        that says ``loading symbols`` asks again."""
        with self._lock:
            loop = self._running_loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._refresh_completions)
            except RuntimeError:       # that prompt just ended
                pass

    def _refresh_completions(self) -> None:
        buffer = self.prompt_session.default_buffer
        if _loading(buffer) or (buffer.complete_state is None and
                                self.completer.last_loading == buffer.document.text_before_cursor):
            buffer.complete_state = None
            buffer.start_completion(select_first=False)

    def _complete_symbols_as_typed(self, buffer: Buffer) -> None:
        """``nt!Ke``: offer the module's symbols while the name is typed."""
        text = buffer.document.text_before_cursor
        word = text.rsplit(None, 1)[-1] if text.strip() else ""
        # Two letters after the bang: a big module's every name waits for a Tab.
        if not word.startswith("!") and len(word.partition("!")[2]) >= 2 and \
                buffer.complete_state is None:
            buffer.start_completion(select_first=False)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        """Read and run lines until Ctrl+D, Ctrl+B, ``q`` or ``qd``."""
        from .app import EXIT_OK

        app = self.app
        app.read_prompt_line = self._read_answer
        previous = None
        main = threading.current_thread() is threading.main_thread()
        if main:
            previous = signal.signal(signal.SIGINT, lambda signum, frame: self._interrupt())
        if self.stream is not None:
            self.stream.colour = self.colour
            self.stream.gate = self._gate
        if self._pageable:
            app.output.pager = self.pager
        self.runner.start()
        if self.session.halted:
            self.completer.prepare()
        try:
            with patch_stdout(raw=True):
                if self.history_warning:
                    app.output.line(self.history_warning)
                self._loop()
                self._finish()
        finally:
            self._closing = True
            if app.output.pager is self.pager:
                app.output.pager = None
            if self.stream is not None:
                self.stream.colour = False
                self.stream.gate = self._gate_closed
            if main:
                signal.signal(signal.SIGINT, previous)
            # A command still waiting on a running target ends when the link closes.
            self.runner.stop(timeout=0.0 if self.runner.busy else 1.0)
            app.read_prompt_line = None
        # A user who typed a wrong command and then quit has not failed, as with kd;
        # --batch and a piped prompt report failures in their status.
        return EXIT_OK

    def _loop(self) -> None:
        while not self._quit:
            try:
                line = self.prompt_session.prompt(self.message, pre_run=self._started)
            except EOFError:
                break                                 # Ctrl+D: quit, target as it is
            except KeyboardInterrupt:
                continue
            finally:
                with self._lock:
                    self._running_loop = None
            if self._quit:
                break
            answer = self._answer
            if answer is not None:
                self._answer = None
                self.prompt_session.app.erase_when_done = False
                answer.put(line)
                continue
            self.runner.submit(lambda line=line: self._run_line(line))

    def _finish(self) -> None:
        """Let what was typed ahead on a halted target finish; never wait on a
        running one."""
        if self.runner.busy and self.session.state is TargetState.HALTED:
            self.runner.wait_idle(_QUIT_WAIT)

    def _started(self) -> None:
        import asyncio

        with self._lock:
            self._running_loop = asyncio.get_running_loop()
            quit_now = self._quit
        if quit_now:
            self.prompt_session.app.exit(result="")

    def _job_done(self) -> None:
        if self.console.quit_requested:
            self.quit()
        elif self.session.halted:
            # The prompt goes idle: sort the names of modules whose symbols the
            # command loaded, before a Tab asks for them.
            self.completer.prepare()
        self._invalidate()

    def quit(self) -> None:
        """Leave the loop from any thread."""
        with self._lock:
            self._quit = True
            loop = self._running_loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._exit_prompt)
            except RuntimeError:       # the loop closed: the main loop sees _quit
                pass

    def _exit_prompt(self) -> None:
        app = self.prompt_session.app
        if app.is_running and app.future is not None and not app.future.done():
            app.exit(result="")

    def _invalidate(self) -> None:
        """Redraw the prompt and toolbar soon (from any thread)."""
        with self._lock:
            loop = self._running_loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._redraw)
            except RuntimeError:       # that prompt just ended; the next one draws anew
                pass

    def _redraw(self) -> None:
        app = self.prompt_session.app
        if app.is_running:
            app.invalidate()

    # -- running commands (the command thread) ------------------------------------------------

    def _run_line(self, line: str) -> None:
        self._arm_cancel()
        try:
            self.console.execute(line)
        except (Interrupted, TargetLost) as exc:
            self.app.output.line(str(exc))
        except KeyboardInterrupt:
            # Stopped by force (see _stop_by_force) outside the extension it was meant for.
            self.console.scripts.cancellation()
        finally:
            with self._force_lock:
                self._line_running = False
                raise_in(self.runner.thread, None)        # one not delivered yet goes

    def _arm_cancel(self) -> None:
        target = self.console.target
        with self._force_lock:
            self._line_number += 1
            self._line_running = True
            # A Ctrl+C pressed after Enter but before the line began is for this line.
            if target is not None and self._cancel_for != self._line_number:
                target.cancel_event.clear()
        self.pager.reset()

    def _gate(self) -> bool:
        """Asked before every write to the terminal: after quitting, a command still
        running says nothing. (Ctrl+C stops a command at its next line of output
        through the interpreter's ``Output.check``, captured or not.)"""
        return not (self._closing and threading.current_thread() is self.runner.thread)

    def _stop_by_force(self, number: int) -> None:
        """Ctrl+C on a halted target, on a thread of its own: line ``number``, if it has
        not stopped at a natural point ``_FORCE_AFTER`` after it began and is running an
        extension's own code (computing, neither reading the target nor printing),
        gets a KeyboardInterrupt raised in it, which the extension loader reports as
        cancelled. Never while the thread is inside the session, the protocol or the
        symbols, where an exception could leave a request or an index half done."""
        deadline = time.monotonic() + _FORCE_AFTER
        while not self._closing and self.runner.busy:
            with self._force_lock:
                if self._line_number > number or (self._line_number == number and
                                                  not self._line_running):
                    return                         # that line ended
                if self._line_number < number:
                    deadline = time.monotonic() + _FORCE_AFTER     # not begun yet
                else:
                    # The extension loader clears the event as each bang starts: the
                    # Ctrl+C stays pressed for the rest of its line.
                    target = self.console.target
                    if target is not None and not target.cancel_event.is_set():
                        target.cancel_event.set()
                    if time.monotonic() >= deadline and \
                            in_extension_code(self.console, self.runner.thread):
                        raise_in(self.runner.thread, KeyboardInterrupt)
                        return
            time.sleep(0.05)

    def _paged(self) -> bool:
        return bool(self.console.settings.more) and \
            threading.current_thread() is self.runner.thread and not self._closing

    def _rows(self) -> int:
        try:
            return self.prompt_session.output.get_size().rows
        except Exception:  # a terminal that cannot say: kd's classic 25 rows
            return 25

    def _ask_more(self) -> str:
        """``-- more --`` on the prompt line until space, Enter, q or Ctrl+C (called on
        the command thread); q and Ctrl+C end the line, only Ctrl+C says it was cancelled."""
        slot: queue.Queue[str] = queue.Queue(maxsize=1)
        target = self.console.target
        self._more = slot
        self._invalidate()
        answer = _CTRL_C          # unless a key says otherwise: Ctrl+C pressed elsewhere
        try:
            while not self._quit and not self._closing:
                if target is not None and target.cancel_event.is_set():
                    break
                try:
                    answer = slot.get(timeout=0.1)
                    break
                except queue.Empty:
                    continue
        finally:
            self._more = None
            self._invalidate()
        if answer in ("q", _CTRL_C) and target is not None:
            if answer == "q":
                # kd's q only stops the output: the line ends without a word.
                self.console.scripts.cancel_reported = True
            target.cancel_event.set()
        return "q" if answer == _CTRL_C else answer

    def _answer_more(self, key: str) -> None:
        slot = self._more
        if slot is not None:
            try:
                slot.put_nowait(key)
            except queue.Full:
                pass

    def _gate_closed(self) -> bool:
        """After quitting, a command still waiting on a running target says nothing."""
        return threading.current_thread() is not self.runner.thread

    def _read_answer(self, prompt: str) -> str | None:
        """A DbgPrompt's answer: the next line typed (called on the command thread)."""
        slot: queue.Queue[str] = queue.Queue(maxsize=1)
        if self.stream is not None and not prompt.endswith("\n"):
            # End the question's line on the terminal only (logs keep kd's
            # "(bipt)? b"), so the prompt below cannot draw over it.
            self.stream.target.write("\n")
            self.stream.target.flush()
        # The session shows the answer after the question: the typed line goes.
        self.prompt_session.app.erase_when_done = True
        self._answer = slot
        self._invalidate()
        while not self._quit:
            try:
                return slot.get(timeout=0.25)
            except queue.Empty:
                continue
        return None

    # -- keys ---------------------------------------------------------------------------------

    def _interrupt(self) -> bool:
        """Ctrl+C while a command runs: break in, or cancel. False when idle."""
        if not self.runner.busy or self._answer is not None:
            return False
        state = self.session.state
        if state is TargetState.RUNNING:
            self.session.break_requested.set()
        elif state is TargetState.HALTED and self.console.target is not None:
            with self._force_lock:
                number = self._line_number + (0 if self._line_running else 1)
                self._cancel_for = number
            self.console.target.cancel_event.set()
            threading.Thread(target=self._stop_by_force, args=(number,),
                             name="kdcon-ctrl-c", daemon=True).start()
        return True

    def _key_bindings(self) -> KeyBindings:
        keys = KeyBindings()
        idle = Condition(lambda: not is_searching())

        @keys.add("c-c", filter=idle)
        @keys.add("<sigint>")
        def _ctrl_c(event: KeyPressEvent) -> None:
            if not self._interrupt():
                event.current_buffer.reset()

        @keys.add("c-b", filter=idle)
        def _ctrl_b(event: KeyPressEvent) -> None:
            if self.session.halted and not self.runner.busy:
                buffer = event.current_buffer
                buffer.text = "qd"
                buffer.validate_and_handle()
                return
            if self.session.halted and self.console.target is not None:
                # A command is running on the halted target: stop it, then detach.
                self.console.target.cancel_event.set()
                self.runner.submit(lambda: self._run_line("qd"))
                return
            self._say("quit: the target is left running")
            self.quit()

        @keys.add("c-r", filter=idle)
        def _ctrl_r(event: KeyPressEvent) -> None:
            if self.runner.busy:
                self._say("Ctrl+R waits for the command that runs: Ctrl+C first")
                return
            if self.session.state is TargetState.LOST and ".restart" in self.console.registry:
                # A lost link needs reopening, not a RESET: .restart does both.
                self.runner.submit(lambda: self._run_line(".restart"))
                return
            self.runner.submit(self._resync)

        @keys.add("c-k", filter=idle)
        def _ctrl_k(event: KeyPressEvent) -> None:
            settings = self.console.settings
            states = list(BREAK_ON_REBOOT)
            current = getattr(settings, "break_on_reboot", "none")
            following = states[(states.index(current) + 1) % len(states)] \
                if current in states else states[0]
            settings.break_on_reboot = following
            self._say(f"Break on reboot: {following}: {BREAK_ON_REBOOT[following]}")

        @keys.add("f2")
        def _f2(event: KeyPressEvent) -> None:
            if ".kdtrace" not in self.console.registry:
                self._say("Packet trace: this console has no .kdtrace command")
                return
            self._trace_on = not self._trace_on
            line = f".kdtrace {'on' if self._trace_on else 'off'}"
            self.runner.submit(lambda: self._run_line(line))

        @keys.add("tab", filter=idle)
        def _tab(event: KeyPressEvent) -> None:
            # Synchronous, unlike prompt_toolkit's: a Tab typed right after the last
            # letter (or pasted with it) must complete what is there now.
            buffer = event.current_buffer
            if buffer.complete_state and not _loading(buffer):
                buffer.complete_next()
                return
            buffer.complete_state = None
            found = list(self.completer.get_completions(
                buffer.document, CompleteEvent(completion_requested=True)))
            if len(found) == 1 and found[0].display_meta_text != LOADING:
                buffer.apply_completion(found[0])
                return
            common = get_common_complete_suffix(buffer.document, found) if found else ""
            if common:
                buffer.insert_text(common)
            if found:
                buffer.start_completion(select_first=False)

        @keys.add("c-s", filter=idle)
        def _ctrl_s(event: KeyPressEvent) -> None:
            # Ctrl+R is kd's resync here, so the backward history search moves to Ctrl+S.
            start_search(direction=SearchDirection.BACKWARD)

        # While -- more -- waits, its keys answer it and nothing reaches the line
        # (added last: the last binding of a key wins).
        paused = Condition(lambda: self._more is not None)

        @keys.add("<any>", filter=paused)
        def _more_other(event: KeyPressEvent) -> None:
            pass

        @keys.add(" ", filter=paused, eager=True)
        def _more_page(event: KeyPressEvent) -> None:
            self._answer_more(" ")

        @keys.add("enter", filter=paused, eager=True)
        @keys.add("c-j", filter=paused, eager=True)
        def _more_line(event: KeyPressEvent) -> None:
            self._answer_more("\n")

        @keys.add("q", filter=paused, eager=True)
        def _more_stop(event: KeyPressEvent) -> None:
            self._answer_more("q")

        @keys.add("c-c", filter=paused, eager=True)
        def _more_cancel(event: KeyPressEvent) -> None:
            self._answer_more(_CTRL_C)

        return keys

    def _say(self, text: str) -> None:
        self.app.output.event_text(text + "\n")

    def _resync(self) -> None:
        output = self.app.output
        output.event_text("KDTARGET: Refreshing KD connection\n")
        try:
            stop = self.session.resync()
        except TargetLost as exc:
            output.event_text(f"{exc}\n")
            return
        try:
            lines = self.console.location_lines(stop.pc, stop.instruction_stream)
        except Exception as exc:  # the stop is known; naming it is a courtesy
            log.debug("resync: no location: %s", exc)
            lines = [self.console.format_address(stop.pc)]
        output.event_text("\n".join(lines) + "\n")

