"""Finding, loading, reloading and unloading ``!`` extensions for one console.

What it does: ``ExtensionManager`` keeps the extension chain, searched first to last
as WinDbg's is: what was loaded last comes first, so a user's ``.load`` can take a
short name from a built-in (``!module.command`` always reaches each one). It loads
the built-ins (the modules of the ``kdcon.extensions`` package), the installed
packages of the ``kdcon.extensions`` entry-point group, every ``*.py`` in the
directories of the extension path (``--ext-path``, ``KDCON_EXT_PATH``, ``.extpath``),
and files or modules named by ``.load``. Each ``@bang`` function becomes ``!name`` and
``!module.name`` in this console's registry; ``@hook`` functions join the event bus.
Before a command runs, its extension's file is checked (modification time and size)
and loaded again if it changed. An extension that fails to import, or raises, is
reported in one line naming the module and the cause (the traceback with
``--debug``), and the console carries on.
What it does not do: declare the console commands (``commands/extensions.py``) or
define the API (``api.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import pkgutil
import shlex
import sys
import traceback
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from kdcon.protocol.errors import ProtocolError
from kdcon.symbols.errors import SymbolError

from . import api
from .errors import CommandError, KdconError
from .hooks import Subscription
from .registry import Category, Command

__all__ = ["ExtensionManager", "Extension", "ExtensionError", "ENTRY_POINT_GROUP",
           "BUILTIN_PACKAGE", "split_path"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "kdcon.extensions"
BUILTIN_PACKAGE = "kdcon.extensions"
_FILE_MODULE_PREFIX = "kdcon_extension_"

# What an extension may raise and still be reported in its own words.
_OWN_WORDS = (KdconError, MemoryError, ProtocolError, SymbolError)


class ExtensionError(CommandError):
    """An extension could not be loaded, or failed while running."""


def split_path(text: str) -> list[str]:
    """Directories of an extension path: ``;`` as in WinDbg, or the host's separator."""
    parts = [p for chunk in text.split(";") for p in chunk.split(os.pathsep)] \
        if os.pathsep != ";" else text.split(";")
    return [p.strip() for p in parts if p.strip()]


