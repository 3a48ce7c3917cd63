"""File-system layouts of symbol stores: the classic SYMBOLS tree and symsrv stores.

Reading (symbols.md §3.1, §3.2, §6.6):

* classic tree: for a path element E, an image with extension X and a symbol file
  N, try ``E/symbols/X/N``, ``E/X/N``, ``E/N``; then the symbol file's own
  extension folder (``E/pdb/N``) for PDBs filed without their image;
* symsrv store: ``root[/xx]/N/KEY/N`` (two-tier when ``index2.txt`` is in the
  root), or ``root/.../KEY/file.ptr`` naming the real file, followed only when
  it lies inside one of the configured roots. A compressed ``N.xx_`` entry (a
  one-file cabinet, ``cab.py``) is expanded once into a cache laid out like a
  store, ``<cache>/N/KEY/N``, and the expanded file is the hit; an entry already
  expanded is reused;
* HTTP(S) store (``srv*cache*https://...``): ``URL/N/KEY/N``, then the
  compressed ``URL/N/KEY/N.xx_``, then ``URL/N/KEY/file.ptr`` (a ``PATH:`` into
  the path's own roots, or a ``MSG:`` that is logged), through ``http.py``. What
  is downloaded lands in the cache to the store's left (else the default one) as
  ``<cache>/N/KEY/N``, expanded when it came compressed, and becomes the file
  only after its identity is read and found to be the one ``KEY`` names; a
  partial, damaged or cancelled download leaves nothing behind. A verified copy
  already in the cache is used without asking the server.

Every directory entry is matched case-insensitively, and every name from a file
or the target goes through ``safepath`` so nothing leads outside a root.

Writing (what ``symstore add`` does): files are copied with a temporary file that
is synced and renamed. This module does not decide whether a file matches an
image; ``match.py`` does.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

from .cab import expand_single, read_cabinet
from .errors import SymbolError, SymbolFileError, SymbolPathError, UnsafeNameError
from .http import (Download, HttpOptions, default_expansion_root, is_remote, is_unreachable,
                   open_download, read_small)
from .match import store_key
from .safepath import find_entry, is_inside, join_inside, safe_basename, safe_component

__all__ = ["StoreHit", "tree_files", "symsrv_files", "symsrv_versions", "is_two_tier",
           "tree_destination", "symsrv_destination", "copy_atomic", "default_expansion_root",
           "expand_entry"]

log = logging.getLogger(__name__)

_MAX_PTR_BYTES = 4096


@dataclass(frozen=True, slots=True)
class StoreHit:
    """A file found in a store, and how: "tree", "symsrv", "cab", "file.ptr" or "http".

    For "cab", ``path`` is the expanded copy in the cache and ``root`` the store
    that holds the compressed entry; for "http", ``path`` is the downloaded copy
    in the cache and ``root`` the server's URL.
    """

    path: str
    how: str
    root: str


def _walk(root: str, components: Sequence[str]) -> str | None:
    """Follow ``components`` below ``root`` case-insensitively; None when absent or unsafe."""
    current = root
    for component in components:
        found = find_entry(current, component)
        if found is None:
            return None
        current = found
    return current if is_inside(root, current) else None


def _ext(name: str) -> str:
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


def tree_files(element: str, file_name: str, image_ext: str | None) -> Iterator[StoreHit]:
    """Existing files for ``file_name`` in a plain directory, in search order."""
    try:
        name = safe_basename(file_name)
    except UnsafeNameError as exc:
        log.warning("refusing symbol file name %r: %s", file_name, exc)
        return
    if not os.path.isdir(element):
        return
    routes: list[list[str]] = []
    folders = [e for e in (image_ext, _ext(name)) if e]
    for folder in dict.fromkeys(folders):
        routes.append(["symbols", folder, name])
        routes.append([folder, name])
    routes.insert(2, [name])
    seen: set[str] = set()
    for route in routes:
        found = _walk(element, route)
        if found and os.path.isfile(found) and found not in seen:
            seen.add(found)
            yield StoreHit(found, "tree", element)


def is_two_tier(root: str) -> bool:
    """A store with ``index2.txt`` files entries under a two-letter folder (§3.2)."""
    return find_entry(root, "index2.txt") is not None


def _name_dir(root: str, name: str) -> str | None:
    if is_two_tier(root):
        return _walk(root, [name[:2], name])
    return _walk(root, [name])


def _follow_ptr(ptr_path: str, roots: Sequence[str]) -> str | None:
    try:
        with open(ptr_path, "rb") as handle:
            raw = handle.read(_MAX_PTR_BYTES + 1)
    except OSError as exc:
        log.warning("cannot read %s: %s", ptr_path, exc)
        return None
    return _ptr_target(raw, ptr_path, roots, os.path.dirname(ptr_path))


def _ptr_target(raw: bytes, where: str, roots: Sequence[str], relative_to: str | None) -> str | None:
    """The local file a file.ptr body names, when it lies inside one of ``roots``.

    A relative path is taken from ``relative_to`` (refused when None: a
    pointer from a server has no directory of its own).
    """
    if len(raw) > _MAX_PTR_BYTES or b"\x00" in raw:
        log.warning("%s: not a pointer file", where)
        return None
    text = raw.decode("utf-8", "replace").strip()
    if text.upper().startswith("MSG:"):
        # What the store wants the user to know instead of a file (symstore, msdl).
        log.log(logging.INFO if relative_to else logging.WARNING, "%s: %s", where, text[4:].strip())
        return None
    if text.upper().startswith("PATH:"):
        text = text[5:].strip()
    if not text or any(ord(c) < 0x20 for c in text) or text.startswith("\\\\"):
        log.warning("%s: pointer %r is not a local path; not followed", where, text)
        return None
    if os.sep == "/":
        text = text.replace("\\", "/")
    if not os.path.isabs(text):
        if relative_to is None:
            log.warning("%s: pointer %r is relative; not followed", where, text)
            return None
        text = os.path.join(relative_to, text)
    if not any(is_inside(r, text) for r in roots if os.path.isdir(r)):
        log.warning("%s points outside the symbol path: not followed", where)
        return None
    return text if os.path.isfile(text) else None


def symsrv_files(root: str, file_name: str, key: str, roots: Sequence[str] = (), *,
                 expand_into: str | None = None, http: HttpOptions | None = None) -> Iterator[StoreHit]:
    """The file filed under ``key`` in a symsrv store: plain, compressed, or through file.ptr.

    A compressed entry is expanded under ``expand_into`` (default:
    ``default_expansion_root()``); from an HTTP store ``root``, files are
    downloaded there, with ``http`` (default ``HttpOptions()``).
    """
    try:
        name = safe_basename(file_name)
        safe_component(key)
    except UnsafeNameError as exc:
        log.warning("refusing store lookup %r/%r: %s", file_name, key, exc)
        return
    if is_remote(root):
        yield from _remote_files(root, name, key, roots, expand_into, http or HttpOptions())
        return
    if not os.path.isdir(root):
        return
    name_dir = _name_dir(root, name)
    if name_dir is None:
        return
    key_dir = _walk(name_dir, [key])
    if key_dir is None or not is_inside(root, key_dir):
        return
    found = _walk(key_dir, [name])
    if found and os.path.isfile(found):
        yield StoreHit(found, "symsrv", root)
        return
    expanded = _expanded(key_dir, name, key, expand_into)
    if expanded:
        yield StoreHit(expanded, "cab", root)
        return
    ptr = _walk(key_dir, ["file.ptr"])
    if ptr:
        target = _follow_ptr(ptr, [root, *roots])
        if target and os.path.basename(target).lower() == _packed_name(name).lower():
            # A pointer to a compressed file: expanded like an entry of our own.
            expanded = _expand_into_cache(target, name, key, expand_into)
            if expanded:
                yield StoreHit(expanded, "cab", root)
        elif target:
            yield StoreHit(target, "file.ptr", root)


def _remote_files(url: str, name: str, key: str, roots: Sequence[str], expand_into: str | None,
                  options: HttpOptions) -> Iterator[StoreHit]:
    """``name`` under ``key`` from the HTTP store ``url``, through a verified copy in the cache."""
    cache = expand_into if expand_into is not None else default_expansion_root()
    if cache is None:
        log.warning("%s: no cache directory to download %s into", url, name)
        return
    try:
        destination = symsrv_destination(cache, name, key)
    except SymbolError as exc:
        log.warning("%s: cannot download into %s: %s", url, cache, exc)
        return
    if os.path.isfile(destination):
        try:
            _check_filed(destination, key)
        except SymbolFileError as exc:
            log.warning("%s: %s; fetching it again", destination, exc)
        else:
            yield StoreHit(destination, "symsrv", cache)
            return
    if is_unreachable(url):
        return
    base = f"{url.rstrip('/')}/{quote(name)}/{quote(key)}/"
    for entry, packed in ((name, False), (_packed_name(name), True)):
        download = open_download(base + quote(entry), options, store=url)
        if download is None:
            continue
        try:
            with download:
                _receive(download, destination, name, key, packed)
        except SymbolError as exc:
            log.warning("%s: %s", download.url, exc)
            return
        finally:
            if not os.path.exists(destination):
                _prune(os.path.dirname(destination), cache)
        log.info("downloaded %s into %s", download.url, destination)
        yield StoreHit(destination, "http", url)
        return
    pointer = read_small(base + "file.ptr", options, store=url, limit=_MAX_PTR_BYTES)
    if pointer is None:
        return
    target = _ptr_target(pointer, base + "file.ptr", roots, None)
    if target and os.path.basename(target).lower() == _packed_name(name).lower():
        expanded = _expand_into_cache(target, name, key, cache)
        if expanded:
            yield StoreHit(expanded, "cab", url)
    elif target:
        yield StoreHit(target, "file.ptr", url)


def _receive(download: Download, destination: str, name: str, key: str, packed: bool) -> None:
    """Write a download to ``destination`` (expanding a cabinet) once its identity checks out."""
    def check(temp: str) -> None:
        _check_filed(temp, key)

    if not packed:
        _write_atomic(destination, lambda out: download.copy_to(out.write), check=check)
        return
    folder = os.path.dirname(destination)
    try:
        os.makedirs(folder, exist_ok=True)
        # Unnamed where the system allows it: the cabinet itself is never a cache entry.
        spool = tempfile.TemporaryFile(dir=folder)
    except OSError as exc:
        raise SymbolPathError(f"cannot write into {folder}: {exc.strerror}") from None
    with spool:
        download.copy_to(spool.write)
        spool.seek(0)
        cap = download.options.max_bytes
        _write_atomic(destination, lambda out: expand_single(spool, out.write, expect=name, cap=cap),
                      check=check)


def _prune(folder: str, root: str) -> None:
    """Remove ``folder`` and its parents below ``root`` while they are empty."""
    stop = os.path.realpath(root)
    while os.path.realpath(folder) != stop and is_inside(root, folder):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = os.path.dirname(folder)


def _check_filed(path: str, key: str) -> None:
    """``SymbolFileError`` unless the file at ``path`` is an image, DBG or PDB whose key is ``key``."""
    from .locate import read_identity  # locate is built on this module
    filed = store_key(read_identity(path))
    if filed is None or filed.upper() != key.upper():
        raise SymbolFileError(f"the file's own key is {filed or 'unknown'}, not {key}")


def _packed_name(name: str) -> str:
    """``ntkrnlmp.pdb`` -> ``ntkrnlmp.pd_``: the name a compressed entry is filed under."""
    return name[:-1] + "_"


def _expanded(key_dir: str, name: str, key: str, expand_into: str | None) -> str | None:
    """The expansion of the compressed entry ``name[:-1] + "_"`` in ``key_dir``, if there is one."""
    packed = _walk(key_dir, [_packed_name(name)])
    if not packed or not os.path.isfile(packed):
        return None
    return _expand_into_cache(packed, name, key, expand_into)


def _expand_into_cache(packed: str, name: str, key: str, expand_into: str | None) -> str | None:
    cache = expand_into if expand_into is not None else default_expansion_root()
    if cache is None:
        log.warning("%s: no cache directory to expand it into", packed)
        return None
    return expand_entry(packed, name, key, cache)


def _still_current(expanded: str, packed: str) -> bool:
    """An earlier expansion is reused when it is newer than the entry and of the size it declares."""
    try:
        done, source = os.stat(expanded), os.stat(packed)
        if done.st_mtime_ns < source.st_mtime_ns:
            return False
        with open(packed, "rb") as handle:
            cabinet = read_cabinet(handle)
    except (OSError, SymbolFileError):
        return False
    return len(cabinet.files) == 1 and cabinet.files[0].size == done.st_size


def expand_entry(packed: str, file_name: str, key: str, cache_root: str) -> str | None:
    """Expand the compressed store entry ``packed`` into ``cache_root/<name>/<key>/<name>``.

    Returns the expanded file, reusing one made earlier; on a corrupt or
    unsupported cabinet, a wrong name inside or an unwritable cache, logs one
    warning and returns None.
    """
    try:
        destination = symsrv_destination(cache_root, file_name, key)
    except SymbolError as exc:
        log.warning("%s: cannot expand into %s: %s", packed, cache_root, exc)
        return None
    if os.path.isfile(destination) and _still_current(destination, packed):
        return destination
    folder = os.path.dirname(destination)
    try:
        with open(packed, "rb") as source:
            os.makedirs(folder, exist_ok=True)
            if not is_inside(cache_root, folder):
                raise UnsafeNameError(f"{folder} leads outside {cache_root}")
            inside = os.path.basename(destination)
            _write_atomic(destination, lambda out: expand_single(source, out.write, expect=inside))
    except SymbolError as exc:
        log.warning("%s: %s", packed, exc)
        return None
    except OSError as exc:
        log.warning("%s: cannot expand into %s: %s", packed, folder, exc.strerror or exc)
        return None
    log.info("expanded %s into %s", packed, destination)
    return destination


def symsrv_versions(root: str, file_name: str, *,
                    expand_into: str | None = None) -> list[tuple[str, str]]:
    """Every (key, file) pair filed for ``file_name``: what ``check`` reports on.

    Compressed versions are listed by their expansion (see ``symsrv_files``).
    """
    try:
        name = safe_basename(file_name)
    except UnsafeNameError:
        return []
    if is_remote(root):
        return []               # a server cannot be listed
    name_dir = _name_dir(root, name) if os.path.isdir(root) else None
    if name_dir is None:
        return []
    versions: list[tuple[str, str]] = []
    try:
        keys = sorted(os.listdir(name_dir))
    except OSError:
        return []
    for key in keys:
        key_dir = _walk(name_dir, [key])
        if key_dir is None or not os.path.isdir(key_dir):
            continue
        found = _walk(key_dir, [name])
        if found and os.path.isfile(found):
            versions.append((key, found))
            continue
        expanded = _expanded(key_dir, name, key, expand_into)
        if expanded:
            versions.append((key, expanded))
    return versions


def tree_destination(store: str, image_ext: str, file_name: str) -> str:
    """Where ``add --layout tree`` files ``file_name``: ``store/symbols/<ext>/<name>``."""
    return join_inside(store, "symbols", safe_component(image_ext.lower()), safe_basename(file_name))


def symsrv_destination(store: str, file_name: str, key: str) -> str:
    """Where ``add --layout symsrv`` files ``file_name`` (two-tier when index2.txt exists)."""
    name = safe_basename(file_name)
    parts = [name[:2], name, key, name] if is_two_tier(store) else [name, key, name]
    return join_inside(store, *parts)


def _write_atomic(destination: str, fill: Callable[[BinaryIO], object],
                  check: Callable[[str], None] | None = None) -> None:
    """Write ``destination`` through a temporary file in its folder, synced, then renamed.

    ``fill`` writes the content and ``check`` may refuse the finished
    temporary file; whatever either raises leaves no file behind.
    """
    folder = os.path.dirname(destination)
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".kdcon-", suffix=".tmp")
    except OSError as exc:
        raise SymbolPathError(f"cannot write into {folder}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "wb") as out:
            fill(out)
            out.flush()
            # Durable before it is visible: a crash must not leave a short file under the real name.
            os.fsync(out.fileno())
        if check is not None:
            check(temp)
        os.replace(temp, destination)
    except BaseException as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise SymbolPathError(f"cannot write {destination}: {exc.strerror}") from exc
        raise


def copy_atomic(source: str, destination: str) -> None:
    """Copy through a temporary file in the destination folder, then rename."""
    def fill(out: BinaryIO) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, out)
    _write_atomic(destination, fill)
