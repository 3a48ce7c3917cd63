"""Tab completion for the REPL: one completer fed by the command registry and the session.

What it does: ``KdCompleter.complete(text)`` looks at the command being typed (the
part of the line after the last ``;`` outside quotes) and offers, by position and
command: command and meta-command names from the registry, ``!`` extensions
(whatever is registered under a name starting with ``!``), module names,
``module!symbol`` as in ``bp nt!Ke``, types for ``dt`` and the fields after a type,
registers (``r rax``, ``@rax``) and pseudo-registers (``$ip``, ``$t0``), breakpoint
ids for ``bc``/``bd``/``be``, and file names for ``$<`` and the other script
commands, ``.logopen``, ``.logappend``, ``.writemem``, ``.readmem`` and ``.kdtrace on``.
``get_completions`` is the prompt_toolkit face of the same answers.

Speed on big kernels (< 50 ms with 100,000 symbols, ``tools/bench/repl.py``): a
module's names are kept sorted and case-folded, and every prefix is a bisection that
returns at most ``limit`` names (an empty prefix after ``module!`` is the first page),
so no answer walks or copies every name. Making that sorted list takes time on a big
module (loading its symbols, then sorting): with a ``schedule`` (the REPL's), it is
made in the background, by a job that ``schedule`` runs in order with the commands,
as soon as the module's symbols are loaded (``prepare``, when the prompt goes idle) or
when ``module!`` is first asked for; until it is ready the answer is one
``loading symbols`` entry that leaves the line alone, and ``on_ready`` says when to
ask again. Without a ``schedule`` (tests, the bench's baseline) the names are found
while asking: the first letters typed after ``module!`` ask the module's own name
index once (``prefix*``) and longer prefixes narrow that answer. A bare word never
loads a module's symbols: it completes module names, and ``module!`` is what asks for
that module's names. Whether the symbols may be asked at all while answering is the
caller's ``may_query`` (the REPL allows it only while its command thread is idle, so
the completer and a command never use the lazily built symbol indexes at the same
time); a background job loads a deferred module only when ``can_load`` allows it.
What it does not do: evaluate anything or send requests of its own.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from kdcon.symbols.index import has_wildcard
from kdcon.symbols.module import SymbolState

from .output import printable
from .registers import REGISTERS

__all__ = ["KdCompleter", "PSEUDO_REGISTERS", "SCRIPT_COMMANDS", "PATH_COMMANDS", "LOADING"]

log = logging.getLogger(__name__)

# The pseudo-registers the evaluator knows (evaluation.py), $bpN aside.
PSEUDO_REGISTERS = ("$ip", "$ra", "$csp", "$retreg", "$retreg64", "$thread", "$proc",
                    "$prcb", "$pcr", "$exentry", "$ptrsize", "$pagesize", "$ea", "$p",
                    *(f"$t{n}" for n in range(20)))
# Longest first: the file name follows the command with no space (windbg.md scripts).
SCRIPT_COMMANDS = ("$$>a<", "$$><", "$$<", "$><", "$<")
# Commands whose first argument is a file name (options such as /t may come first).
PATH_COMMANDS = frozenset({".logopen", ".logappend", ".writemem", ".readmem", ".load"})
_MODULE_COMMANDS = frozenset({"lm", ".reload", "!lmi", "!sym"})
_BREAKPOINT_ID_COMMANDS = frozenset({"bc", "bd", "be"})

_TOKEN = re.compile(r"[A-Za-z0-9_!@$?.:~]*$")
_WORD_SPLIT = re.compile(r"\s+")
# After these an expression's next name may start.
_OPENERS = frozenset("(+-,=[{~|&^/%<>")

Candidate = tuple[str, str]          # (text, description)
# The description of the one entry offered while a module's names are being made.
LOADING = "loading symbols"


class _SortedNames:
    """Names sorted case-insensitively; ``prefixed(p)`` by bisection."""

    __slots__ = ("names", "folded")

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names), key=str.casefold)
        self.folded = [name.casefold() for name in self.names]

    def prefixed(self, prefix: str, limit: int) -> list[str]:
        folded = prefix.casefold()
        if not folded:
            # Decorated names (``??_C@...`` string literals) sort first but are what a
            # reader wants last: ``module!`` lists the plain names before them.
            plain = bisect.bisect_left(self.folded, "@")
            first = self.names[plain:plain + limit]
            return first + self.names[:min(plain, limit - len(first))]
        start = bisect.bisect_left(self.folded, folded)
        found = []
        for position in range(start, min(len(self.names), start + limit)):
            if not self.folded[position].startswith(folded):
                break
            found.append(self.names[position])
        return found


class _ModuleNames:
    """What completion has asked of one module's symbols so far."""

    __slots__ = ("identity", "every", "prefix", "narrowed")

    def __init__(self) -> None:
        self.identity: tuple[Any, ...] | None = None
        self.every: _SortedNames | None = None        # all names, once an empty prefix asked
        self.prefix: str | None = None                # the folded prefix ``narrowed`` answers
        self.narrowed: _SortedNames | None = None


