"""Tokens and number literals of WinDbg's MASM expression syntax.

Turns an expression string into tokens that keep their offsets, so the evaluator
can quote "the rest of the input" in its error lines as WinDbg does, and reads MASM
number literals in a given radix. It never raises: a character that starts no
token becomes a ``BAD`` token, and only the parser decides whether that is an
error (a command's later arguments may follow an expression and need not lex).
It knows nothing of symbols, registers or memory.

Spec: wdd:debuggercmds/masm-numbers-and-operators.md (prefixes ``0x 0n 0t 0y``,
the ``h`` suffix, a lone prefix meaning 0, ``xxxxxxxx`xxxxxxxx``),
sign-extension.md (a grave accent turns sign extension off), symbol-syntax-and-
symbol-matching.md (``module!name``, ``!name``, ``::`` scopes), register-syntax.md
and pseudo-register-syntax.md (``@reg``, ``$name``), ``@!"name"`` and ``@"str"``
from ---evaluate-expression-.md.
"""

from __future__ import annotations

import enum
import logging
import string
from dataclasses import dataclass

__all__ = ["Kind", "Token", "tokenize", "parse_number", "OPERATORS"]

log = logging.getLogger(__name__)

# Longest first, so ">>>" wins over ">>" and ">".
OPERATORS = (">>>", "<<", ">>", "<=", ">=", "==", "!=",
             "+", "-", "*", "/", "%", "<", ">", "=", "&", "^", "|", "(", ")", ",")

_LETTERS = frozenset(string.ascii_letters)
_DIGITS = frozenset(string.digits)
# A word starts like a number or a C/PDB name (`?` begins decorated C++ names).
_WORD_START = _LETTERS | _DIGITS | frozenset("_?")
# Inside a word: `!` joins module and name, `@`/`$`/`?` occur in decorated and
# compiler-made names (`_Func@8`, `KiSystemCall64$filt$0`), `.` in module names,
# and the grave accent in 64-bit numbers. `::` is handled on its own.
_WORD_CHARS = _WORD_START | frozenset("$@!.`")
_REG_CHARS = _LETTERS | _DIGITS | frozenset("_$")

_RADIX_PREFIXES = {"0x": 16, "0n": 10, "0t": 8, "0y": 2}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "0": "\0"}


class Kind(enum.Enum):
    """What a token is; the parser gives meaning to words and ``$`` names."""

    WORD = "word"          # number, name, module!name, or a word operator (poi, and, ...)
    BANG = "bang"          # !name: a symbol, never a number
    ESCAPED = "escaped"    # @!"any name": a symbol spelled with any characters
    REGISTER = "register"  # @name: a register or pseudo-register, never a symbol
    DOLLAR = "dollar"      # $name: pseudo-register, built-in function or $p... operator
    DOT = "dot"            # . : the current instruction pointer
    STRING = "string"      # "text" with C escapes, or @"text" taken literally
    EVALUATOR = "evaluator"  # @@, @@masm, @@c++: an evaluator switch before "("
    OP = "op"
    BAD = "bad"            # a character (or unterminated string) that starts no token
    EOL = "eol"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its source text and where it sits in the input."""

    kind: Kind
    text: str
    start: int
    end: int
    value: str = ""  # the name (lower case for registers) or the decoded string


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with an ``EOL`` token at ``len(text)``."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            tokens.append(Token(Kind.EOL, "", n, n))
            return tokens
        token = _token_at(text, i)
        tokens.append(token)
        i = token.end


def _token_at(text: str, i: int) -> Token:
    c = text[i]
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if c in _WORD_START:
        end = _word_end(text, i)
        return Token(Kind.WORD, text[i:end], i, end, text[i:end])
    if c == "@":
        return _at_token(text, i, nxt)
    if c == "$" and nxt in _REG_CHARS:
        end = _run(text, i + 1, _REG_CHARS)
        return Token(Kind.DOLLAR, text[i:end], i, end, text[i:end].lower())
    if c == "!" and nxt in _WORD_START:
        end = _word_end(text, i + 1)
        return Token(Kind.BANG, text[i:end], i, end, text[i + 1:end])
    if c == "." and nxt not in _WORD_CHARS:
        return Token(Kind.DOT, c, i, i + 1)
    if c == '"':
        return _string(text, i, i + 1, escapes=True)
    for op in OPERATORS:
        if text.startswith(op, i):
            return Token(Kind.OP, op, i, i + len(op))
    return Token(Kind.BAD, c, i, i + 1)


def _at_token(text: str, i: int, nxt: str) -> Token:
    if nxt == "@":
        end = _run(text, i + 2, _LETTERS | frozenset("+"))
        return Token(Kind.EVALUATOR, text[i:end], i, end, text[i + 2:end].lower())
    if nxt == '"':
        return _string(text, i, i + 2, escapes=False)
    if nxt == "!" and text.startswith('"', i + 2):
        close = text.find('"', i + 3)
        if close < 0:
            return Token(Kind.BAD, text[i:], i, len(text))
        return Token(Kind.ESCAPED, text[i:close + 1], i, close + 1, text[i + 3:close])
    if nxt in _REG_CHARS:
        end = _run(text, i + 1, _REG_CHARS)
        return Token(Kind.REGISTER, text[i:end], i, end, text[i + 1:end].lower())
    return Token(Kind.BAD, "@", i, i + 1)


def _string(text: str, start: int, body: int, *, escapes: bool) -> Token:
    out: list[str] = []
    i = body
    while i < len(text):
        c = text[i]
        if c == '"':
            return Token(Kind.STRING, text[start:i + 1], start, i + 1, "".join(out))
        if escapes and c == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return Token(Kind.BAD, text[start:], start, len(text))


def _run(text: str, i: int, chars: frozenset[str]) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _word_end(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        c = text[i]
        if c == "!" and text.startswith("!=", i):
            break  # `a!=b` is a comparison, not a module name
        if c in _WORD_CHARS:
            i += 1
        elif c == ":" and text.startswith("::", i) and i + 2 < n and text[i + 2] in _WORD_START:
            i += 2
        else:
            break
    return i


def parse_number(word: str, radix: int) -> tuple[int, bool] | None:
    """The value of a MASM number literal and whether it was written 64-bit.

    ``radix`` is the default base of unprefixed numbers. A ``0x``/``0n``/``0t``/
    ``0y`` prefix overrides it (a prefix alone is 0); a trailing ``h`` makes a
    string of hex digits hex in any radix, so ``ah`` is 10, not a register. Grave
    accents after the first digit are ignored and mark the number as 64-bit, which
    turns sign extension off. None when ``word`` is not a number (a name, then).
    The value is not reduced to 64 bits: the caller decides about overflow.
    """
    if not word or word[0] == "`":
        return None
    wide = "`" in word
    digits = word.replace("`", "").lower()
    base = _RADIX_PREFIXES.get(digits[:2])
    if base is not None:
        body = digits[2:]
        value = _digits_value(body, base) if body else 0
        return None if value is None else (value, wide)
    value = _digits_value(digits, radix)
    if value is None and len(digits) > 1 and digits.endswith("h"):
        value = _digits_value(digits[:-1], 16)
    return None if value is None else (value, wide)


def _digits_value(body: str, base: int) -> int | None:
    if not body:
        return None
    try:
        # int() also takes "_" separators and a sign, which MASM does not.
        return int(body, base) if body.isascii() and body.isalnum() else None
    except ValueError:
        return None
