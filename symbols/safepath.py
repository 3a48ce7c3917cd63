"""Turning untrusted names into paths that stay inside a store root.

Module names from the target's loader lists, MISC names and the PDB paths in
NB10/RSDS records are attacker-controlled (symbols.md §6.12). Everything that
builds a file path from such a name goes through this module: the name is
reduced to its last component, checked against a conservative character set,
joined under a configured root, and the resolved result must stay inside the
resolved root, so neither ``..``, absolute paths, drive letters, UNC prefixes,
NUL or control characters nor a symlink can lead outside.

This module does not search for files; ``store.py`` does, through it.
"""

from __future__ import annotations

import logging
import os
import re

from .errors import UnsafeNameError

__all__ = ["MAX_NAME_BYTES", "safe_component", "safe_basename", "join_inside", "is_inside",
           "find_entry"]

log = logging.getLogger(__name__)

MAX_NAME_BYTES = 255

# Letters, digits and the punctuation real image, DBG and PDB names use. Anything
# else (control characters, ':', '*', '?', '"', '<', '>', '|', quotes) is refused.
_ALLOWED = re.compile(r"[A-Za-z0-9_.\-+$~#@ (){}\[\]!,=&%^']+")


def safe_component(name: str) -> str:
    """``name`` itself when it is one harmless path component, else ``UnsafeNameError``.

    Unlike ``safe_basename`` nothing is stripped: a separator anywhere is refused.
    """
    if not isinstance(name, str) or not name:
        raise UnsafeNameError("empty name")
    if name in (".", ".."):
        raise UnsafeNameError(f"reserved name {name!r}")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise UnsafeNameError(f"name longer than {MAX_NAME_BYTES} bytes")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise UnsafeNameError(f"control character in {name!r}")
    if "/" in name or "\\" in name:
        raise UnsafeNameError(f"path separator in {name!r}")
    if ":" in name:
        raise UnsafeNameError(f"drive or stream prefix in {name!r}")
    if not _ALLOWED.fullmatch(name):
        raise UnsafeNameError(f"unexpected character in {name!r}")
    if name.strip(" .") == "":
        raise UnsafeNameError(f"name of dots and blanks {name!r}")
    return name


def safe_basename(name: str) -> str:
    """The last component of a Windows or POSIX path from an image or the target.

    ``C:\\build\\obj\\ntkrnlmp.pdb`` gives ``ntkrnlmp.pdb``; a name whose last part
    is empty, ``..``, or contains NUL/control characters raises ``UnsafeNameError``.
    """
    if not isinstance(name, str):
        raise UnsafeNameError("name is not text")
    if "\x00" in name:
        raise UnsafeNameError("NUL in name")
    last = re.split(r"[\\/]", name)[-1]
    if ":" in last:
        # "C:ntoskrnl.exe" (drive-relative) keeps the part after the drive.
        last = last.rsplit(":", 1)[-1]
    return safe_component(last)


def is_inside(root: str, candidate: str) -> bool:
    """True when ``candidate`` resolves (symlinks followed) to ``root`` or below it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    if real == real_root:
        return True
    return real.startswith(real_root.rstrip(os.sep) + os.sep)


def join_inside(root: str, *components: str) -> str:
    """``root/components...`` after checking each part and the resolved result.

    Raises ``UnsafeNameError`` when a component is unsafe or the result (after
    symlinks) lies outside ``root``.
    """
    parts = [safe_component(c) for c in components]
    candidate = os.path.join(root, *parts)
    if not is_inside(root, candidate):
        raise UnsafeNameError(f"{os.path.join(*parts)!r} leads outside {root!r}")
    return candidate


def find_entry(directory: str, name: str) -> str | None:
    """The entry of ``directory`` named ``name`` ignoring case, or None.

    Symbol trees come from case-insensitive file systems; on Linux ``EXE``,
    ``exe`` and ``Exe`` must all be found (symbols.md §3.2, §6.6). An exact
    match wins over a case-folded one.
    """
    try:
        safe_component(name)
    except UnsafeNameError:
        return None
    exact = os.path.join(directory, name)
    if os.path.lexists(exact):
        return exact
    folded = name.casefold()
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.casefold() == folded:
                    return entry.path
    except OSError:
        return None
    return None
