"""WinDbg's MASM expression evaluator, over an abstract context.

``evaluate`` gives the ULONG64 value of an expression such as ``poi(rsp+8)``,
``nt!KeBugCheckEx+0x10`` or ``@$t0 << 3 | 1``; ``evaluate_prefix`` takes the
longest expression at the start of a command's arguments and says where it
stopped, so ``dd rsp+8 L4`` can go on to read ``L4``. ``format_evaluation`` is the
``?`` command's output line. Symbols, registers and memory come from an
``EvalContext``; this module does no I/O and keeps no state. It does not do the
C++ evaluator (``@@c++( )``, ``??``), ``$fnsucc`` or aliases. A source-line
expression (`` `[[Module!]Filename][:LineNumber]` ``, a grave accent that does not
follow a digit or a name) is a name the context's ``source_line`` answers.

Rules, from wdd:debuggercmds/masm-numbers-and-operators.md, sign-extension.md,
register-syntax.md and pseudo-register-syntax.md (summarised in windbg.md §0.4):

1. All arithmetic is unsigned 64-bit and wraps; comparisons give 1 or 0.
2. Binary precedence, highest first: ``* / mod %``; ``+ -``; ``<< >> >>>``;
   ``= == < > <= >= !=``; ``and &``; ``xor ^``; ``or |``. Equal precedence is left to
   right. Unary operators (``+ - not hi low poi by wo dwo qwo $pby $pwo $pdwo $pqwo
   $ppoi``) bind tighter than any binary one; word operators are case-insensitive.
3. ``>>`` shifts logically, ``>>>`` arithmetically. The count is taken modulo 64,
   as the x64 shift the debugger runs on does.
4. A bare word is a number if it reads as one in the radix (so ``abc`` is 0xabc and
   ``ah`` is 0xa); then a common x86/x64 register; then a symbol; then any other
   register the context knows. ``!name`` and ``module!name`` are always symbols,
   ``@name`` always a register, ``$name`` a pseudo-register (or built-in), ``.`` is
   ``$ip``.
5. Kernel-mode sign extension: a numeric constant from 0x80000000 to 0xffffffff
   becomes ffffffff`xxxxxxxx unless written with a grave accent, and so does a
   32-bit register (eax, r8d, ...); pseudo-registers and results never are. ``poi``
   on a 4-byte-pointer target sign-extends what it reads, as pointers are.
6. An error is one line naming the rest of the input from where it happened:
   ``Couldn't resolve error at 'foo+1'``, ``Numeric expression missing from
   '<EOL>'``. A failed read or a division by zero is reported where the operand
   ended, so ``dwo(@$t1) == 1`` fails "at ') == 1'".
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Callable, Protocol

from kdcon.errors import CommandError
from kdcon.expr_lexer import Kind, Token, parse_number, tokenize

__all__ = ["EvalContext", "ExprError", "evaluate", "evaluate_prefix", "format_evaluation",
           "wildcard_match", "COMMON_REGISTERS", "SIGN_EXTENDED_REGISTERS"]

log = logging.getLogger(__name__)

MASK = (1 << 64) - 1
_PAGE = 0x1000
_MAX_DEPTH = 100  # nesting of parentheses and unary operators; beyond it, a syntax error
_RADIXES = (2, 8, 10, 16)

_GPR64 = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp")
_GPR32 = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp")
_NUMBERED = tuple(f"r{n}" for n in range(8, 16))
# 32-bit registers are sign-extended in MASM expressions in every mode (sign-extension.md).
SIGN_EXTENDED_REGISTERS = frozenset(_GPR32 + ("eip", "efl") + tuple(r + "d" for r in _NUMBERED))
# Registers recognised without "@" before symbols are searched (register-syntax.md:
# "unnecessary for the most common x86-based registers").
COMMON_REGISTERS = SIGN_EXTENDED_REGISTERS | frozenset(
    _GPR64 + _NUMBERED + ("rip", "ip", "ax", "bx", "cx", "dx", "si", "di", "bp", "sp",
                          "al", "bl", "cl", "dl", "ah", "bh", "ch", "dh",
                          "sil", "dil", "bpl", "spl", "cs", "ds", "es", "fs", "gs", "ss")
    + tuple(r + s for r in _NUMBERED for s in ("w", "b")))

_BINARY_PRECEDENCE = {
    "*": 7, "/": 7, "%": 7, "mod": 7,
    "+": 6, "-": 6,
    "<<": 5, ">>": 5, ">>>": 5,
    "=": 4, "==": 4, "<": 4, ">": 4, "<=": 4, ">=": 4, "!=": 4,
    "&": 3, "and": 3,
    "^": 2, "xor": 2,
    "|": 1, "or": 1,
}
_BINARY_WORDS = frozenset(("mod", "and", "xor", "or"))
# Memory operators: size in bytes (0 = the target's pointer size) and physical or not.
_READS = {"poi": (0, False), "by": (1, False), "wo": (2, False), "dwo": (4, False),
          "qwo": (8, False), "$ppoi": (0, True), "$pby": (1, True), "$pwo": (2, True),
          "$pdwo": (4, True), "$pqwo": (8, True)}
_BUILTINS = frozenset(("$scmp", "$sicmp", "$spat", "$vvalid", "$iment"))
_BP_NUMBER = re.compile(r"^\$bp0*(\d+)$")
# A grave accent after a digit or a name is inside a number (fffff800`01000000).
_SOURCE_LINE = re.compile(r"(?<![0-9A-Za-z_$@`])`([^`]*)`")


class EvalContext(Protocol):
    """What the evaluator needs from a session: names, registers and memory."""

    pointer_size: int  # 8 on x64, 4 on x86

    def symbol(self, name: str) -> int | None:
        """Address of 'nt!KeBugCheckEx', 'KeBugCheckEx' or a module name, or None."""

    def register(self, name: str) -> int | None:
        """Value of 'rax', 'eax', 'al', '$ip', '$t0' (lower case, no '@'), or None."""

    def read_virtual(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes at a virtual address; fewer means unreadable."""

    def read_physical(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes at a physical address; fewer means unreadable."""


class ExprError(CommandError):
    """An expression could not be evaluated; the message is WinDbg's line.

    ``position`` is the offset in the evaluated text where the error happened, so a
    command can draw WinDbg's caret under its own command line.
    """

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def evaluate(text: str, ctx: EvalContext, *, radix: int = 16) -> int:
    """The value of the whole of ``text``; anything left over is an error."""
    value, _ = _Parser(text, ctx, radix).parse(whole=True)
    return value


def evaluate_prefix(text: str, ctx: EvalContext, *, radix: int = 16) -> tuple[int, int]:
    """The longest expression at the start of ``text``: (value, offset just after it).

    The expression ends before the first token that cannot continue it: ``rsp+8 L4``
    stops before ``L4``, ``1 2`` after ``1``; ``rsp + 8`` is one expression.
    """
    return _Parser(text, ctx, radix).parse(whole=False)


def format_evaluation(value: int, *, pointer_size: int = 8) -> str:
    """The ``?`` command's line: signed decimal, then hex as WinDbg shows addresses.

    On a 4-byte-pointer target a value that is a 32-bit number, plain or sign
    extended, is shown with 8 hex digits (sign-extension.md, "Displaying").
    """
    value &= MASK
    signed = value - (1 << 64) if value >> 63 else value
    high, low = value >> 32, value & 0xFFFFFFFF
    if pointer_size == 4 and (high == 0 or (high == 0xFFFFFFFF and low >> 31)):
        return f"Evaluate expression: {signed} = {low:08x}"
    return f"Evaluate expression: {signed} = {high:08x}`{low:08x}"


def _sign_extend_32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value | 0xFFFFFFFF00000000 if value >> 31 else value


class _Parser:
    """Precedence climbing over the token list, evaluating as it goes."""

    def __init__(self, text: str, ctx: EvalContext, radix: int) -> None:
        if radix not in _RADIXES:
            raise ValueError(f"radix must be one of {_RADIXES}, not {radix}")
        self._text = text
        self._ctx = ctx
        self._radix = radix
        self._sources: dict[str, tuple[str, int]] = {}
        self._tokens = [replace(t, end=t.start + len(self._sources[t.value][0]) + 2)
                        if t.value in self._sources else t
                        for t in tokenize(self._hide_source_lines(text))]
        self._i = 0
        self._depth = 0
        # Where a failed read of the operand just parsed is reported (see rule 6).
        self._operand_end = 0

    def _hide_source_lines(self, text: str) -> str:
        """``text`` with each source-line expression replaced, in place and padded to
        its length so positions stay true, by a ``$`` name standing for it."""
        def hide(match: re.Match[str]) -> str:
            name = f"$sl{len(self._sources)}"
            if len(match.group()) < len(name):
                return match.group()
            self._sources[name] = (match.group(1), match.start())
            return name.ljust(len(match.group()))
        return _SOURCE_LINE.sub(hide, text)

    def _source_line(self, spec: str, position: int) -> int:
        resolve = getattr(self._ctx, "source_line", None)
        address = resolve(spec) if resolve is not None else None
        if address is None:
            raise self._error("Couldn't resolve", position)
        return address & MASK

    # -- tokens and errors ------------------------------------------------------

    def _peek(self) -> Token:
        return self._tokens[self._i]

    def _next(self) -> Token:
        token = self._tokens[self._i]
        if token.kind is not Kind.EOL:
            self._i += 1
        return token

    def _error(self, kind: str, position: int) -> ExprError:
        rest = self._text[position:] or "<EOL>"
        if kind == "Numeric expression missing":
            return ExprError(f"Numeric expression missing from '{rest}'", position=position)
        return ExprError(f"{kind} error at '{rest}'", position=position)

    def _expect(self, op: str) -> Token:
        token = self._peek()
        if token.kind is not Kind.OP or token.text != op:
            raise self._error("Syntax", token.start)
        return self._next()

    # -- grammar ----------------------------------------------------------------

    def parse(self, *, whole: bool) -> tuple[int, int]:
        value = self._binary(1)
        end = self._tokens[self._i - 1].end if self._i else 0
        if whole and self._peek().kind is not Kind.EOL:
            position = self._peek().start
            raise ExprError(f"Extra character error in '{self._text}'", position=position)
        return value, end

    def _binary(self, min_precedence: int) -> int:
        left = self._unary()
        while True:
            token = self._peek()
            op = self._binary_operator(token)
            if op is None or _BINARY_PRECEDENCE[op] < min_precedence:
                return left
            self._next()
            right = self._binary(_BINARY_PRECEDENCE[op] + 1)
            left = self._apply(op, left, right)

    @staticmethod
    def _binary_operator(token: Token) -> str | None:
        if token.kind is Kind.OP and token.text in _BINARY_PRECEDENCE:
            return token.text
        if token.kind is Kind.WORD and token.text.lower() in _BINARY_WORDS:
            return token.text.lower()
        return None

    def _apply(self, op: str, a: int, b: int) -> int:
        if op in ("/", "%", "mod") and b == 0:
            raise self._error("Divide by zero", self._peek().start)
        shift = b & 63
        if op == "*":
            return (a * b) & MASK
        if op == "/":
            return a // b
        if op in ("%", "mod"):
            return a % b
        if op == "+":
            return (a + b) & MASK
        if op == "-":
            return (a - b) & MASK
        if op == "<<":
            return (a << shift) & MASK
        if op == ">>":
            return a >> shift
        if op == ">>>":
            return ((a - (1 << 64) if a >> 63 else a) >> shift) & MASK
        if op in ("&", "and"):
            return a & b
        if op in ("^", "xor"):
            return a ^ b
        if op in ("|", "or"):
            return a | b
        return int(_COMPARISONS[op](a, b))

    def _unary(self) -> int:
        token = self._peek()
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise self._error("Syntax", token.start)
        try:
            if token.kind is Kind.OP and token.text in ("+", "-"):
                self._next()
                value = self._unary()
                return (-value) & MASK if token.text == "-" else value
            word = token.value.lower() if token.kind in (Kind.WORD, Kind.DOLLAR) else ""
            if word in _READS:
                self._next()
                address = self._unary()
                return self._read(address, *_READS[word])
            if token.kind is Kind.WORD and word in ("not", "hi", "low"):
                self._next()
                value = self._unary()
                if word == "not":
                    return int(value == 0)
                return (value >> 16) & 0xFFFF if word == "hi" else value & 0xFFFF
            return self._primary()
        finally:
            self._depth -= 1

    def _primary(self) -> int:
        token = self._peek()
        kind = token.kind
        if kind is Kind.OP and token.text == "(":
            self._next()
            return self._parenthesised()
        if kind is Kind.EVALUATOR:
            # Only the MASM switch is served; "@@( )" and "@@c++( )" need the C++ evaluator.
            self._next()
            if token.value != "masm":
                raise self._error("Syntax", token.start)
            self._expect("(")
            return self._parenthesised()
        if kind is Kind.DOLLAR and token.value in _BUILTINS:
            self._next()
            value = self._builtin(token)
        elif kind in (Kind.EOL, Kind.OP) or self._binary_operator(token):
            raise self._error("Numeric expression missing", token.start)
        elif kind in (Kind.BAD, Kind.STRING):
            raise self._error("Syntax", token.start)
        else:
            self._next()
            value = self._name(token)
        self._operand_end = self._peek().start
        return value

    def _parenthesised(self) -> int:
        value = self._binary(1)
        close = self._expect(")")
        self._operand_end = close.start
        return value

    # -- names ------------------------------------------------------------------

    def _name(self, token: Token) -> int:
        kind = token.kind
        if kind is Kind.WORD:
            return self._word(token)
        if kind in (Kind.BANG, Kind.ESCAPED):
            return self._symbol(token.value, token.start)
        if kind is Kind.REGISTER:
            value = self._register(token.value)
            if value is None:
                raise self._error("Bad register", token.start)
            return value
        if kind is Kind.DOT:
            value = self._register("$ip")
            if value is None:
                raise self._error("Bad register", token.start)
            return value
        if token.value in self._sources:
            return self._source_line(*self._sources[token.value])
        # A bare $name: a pseudo-register first, then a symbol of that name.
        value = self._register(token.value)
        return value if value is not None else self._symbol(token.text, token.start)

    def _word(self, token: Token) -> int:
        name = token.text
        number = parse_number(name, self._radix)
        if number is not None:
            value, wide = number
            if value > MASK:
                raise self._error("Overflow", token.start)
            if wide or value > 0xFFFFFFFF:
                return value
            return _sign_extend_32(value)
        if "!" in name:
            return self._symbol(name, token.start)
        lower = name.lower()
        common = lower in COMMON_REGISTERS
        if common:
            value = self._register(lower)
            if value is not None:
                return value
        address = self._ctx.symbol(name)
        if address is not None:
            return address & MASK
        value = None if common else self._register(lower)
        if value is None:
            raise self._error("Couldn't resolve", token.start)
        return value

    def _symbol(self, name: str, position: int) -> int:
        address = self._ctx.symbol(name)
        if address is None:
            raise self._error("Couldn't resolve", position)
        return address & MASK

    def _register(self, name: str) -> int | None:
        # $bp03 is $bp3: the breakpoint number is decimal (pseudo-register-syntax.md).
        name = _BP_NUMBER.sub(lambda m: f"$bp{int(m.group(1))}", name)
        value = self._ctx.register(name)
        if value is None:
            return None
        return _sign_extend_32(value) if name in SIGN_EXTENDED_REGISTERS else value & MASK

    # -- memory -----------------------------------------------------------------

    def _read(self, address: int, size: int, physical: bool) -> int:
        pointer = size == 0
        if pointer:
            size = self._ctx.pointer_size
        data = self._bytes(address, size, physical)
        value = int.from_bytes(data, "little")
        return _sign_extend_32(value) if pointer and size == 4 else value

    def _bytes(self, address: int, size: int, physical: bool) -> bytes:
        position = self._operand_end
        if address + size > MASK + 1:
            raise self._error("Memory access", position)
        reader = self._ctx.read_physical if physical else self._ctx.read_virtual
        data = reader(address, size)
        if len(data) < size:
            raise self._error("Memory access", position)
        return bytes(data[:size])

    # -- built-in functions -----------------------------------------------------

    def _builtin(self, token: Token) -> int:
        self._expect("(")
        name = token.value
        if name in ("$scmp", "$sicmp", "$spat"):
            first = self._string_argument()
            self._expect(",")
            second = self._string_argument()
            self._expect(")")
            if name == "$spat":
                return int(wildcard_match(first, second))
            if name == "$sicmp":
                first, second = first.lower(), second.lower()
            return ((first > second) - (first < second)) & MASK
        first = self._binary(1)
        if name == "$iment":
            self._operand_end = self._peek().start
            self._expect(")")
            return self._image_entry(first)
        self._expect(",")
        length = self._binary(1)
        self._expect(")")
        return int(self._valid(first, length))

    def _string_argument(self) -> str:
        token = self._peek()
        if token.kind is not Kind.STRING:
            raise self._error("Syntax", token.start)
        self._next()
        return token.value

    def _valid(self, address: int, length: int) -> bool:
        """$vvalid: is every page the range touches readable?"""
        if length == 0:
            return True
        end = address + length
        if end > MASK + 1:
            return False
        probe = address
        while probe < end:
            if len(self._ctx.read_virtual(probe, 1)) < 1:
                return False
            probe = (probe // _PAGE + 1) * _PAGE
        return len(self._ctx.read_virtual(end - 1, 1)) == 1

    def _image_entry(self, base: int) -> int:
        """$iment: the entry point from the PE header of the image at ``base``."""
        e_lfanew = int.from_bytes(self._bytes((base + 0x3C) & MASK, 4, False), "little")
        # IMAGE_NT_HEADERS: Signature (4) + FileHeader (20), then AddressOfEntryPoint at +16.
        entry = int.from_bytes(self._bytes((base + e_lfanew + 0x28) & MASK, 4, False), "little")
        return (base + entry) & MASK


_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "=": lambda a, b: a == b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


def wildcard_match(text: str, pattern: str) -> bool:
    """Does ``text`` match a debugger wildcard pattern, ignoring case?

    Spec: wdd:debuggercmds/string-wildcard-syntax.md: ``*`` any run, ``?`` one
    character, ``[a-z7]`` one of a set, ``#`` zero or more and ``+`` one or more of
    the preceding item, ``\\`` makes the next character literal.
    """
    try:
        regex = re.compile(_wildcard_regex(pattern), re.IGNORECASE | re.DOTALL)
    except re.error:  # a reversed range such as [z-a]: no text can match it
        return False
    return regex.fullmatch(text) is not None


def _wildcard_regex(pattern: str) -> str:
    parts: list[str] = []
    repeatable = False  # may a "#" or "+" apply to the last item?
    i = 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "\\" and i < len(pattern):
            parts.append(re.escape(pattern[i]))
            i += 1
            repeatable = True
            continue
        close = pattern.find("]", i + 1) if c == "[" else -1
        if close > 0:
            members = pattern[i:close]
            parts.append("[" + "".join(m if m == "-" else re.escape(m) for m in members) + "]")
            i = close + 1
            repeatable = True
        elif c in "#+" and repeatable:
            parts.append("*" if c == "#" else "+")
            repeatable = False
        elif c == "*":
            parts.append(".*")
            repeatable = False
        else:
            parts.append("." if c == "?" else re.escape(c))
            repeatable = True
    return "".join(parts)
