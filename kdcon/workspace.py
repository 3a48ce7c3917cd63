"""Workspaces: what a session keeps between runs, in a TOML file a person can read and edit.

What it does: a workspace holds the connection, the symbol, source (``.srcpath``) and
extension paths, the ``bp``, ``bu`` and ``ba`` breakpoints (expression, command string,
passes, enabled, one-shot, access and size; a ``bp``'s address, symbol and module too),
the ``sx`` settings, the aliases, the log and the output options
(radix, the register dump of ``p``/``t``, the break-on-reboot state, ``.more``). ``capture``
makes one from a live session and ``apply`` puts one into a session; ``read`` parses
a file (tomllib) and ``write`` replaces one atomically (a temporary file in the same
directory, fsync, rename), keeping the keys and tables this version does not know.
``WorkspaceFile`` is one session's file: read at start (``--workspace FILE``, or a
default per connection under the user's state directory), applied once the target is
attached (so that opening one never holds the connection up), saved by ``.wsave``
and when an interactive session ends. A file that cannot be read or parsed is one
line and a session with defaults; it is then never saved over without ``.wsave /f``.
A file with entries that could not be applied is not saved over at exit either, and
breakpoints that could not be set now are written back as they were.
What it does not do: resolve or write breakpoints into the target (execution.py does
that when the target runs) or keep the session's state after a reconnect (the
session keeps it; reconnect.py takes it back to the target).
Spec: windbg.md §0.9 (what a WinDbg workspace holds).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from kdcon import __version__

from kdcon.protocol.errors import ProtocolError

from .errors import KdconError
from .workspace_state import KEPT_KINDS, SCHEMA_VERSION, apply, capture

__all__ = ["WorkspaceError", "WorkspaceFile", "capture", "apply", "read", "write",
           "default_path", "from_command_line", "save_at_exit", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

_HEADER = (f"# kdcon workspace, written by kdcon {__version__}. Edit it freely: kdcon keeps\n"
           "# the keys it does not know when it saves the file again.\n")
# Far above any real workspace: a larger file is not one (and is not read into memory).
MAX_SIZE = 4 << 20
# Tables kdcon writes key by key; the other keys of these tables are kept on save.
_OWNED_KEYS = {
    "connection": ("link", "baud", "loopback"),
    "symbols": ("path",),
    "source": ("path",),
    "extensions": ("path",),
    "log": ("file", "unicode"),
    "output": ("radix", "step_registers", "break_on_reboot", "more"),
}


class WorkspaceError(KdconError):
    """A workspace file that cannot be read, parsed or written; the message is one line."""


# -- files ----------------------------------------------------------------------------------------

def default_path(link: str) -> Path:
    """``<user state dir>/kdcon/workspaces/<link>-<hash>.toml`` for one connection."""
    import platformdirs

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", link).strip("_.")[:80] or "link"
    digest = hashlib.sha256(link.encode("utf-8")).hexdigest()[:8]
    return Path(platformdirs.user_state_dir("kdcon")) / "workspaces" / f"{slug}-{digest}.toml"


def read(path: str | Path) -> dict[str, Any] | None:
    """The workspace at ``path``; None when there is no file; WorkspaceError when it
    cannot be read or is not TOML."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO with no writer must not hold the connection up in open().
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WorkspaceError(f"Workspace {path} cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise WorkspaceError(f"Workspace {path} is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise WorkspaceError(f"Workspace {path} is not a regular file")
        if info.st_size > MAX_SIZE:
            raise WorkspaceError(f"Workspace {path} is {info.st_size} bytes: more than a "
                                 f"workspace holds ({MAX_SIZE})")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            raw = handle.read(MAX_SIZE + 1)
    except OSError as exc:
        raise WorkspaceError(f"Workspace {path} cannot be read: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise WorkspaceError(f"Workspace {path} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(f"Workspace {path} is not valid TOML: {exc}") from None


def write(path: str | Path, data: dict[str, Any], previous: dict[str, Any] | None = None) -> Path:
    """Replace ``path`` with ``data`` atomically, keeping what ``previous`` (the file as
    it was) holds that ``data`` does not own. Returns the path written."""
    path = Path(os.path.realpath(path))
    text = _HEADER + tomli_w.dumps(_merged(previous or {}, data))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WorkspaceError(f"Cannot write workspace {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass                        # a new file keeps mkstemp's owner-only mode
        os.replace(temporary, path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise WorkspaceError(f"Cannot write workspace {path}: {exc.strerror or exc}") from None
    _sync_directory(path.parent)
    return path


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); best effort elsewhere."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _merged(previous: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in previous.items()
           if key not in data and key not in _OWNED_KEYS}
    for table, keys in _OWNED_KEYS.items():
        old = previous.get(table)
        kept = {k: v for k, v in old.items() if k not in keys} if isinstance(old, dict) else {}
        merged = {**kept, **data.get(table, {})}
        if merged:
            out[table] = merged
    for key, value in data.items():
        if key not in _OWNED_KEYS:
            out[key] = value
    return {"version": SCHEMA_VERSION, **{k: v for k, v in out.items() if k != "version"}}


class WorkspaceFile:
    """The workspace file of one session: where it is and whether it may be saved over."""

    def __init__(self, path: str | Path, *, connection: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.connection = dict(connection or {})
        self.data: dict[str, Any] | None = None   # as read, for the keys we do not own
        self.pending: list[dict[str, Any]] = []
        self.auto_save = True
        self.failed: str | None = None            # why it is not saved over, a sentence
        self.applied = False                      # the session holds what it had

    def load(self) -> str | None:
        """Read the file; one line to show if it could not be read (then it is never
        saved over without ``force``)."""
        try:
            self.data = read(self.path)
        except WorkspaceError as exc:
            self.failed = str(exc)
            self.auto_save = False
            return (f"{exc}; starting with defaults, and the file is left as it is "
                    "(.wsave /f replaces it)")
        return None

    def apply(self, console: Any, *, paths: bool = False) -> list[str]:
        """Apply what was read to ``console``'s session; the lines to show."""
        self.applied = True
        if not self.data:
            return []
        problems, unset, self.pending = apply(console, self.data, paths=paths)
        lines = [f"Workspace {self.path}: {problem}" for problem in problems + unset]
        if problems:
            self.auto_save = False
            self.failed = f"Workspace {self.path}: some of its settings could not be used"
            lines.append(f"Workspace {self.path} is not saved over when the session ends "
                         "(fix it, or .wsave /f replaces it)")
        count = sum(1 for bp in console.session.breakpoints if bp.kind in KEPT_KINDS)
        aliases = len(console.scripts.aliases.values)
        lines.append(f"Workspace {self.path} opened: {count} breakpoint{'' if count == 1 else 's'}, "
                     f"{aliases} alias{'' if aliases == 1 else 'es'}")
        return lines

    def save(self, console: Any, *, path: str | Path | None = None, force: bool = False) -> Path:
        """Write the session's workspace to ``path`` (this file by default). The file a
        session could not read or use is written only with ``force``."""
        target = Path(path) if path is not None else self.path
        same = Path(os.path.realpath(target)) == Path(os.path.realpath(self.path))
        if same and not force and not self.auto_save:
            raise WorkspaceError(f"{self.failed}; it was not saved (.wsave /f replaces it)")
        previous = self.data if same else None
        if not same:
            try:
                previous = read(target)
            except WorkspaceError:
                if not force:
                    raise WorkspaceError(f"{target} exists and is not a workspace kdcon "
                                         "can read; .wsave /f replaces it") from None
                previous = None
        data = capture(console, self.connection, self.pending if same else ())
        written = write(target, data, previous)
        if same:
            self.data, self.auto_save, self.failed = _merged(previous or {}, data), True, None
        return written


# -- the command line's workspace --------------------------------------------------------------

def from_command_line(args: Any) -> tuple[WorkspaceFile | None, list[str]]:
    """The workspace of a kdcon run (``--workspace FILE``; else, for an interactive run
    on a real link, the default for that link; none with ``--no-workspace``), and the
    lines to show once the console is up. What the command line leaves out (the link,
    ``-y``, ``--ext-path``) is taken from the file."""
    from kdcon.protocol.transports.cli import DEFAULT_BAUD, link_baud

    if getattr(args, "no_workspace", False):
        return None, []
    link = args.port or args.kd_string
    if args.workspace is not None:
        path = Path(args.workspace).expanduser()
    elif args.batch or args.loopback or not link:
        # A batch run gives the same result wherever it runs; the simulated target is
        # a fresh machine each time.
        return None, []
    else:
        path = default_path(link)
    workspace = WorkspaceFile(path)
    problem = workspace.load()
    lines = [problem] if problem else []
    data = workspace.data or {}
    connection = _mapping(data.get("connection"))
    if not (args.loopback or link):
        if connection.get("loopback") is True:
            args.loopback = True
        elif isinstance(connection.get("link"), str) and connection["link"]:
            args.port = connection["link"]
            baud = connection.get("baud")
            if isinstance(baud, int) and not isinstance(baud, bool) and baud > 0 \
                    and args.baud == DEFAULT_BAUD:
                args.baud = baud
    symbols = _mapping(data.get("symbols")).get("path")
    if args.symbol_path is None and not args.loopback and isinstance(symbols, str) and symbols:
        args.symbol_path = symbols
    directories = _mapping(data.get("extensions")).get("path")
    if not args.ext_path and isinstance(directories, list) \
            and all(isinstance(d, str) for d in directories):
        args.ext_path = list(directories)
    if args.loopback:
        workspace.connection = {"loopback": True}
    elif args.port or args.kd_string:
        try:
            baud = link_baud(args)
        except (KdconError, ProtocolError):
            baud = args.baud            # a bad kd string: opening the link says why
        workspace.connection = {"link": args.port or args.kd_string, "baud": baud}
    return workspace, lines


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def save_at_exit(console: Any) -> str | None:
    """An interactive session ends: save its workspace unless it may not be saved over.
    The line to show, if any."""
    workspace = console.workspace
    if workspace is None or not workspace.auto_save or not workspace.applied:
        return None
    try:
        path = workspace.save(console)
    except WorkspaceError as exc:
        return str(exc)
    return f"Workspace saved to {path}"
