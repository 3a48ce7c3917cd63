"""Symbol path strings: ``-y``, ``.sympath``, ``_NT_SYMBOL_PATH``, ``_NT_ALT_SYMBOL_PATH``.

Parses the ``;``-separated syntax into elements (symbols.md §3.3, §6.6):

* a plain directory,
* ``srv*[cache*...]store`` and ``symsrv*symsrv.dll*[cache*...]store`` chains, where an
  empty token means the default downstream store,
* ``cache*[dir]``: files found to the right are copied into ``dir``.

HTTP(S) stores (``srv*C:\\cache*https://msdl.microsoft.com/download/symbols``,
what ``.symfix`` sets up, see ``http.symfix_path``) are used through ``http.py`` with
the path's ``HttpOptions`` unless ``http_enabled`` is False (offline use);
then, and while a server is marked unreachable after a failed connection,
``unreachable()`` lists them. Windows separators in user-given directories are
accepted (``C:\\sym`` style drive paths are kept verbatim and simply not found on
a POSIX host). The search itself lives in ``locate.py`` and ``store.py``; this
module only parses.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import SymbolPathError
from .http import MICROSOFT_SYMBOL_SERVER, HttpOptions, is_remote, is_unreachable, symfix_path

__all__ = ["DirElement", "StoreChain", "CacheElement", "PathElement", "SymbolPath",
           "MICROSOFT_SYMBOL_SERVER", "is_remote", "symfix_path"]

log = logging.getLogger(__name__)

def _local(text: str) -> str:
    """A user-given directory with Windows separators turned into the host's."""
    text = text.strip()
    if os.sep == "/" and "\\" in text and not text.startswith("\\\\"):
        text = text.replace("\\", "/")
    return text


@dataclass(frozen=True, slots=True)
class DirElement:
    """A plain directory, searched as dir/symbols/<ext>, dir/<ext>, dir."""

    path: str

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class StoreChain:
    """``srv*a*b*c``: stores tried left to right; a hit is copied into the ones to its left."""

    stores: tuple[str, ...]
    prefix: str = "srv"

    def __str__(self) -> str:
        return "*".join((self.prefix, *self.stores))


@dataclass(frozen=True, slots=True)
class CacheElement:
    """``cache*dir``: what elements to the right find is copied into ``dir``."""

    path: str

    def __str__(self) -> str:
        return f"cache*{self.path}"


PathElement = DirElement | StoreChain | CacheElement


@dataclass(frozen=True, slots=True)
class SymbolPath:
    """A parsed symbol path: an ordered tuple of elements, and how HTTP stores are used.

    ``http_enabled=False`` keeps every HTTP store uncontacted (offline);
    ``dataclasses.replace(path, http_enabled=False)`` makes an offline copy.
    """

    elements: tuple[PathElement, ...] = ()
    problems: tuple[str, ...] = field(default=())
    http_enabled: bool = True
    http: HttpOptions = field(default_factory=HttpOptions)

    @classmethod
    def parse(cls, text: str | None, *, default_cache: str | None = None, http_enabled: bool = True,
              http: HttpOptions | None = None) -> SymbolPath:
        """Parse one symbol path string; bad syntax raises ``SymbolPathError``."""
        options = http if http is not None else HttpOptions()
        if text is None:
            return cls(http_enabled=http_enabled, http=options)
        if not isinstance(text, str) or "\x00" in text:
            raise SymbolPathError("symbol path is not text")
        elements: list[PathElement] = []
        problems: list[str] = []
        for raw in text.split(";"):
            token = raw.strip()
            if not token:
                continue
            lowered = token.lower()
            if lowered.startswith("srv*") or lowered == "srv":
                parts = token.split("*")[1:]
                elements.append(_chain("srv", parts, default_cache, problems))
            elif lowered.startswith("symsrv*"):
                parts = token.split("*")
                if len(parts) < 3:
                    raise SymbolPathError(f"{token!r}: expected symsrv*<dll>*[cache*]store")
                if parts[1].lower() != "symsrv.dll":
                    problems.append(f"{token}: symbol server {parts[1]!r} is not supported, using symsrv rules")
                elements.append(_chain(f"symsrv*{parts[1]}", parts[2:], default_cache, problems))
            elif lowered.startswith("cache*") or lowered == "cache":
                rest = token[len("cache"):].lstrip("*").strip()
                where = _local(rest) if rest else default_cache
                if where is None:
                    problems.append("cache*: no default downstream store configured; ignored")
                    continue
                elements.append(CacheElement(where))
            elif "*" in token:
                raise SymbolPathError(f"{token!r}: unknown symbol path element")
            else:
                elements.append(DirElement(_local(token)))
        if not http_enabled:
            problems += [f"{store}: not contacted (network stores are off)"
                         for e in elements if isinstance(e, StoreChain) for store in e.stores if is_remote(store)]
        return cls(tuple(elements), tuple(problems), http_enabled, options)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None, *,
                         default_cache: str | None = None, http_enabled: bool = True,
                         http: HttpOptions | None = None) -> SymbolPath:
        """``_NT_ALT_SYMBOL_PATH`` followed by ``_NT_SYMBOL_PATH`` (symbols.md §3.3)."""
        env = os.environ if env is None else env
        text = ";".join(v for v in (env.get("_NT_ALT_SYMBOL_PATH"), env.get("_NT_SYMBOL_PATH")) if v)
        return cls.parse(text, default_cache=default_cache, http_enabled=http_enabled, http=http)

    def __add__(self, other: SymbolPath) -> SymbolPath:
        """``.sympath+``: this path followed by ``other``, with this path's HTTP settings."""
        return dataclasses.replace(self, elements=self.elements + other.elements,
                                   problems=self.problems + other.problems)

    def __str__(self) -> str:
        return ";".join(str(e) for e in self.elements)

    def local_roots(self) -> list[str]:
        """Every local directory the path may read from: what file.ptr may point into."""
        roots: list[str] = []
        for element in self.elements:
            if isinstance(element, StoreChain):
                roots.extend(s for s in element.stores if not is_remote(s))
            else:
                roots.append(element.path)
        return roots

    def remote_stores(self) -> list[str]:
        """Every HTTP(S) store the path names, in order."""
        return [s for e in self.elements if isinstance(e, StoreChain) for s in e.stores if is_remote(s)]

    def unreachable(self) -> list[str]:
        """HTTP(S) stores that are not asked: all when offline, else those that failed lately."""
        if not self.http_enabled:
            return self.remote_stores()
        return [s for s in self.remote_stores() if is_unreachable(s)]


def _chain(prefix: str, parts: list[str], default_cache: str | None,
           problems: list[str]) -> StoreChain:
    stores: list[str] = []
    for index, part in enumerate(parts):
        part = part.strip()
        if not part:
            # An empty token is the default downstream store (symbols.md §3.3).
            if default_cache is None:
                problems.append(f"{prefix}*: empty store token and no default cache; ignored")
                continue
            stores.append(default_cache)
            continue
        if is_remote(part) and index != len(parts) - 1:
            problems.append(f"{part}: an HTTP store may only be the rightmost one")
        stores.append(part if is_remote(part) else _local(part))
    if not stores:
        raise SymbolPathError(f"{prefix}: no store given")
    return StoreChain(tuple(stores), prefix)
