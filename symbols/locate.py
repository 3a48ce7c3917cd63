"""Searching a symbol path for the file that matches an identity.

For each path element in order (symbols.md §3.3, §6.6): plain directories through
the classic tree, ``srv*`` chains store by store (a full match further right is
copied into every store to its left), ``cache*`` elements (what later elements
find is copied there). HTTP stores are downloaded from (``store.py``) unless the
path turns them off. Every hit is opened just far enough to read its identity,
then judged by ``match.py``; the search goes on until a full match. A forced
search (``.reload /i``) also looks at every version in symsrv stores and, with
no full match, returns the first usable mismatch marked ``M``.

Never raises for a bad file: a corrupt candidate is logged and skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import SymbolError, SymbolFileError
from .match import Match, match_identity, store_key
from .model import FileKind, SymbolId
from .path import CacheElement, DirElement, StoreChain, SymbolPath, is_remote
from .safepath import safe_basename
from .store import StoreHit, copy_atomic, symsrv_destination, symsrv_files, symsrv_versions, tree_files

__all__ = ["Candidate", "Located", "SymbolLocator", "read_identity", "file_kind"]

log = logging.getLogger(__name__)

_KEEP_OPEN = 4
_PDB_MAGICS = (b"Microsoft C/C++ MSF 7.00\r\n\x1aDS", b"Microsoft C/C++ program database 2.00\r\n\x1aJG")


def file_kind(path: str) -> FileKind | None:
    """What a file is, from its first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(48)
    except OSError:
        return None
    if head[:2] == b"MZ":
        return FileKind.PE
    if head[:2] == b"DI":
        return FileKind.DBG
    if head.startswith(_PDB_MAGICS[0]):
        return FileKind.PDB7
    if head.startswith(_PDB_MAGICS[1]):
        return FileKind.PDB2
    return None


