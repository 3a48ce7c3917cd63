"""The connection that heals itself: reopen a lost link, resynchronise, restore the session.

What it does: ``Healer(app)`` belongs to one App. Once told how to open the link again
(``watch(Reopen(...))``) it watches the session's link on a thread of its own. When
the link closes (the peer closed the pipe, the VM or ``kdcon-sim`` went away, a USB
serial adapter was pulled) the target state becomes ``lost`` and the healer reopens
the link with backoff (0.1 s, doubling to 1 s) until it opens. Then, holding the
console's lock so that no command runs in between, it resynchronises as kd attaches
(break-in and RESET), reloads the module list and symbols, takes the breakpoints back
(``bu`` by expression; every one is written into the target when it next runs), shows
the stop and runs the ``-cfr`` script again: one line for each step. A command typed
while the link is lost fails at once with the reason (``Session.require_halted``); one
typed while the healer restores the session is refused in one line
(``Console.execute``). ``restart()`` is ``.restart``: the same steps on demand, over
the link as it is (or, when it is lost, a new try now).

``heal_spec`` says which links heal by default and what to open: ``unix://``,
``tcp://`` and ``socket://`` URLs, device paths (ptys, USB serial adapters) and kd
``com:pipe,...,reconnect`` strings, with the port's own ``?reconnect`` taken off: a
port that reconnects by itself hides the loss, and the new peer's first packets meet
a connection that still expects the old one's.

A ``--batch`` run heals too: the command in flight fails, and ``App.run_commands``
waits (``wait_healed``, within ``--timeout``) before the next line.

What it does not do: notice a target that stops answering on a link that stays open (a
request times out, and console.py says so in one line), or wait for a link that is not
there yet when kdcon starts (linkwait.py).
Spec: windbg.md §0.7 (Ctrl+R, ``.restart``), §0.8 (``reconnect``, ``-cfr``);
kd-protocol.md §3.5 (host sync).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kdcon.protocol.errors import ProtocolError, TargetTimeout, TransportError
from kdcon.protocol.host import TargetError
from kdcon.protocol.transports import is_kd_string, parse_kd_string
from kdcon.protocol.transports.cli import open_checked

from .errors import KdconError
from .execution import StopOutcome
from .session import TargetLost, TargetState
from .stops import Stop, StopKind

if TYPE_CHECKING:
    from .app import App

__all__ = ["Healer", "Reopen", "Backoff", "heal_spec", "reopen_for", "restore"]

log = logging.getLogger(__name__)

# How long the first visible stop after a reattach may take: a rebooting target
# reports its boot modules first, each one a stop the executor takes and resumes.
FIRST_STOP_TIMEOUT = 30.0
# How often the watcher looks at the link when no ``lost`` event woke it.
_POLL = 1.0
_HEALING_SCHEMES = ("unix", "tcp", "socket")
# How often a batch waiting for the session to come back looks at the healer.
_HEALED_POLL = 0.2


@dataclass(frozen=True)
class Backoff:
    """Waits between tries: ``first``, times ``factor`` each try, never above ``cap``."""

    first: float = 0.1
    factor: float = 2.0
    cap: float = 1.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(self.cap, delay * self.factor)


@dataclass(frozen=True)
class Reopen:
    """How to open the link (again): ``open_link`` with the options it was opened with."""

    spec: str
    baud: int = 115200
    pace: int | None = None
    faults: Any = None

    def __call__(self) -> Any:
        return open_checked(self.spec, baud=self.baud, pace=self.pace, faults=self.faults)


def heal_spec(spec: str) -> str | None:
    """What to open for ``spec`` when its link heals, or None when it does not heal by
    default (a kd pipe without ``reconnect``, ``loop://``, ``pty://``, ``rfc2217://``).
    ``LinkError`` for a kd string that cannot be parsed."""
    spec = spec.strip()
    if is_kd_string(spec):
        kd = parse_kd_string(spec)
        if kd.pipe and not kd.reconnect:
            return None
        return _without_reconnect(kd.to_url())
    if "://" not in spec:
        return spec                       # a device: a pty, a USB or on-board UART
    scheme = spec.split("://", 1)[0].lower()
    return _without_reconnect(spec) if scheme in _HEALING_SCHEMES else None


def _without_reconnect(url: str) -> str:
    base, sep, query = url.partition("?")
    if not sep:
        return url
    kept = [item for item in query.split("&")
            if item and item.split("=", 1)[0].lower() != "reconnect"]
    return f"{base}?{'&'.join(kept)}" if kept else base


class Healer:
    """Reconnects one App's session when its link is lost; ``.restart`` on demand."""

    def __init__(self, app: App, *, backoff: Backoff | None = None,
                 sync_timeout: float = 10.0) -> None:
        self.app = app
        self.console = app.console
        self.session = app.session
        self.output = app.output
        self.backoff = backoff or Backoff()
        self.sync_timeout = sync_timeout
        self.reopen: Callable[[], Any] | None = None
        self.reconnects = 0              # sessions restored after a loss
        self.attempt = 0                 # of the loss being healed, 0 when none is
        self.last_duration: float | None = None  # from the port opening to restored
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._retry = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.console.healer = self
        self.console.events.subscribe("*", self._on_event, owner=None)

    # -- life cycle ---------------------------------------------------------------------------

    def watch(self, reopen: Callable[[], Any]) -> None:
        """Heal the link from now on, opening it again with ``reopen()``."""
        self.reopen = reopen
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kdcon-reconnect",
                                            daemon=True)
            self._thread.start()

    @property
    def watching(self) -> bool:
        return self._thread is not None and not self._stopping.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._retry.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            if thread.is_alive() and self.attempt:
                self.session.link.cancel()      # a resynchronisation in progress ends now
            thread.join(timeout)

    def retry_now(self) -> None:
        """Skip the wait before the next try (``.restart`` while the link is lost)."""
        self._retry.set()
        self._wake.set()

    def wait_reconnected(self, count: int, timeout: float) -> bool:
        """True once ``count`` sessions were restored, False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.reconnects < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    @property
    def healing(self) -> bool:
        """The link is lost and this healer is bringing it back (or about to)."""
        return self.watching and (self.attempt > 0 or self.session.link.closed)

    def wait_healed(self, deadline: float | None) -> bool:
        """Wait while ``healing``; False when ``deadline`` (monotonic) passed first."""
        with self._changed:
            while self.healing:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                # The loss itself notifies nobody: look again now and then.
                self._changed.wait(_HEALED_POLL if left is None else min(left, _HEALED_POLL))
        return True

    def _on_event(self, event: Any) -> None:
        if event.kind == "lost":
            self._wake.set()

    def _say(self, text: str) -> None:
        self.app.event_line(text)

    # -- the watcher thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(_POLL)
            self._wake.clear()
            if self._stopping.is_set():
                return
            if self.session.link.closed:
                try:
                    self._heal()
                except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                    log.exception("reconnecting failed")
                    self._say("Reconnecting failed unexpectedly; run with --debug for details")
                    self._stopping.wait(self.backoff.cap)

    def _heal(self) -> None:
        session = self.session
        reason = session.link.closed_reason or session.lost_reason or "closed"
        session.state = TargetState.LOST
        session.lost_reason = reason
        self._say(f"The link to the target is lost ({reason}); reconnecting to "
                  f"{self.app.link_name}")
        self.console.emit_event("reconnecting", reason=reason)
        delays = self.backoff.delays()
        last_error: str | None = None
        self.attempt = 0
        try:
            while not self._stopping.is_set():
                self.attempt += 1
                try:
                    assert self.reopen is not None
                    port = self.reopen()
                except (TransportError, OSError, ValueError) as exc:
                    error = str(exc) or type(exc).__name__
                    if error != last_error:
                        self._say(f"Reconnecting: {error}; trying again")
                        last_error = error
                else:
                    last_error = None
                    if self._reattach(port):
                        self.app.prompt_again()
                        return
                delay = next(delays)
                session.lost_reason = (f"{reason}; reconnecting, try {self.attempt + 1} "
                                       f"in {delay:.1f} s")
                self.app.prompt_again()
                self._retry.wait(delay)
                self._retry.clear()
        finally:
            self.attempt = 0

    def _reattach(self, port: Any) -> bool:
        """Attach over ``port`` and restore the session; False to try again."""
        console, session = self.console, self.session
        while not console.lock.acquire(timeout=0.5):
            if self._stopping.is_set():
                port.close()
                return False
        started = time.monotonic()
        try:
            self._say(f"Reopened {self.app.link_name} (try {self.attempt}): "
                      "KDTARGET: Refreshing KD connection")
            session.forget_modules()
            try:
                first = session.reattach(port, self.sync_timeout)
            except TargetLost as exc:
                if not self._stopping.is_set():
                    self._say(f"No answer on the reopened link: {exc}")
                session.link.close()
                session.state = TargetState.LOST
                return False
            except (ProtocolError, KdconError) as exc:
                return self._failed_restoring("reading the target's version and modules", exc)
            try:
                restore(self.app, first, self._say)
            except (ProtocolError, KdconError) as exc:
                return self._failed_restoring("restoring the session", exc)
            self.last_duration = time.monotonic() - started
            self._say(f"Reconnected: the session is back ({self.last_duration:.2f} s "
                      "after the link opened)")
            self.console.emit_event("reconnected", attempt=self.attempt,
                                    seconds=round(self.last_duration, 3))
            with self._changed:
                self.reconnects += 1
                self._changed.notify_all()
            return True
        finally:
            console.lock.release()

    def _failed_restoring(self, step: str, exc: BaseException) -> bool:
        """One line; False (try again) when the link closed meanwhile."""
        if self._stopping.is_set():
            return False                        # the console is closing: nothing to say
        if self.session.link.closed:
            self._say(f"The link closed again while {step}: {exc}")
            self.session.state = TargetState.LOST
            return False
        self._say(f"Reconnected, but {step} failed: {exc}")
        with self._changed:
            self.reconnects += 1
            self._changed.notify_all()
        return True

    def run_restart_script(self) -> None:
        """The ``-cfr`` script after a target rebooted (``.reboot``)."""
        run_restart_script(self.app, self._say)

    # -- .restart -----------------------------------------------------------------------------

    def restart(self) -> None:
        """``.restart``: resynchronise now and restore the session as after a
        reconnect; when the link is lost, try to reopen it now. Runs on the command
        thread; TargetLost when the target does not answer."""
        session = self.session
        if session.link.closed or session.state is TargetState.LOST:
            if not self.watching:
                # The link's own reason first: the pump that copies it to the session
                # may not have run yet.
                reason = session.link.closed_reason or session.lost_reason or "closed"
                raise TargetLost(f"the target link is lost ({reason}) "
                                 "and this link does not reconnect: start kdcon again")
            self.retry_now()
            self._say("Reconnecting now; the console says when the target is back")
            return
        self._say("KDTARGET: Refreshing KD connection")
        first = session.resync(self.sync_timeout)
        session.forget_modules()
        session.after_reboot()
        restore(self.app, first, self._say)


# -- the steps after an attach ------------------------------------------------------------------

def restore(app: App, first: Stop, say: Callable[[str], None]) -> None:
    """After a reattach or resync whose first stop is ``first`` (module list already
    read): the breakpoints, the stop, the ``-cfr`` script. One line per step."""
    console, session = app.console, app.session
    version = session.version
    say(f"Kernel Debugger connection established again: Windows {version.MinorVersion} x64, "
        f"kernel base 0x{console.format_address(version.KernBase)}, "
        f"{len(session.modules)} modules (symbols load when first used)")
    kept, waiting = _take_breakpoints_back(console)
    if kept:
        line = f"Breakpoints: {kept} kept, written into the target when it runs"
        say(line + (f"; {waiting} wait for their module to load" if waiting else ""))
    _show_first_stop(app, first, say)
    run_restart_script(app, say)


def run_restart_script(app: App, say: Callable[[str], None]) -> None:
    """The ``-cfr`` script, again, on a halted target (kd: "every time the target is
    restarted")."""
    commands = list(app.restart_commands)
    if not commands or not app.session.halted:
        return
    say(f"Running the -cfr script again ({len(commands)} "
        f"command{'s' if len(commands) != 1 else ''})")
    for line in commands:
        app.run_line(line)
        if app.console.quit_requested:
            break


def _take_breakpoints_back(console: Any) -> tuple[int, int]:
    """Forget what was written where; ``bu`` resolve again by expression. A target
    that only lost its link may still hold our breakpoints: take them out first (a
    restarted one answers that it has none)."""
    session, executor = console.session, console.executor
    handles = {handle for bp in session.breakpoints
               for handle in (bp.handle, bp.stale_handle) if handle is not None}
    for handle in sorted(handles):
        try:
            session.host.restore_breakpoint(handle)
        except TargetError as exc:
            log.debug("breakpoint handle %d was not in the target: %s", handle, exc)
    executor.forget_written()
    for bp in session.breakpoints:
        if bp.kind == "bu" and bp.module is not None:
            bp.address = None
    executor.resolve_deferred()
    table = list(session.breakpoints)
    return len(table), sum(1 for bp in table if bp.address is None)


def _show_first_stop(app: App, first: Stop, say: Callable[[str], None]) -> None:
    """The stop the target reported, as ``App.connect`` shows it: module loads are
    taken and the target goes on to a stop worth showing; a stop at one of our
    breakpoints is named, not counted as a hit (its passes stay as they are)."""
    executor, session = app.executor, app.session
    if first.kind in (StopKind.LOAD, StopKind.UNLOAD):
        previous = executor.deadline
        executor.deadline = time.monotonic() + FIRST_STOP_TIMEOUT
        try:
            outcome = executor.judge(first) or executor.run()
        except TargetTimeout:
            session.break_in()
            try:
                stop = session.wait(time.monotonic() + app.session.host.timeout)
            except TargetTimeout:
                say("The target runs on with no stop to show: Ctrl+C breaks in")
                return
            outcome = StopOutcome(stop)
        finally:
            executor.deadline = previous
    else:
        ours = [bp for bp in session.breakpoints.at(first.pc) if bp.enabled] \
            if first.is_breakpoint else []
        outcome = StopOutcome(first, breakpoint=ours[0] if ours else None)
    executor.show(outcome)


def reopen_for(args: Any) -> Reopen | None:
    """How a kdcon run opens its link so that it can heal (see ``heal_spec``), or None
    when it does not: ``--loopback``, ``--no-reconnect``, or a link that does not heal
    by default."""
    from kdcon.protocol.transports.cli import link_baud

    spec = args.port or args.kd_string
    if args.loopback or getattr(args, "no_reconnect", False) or not spec:
        return None
    try:
        healed = heal_spec(spec)
        baud = link_baud(args)
    except TransportError:
        return None                  # opening it the usual way says what is wrong
    if healed is None:
        return None
    return Reopen(healed, baud=baud, pace=args.pace, faults=args.faults)
