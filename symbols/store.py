"""File-system layouts of symbol stores: the classic SYMBOLS tree and symsrv stores.

Reading (symbols.md §3.1, §3.2, §6.6):

* classic tree: for a path element E, an image with extension X and a symbol file
  N, try ``E/symbols/X/N``, ``E/X/N``, ``E/N``; then the symbol file's own
  extension folder (``E/pdb/N``) for PDBs filed without their image;
* symsrv store: ``root[/xx]/N/KEY/N`` (two-tier when ``index2.txt`` is in the
  root), or ``root/.../KEY/file.ptr`` naming the real file, followed only when
  it lies inside one of the configured roots. Compressed ``N.xx_`` entries are
  reported as unsupported.

Every directory entry is matched case-insensitively, and every name from a file
or the target goes through ``safepath`` so nothing leads outside a root.

Writing (what ``symstore add`` does): files are copied with a temporary file and a
rename. This module does not decide whether a file matches; ``match.py`` does.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .errors import SymbolPathError, UnsafeNameError
from .safepath import find_entry, is_inside, join_inside, safe_basename, safe_component

__all__ = ["StoreHit", "tree_files", "symsrv_files", "symsrv_versions", "is_two_tier",
           "tree_destination", "symsrv_destination", "copy_atomic"]

log = logging.getLogger(__name__)

_MAX_PTR_BYTES = 4096


@dataclass(frozen=True, slots=True)
class StoreHit:
    """A file found in a store, and how: "tree", "symsrv" or "file.ptr"."""

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
    if len(raw) > _MAX_PTR_BYTES or b"\x00" in raw:
        log.warning("%s: not a pointer file", ptr_path)
        return None
    text = raw.decode("utf-8", "replace").strip()
    if text.upper().startswith("MSG:"):
        log.info("%s: %s", ptr_path, text[4:].strip())
        return None
    if text.upper().startswith("PATH:"):
        text = text[5:].strip()
    if not text or any(ord(c) < 0x20 for c in text) or text.startswith("\\\\"):
        log.warning("%s: pointer %r is not a local path; not followed", ptr_path, text)
        return None
    if os.sep == "/":
        text = text.replace("\\", "/")
    if not os.path.isabs(text):
        text = os.path.join(os.path.dirname(ptr_path), text)
    if not any(is_inside(r, text) for r in roots if os.path.isdir(r)):
        log.warning("%s points outside the symbol path: not followed", ptr_path)
        return None
    return text if os.path.isfile(text) else None


def symsrv_files(root: str, file_name: str, key: str,
                 roots: Sequence[str] = ()) -> Iterator[StoreHit]:
    """The file filed under ``key`` in a symsrv store, direct or through file.ptr."""
    try:
        name = safe_basename(file_name)
        safe_component(key)
    except UnsafeNameError as exc:
        log.warning("refusing store lookup %r/%r: %s", file_name, key, exc)
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
    if _walk(key_dir, [name[:-1] + "_"]):
        log.warning("%s: compressed store entries (CAB) are not supported", os.path.join(key_dir, name[:-1] + "_"))
    ptr = _walk(key_dir, ["file.ptr"])
    if ptr:
        target = _follow_ptr(ptr, [root, *roots])
        if target:
            yield StoreHit(target, "file.ptr", root)


def symsrv_versions(root: str, file_name: str) -> list[tuple[str, str]]:
    """Every (key, file) pair filed for ``file_name``: what ``check`` reports on."""
    try:
        name = safe_basename(file_name)
    except UnsafeNameError:
        return []
    name_dir = _name_dir(root, name) if os.path.isdir(root) else None
    if name_dir is None:
        return []
    versions: list[tuple[str, str]] = []
    try:
        keys = sorted(os.listdir(name_dir))
    except OSError:
        return []
    for key in keys:
        found = _walk(name_dir, [key, name])
        if found and os.path.isfile(found):
            versions.append((key, found))
    return versions


def tree_destination(store: str, image_ext: str, file_name: str) -> str:
    """Where ``add --layout tree`` files ``file_name``: ``store/symbols/<ext>/<name>``."""
    return join_inside(store, "symbols", safe_component(image_ext.lower()), safe_basename(file_name))


def symsrv_destination(store: str, file_name: str, key: str) -> str:
    """Where ``add --layout symsrv`` files ``file_name`` (two-tier when index2.txt exists)."""
    name = safe_basename(file_name)
    parts = [name[:2], name, key, name] if is_two_tier(store) else [name, key, name]
    return join_inside(store, *parts)


def copy_atomic(source: str, destination: str) -> None:
    """Copy through a temporary file in the destination folder, then rename."""
    folder = os.path.dirname(destination)
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".kdcon-", suffix=".tmp")
    except OSError as exc:
        raise SymbolPathError(f"cannot write into {folder}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
        os.replace(temp, destination)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise SymbolPathError(f"cannot write {destination}: {exc.strerror}") from exc
