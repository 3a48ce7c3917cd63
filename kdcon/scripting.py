"""Debugger command programs: statements, blocks, control flow, script files, aliases.

What it does: ``split_program`` cuts a line into statements the way kd reads a
command program: at ``;`` outside quotes and braces, with the control-flow tokens
(``.if``/``.elsif``/``.else``, ``.for``, ``.while``, ``.do``, ``.foreach``,
``.block``, ``.catch``) taking their parenthesised parts and brace blocks whole, even
across the ``;`` a folded script puts where its line breaks were, and with ``$<``,
``$><``, ``as`` and ``*`` taking the rest of the line. ``Aliases`` replaces
``${name}``, ``${/d:name}``, ``${/f:name}``, ``${/n:name}`` (``${/v:name}`` stays as
written) and alias names that stand as whole words. ``Interpreter`` runs programs:

Rule 1: aliases are replaced when a line or a block is entered, never in the middle
        of one, so an alias set in a block is seen by the blocks entered after it and
        not by the rest of its own list; a line or block that starts with ``as``,
        ``aS``, ``ad`` or ``al`` is left as written.
Rule 2: an error ends the whole program unless a ``.catch`` block holds it: in a
        block, in a folded script and in a nested list (a breakpoint's command
        string); only a line typed or given with ``-c`` goes on after a failing
        command of its own list (the console's rule for typed lines).
Rule 3: ``.break``/``.continue`` unwind to their loop and ``.leave`` to its ``.catch``;
        each program (a line, a script line, a folded script) has its own loops.
Rule 4: in a nested list (a breakpoint's command string), a command that resumes the
        target ends the list, however deep in blocks it ran.
Rule 5: script files nest up to ``MAX_SCRIPT_DEPTH`` and blocks up to
        ``MAX_BLOCK_DEPTH``; beyond, one clear error line.
Rule 6: Ctrl+C (the target's cancel event, set by the REPL while the target is
        halted) ends the whole line at the next natural point: before each statement,
        at each entry into a block (each round of a loop), at each line of output the
        command thread writes (``Output.check``), and wherever a command or an
        extension checks it itself (``Progress.update``, each memory chunk of ``s``).
        Whatever the command raises on its way out, the line ends with the one line
        ``CANCELLED``; nothing else the line prints reaches the screen after it.

What it does not do: parse each token's own arguments or print anything but the
echo of script lines (commands/scripts.py), or evaluate expressions (expr.py).
Spec: WinDbg's "Using Debugger Command Programs", "Control Flow Tokens", "Using
Aliases", "${ } (Alias Interpreter)" and "$<, $><, $$<, $$><, $$>a< (Run Script File)".
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CommandError
from .target import CANCELLED, Cancelled

if TYPE_CHECKING:
    from .console import Console

__all__ = ["split_program", "group_end", "take_group", "skip_gap", "split_top",
           "Aliases", "replace_variable", "script_arguments", "Interpreter", "prompt_for",
           "ControlFlow", "LoopBreak", "LoopContinue", "BlockLeave", "ProgramAbort",
           "ProgramEnd", "ProgramCancelled", "CANCELLED", "MAX_SCRIPT_DEPTH",
           "MAX_BLOCK_DEPTH"]

log = logging.getLogger(__name__)

MAX_SCRIPT_DEPTH = 32
MAX_BLOCK_DEPTH = 64

# What follows each control token: O options, P a (parenthesised part), B a {block}.
_SHAPES = {".if": "PB", ".elsif": "PB", ".else": "B", ".for": "PB", ".while": "PB",
           ".do": "BP", ".block": "B", ".catch": "B", ".foreach": "OPB"}
_NUMBER_OPTIONS = ("/pS", "/ps")
_CLOSE = {"(": ")", "{": "}"}


# -- control flow signals ------------------------------------------------------------------


class ControlFlow(Exception):
    """Unwinds a program through the commands that run blocks; never reaches a user."""

    failed = False          # the command it passes through counts as failed (not again)


class LoopBreak(ControlFlow):
    """``.break``: leave the innermost loop."""


class LoopContinue(ControlFlow):
    """``.continue``: go on with the innermost loop's next round."""


class BlockLeave(ControlFlow):
    """``.leave``: leave the innermost ``.catch`` block."""


class ProgramAbort(ControlFlow):
    """A command in a block failed (its error line is printed): the program ends."""

    failed = True


class ProgramEnd(ControlFlow):
    """The program ends without an error: ``q``, or a resume in a breakpoint's list."""


class ProgramCancelled(ControlFlow):
    """Ctrl+C: the whole line ends (Rule 6); its one line is already printed."""

    failed = True


# -- reading statements ---------------------------------------------------------------------


