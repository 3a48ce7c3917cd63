"""The thread that runs the console's commands, and stopping it by force.

What it does: ``CommandThread`` runs jobs one at a time in the order they come, so
the prompt stays live while a command waits for the target; command jobs make it
``busy``, background jobs (``submit_background``: sorting a module's names for
completion) run after every command job queued and do not. ``in_extension_code``
and ``raise_in`` are how Ctrl+C stops an extension that computes on its own: a
KeyboardInterrupt raised in the thread, only while its innermost frames are the
extension's own code (never inside the session, the protocol, the symbol indexes,
the output or the standard library's locks, where it could leave a request, an
index or a lock half done).
What it does not do: decide when to stop a command (repl.py) or run lines
(console.py).
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["CommandThread", "in_extension_code", "raise_in"]

log = logging.getLogger(__name__)


class CommandThread:
    """One thread that runs jobs in the order they come; ``busy`` while any command job
    is queued or running. Background jobs (``submit_background``) run on the same
    thread, after every command job queued, and do not make it busy; ``active`` is
    True while any job runs."""

    def __init__(self, on_done: Callable[[], None] = lambda: None) -> None:
        # (priority, order, job): command jobs and the stop mark before background ones.
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable[[], None] | None]] = \
            queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._pending = 0
        self._running = False
        self._idle = threading.Event()
        self._idle.set()
        self._on_done = on_done
        self.thread = threading.Thread(target=self._run, name="kdcon-commands", daemon=True)

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    @property
    def active(self) -> bool:
        return self.busy or self._running

    def start(self) -> None:
        self.thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._jobs.put((0, next(self._order), job))

    def submit_background(self, job: Callable[[], None]) -> None:
        self._jobs.put((1, next(self._order), _Background(job)))

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 1.0) -> None:
        self._jobs.put((0, next(self._order), None))
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _run(self) -> None:
        while True:
            _, _, job = self._jobs.get()
            if job is None:
                return
            background = isinstance(job, _Background)
            self._running = True
            try:
                job()
            except (Exception, KeyboardInterrupt):  # a job reports its own failures
                log.exception("command job failed")
            finally:
                self._running = False
                if not background:
                    with self._lock:
                        self._pending -= 1
                        if not self._pending:
                            self._idle.set()
            if background:
                continue
            try:
                self._on_done()
            except Exception:  # redrawing must never end the thread that runs commands
                log.exception("after a command job")


def _unsafe_places() -> tuple[str, ...]:
    """Where an exception raised by force could leave state half changed: the link
    and the protocol, the session and its caches, the symbol indexes, the output and
    the log, and the locks of the standard library."""
    import kdcon.protocol
    import kdcon.symbols

    here = os.path.dirname(os.path.abspath(__file__))
    folders = (os.path.dirname(os.path.abspath(kdcon.protocol.__file__)) + os.sep,
               os.path.dirname(os.path.abspath(kdcon.symbols.__file__)) + os.sep)
    files = tuple(os.path.join(here, name) for name in (
        "session.py", "memory.py", "wire.py", "output.py", "logfile.py", "terminal.py"))
    return folders + files + (os.path.abspath(threading.__file__), os.path.abspath(queue.__file__))


def in_extension_code(console: Any, thread: threading.Thread) -> bool:
    """Whether ``thread`` runs an extension's function now, nowhere unsafe to stop."""
    extensions = getattr(console, "extensions", None)
    if getattr(getattr(extensions, "target", None), "owner", None) is None or thread.ident is None:
        return False
    frame = sys._current_frames().get(thread.ident)
    unsafe = _unsafe_places()
    loader = os.path.join(os.path.dirname(os.path.abspath(__file__)), "extload.py")
    # From the innermost frame out to the loader's call of the extension.
    while frame is not None:
        where = os.path.abspath(frame.f_code.co_filename)
        if where == loader:
            return True
        if where.startswith(unsafe):
            return False
        frame = frame.f_back
    return False


def raise_in(thread: threading.Thread, exception: type[BaseException] | None) -> None:
    """Raise ``exception`` in ``thread`` at its next bytecode (None: take back one not
    raised yet)."""
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exception) if exception else None)


class _Background:
    """A job of ``submit_background`` (told apart from command jobs)."""

    __slots__ = ("job",)

    def __init__(self, job: Callable[[], None]) -> None:
        self.job = job

    def __call__(self) -> None:
        self.job()
