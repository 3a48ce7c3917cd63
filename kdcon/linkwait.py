"""The first open of a link that heals: wait for a pipe or socket that is not there yet.

What it does: ``open_waiting(reopen, say=...)`` opens the link as ``reopen()`` does;
when that fails in a way the link may still come to exist (the VM or ``kdcon-sim`` has
not created its socket yet, nobody listens on it yet, a USB serial adapter is not
plugged in yet) it says so in one line, kd's ``Waiting to reconnect...``, and tries
again with the reconnecting loop's backoff until the link opens, ``deadline`` passes
(``WaitExpired``) or the user presses Ctrl+C (``KeyboardInterrupt``, from the wait).
``may_appear(spec, exc)`` is the rule: only errors that name something missing or
refused, and only when the path could still become the right kind of file (its
directory exists; nothing that is not a socket, or for a device not a character
device, is in the way). A directory, a regular file, permission denied, an unknown
host or a malformed URL raise at once: waiting would never help.

What it does not do: reopen a link that was lost later (reconnect.py), or decide
which links heal (``reconnect.heal_spec``). Spec: windbg.md §0.8 (``reconnect``
"waits for the pipe to appear").
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

from kdcon.protocol.errors import TransportError
from kdcon.protocol.transports.cli import local_device
from kdcon.protocol.transports.errors import LinkError

from .errors import KdconError
from .reconnect import Backoff

__all__ = ["open_waiting", "may_appear", "WaitExpired"]

log = logging.getLogger(__name__)

# What a connect or open says while the other end is not there yet; each may clear up
# on its own once the VM, the simulator or the adapter is.
_MISSING = frozenset({errno.ENOENT, errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED,
                      errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EAGAIN,
                      errno.ENODEV, errno.ENXIO})


class WaitExpired(KdconError):
    """The link did not appear before the run's time limit."""


def may_appear(spec: str, exc: BaseException) -> bool:
    """True when opening ``spec`` failed with ``exc`` only because the other end is not
    there yet, so that trying again later may succeed."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, socket.gaierror):
        return False                          # an unknown host name stays unknown
    if getattr(cause, "errno", None) not in _MISSING:
        return False
    path, wanted = _local_path(spec)
    if path is None:
        return True                           # tcp:// and the like: nothing local to check
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return False
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return wanted(mode)


def _local_path(spec: str) -> tuple[str | None, Callable[[int], bool]]:
    """The file ``spec`` opens and the test its mode must pass, or (None, ...)."""
    if spec.lower().startswith("unix://"):
        return spec[len("unix://"):].partition("?")[0] or None, stat.S_ISSOCK
    try:
        return local_device(spec), stat.S_ISCHR
    except TransportError:
        return None, stat.S_ISCHR


def _wrong_kind(spec: str) -> str | None:
    """One line when ``spec``'s path exists but is the wrong kind of file (connecting
    to a regular file or a directory says "connection refused", which misleads)."""
    path, wanted = _local_path(spec)
    if path is None:
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if wanted(mode):
        return None
    kind = "a directory" if stat.S_ISDIR(mode) else \
        "a regular file" if stat.S_ISREG(mode) else "not the right kind of file"
    wanted_kind = "a unix socket" if wanted is stat.S_ISSOCK else "a serial device"
    return f"cannot connect to {path}: it is {kind}, not {wanted_kind}"


def open_waiting(reopen: Callable[[], Any], *, say: Callable[[str], None],
                 deadline: float | None = None, backoff: Backoff | None = None,
                 cancel: threading.Event | None = None) -> Any:
    """The port ``reopen()`` opens, waiting while ``may_appear`` (see the module
    docstring). ``say`` gets the one status line. ``WaitExpired`` at ``deadline``
    (a ``time.monotonic()`` value); the error itself when it can never work;
    ``KeyboardInterrupt`` passes through. ``cancel`` ends the wait like Ctrl+C."""
    spec = getattr(reopen, "spec", "")
    delays = (backoff or Backoff()).delays()
    cancel = cancel or threading.Event()
    waiting = False
    while True:
        try:
            port = reopen()
        except (TransportError, OSError, ValueError) as exc:
            if not may_appear(spec, exc):
                wrong = _wrong_kind(spec)
                if wrong:
                    raise LinkError(wrong) from exc
                raise
            error = str(exc) or type(exc).__name__
        else:
            if waiting:
                log.info("%s appeared", spec)
            return port
        if not waiting:
            say(f"Waiting to reconnect... ({error}); Ctrl+C gives up")
            waiting = True
        delay = next(delays)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitExpired(f"{spec} did not appear ({error})")
            delay = min(delay, left)
        if cancel.wait(delay):
            raise KeyboardInterrupt
