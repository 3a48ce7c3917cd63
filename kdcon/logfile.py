"""A log of the command window: everything it shows, written as it is shown.

What it does: ``CommandLog`` is an ``Output`` tee that writes each piece of console
text (command echoes, their output, DbgPrint, stops) to a file, flushed at once so a
crash loses nothing, with every terminal escape sequence taken out (a log never
carries colour or cursor codes). UTF-8 by default, UTF-16 with a byte order mark for
``/u``. ``note_input`` adds a typed command the terminal echoed itself: the log
tracks its current line, so a command already echoed through the output (``-c``,
``--batch``) is not written twice, one typed after a prompt the output wrote is
completed, and one read by a prompt the output never saw gets the prompt too.
A failing write (disk full) stops the log and is reported once by ``.logfile``.
What it does not do: choose names or print messages (commands/logs.py).
Spec: WinDbg's ".logopen", ".logappend", ".logclose", ".logfile" pages.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TextIO

__all__ = ["CommandLog", "strip_escapes"]

log = logging.getLogger(__name__)

# CSI (colours, cursor moves), OSC (titles, links) and two-byte ESC sequences.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                      r"|\x1b[ -/]*[0-~]|\x1b|\x9b[0-?]*[ -/]*[@-~]")
_TAIL = 4096


def strip_escapes(text: str) -> str:
    """``text`` without terminal escape sequences."""
    return _ESCAPES.sub("", text) if ("\x1b" in text or "\x9b" in text) else text


class CommandLog:
    """One open log file."""

    def __init__(self, path: str | Path, *, append: bool = False, unicode: bool = False) -> None:
        self.path = Path(path)
        self.unicode = unicode
        encoding = "utf-16" if unicode else "utf-8"
        self._file: TextIO | None = open(self.path, "a" if append else "w",
                                         encoding=encoding, errors="replace", newline="")
        self.error: str | None = None
        self._partial = ""
        self._last_line = ""

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, text: str) -> None:
        """The tee: console text, as shown, without escapes."""
        handle = self._file
        if handle is None or not text:
            return
        text = strip_escapes(text)
        try:
            handle.write(text)
            handle.flush()
        except (OSError, ValueError) as exc:
            self.error = getattr(exc, "strerror", None) or str(exc)
            log.warning("log file %s stopped: %s", self.path, self.error)
            self.close()
            return
        self._track(text)

    def _track(self, text: str) -> None:
        combined = self._partial + text
        head, newline, tail = combined.rpartition("\n")
        if newline:
            self._last_line = head.rsplit("\n", 1)[-1][-_TAIL:]
        self._partial = tail[-_TAIL:]

    def note_input(self, prompt: str, line: str) -> None:
        """A command line about to run: written unless the output echoed it already."""
        if not self._partial and self._last_line.endswith(prompt + line):
            return
        if self._partial.endswith(prompt):
            self.write(line + "\n")
        else:
            self.write(("\n" if self._partial else "") + prompt + line + "\n")

    def close(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            try:
                handle.close()
            except OSError as exc:
                self.error = exc.strerror or str(exc)