class KdCompleter(Completer):
    """Completions from the registry, the session's modules, symbols, types and table."""

    def __init__(self, console: Any, *, may_query: Callable[[], bool] = lambda: True,
                 limit: int = 400,
                 schedule: Callable[[Callable[[], None]], None] | None = None,
                 on_ready: Callable[[], None] = lambda: None,
                 can_load: Callable[[], bool] = lambda: True) -> None:
        self.console = console
        self.may_query = may_query
        self.limit = limit
        self.schedule = schedule
        self.on_ready = on_ready
        self.can_load = can_load
        # Background mode: per module, (identity, sorted names or None when the
        # symbols could not be loaded then); modules with a job queued.
        self._ready: dict[int, tuple[tuple[Any, ...], _SortedNames | None]] = {}
        self._pending: set[int] = set()
        self._ready_lock = threading.Lock()
        self.last_loading: str | None = None   # the line last answered ``loading symbols``
        self._symbol_names: dict[int, _ModuleNames] = {}
        self._type_names: dict[int, tuple[tuple[Any, ...], _SortedNames]] = {}
        self._commands: tuple[list[str], _SortedNames] | None = None
        self._registers = _SortedNames(REGISTERS)
        self._pseudo = _SortedNames(PSEUDO_REGISTERS)

    @property
    def session(self) -> Any:
        return self.console.session

    # -- prompt_toolkit ---------------------------------------------------------------------

    def get_completions(self, document: Document, complete_event: CompleteEvent
                        ) -> Iterator[Completion]:
        start, candidates = self.complete(document.text_before_cursor)
        loading = any(meta == LOADING for _, meta in candidates)
        self.last_loading = document.text_before_cursor if loading else None
        for text, meta in candidates:
            # A menu of one module's names reads better without the module on each.
            shown = text.partition("!")[2] if meta in ("symbol", "type") else text
            if meta == LOADING:
                shown = "..."
            # Module and symbol names come from the target: the menu shows them escaped.
            yield Completion(text, start_position=start,
                             display=printable(shown or text, newlines=False),
                             display_meta=printable(meta, newlines=False))

    # -- the answers -------------------------------------------------------------------------

    def complete(self, text: str) -> tuple[int, list[Candidate]]:
        """(start position relative to the end of ``text``, candidates) for the line so far."""
        segment = _current_command(text).lstrip()
        for script in SCRIPT_COMMANDS:
            if segment.startswith(script):
                return self._paths(segment[len(script):].lstrip())
        resolved = self.console.registry.resolve(segment)
        if not _WORD_SPLIT.search(segment):
            # Still the command word, unless no name goes on like it and it reads as a
            # command with its arguments glued on (``dd@rsp``, ``?nt!Ke``).
            names = self._command_names(segment)
            if names or resolved is None or not resolved[1]:
                return -len(segment), names
        words = _WORD_SPLIT.split(segment)
        name = resolved[0].name if resolved is not None else words[0].lower()
        arguments = words[1:]            # the last one is being typed (maybe empty)
        token = arguments[-1] if arguments else ""
        earlier = [w for w in arguments[:-1] if w]
        if name in PATH_COMMANDS and not [w for w in earlier if not w.startswith("/")]:
            return self._paths(token)
        if name == ".kdtrace":
            if not earlier:
                return -len(token), [(w, "packet trace") for w in ("on", "off") if w.startswith(token)]
            return self._paths(token) if earlier == ["on"] else (0, [])
        if name == ".help":
            return -len(token), self._command_names(token) + \
                ([("keys", "the console's keys")] if "keys".startswith(token.lower()) else [])
        if name in _BREAKPOINT_ID_COMMANDS:
            return -len(token), self._breakpoint_ids(token)
        if name == "dt":
            return self._dt(token, [w for w in earlier if not w.startswith("-")])
        if name in _MODULE_COMMANDS:
            return -len(token), [(m, "module") for m in self._module_names(token)]
        # From the arguments alone: ``?nt!Ke`` and ``dd@rsp`` need no space.
        rest = resolved[1] if resolved is not None else segment
        expression = _TOKEN.search(rest).group()
        if not expression and rest and not rest[-1].isspace() and rest[-1] not in _OPENERS:
            return 0, []             # right after a pattern's * or a closing bracket
        if name == "r" and not expression.startswith(("@", "$")) and "!" not in expression:
            return -len(expression), self._register_names(expression)
        return -len(expression), self._expression(expression)

    def _command_names(self, prefix: str) -> list[Candidate]:
        registry = self.console.registry
        names = registry.names()
        if self._commands is None or self._commands[0] != names:
            self._commands = (names, _SortedNames(names))
        found = []
        for name in self._commands[1].prefixed(prefix, self.limit):
            cmd = registry.get(name)
            found.append((name, cmd.summary if cmd is not None else ""))
        return found

    def _expression(self, token: str) -> list[Candidate]:
        if token.startswith("@"):
            return self._register_names(token)
        if token.startswith("$"):
            return self._pseudo_names(token)
        if "!" in token:
            module_name, _, prefix = token.partition("!")
            names = self._symbols(module_name, prefix)
            if names is None:
                return [(token, LOADING)]
            return [(f"{module_name}!{name}", "symbol") for name in names]
        return [(f"{m}!", "module") for m in self._module_names(token)]

    def _register_names(self, token: str) -> list[Candidate]:
        at = "@" if token.startswith("@") else ""
        return [(at + name, "register") for name in self._registers.prefixed(token[len(at):],
                                                                              self.limit)]

    def _pseudo_names(self, token: str) -> list[Candidate]:
        found = [(name, "pseudo-register") for name in self._pseudo.prefixed(token, self.limit)]
        for bp in self.session.breakpoints:
            name = f"$bp{bp.id}"
            if name.startswith(token.lower()):
                found.append((name, "breakpoint address"))
        return found

    def _breakpoint_ids(self, token: str) -> list[Candidate]:
        found = [("*", "every breakpoint")] if "*".startswith(token) else []
        for bp in sorted(self.session.breakpoints, key=lambda b: b.id):
            text = str(bp.id)
            if text.startswith(token):
                found.append((text, f"{bp.kind} {bp.expression}"))
        return found

    # -- modules, symbols and types -----------------------------------------------------------

    def _module_names(self, prefix: str) -> list[str]:
        folded = prefix.casefold()
        return [m.name for m in self.session.symbols.modules()
                if m.name.casefold().startswith(folded)][: self.limit]

    def _symbols(self, module_name: str, prefix: str) -> list[str] | None:
        """Names in ``module_name`` starting with ``prefix``; None while they are being
        made in the background. Without a ``schedule``, a prefix asks the module's own
        index once (``prefix*``) and longer ones narrow that answer; only an empty
        prefix lists every name (then kept, sorted, for whatever comes next)."""
        module = self.session.symbols.module(module_name)
        if module is None:
            return []
        if self.schedule is not None:
            return self._background_symbols(module, prefix)
        entry = self._symbol_names.get(id(module))
        folded = prefix.casefold()
        if entry is not None and entry.identity == _identity(module):
            if entry.every is not None:
                return entry.every.prefixed(prefix, self.limit)
            if entry.narrowed is not None and prefix and folded.startswith(entry.prefix or "\0"):
                return entry.narrowed.prefixed(prefix, self.limit)
        if not self.may_query():
            return []
        if entry is None or entry.identity != _identity(module):
            if len(self._symbol_names) > 256:
                self._symbol_names.clear()
            entry = self._symbol_names[id(module)] = _ModuleNames()
        try:
            if entry.every is None and prefix and not has_wildcard(prefix):
                if entry.prefix is None or not folded.startswith(entry.prefix):
                    entry.narrowed = _SortedNames(r.name for r in module.match(prefix + "*"))
                    entry.prefix = folded
                names = entry.narrowed
            else:
                if entry.every is None:
                    entry.every = _SortedNames(r.name for r in module.match("*"))
                names = entry.every
        except Exception as exc:  # corrupt symbols must not break typing
            log.debug("completion: no names for %s: %s", module.name, exc)
            return []
        finally:
            # Taken after the query: loading the symbols moves the module's state on.
            entry.identity = _identity(module)
        assert names is not None
        return names.prefixed(prefix, self.limit)

    def _background_symbols(self, module: Any, prefix: str) -> list[str] | None:
        if has_wildcard(prefix):
            return []
        found = self._ready.get(id(module))
        if found is not None and found[0] == _identity(module):
            return found[1].prefixed(prefix, self.limit) if found[1] is not None else []
        self._request(module)
        return None

    def names_ready(self, module: Any) -> bool:
        """Whether ``module``'s sorted names are made (background mode)."""
        found = self._ready.get(id(module))
        return found is not None and found[0] == _identity(module)

    def prepare(self) -> None:
        """Queue the names of every module whose symbols are loaded and not yet
        sorted (the REPL calls this when the prompt goes idle); forget modules that
        could not be loaded before, so that they are tried again."""
        if self.schedule is None:
            return
        with self._ready_lock:
            for key in [k for k, (_, names) in self._ready.items() if names is None]:
                del self._ready[key]
        for module in self.session.symbols.modules():
            if module.state is not SymbolState.DEFERRED and not self.names_ready(module):
                self._request(module)

    def _request(self, module: Any) -> None:
        key = id(module)
        with self._ready_lock:
            if key in self._pending:
                return
            self._pending.add(key)
        assert self.schedule is not None
        self.schedule(lambda: self._build(module))

    def _build(self, module: Any) -> None:
        """The background job: load the module's symbols if allowed, sort its names."""
        key = id(module)
        names: _SortedNames | None = None
        try:
            if module.state is not SymbolState.DEFERRED or self.can_load():
                names = _SortedNames(r.name for r in module.match("*"))
        except Exception as exc:  # corrupt symbols must not break typing
            log.debug("completion: no names for %s: %s", module.name, exc)
            names = _SortedNames(())
        finally:
            with self._ready_lock:
                self._pending.discard(key)
                if len(self._ready) > 256:
                    self._ready.clear()
                # Identity after loading: the load itself moves the state on.
                self._ready[key] = (_identity(module), names)
        self.on_ready()

    def _types_of(self, module: Any) -> _SortedNames | None:
        def listing() -> list[str]:
            table = module.types
            return table.names("*") if table is not None else []

        return self._cached(self._type_names, module, listing)

    def _cached(self, cache: dict[int, tuple[tuple[Any, ...], _SortedNames]], module: Any,
                names: Callable[[], Iterable[str]]) -> _SortedNames | None:
        key = id(module)
        found = cache.get(key)
        if found is None or found[0] != _identity(module):
            if not self.may_query():
                return None
            try:
                listing = _SortedNames(names())
            except Exception as exc:  # corrupt symbols must not break typing
                log.debug("completion: no names for %s: %s", module.name, exc)
                return None
            # Identity after loading: the load itself moves the state on.
            found = cache[key] = (_identity(module), listing)
            if len(cache) > 256:
                cache.clear()
                cache[key] = found
        return found[1]

    def _dt(self, token: str, earlier: list[str]) -> tuple[int, list[Candidate]]:
        """``dt [module!]Type [field]``: types first, then the fields of the type given."""
        symbols = self.session.symbols
        if earlier:
            type_name = earlier[0]
            module_name = type_name.partition("!")[0] if "!" in type_name else None
            if not self.may_query():
                return 0, []
            try:
                info = symbols.find_type(type_name)
            except Exception as exc:
                log.debug("completion: type %s: %s", type_name, exc)
                info = None
            return -len(token), [(path, "field") for path in _field_paths(info, token)][: self.limit]
        if "!" in token:
            module_name, _, prefix = token.partition("!")
            module = symbols.module(module_name)
            names = self._types_of(module) if module is not None else None
            found = names.prefixed(prefix, self.limit) if names is not None else []
            return -len(token), [(f"{module_name}!{name}", "type") for name in found]
        found: list[Candidate] = [(f"{m}!", "module") for m in self._module_names(token)]
        for module in symbols.modules():
            if module.state is SymbolState.DEFERRED:
                continue             # a bare word never loads symbols
            names = self._types_of(module)
            if names is not None:
                found += [(name, f"type in {module.name}")
                          for name in names.prefixed(token, self.limit - len(found))]
            if len(found) >= self.limit:
                break
        return -len(token), found

    # -- files -------------------------------------------------------------------------------

    def _paths(self, token: str) -> tuple[int, list[Candidate]]:
        if token.startswith('"'):
            token = token[1:]
        directory, _, prefix = token.rpartition("/")
        where = os.path.expanduser(directory + "/" if directory or token.startswith("/") else ".")
        if directory == "" and token.startswith("/"):
            where = "/"
        try:
            entries = sorted(os.scandir(where), key=lambda e: e.name)
        except OSError:
            return -len(token), []
        found: list[Candidate] = []
        head = directory + "/" if directory or token.startswith("/") else ""
        for entry in entries:
            if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            found.append((head + entry.name + ("/" if is_dir else ""),
                          "directory" if is_dir else "file"))
            if len(found) >= self.limit:
                break
        return -len(token), found


