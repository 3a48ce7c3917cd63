"""Where the console's text goes, and the rule that target text cannot drive a terminal.

What it does: ``Output`` collects what a command or an event prints (text, warnings,
errors, rows) and hands it to the sinks the console set up (the terminal, a log, the
JSON renderer, a capture buffer for ``Target.run``), under one lock so a DbgPrint
arriving from the session's pump thread never splits a command's line.
``printable`` makes bytes or text from the target safe to show: every control
character (C0 but newline and tab, DEL, C1) and every bidirectional override becomes
a visible ``\\xNN`` / ``\\uNNNN`` escape, so a hostile kernel's DbgPrint, string or
module name cannot move the cursor, retitle the window or hide text.
``Pager`` is kd's ``-- more --``: given to ``Output.pager`` by the interactive
console when ``.more`` is on, it cuts the text the command thread writes into
terminal pages and asks between them (space: a page, Enter: a line, q: stop);
captured text, quiet (JSON) output and other threads' text (DbgPrint) are never
paged, and logs see every line as it is written.
What it does not do: colour or prompts, or decide when to page (the REPL's).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["Output", "Pager", "printable", "TextSink"]

# C0 controls except tab and newline, DEL, C1 controls, and the Unicode format
# characters that reorder or hide text (bidi embeddings, overrides and isolates).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_NO_NEWLINES = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str | bytes, *, newlines: bool = True) -> str:
    """``text`` with everything that could act on a terminal shown as an escape.

    Bytes are decoded as Latin-1 would show them (one character per byte), as kd does
    for ANSI strings; ``newlines=False`` escapes line breaks too (module names).
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    pattern = _UNSAFE if newlines else _UNSAFE_NO_NEWLINES
    return pattern.sub(_escape, text)


TextSink = Callable[[str], None]


class Output:
    """The console's output, shared by commands, extensions and the event pump."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.lock = threading.RLock()
        self._stream = stream if stream is not None else sys.stdout
        self._captures: list[list[str]] = []
        self._tees: list[TextSink] = []
        self.quiet = False          # JSON mode: text goes to the result, not the terminal
        self.rows: list[dict[str, Any]] | None = None
        # Asked before every write, captured or not; it may raise to stop the writer
        # (the interpreter's Ctrl+C check: a command stops at its next line).
        self.check: Callable[[], None] | None = None
        self.pager: Pager | None = None
        self._events = threading.local()   # .unpaged: this thread writes an event's text

    # -- sinks -------------------------------------------------------------------------

    def add_tee(self, sink: TextSink) -> None:
        """Also send every piece of text to ``sink`` (a log file)."""
        with self.lock:
            self._tees.append(sink)

    def remove_tee(self, sink: TextSink) -> None:
        with self.lock:
            if sink in self._tees:
                self._tees.remove(sink)

    def begin_capture(self) -> None:
        with self.lock:
            self._captures.append([])

    def end_capture(self) -> str:
        with self.lock:
            return "".join(self._captures.pop())

    # -- writing -----------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Console text. Whatever a command formats, and whatever target text it
        carries (module names, symbols, strings), nothing but newline and tab of the
        control characters reaches a sink: the last line of defence against a
        hostile kernel."""
        if not text:
            return
        check = self.check
        if check is not None:
            check()
        text = printable(text)
        pager = self.pager
        if pager is not None and not getattr(self._events, "unpaged", False) and pager.active():
            with self.lock:
                shown = not self._captures and not self.quiet
            if shown:
                # Each page is written under the lock; the pause between them is not,
                # so DbgPrint and other threads' text go on while the user reads.
                for piece in pager.pieces(text):
                    self._put(piece)
                if pager.stopped and check is not None:
                    check()           # q: the command is cancelled (the REPL set it)
                return
        self._put(text)

    def _put(self, text: str) -> None:
        with self.lock:
            if self._captures:
                self._captures[-1].append(text)
                return
            for tee in self._tees:
                tee(text)
            if not self.quiet:
                self._stream.write(text)
                self._stream.flush()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def lines(self, lines: list[str]) -> None:
        if lines:
            self.write("\n".join(lines) + "\n")

    def target_text(self, text: str | bytes) -> None:
        """Text that came from the target (DbgPrint): made safe, then written."""
        self.write(printable(text))

    def event_text(self, text: str) -> None:
        """Text of an event (a stop banner, a DbgPrint): never captured into the
        result of the command that happens to be running, never paged."""
        with self.lock:
            captures, self._captures = self._captures, []
            self._events.unpaged = True
            try:
                self.write(text)
            finally:
                self._captures = captures
                self._events.unpaged = False

    def row(self, **fields: Any) -> None:
        """One structured row of the current command's result (JSON mode keeps them)."""
        with self.lock:
            if self.rows is not None:
                self.rows.append(fields)


class Pager:
    """Pages of one command's output: ``pieces(text)`` yields ``text`` a page at a
    time, calling ``ask()`` between pages for the key that goes on: ``" "`` (a page),
    ``"\\n"`` (a line) or ``"q"`` (stop: ``stopped`` is True and the rest is dropped).
    ``rows()`` is the terminal's height; a page leaves two rows for the prompt and
    its toolbar. ``active()`` says whether this write is paged at all."""

    def __init__(self, rows: Callable[[], int], ask: Callable[[], str],
                 active: Callable[[], bool]) -> None:
        self.rows = rows
        self.ask = ask
        self.active = active
        self.left: int | None = None        # lines before the next pause
        self.stopped = False

    def reset(self) -> None:
        """A new command line: a whole page before the first pause."""
        self.left = None
        self.stopped = False

    def _page(self) -> int:
        return max(1, self.rows() - 2)

    def pieces(self, text: str) -> Iterator[str]:
        while text and not self.stopped:
            if self.left is None:
                self.left = self._page()
            if self.left <= 0:
                answer = self.ask()
                if answer == "q":
                    self.stopped = True
                    return
                self.left = self._page() if answer == " " else 1
            end = -1
            for _ in range(self.left):
                end = text.find("\n", end + 1)
                if end < 0:
                    break
            if end < 0:
                self.left -= text.count("\n")
                yield text
                return
            yield text[:end + 1]
            text = text[end + 1:]
            self.left = 0