@dataclass(eq=False)
class Extension:
    """One module on the chain."""

    name: str
    origin: str                    # what .chain shows: "built-in", a path, an entry point
    module_name: str               # import name, or the sys.modules key of a file
    path: Path | None = None       # the file watched for changes
    from_file: bool = False        # loaded from source by path (not importable by name)
    directory: Path | None = None  # the extension-path directory it came from
    module: types.ModuleType | None = None
    stamp: tuple[int, int] | None = None
    error: str | None = None
    traceback: str = ""
    bangs: dict[str, tuple[api.BangSpec, Callable[..., Any]]] = field(default_factory=dict)
    hooks: list[Subscription] = field(default_factory=list)
    breakpoints: list[Any] = field(default_factory=list)


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ExtensionManager:
    """The extension chain of one console, and the ``!`` commands it puts in the registry."""

    def __init__(self, console: Any, *, path: Iterable[str] = ()) -> None:
        self.console = console
        console.extensions = self
        # Each console gets its own registry: a .load in one never shows in another.
        console.registry = console.registry.copy()
        self.registry = console.registry
        self.target = api.Target(console)
        self.chain: list[Extension] = []
        self.path: list[str] = list(path)
        self._registered: list[str] = []

    # -- loading ----------------------------------------------------------------------------

    def load_all(self) -> None:
        """Built-ins, then installed packages, then the extension path (first in the chain)."""
        for name in self._builtin_names():
            self._load(Extension(name, "built-in", f"{BUILTIN_PACKAGE}.{name}"), startup=True)
        try:
            entries = self._entry_points()
        except Exception as exc:  # a broken installed distribution must not stop the console
            entries = []
            self.console.output.line(f"Extension entry points ({ENTRY_POINT_GROUP}) could not "
                                     f"be read: {_cause(exc)}")
        for entry in entries:
            self._load(entry, startup=True)
        for directory in self.path:
            self._load_directory(directory, startup=True)
        self._rebind()

    @staticmethod
    def _builtin_names() -> list[str]:
        package = importlib.import_module(BUILTIN_PACKAGE)
        return sorted(info.name for info in pkgutil.iter_modules(package.__path__)
                      if not info.name.startswith("_"))

    @staticmethod
    def _entry_points() -> list[Extension]:
        found = []
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry.dist.name if entry.dist is not None else "an installed package"
            found.append(Extension(entry.name, f"entry point of {dist} ({entry.value})",
                                   entry.module))
        return found

    def _load_directory(self, directory: str, *, startup: bool = False) -> None:
        folder = Path(directory).expanduser()
        if not folder.is_dir():
            self._say(f"Extension path: {directory} is not a directory", startup)
            return
        for file in sorted(folder.glob("*.py")):
            if not file.name.startswith("_"):
                self._load(self._file_extension(file, folder), startup=startup)

    @staticmethod
    def _file_extension(file: Path, directory: Path | None = None) -> Extension:
        file = file.resolve()
        return Extension(file.stem, str(file), _FILE_MODULE_PREFIX + file.stem, path=file,
                         from_file=True, directory=directory)

    def _say(self, line: str, startup: bool) -> None:
        if startup:
            self.console.output.line(line)
        else:
            raise ExtensionError(line)

    def _load(self, ext: Extension, *, startup: bool = False) -> Extension | None:
        """Import ``ext`` and put it first on the chain; None (reported) if it cannot be."""
        other = self.find(ext.name)
        if other is not None:
            self._say(f"Extension {ext.name} ({ext.origin}) not loaded: {other.origin} "
                      f"already has that name (.unload {ext.name} first)", startup)
            return None
        self._import(ext)
        if ext.error is not None:
            if startup:
                # Kept on the chain, so .chain shows why it is missing.
                self.chain.insert(0, ext)
            self._report_import(ext, startup)
            return None if not startup else ext
        self.chain.insert(0, ext)
        return ext

    def _report_import(self, ext: Extension, startup: bool) -> None:
        line = f"Extension {ext.name} ({ext.origin}) failed to import: {ext.error}"
        if startup:
            self.console.output.line(line)
            if self.console.debug and ext.traceback:
                self.console.output.write(ext.traceback)
            return
        if self.console.debug and ext.traceback:
            self.console.output.write(ext.traceback)
        raise ExtensionError(line)

    def _import(self, ext: Extension) -> None:
        """(Re)import ``ext``'s module and collect its commands and hooks."""
        ext.traceback = ""
        try:
            module = self._exec_file(ext) if ext.from_file else self._import_module(ext)
        except BaseException as exc:  # noqa: BLE001 - an import may raise anything, even SystemExit
            if isinstance(exc, KeyboardInterrupt):
                raise
            ext.error = _cause(exc)
            ext.traceback = traceback.format_exc()
            ext.stamp = _stamp(ext.path)
            return
        ext.error = None
        ext.module = module
        if ext.path is None and getattr(module, "__file__", None):
            ext.path = Path(module.__file__)
        ext.stamp = _stamp(ext.path)
        self._collect(ext)

    @staticmethod
    def _import_module(ext: Extension) -> types.ModuleType:
        module = sys.modules.get(ext.module_name)
        if module is not None and ext.module is module:
            return importlib.reload(module)
        return importlib.import_module(ext.module_name)

    @staticmethod
    def _exec_file(ext: Extension) -> types.ModuleType:
        """Run the file's source into a fresh module (no bytecode cache, so an edit made
        within the same second is never mistaken for the old file)."""
        assert ext.path is not None
        source = ext.path.read_bytes()
        code = compile(source, str(ext.path), "exec")
        module = types.ModuleType(ext.module_name, None)
        module.__file__ = str(ext.path)
        previous = sys.modules.get(ext.module_name)
        sys.modules[ext.module_name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            if previous is not None:
                sys.modules[ext.module_name] = previous
            else:
                sys.modules.pop(ext.module_name, None)
            raise
        return module

    def _collect(self, ext: Extension) -> None:
        self._drop_hooks(ext)
        ext.bangs = {}
        assert ext.module is not None
        for value in list(vars(ext.module).values()):
            if getattr(value, "__module__", None) != ext.module.__name__:
                continue
            spec = getattr(value, "__kdcon_bang__", None)
            if isinstance(spec, api.BangSpec):
                ext.bangs[spec.name] = (spec, value)
            for kind in getattr(value, "__kdcon_hooks__", ()):
                ext.hooks.append(self.console.events.subscribe(
                    kind, self._hook_caller(value), owner=ext.name))

    def _hook_caller(self, function: Callable[..., Any]) -> Callable[[Any], Any]:
        return lambda event: function(self.target, event)

    def _drop_hooks(self, ext: Extension) -> None:
        for subscription in ext.hooks:
            subscription.remove()
        ext.hooks = []
        self.console.events.remove_owner(ext.name)

    # -- the registry ----------------------------------------------------------------------------

    def _rebind(self) -> None:
        """Register every command again in chain order: the first extension on the chain
        that declares a name gets ``!name``; every one gets ``!module.name``."""
        for name in self._registered:
            self.registry.remove(name)
        self._registered = []
        for ext in self.chain:
            for bang_name, (spec, _) in sorted(ext.bangs.items()):
                short, qualified = f"!{bang_name}", f"!{ext.name}.{bang_name}"
                if qualified in self.registry:
                    continue
                primary, aliases = (short, (qualified,)) if short not in self.registry \
                    else (qualified, ())
                details = "\n\n".join(part for part in (
                    ((ext.module.__doc__ or "").strip() if ext.module else ""), spec.details)
                    if part)
                self.registry.add(Command(
                    name=primary, handler=self._handler(ext.name, bang_name),
                    category=Category.EXTENSIONS, usage=spec.usage, summary=spec.summary,
                    aliases=aliases, needs_halt=spec.needs_halt, details=details))
                self._registered.append(primary)

    def _handler(self, ext_name: str, bang_name: str) -> Callable[[Any, Any], None]:
        def run(ctx: Any, args: Any) -> None:
            self.dispatch(ext_name, bang_name, args.text.strip())
        return run

    # -- running ----------------------------------------------------------------------------

    def find(self, name: str) -> Extension | None:
        folded = name.casefold()
        return next((ext for ext in self.chain if ext.name.casefold() == folded), None)

    def refresh(self, ext: Extension) -> None:
        """Load ``ext`` again if its file changed since it was loaded."""
        stamp = _stamp(ext.path)
        if stamp is None or stamp == ext.stamp:
            return
        log.info("extension %s changed on disk: reloading", ext.name)
        bangs = ext.bangs
        self._import(ext)
        if ext.error is not None:
            ext.bangs = bangs        # its commands stay, and say why they cannot run
        self._rebind()

    def dispatch(self, ext_name: str, bang_name: str, text: str) -> None:
        ext = self.find(ext_name)
        if ext is None:
            raise CommandError(f"No export {bang_name} found")
        self.refresh(ext)
        if ext.error is not None:
            if self.console.debug and ext.traceback:
                self.console.output.write(ext.traceback)
            raise ExtensionError(f"Extension {ext.name} ({ext.origin}) failed to import: "
                                 f"{ext.error}")
        entry = ext.bangs.get(bang_name)
        if entry is None:
            raise CommandError(f"No export {bang_name} found in extension {ext.name}")
        spec, function = entry
        target = self.target
        target.cancel_event.clear()
        target.owner = ext.name
        try:
            argument: Any = text
            if spec.parser is not None:
                argument = _parse(spec, text, bang_name, self.console.output.write)
                if argument is _HELP_SHOWN:
                    return
            api.show_result(target, function(target, argument), bang_name)
        except _OWN_WORDS:
            raise
        except KeyboardInterrupt:
            raise ExtensionError(f"!{bang_name}: cancelled") from None
        except Exception as exc:
            raise ExtensionError(f"!{bang_name}: extension {ext.name} raised "
                                 f"{_cause(exc)}") from exc
        finally:
            target.owner = None

    def own_breakpoint(self, owner: str, breakpoint: Any) -> None:
        ext = self.find(owner)
        if ext is not None:
            ext.breakpoints.append(breakpoint)

    # -- what the console commands ask -----------------------------------------------------------

    def load(self, what: str) -> Extension:
        """``.load``: a file, a name on the extension path, a built-in or a module name.
        Loading a loaded extension again from the same place reloads it."""
        ext = self._locate(what)
        known = self.find(ext.name)
        if known is not None and known.origin == ext.origin:
            self._import(known)
            self._rebind()
            if known.error is not None:
                self._report_import(known, startup=False)
            return known
        loaded = self._load(ext)
        self._rebind()
        assert loaded is not None
        return loaded

    def _locate(self, what: str) -> Extension:
        candidate = Path(what).expanduser()
        if what.endswith(".py") or os.sep in what or "/" in what:
            if candidate.is_file():
                return self._file_extension(candidate)
            raise ExtensionError(f"Extension file {what} not found")
        for directory in self.path:
            file = Path(directory).expanduser() / f"{what}.py"
            if file.is_file():
                return self._file_extension(file, Path(directory).expanduser())
        if what in self._builtin_names():
            return Extension(what, "built-in", f"{BUILTIN_PACKAGE}.{what}")
        for entry in self._entry_points():
            if entry.name == what:
                return entry
        return Extension(what.rsplit(".", 1)[-1], f"module {what}", what)

    def unload(self, name: str) -> Extension:
        ext = self.find(name)
        if ext is None:
            raise ExtensionError(f"No extension {name} is loaded (.chain lists them)")
        self.chain.remove(ext)
        self._drop_hooks(ext)
        table = self.console.session.breakpoints
        for bp in ext.breakpoints:
            if bp in list(table):
                if self.console.executor is not None:
                    self.console.executor.remove_breakpoint(bp)
                table.remove(bp)
        ext.breakpoints = []
        if ext.from_file:
            sys.modules.pop(ext.module_name, None)
        self._rebind()
        return ext

    def set_path(self, directories: list[str]) -> None:
        """A new extension path: its directories' extensions load, those of directories
        no longer on it unload."""
        wanted = [str(Path(d).expanduser().resolve()) for d in directories]
        for ext in [e for e in self.chain if e.directory is not None]:
            if str(ext.directory.resolve()) not in wanted:
                self.unload(ext.name)
        self.path = list(directories)
        errors = []
        for directory in directories:
            folder = Path(directory).expanduser()
            if not folder.is_dir():
                errors.append(f"Extension path: {directory} is not a directory")
                continue
            for file in sorted(folder.glob("*.py")):
                if file.name.startswith("_"):
                    continue
                known = self.find(file.stem)
                if known is not None and known.path == file.resolve():
                    continue
                try:
                    self._load(self._file_extension(file, folder))
                except ExtensionError as exc:
                    errors.append(str(exc))
        self._rebind()
        if errors:
            raise ExtensionError("; ".join(errors))

    def commands(self, ext: Extension) -> list[str]:
        return [f"!{name}" for name in sorted(ext.bangs)]


_HELP_SHOWN = object()


def _parse(spec: api.BangSpec, text: str, name: str, write: Callable[[str], None]) -> Any:
    """Arguments through the extension's argparse parser; its errors are one line,
    and ``-h`` prints its help instead of running the command."""
    parser = spec.parser
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CommandError(f"!{name}: {exc}") from None
    buffer = io.StringIO()

    def fail(message: str) -> None:
        raise CommandError(f"!{name}: {message}")

    own = vars(parser).get("error")
    parser.error = fail
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            return parser.parse_args(words)
    except SystemExit:
        write(buffer.getvalue())
        return _HELP_SHOWN
    except argparse.ArgumentError as exc:
        raise CommandError(f"!{name}: {exc}") from None
    finally:
        if own is not None:
            parser.error = own
        else:
            del parser.error