def skip_gap(text: str, index: int) -> int:
    """Past the blanks and ``;`` that may separate the parts of a control statement."""
    while index < len(text) and (text[index].isspace() or text[index] == ";"):
        index += 1
    return index


def _skip_blanks(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def group_end(text: str, start: int) -> int:
    """The index just past the bracket closing the ``(`` or ``{`` at ``start``, or -1.
    Only brackets of the same kind count; quoted text (with ``\\"``) is skipped."""
    opening, closing = text[start], _CLOSE[text[start]]
    depth, quoted, index = 0, False, start
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\" and text[index + 1: index + 2] in ('"', "\\"):
                index += 2
                continue
            if char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return -1


def take_group(text: str, index: int, opening: str, what: str) -> tuple[str, int]:
    """The inside of the ``opening`` group at ``index`` (after any gap) and the index
    past it; a clear error naming ``what`` when it is missing or not closed."""
    index = skip_gap(text, index)
    if index >= len(text) or text[index] != opening:
        rest = text[index:].strip() or "<EOL>"
        raise CommandError(f"Syntax error: {what} expected at '{rest}'")
    end = group_end(text, index)
    if end < 0:
        raise CommandError(f"Syntax error: no closing '{_CLOSE[opening]}' for '{text[index:].strip()}'")
    return text[index + 1: end - 1], end


def split_top(text: str, separator: str) -> list[str]:
    """``text`` cut at ``separator`` outside quotes, parentheses and braces."""
    parts: list[str] = []
    depth, quoted, start, index = 0, False, 0, 0
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\" and text[index + 1: index + 2] in ('"', "\\"):
                index += 2
                continue
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char in "({":
            depth += 1
        elif char in ")}" and depth:
            depth -= 1
        elif char == separator and not depth:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return parts


def _control_token(text: str, index: int) -> str | None:
    if not text.startswith(".", index):
        return None
    end = index + 1
    while end < len(text) and text[end].isalpha():
        end += 1
    token = text[index:end].lower()
    if token not in _SHAPES or (end < len(text) and (text[end].isalnum() or text[end] in "_+")):
        return None
    return token


def _control_end(text: str, index: int, token: str) -> int:
    """Where the control statement at ``index`` ends, or -1 if it is not whole."""
    pos = index + len(token)
    for part in _SHAPES[token]:
        if part == "O":
            while True:
                pos = _skip_blanks(text, pos)
                if not text.startswith("/", pos):
                    break
                word_end = pos
                while word_end < len(text) and not text[word_end].isspace() and text[word_end] != "(":
                    word_end += 1
                option, pos = text[pos:word_end], word_end
                if option in _NUMBER_OPTIONS:
                    pos = _skip_blanks(text, pos)
                    while pos < len(text) and not text[pos].isspace() and text[pos] != "(":
                        pos += 1
            continue
        pos = skip_gap(text, pos)
        if pos >= len(text) or text[pos] != ("(" if part == "P" else "{"):
            return -1
        pos = group_end(text, pos)
        if pos < 0:
            return -1
    return pos


def _plain_end(text: str, index: int) -> int:
    """The ``;`` ending the plain command at ``index`` (outside quotes and braces)."""
    quoted, depth = False, 0
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\" and text[index + 1: index + 2] in ('"', "\\"):
                index += 2
                continue
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == ";" and not depth:
            return index
        index += 1
    return index


def _takes_rest(text: str, index: int) -> bool:
    """``$<file``, ``$><file`` (a file name may hold ``;``), ``as`` (its text may) and
    a ``*`` comment run to the end of the line."""
    if text.startswith(("$<", "$><", "*"), index):
        return True
    return text.startswith("as", index) and (index + 2 == len(text) or text[index + 2].isspace())


def split_program(text: str) -> list[str]:
    """The statements of one line or block, in order."""
    statements: list[str] = []
    index = skip_gap(text, 0)
    while index < len(text):
        if _takes_rest(text, index):
            statements.append(text[index:].strip())
            break
        token = _control_token(text, index)
        end = _control_end(text, index, token) if token else -1
        if end < 0:
            end = _plain_end(text, index)
            statements.append(text[index:end].strip())
            index = skip_gap(text, end)
            continue
        if token == ".if":
            # .elsif/.else belong to the .if before them, even after a folded line break.
            while True:
                after = skip_gap(text, end)
                branch = _control_token(text, after)
                branch_end = _control_end(text, after, branch) if branch in (".elsif", ".else") else -1
                if branch_end < 0:
                    break
                end = branch_end
                if branch == ".else":
                    break
        # A space after the token so that ``.block{`` resolves as ``.block``.
        statements.append(f"{token} {text[index + len(token): end].strip()}")
        index = skip_gap(text, end)
    return [statement for statement in statements if statement]


# -- aliases ----------------------------------------------------------------------------------

_INTERPRETER = re.compile(r"\$\{(/[dfnv]:)?([^{}\s]+)\}")
_WORD = re.compile(r"[^\s;{}]+")
# A word for alias replacement: blanks, ';' and braces end it, a ${...} token does not.
_RUN = re.compile(r"(?:\$\{[^{}\s]*\}|[^\s;{}])+")
_EXEMPT = re.compile(r"(as|aS|ad|al)(\s|$)")
_SCRIPT_ARGUMENT = re.compile(r"\$\{\$(?:arg(\d+)|(n))\}")
_RESERVED_PREFIXES = ("al", "as", "aS", "ad")


class Aliases:
    """User-named aliases: case-sensitive names for text."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    @staticmethod
    def check_name(name: str) -> str:
        if name.startswith("${/v:") and name.endswith("}"):
            name = name[5:-1]
        if not name or any(char.isspace() for char in name) or name.startswith(_RESERVED_PREFIXES):
            raise CommandError(f"Invalid alias name '{name}': no blanks, and not starting "
                               "with al, as, aS or ad")
        return name

    def set(self, name: str, value: str) -> None:
        self.values[self.check_name(name)] = value

    def remove(self, name: str) -> bool:
        return self.values.pop(name, None) is not None

    def expand(self, text: str) -> str:
        """``text`` as the command parser sees it (Rule 1)."""
        if (not self.values and "${" not in text) or _EXEMPT.match(text):
            return text
        return _RUN.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        # One pass: what a replacement brings in is not replaced again.
        word = match.group()
        value = self.values.get(word)
        if value is not None:
            return value
        return _INTERPRETER.sub(self._interpret, word) if "${" in word else word

    def _interpret(self, match: re.Match[str]) -> str:
        switch, name = match.group(1), match.group(2)
        value = self.values.get(name)
        if switch == "/d:":
            return "1" if value is not None else "0"
        if switch == "/f:":
            return value if value is not None else ""
        if switch == "/n:":
            return name if value is not None else match.group()
        if switch == "/v:" or value is None:
            return match.group()
        return value


def replace_variable(text: str, name: str, value: str) -> str:
    """A ``.foreach`` variable's token put in place of ``${name}`` and of ``name``
    standing as a whole word."""
    text = text.replace("${" + name + "}", value)
    return _WORD.sub(lambda m: value if m.group() == name else m.group(), text)


def script_arguments(text: str, arguments: list[str]) -> str:
    """``${$argN}`` and ``${$n}`` replaced; an argument not given stays as written."""

    def one(match: re.Match[str]) -> str:
        if match.group(2):
            return str(len(arguments))
        number = int(match.group(1))
        return arguments[number - 1] if 1 <= number <= len(arguments) else match.group()

    return _SCRIPT_ARGUMENT.sub(one, text)


def prompt_for(session: Any) -> str:
    """kd's prompt: ``0: kd> `` halted on processor 0, ``kd> `` while running."""
    stop = session.stop
    if session.halted and stop is not None:
        return f"{stop.processor}: kd> "
    return "kd> "


# -- running programs --------------------------------------------------------------------------


class Interpreter:
    """Runs lines, blocks and script files for one console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.aliases = Aliases()
        self.resume_ends = False      # Rule 4: in a breakpoint's list
        self.loops = 0                # loops and .catch blocks open in this program
        self.catches = 0
        self.blocks = 0
        self.scripts = 0
        self.last_error: str | None = None
        self.depth = 0                # programs open (a nested one passes Ctrl+C on)
        self.cancel_reported = False  # this line already said it was cancelled
        self._line_thread: threading.Thread | None = None
        self._saying = False
        console.output.check = self._check_output

    # -- Ctrl+C (Rule 6) ------------------------------------------------------------------------

    def cancelled(self) -> bool:
        target = self.console.target
        return target is not None and bool(target.cancelled())

    def check_cancelled(self) -> None:
        """A natural stopping point between commands: after Ctrl+C the line ends here."""
        if self.cancelled():
            raise self.cancellation()

    def _stop_command(self) -> None:
        """A natural stopping point inside a command: it fails, and the console's
        ``run_one`` (seeing the cancel event) turns the failure into the line's end."""
        if self.cancelled():
            self.cancellation()
            raise CommandError(CANCELLED)

    def cancellation(self, result: Any = None, exc: BaseException | None = None
                     ) -> ProgramCancelled:
        """Say once a line that it was cancelled (outside any capture, so the screen
        and the log see it); the signal that ends the line. ``result``: the command
        that was running, which failed; ``exc``: what it raised, whose words are the
        line when it is the ``Cancelled`` of a job that checked for itself."""
        text = CANCELLED
        if isinstance(exc, Cancelled) and str(exc):
            text = str(exc)
        if result is not None:
            result.ok = False
            result.error = text
        if not self.cancel_reported:
            self.cancel_reported = True
            self.console.failures += 1
            self._saying = True
            try:
                self.console.output.event_text(text + "\n")
            finally:
                self._saying = False
        return ProgramCancelled()

    def _check_output(self) -> None:
        """Asked before every write: the thread running a line stops at its next
        line of output once Ctrl+C was pressed (output of other threads goes on)."""
        if self._saying or self._line_thread is not threading.current_thread():
            return
        if isinstance(sys.exc_info()[1], (Cancelled, KeyboardInterrupt)):
            return          # the command handles its cancellation: it may say how far it got
        self._stop_command()

    def execute(self, line: str, *, nested: bool) -> bool:
        """A line typed, given with ``-c`` or run by a command; False if a command failed."""
        console = self.console
        if not nested and console.log is not None:
            # An empty line that repeats the last command was typed empty.
            typed = "" if getattr(console.state, "repeating", False) else line
            console.log.note_input(prompt_for(console.session), typed)
        saved = self.resume_ends
        self.resume_ends = nested
        outermost = self._line_thread is None
        if outermost:
            self._line_thread = threading.current_thread()
            self.cancel_reported = False
        try:
            return self.program(line, strict=nested)
        finally:
            self.resume_ends = saved
            if outermost:
                self._line_thread = None
                target = console.target
                if self.cancel_reported and target is not None and \
                        hasattr(target, "cancel_event"):
                    target.cancel_event.clear()      # that Ctrl+C is spent

    def program(self, text: str, *, strict: bool = False) -> bool:
        """One command program with its own loops and ``.catch`` blocks (Rule 3);
        ``strict``: its first error ends it (Rule 2)."""
        saved = self.loops, self.catches
        self.loops = self.catches = 0
        self.depth += 1
        try:
            if not strict:
                return self._statements(text, top=True)
            self._statements(text, top=False)
            return True
        except ProgramEnd:
            return True
        except ProgramCancelled:
            if self.depth > 1:
                raise                  # the whole line ends, not only this program
            return False
        except ControlFlow:
            return False
        finally:
            self.depth -= 1
            self.loops, self.catches = saved

    def run_block(self, body: str) -> None:
        """The commands of a ``{ }`` block; raises the signals of Rules 2-4."""
        if self.blocks >= MAX_BLOCK_DEPTH:
            raise CommandError(f"Blocks nest too deep (more than {MAX_BLOCK_DEPTH} levels)")
        self._stop_command()            # each round of a loop, even an empty one
        self.blocks += 1
        try:
            self._statements(body, top=False)
        finally:
            self.blocks -= 1

    def _statements(self, text: str, *, top: bool) -> bool:
        console = self.console
        ok = True
        for statement in split_program(self.aliases.expand(text)):
            if statement.startswith("*"):
                continue
            self.check_cancelled()
            try:
                result = console.run_one(statement)
            except ProgramEnd:
                if top:
                    return ok
                raise
            except ProgramAbort:
                if top:
                    return False
                raise
            if not result.ok:
                ok = False
                self.last_error = result.error
                if not top:
                    raise ProgramAbort()
            if console.quit_requested or (self.resume_ends and console.resumed):
                if top:
                    break
                raise ProgramEnd()
        return ok

    # -- script files -------------------------------------------------------------------------

    def run_script(self, name: str, *, fold: bool, echo: bool,
                   arguments: list[str] | None = None) -> None:
        """``$<`` and kin: the file's lines one by one, or folded into one block."""
        if self.scripts >= MAX_SCRIPT_DEPTH:
            raise CommandError(f"Script files nest too deep (more than {MAX_SCRIPT_DEPTH} "
                               f"levels) at '{name}'")
        text = read_script(name)
        if arguments is not None:
            text = script_arguments(text, arguments)
        lines = text.split("\n")
        console = self.console
        self.scripts += 1
        try:
            if fold:
                # Every line break becomes a ';' and the file one command block.
                block = ";".join(lines)
                if echo:
                    console.output.line(prompt_for(console.session) + block)
                self.program(block, strict=True)
                return
            for line in lines:
                if not line.strip():
                    continue
                if echo:
                    console.output.line(prompt_for(console.session) + line)
                self.program(line)
                if console.quit_requested or (self.resume_ends and console.resumed):
                    break
        finally:
            self.scripts -= 1


def read_script(name: str) -> str:
    """A script file's text, line breaks as ``\\n``; one clear error if it cannot be read."""
    try:
        raw = Path(name).read_bytes()
    except OSError as exc:
        raise CommandError(f"Unable to read script file '{name}': "
                           f"{exc.strerror or exc}") from None
    text = raw.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")