def _identity(module: Any) -> tuple[Any, ...]:
    return (module.state, module.symbol_file, module.base)


def _field_paths(info: Any, token: str) -> list[str]:
    """``Field`` and ``Field.Sub`` names of ``info`` that start with ``token``."""
    parts = token.split(".")
    head, prefix = parts[:-1], parts[-1].casefold()
    for part in head:
        info = _field_type(info, part)
    info = _strip(info)
    if info is None:
        return []
    try:
        fields = info.fields
    except Exception:
        return []
    lead = ".".join(head) + "." if head else ""
    return [lead + f.name for f in fields if f.name.casefold().startswith(prefix)]


def _strip(info: Any) -> Any:
    while info is not None and getattr(info, "kind", None) in ("modifier", "typedef") and \
            getattr(info, "type", None) is not None:
        info = info.type
    return info


def _field_type(info: Any, name: str) -> Any:
    info = _strip(info)
    if info is None:
        return None
    try:
        found = next((f for f in info.fields if f.name == name), None)
    except Exception:
        return None
    return found.type if found is not None else None


def _current_command(text: str) -> str:
    """The text after the last ``;`` that separates commands (not in quotes)."""
    quoted = False
    start = 0
    for index, char in enumerate(text):
        if char == '"' and (index == 0 or text[index - 1] != "\\"):
            quoted = not quoted
        elif char == ";" and not quoted:
            start = index + 1
    return text[start:]