def read_identity(path: str, keep: Callable[[object], None] | None = None) -> SymbolId:
    """The identity of an image, DBG or PDB file; ``SymbolFileError`` otherwise.

    ``keep`` receives an opened PDB instead of it being closed, for a caller that
    will load it next (opening a large PDB is the costly part).
    """
    kind = file_kind(path)
    name = os.path.basename(path)
    if kind is FileKind.PE:
        from .pe import read_image
        return read_image(path, name).identity
    if kind is FileKind.DBG:
        from .dbg import read_dbg
        return read_dbg(path, name).identity
    if kind in (FileKind.PDB2, FileKind.PDB7):
        from .pdb import open_pdb
        pdb = open_pdb(path, name=name)
        try:
            identity = pdb.identity
        except SymbolFileError:
            pdb.close()
            raise
        if keep is None:
            pdb.close()
        else:
            keep(pdb)
        return identity
    raise SymbolFileError(f"{name}: not an image, DBG or PDB file")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One file looked at, and the verdict (or the error that made it unusable)."""

    path: str
    how: str
    identity: SymbolId | None
    match: Match | None
    error: str | None = None


@dataclass(slots=True)
class Located:
    """Result of a search: the chosen file (if any) and every candidate looked at."""

    path: str | None = None
    identity: SymbolId | None = None
    match: Match | None = None
    candidates: list[Candidate] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.path is not None


class SymbolLocator:
    """Finds symbol files along a ``SymbolPath``; identities are cached per file."""

    def __init__(self, path: SymbolPath | str | None = None) -> None:
        self.path = path if isinstance(path, SymbolPath) else SymbolPath.parse(path)
        self._identities: dict[tuple[str, float, int], SymbolId | str] = {}
        self._open_pdbs: dict[tuple[str, float, int], object] = {}

    def identity_of(self, path: str) -> SymbolId:
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise SymbolFileError(f"cannot read {path}: {exc.strerror}") from None
        key = (path, stat.st_mtime, stat.st_size)
        cached = self._identities.get(key)
        if cached is None:
            try:
                cached = read_identity(path, keep=lambda pdb: self._keep(key, pdb))
            except SymbolFileError as exc:
                cached = str(exc)
            self._identities[key] = cached
        if isinstance(cached, str):
            raise SymbolFileError(cached)
        return cached

    def _keep(self, key: tuple[str, float, int], pdb) -> None:
        self._open_pdbs[key] = pdb
        while len(self._open_pdbs) > _KEEP_OPEN:
            oldest = next(iter(self._open_pdbs))
            self._open_pdbs.pop(oldest).close()

    def open_pdb(self, path: str, sections=None):
        """The PDB at ``path``, reusing the one opened to read its identity when it can."""
        from .pdb import open_pdb
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise SymbolFileError(f"cannot read {path}: {exc.strerror}") from None
        kept = self._open_pdbs.pop((path, stat.st_mtime, stat.st_size), None)
        if kept is not None:
            if kept.sections or not sections:
                return kept
            kept.close()
        return open_pdb(path, image_sections=sections)

    def _judge(self, hit: StoreHit, want: SymbolId, force: bool) -> Candidate:
        try:
            got = self.identity_of(hit.path)
        except SymbolFileError as exc:
            log.warning("%s: %s", hit.path, exc)
            return Candidate(hit.path, hit.how, None, None, str(exc))
        return Candidate(hit.path, hit.how, got, match_identity(want, got, force=force))

    def find(self, file_name: str, want: SymbolId, *, image_ext: str | None = None,
             force: bool = False, near: str | None = None, survey: bool = False) -> Located:
        """Search for ``file_name`` whose identity must match ``want``.

        ``near`` is a directory searched first (a PDB next to its DBG). With
        ``survey`` every candidate is collected even after a match (``check``).
        """
        result = Located(unreachable=self.path.unreachable())
        try:
            safe_basename(file_name)
        except SymbolError as exc:
            log.warning("refusing to search for %r: %s", file_name, exc)
            return result
        key = store_key(want)
        caches: list[str] = []
        seen: set[str] = set()

        def consider(hits, copy_to: list[str]) -> bool:
            for hit in hits:
                real = os.path.realpath(hit.path)
                if real in seen:
                    continue
                seen.add(real)
                candidate = self._judge(hit, want, force=False)
                result.candidates.append(candidate)
                if candidate.match is not None and candidate.match.exact and result.path is None:
                    result.path, result.identity, result.match = hit.path, candidate.identity, candidate.match
                    self._copy(hit.path, file_name, candidate.identity, copy_to)
                    if not survey:
                        return True
            return False

        if near and consider(tree_files(near, file_name, None), []):
            return result
        for element in self.path.elements:
            if isinstance(element, CacheElement):
                caches.append(element.path)
            elif isinstance(element, DirElement):
                if consider(tree_files(element.path, file_name, image_ext), list(caches)):
                    return result
            elif isinstance(element, StoreChain):
                for position, store in enumerate(element.stores):
                    if is_remote(store) and not self.path.http_enabled:
                        continue
                    left = [s for s in element.stores[:position] if not is_remote(s)] + caches
                    # A compressed entry expands (a download lands) straight into the
                    # downstream store, where the copy below would otherwise put a second copy.
                    expand_into = left[0] if left else None
                    hits = list(symsrv_files(store, file_name, key, self.path.local_roots(),
                                             expand_into=expand_into, http=self.path.http)) if key else []
                    if force or survey or key is None:
                        hits += [StoreHit(p, "symsrv", store) for _, p in
                                 symsrv_versions(store, file_name, expand_into=expand_into)]
                    if consider(hits, left):
                        return result
        if result.path is None:
            self._settle(result, want, force)
        return result

    def _settle(self, result: Located, want: SymbolId, force: bool) -> None:
        """Second choice: a partial match ("T") or, when forced, a mismatch ("M")."""
        for candidate in result.candidates:
            if candidate.match is not None and candidate.match.usable:
                result.path, result.identity, result.match = candidate.path, candidate.identity, candidate.match
                return
        if force:
            for candidate in result.candidates:
                if candidate.identity is not None:
                    verdict = match_identity(want, candidate.identity, force=True)
                    result.path, result.identity, result.match = candidate.path, candidate.identity, verdict
                    return

    def _copy(self, source: str, file_name: str, identity: SymbolId | None, stores: list[str]) -> None:
        key = store_key(identity) if identity is not None else None
        if key is None:
            return
        for store in stores:
            try:
                destination = symsrv_destination(store, safe_basename(file_name), key)
                if not os.path.exists(destination):
                    copy_atomic(source, destination)
                    log.info("copied %s into %s", source, store)
            except SymbolError as exc:
                log.warning("cannot cache %s in %s: %s", file_name, store, exc)

