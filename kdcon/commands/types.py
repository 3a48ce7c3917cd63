"""Types: dt (display type), dv (locals) and .frame (the frame dv looks at).

``dt [-a[N]] [-b] [-c] [-p] [-r[N]] [-v] [-y] [-n] [-o] [-i] [module!]Name [Field...]
[Address] [-l ListField]`` takes its words in either order WinDbg does (``dt nt!_T
addr``, ``dt addr nt!_T``, options anywhere): a word of hex digits is an address unless ``-n`` says it is a
name; a name is a local of the selected frame (``Local var @ address Type T``, a pointer
followed to its structure), else a type, else a global variable (shown at its address),
else an expression; after the name, a word that names a field (``Flags``, ``ApcState.Process``,
``Ldr.``, ``Pre*``, ``Array[3]``) selects fields and anything else is the address.
``Name*`` lists the globals and types that match, ``.`` repeats the last name. A type
given without its module gets WinDbg's ``module!Type`` line first. ``-a[N]`` shows
array fields an element a line, and N instances of a type that is not an array
(``[0] @ address``, a rule of dashes, the instance, a blank line; with ``-c``
``[0] value`` a line); ``-p`` reads the structure at a physical address (pointers in
it stay virtual); ``-l ListField`` shows the structure at the address, then each one
its ``ListField`` (``ListEntry``, ``ListEntry.Flink``, or a pointer to the same type)
leads to, ``ListField at 0x...`` and a rule of dashes above each, until the list comes
back to the first, reaches NULL or unreadable memory. Text comes from
``kdcon.render.types``.

``dv [/i] [/t] [/V] [pattern]`` shows the parameters and locals the PDB records for the frame
``.frame [/r] [n]`` selected (frame 0 until then, and again once the target runs or the
registers change), right-aligned as WinDbg does; ``/V`` adds each one's address and
register-relative place. The variables and their places come from ``kdcon.frames``.
The enumeration options: ``-t`` lists only types for a pattern, ``-e`` takes the name
as a type (never a local or global), ``-s Size`` lists only the types of Size bytes
(``-e`` implied), ``-d`` is ``-v``, and with a pattern shows each matching type in full.
What it does not do: ``-a`` before one field only (it applies to the whole display),
type names with subscripts (``CHAR[8]``); dv's sorting and ``/f``; ``.frame /c``.
Spec: windbg.md §0.5; the dt, dv and .frame pages of the debugger documentation.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from kdcon.symbols.errors import SymbolError
from kdcon.symbols.index import has_wildcard
from kdcon.symbols.model import SymbolKind

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..expr import ExprError
from ..frames import (FrameRegisters, NoLocals, frame_locals, frames_to, select_frame,
                      selected_frame)
from ..registers import format_registers
from ..registry import Category, command
from ..render.symbols import c_type
from .typeviews import Named as _Named
from .typeviews import display as _display
from .typeviews import display_instances as _display_instances
from .typeviews import display_list as _display_list
from .typeviews import has_instances as _instances
from ..render.types import AGGREGATES, DisplayOptions, Selection, TypeDisplay, derived_type, subscript, unwrap
from ..unwind import format_stack

log = logging.getLogger(__name__)

_S = Category.SYMBOLS
_HEX_WORD = re.compile(r"^(0x)?[0-9a-fA-F]+(`[0-9a-fA-F]+)?$")
_NAME_WORD = re.compile(r"^([\w.$-]+!)?[A-Za-z_?*][\w:<>*?\-]*$")
_FIELD_WORD = re.compile(r"^[A-Za-z_*][\w.*]*(\[\d+\][\w.*]*)*$")
_OPTIONS = "rbvynoihacplteds"
_USAGE = ("dt [-a[N]] [-b] [-c] [-d] [-e] [-p] [-r[N]] [-s Size] [-t] [-v] [-y] [-n] [-o] [-i] "
          "[module!]Type [Field[.Sub]...] [Address] [-l ListField]")


def _words(text: str) -> list[str]:
    """Words split at blanks outside parentheses and quotes (``poi(a + 8)`` is one)."""
    words: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")" and depth:
            depth -= 1
        elif char.isspace() and not quoted and not depth:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        words.append("".join(current))
    return words


def _size_word(text: str) -> int:
    """``-s``'s size: hex as dt reads numbers, or ``0n`` decimal."""
    try:
        return int(text[2:], 10) if text[:2].lower() == "0n" else int(text.replace("`", ""), 16)
    except ValueError:
        raise CommandError(f"dt: -s needs a size in bytes, not '{text}'; usage: {_USAGE}") \
            from None


def _parse_options(words: list[str]) -> tuple[DisplayOptions, set[str], list[str], str | None]:
    """The display options, the other letters (``flags``; ``-s N`` is ``s`` with
    ``options.size``), the words left and ``-l``'s field."""
    options = DisplayOptions()
    flags: set[str] = set()
    rest: list[str] = []
    list_field: str | None = None
    words = list(words)
    while words:
        word = words.pop(0)
        if len(word) < 2 or word[0] != "-" or not word[1].isalpha():
            rest.append(word)
            continue
        index = 1
        while index < len(word):
            letter = word[index]
            index += 1
            if letter not in _OPTIONS:
                raise CommandError(f"dt: option -{letter} is not supported; usage: {_USAGE}")
            if letter in "ra":
                digits = ""
                while index < len(word) and word[index].isdigit():
                    digits += word[index]
                    index += 1
                if letter == "r":
                    options.depth = int(digits) if digits else 9
                else:
                    options.arrays = True
                    options.array_count = int(digits) if digits else None
                    if not rest:
                        flags.add("A")      # before the name: the name's instances
            elif letter == "s":
                text = word[index:] or (words.pop(0) if words else "")
                if not text:
                    raise CommandError(f"dt: -s needs a size in bytes; usage: {_USAGE}")
                flags.update("se")              # -s enumerates types: -e is implied
                options.size = _size_word(text)
                break
            elif letter == "d":
                flags.add("d")
                options.verbose = True
            elif letter == "l":
                list_field = word[index:] or (words.pop(0) if words else "")
                if not list_field or not _FIELD_WORD.match(list_field):
                    raise CommandError(f"dt: -l needs the name of the field that links the list; "
                                       f"usage: {_USAGE}")
                break
            elif letter == "c":
                options.compact = True
            elif letter == "b":
                options.blocks = True
            elif letter == "v":
                options.verbose = True
            elif letter == "o":
                options.offsets = False
            elif letter == "i":
                options.indent = False
            else:
                flags.add(letter)
    return options, flags, rest, list_field


# -- names ---------------------------------------------------------------------------------

def _modules_for(ctx: CommandContext, module_part: str) -> list[Any]:
    symbols = ctx.session.symbols
    if not module_part:
        return symbols.modules()
    if has_wildcard(module_part):
        return symbols.modules(module_part)
    module = symbols.module(module_part)
    return [module] if module is not None else []


def _types_of(module: Any) -> Any:
    try:
        return module.types
    except SymbolError as exc:
        log.warning("%s: types unreadable: %s", module.name, exc)
        return None


def _find_type(ctx: CommandContext, name: str) -> _Named | None:
    module_part, _, type_name = name.rpartition("!")
    for module in _modules_for(ctx, module_part):
        table = _types_of(module)
        if table is None:
            continue
        try:
            info = table.find(type_name)
        except SymbolError as exc:
            log.warning("%s: types unreadable: %s", module.name, exc)
            continue
        if info is not None:
            shown = unwrap(info)
            canonical = shown.name if shown is not None and shown.kind in (*AGGREGATES, "enum") \
                and shown.name else type_name
            return _Named(info, None if module_part else f"{module.name}!{canonical}")
    # A kernel type while nt has no PDB types: the built-in layout of its build.
    builtin = ctx.session.builtin_types() if module_part.casefold() in ("", "nt") else None
    info = builtin.find(type_name) if builtin is not None else None
    if info is not None:
        return _Named(info, None if module_part else f"nt!{type_name}")
    return None


def _find_global(ctx: CommandContext, name: str) -> _Named | None:
    try:
        found = ctx.session.symbols.match(name)
    except SymbolError as exc:
        log.debug("global %s: %s", name, exc)
        return None
    for match in found:
        record = match.record
        if record.kind is not SymbolKind.DATA or not record.type_name:
            continue
        table = _types_of(match.module)
        info = derived_type(record.type_name,
                            lambda text: table.find(text) if table is not None else None)
        if info is not None:
            return _Named(info, None, match.address, is_global=True)
    return None


def _find_local(ctx: CommandContext, name: str) -> _Named | None:
    """A parameter or local of the frame dv shows: WinDbg's ``Local var @ address Type T``
    line, and for a pointer to a structure, the pointer and the structure it points to."""
    if "!" in name or not ctx.session.halted:
        return None
    number = selected_frame(ctx.console)
    try:
        frames = frames_to(ctx.console, number)
        found = frame_locals(ctx.console, frames, number) if number < len(frames) else None
    except (NoLocals, SymbolError, MemoryError) as exc:
        log.debug("dt %s: no locals: %s", name, exc)
        return None
    variable = next((v for v in found.variables if v.local.name == name), None) if found else None
    if variable is None or variable.type is None:
        return None
    if variable.address is None and variable.register_value is None:
        raise CommandError(f"dt: {name} is not live at this address (dv shows it unavailable)")
    if variable.address is None:
        raise CommandError(f"dt: {name} is held in register {variable.local.register or '?'}; "
                           f"dv {name} shows its value")
    type_text = c_type(variable.type).replace("struct ", "").replace("union ", "").replace(" *", "*")
    lines = [f"Local var @ 0x{ctx.console.format_address(variable.address)} "
             f"Type {type_text}"]
    top = unwrap(variable.type)
    pointee = unwrap(top.type) if top is not None and top.kind == "pointer" else None
    if pointee is not None and pointee.kind in AGGREGATES:
        size = top.pointer_size or top.size or ctx.session.pointer_size
        value = int.from_bytes(ctx.session.read_virtual(variable.address, size), "little")
        lines.append("0x" + ctx.console.format_address(value))
        return _Local(pointee, None, value, is_global=True, lines=lines)
    return _Local(variable.type, None, variable.address, is_global=True, lines=lines)


@dataclass
class _Local(_Named):
    lines: list[str] = field(default_factory=list)


def _resolve(ctx: CommandContext, word: str) -> _Named | None:
    if not _NAME_WORD.match(word) or has_wildcard(word):
        return None
    return _find_local(ctx, word) or _find_type(ctx, word) or _find_global(ctx, word)


def _global_at(ctx: CommandContext, address: int) -> _Named | None:
    """The typed global that starts at ``address`` (``dt Address`` alone)."""
    try:
        near = ctx.session.symbols.near(address)
    except SymbolError as exc:
        log.debug("symbols at %#x: %s", address, exc)
        return None
    for match in near.exact if near is not None else ():
        if match.record.kind is SymbolKind.DATA and match.record.type_name:
            return _find_global(ctx, match.qualified)
    return None


def _address(ctx: CommandContext, word: str) -> int | None:
    try:
        return ctx.evaluate(word)
    except (ExprError, CommandError, SymbolError, MemoryError):
        return None


def _is_field(word: str, info: Any) -> bool:
    top = unwrap(info)
    if not _FIELD_WORD.match(word) or top is None:
        return False
    if top.kind == "pointer":
        top = unwrap(top.type)
    if top is None or top.kind not in AGGREGATES:
        return False
    first, dot, _ = word.partition(".")
    return any(Selection.matches(first, member.name, bool(dot)) and
               (subscript(first)[1] is None or getattr(unwrap(member.type), "kind", "") == "array")
               for member in top.fields)


# -- dt --------------------------------------------------------------------------------------

@command("dt", category=_S, usage=_USAGE, needs_halt=False)
def dt(ctx: CommandContext, args: Args) -> None:
    """Display a type's fields, or a structure or global at an address with its values."""
    options, flags, words, list_field = _parse_options(_words(args.rest()))
    if "h" in flags:
        ctx.out.line(f"Usage: {_USAGE}")
        return
    if not words:
        raise CommandError(f"dt needs a type name; usage: {_USAGE}")
    if words[0] == ".":
        last = ctx.state.values.get("dt_last")
        if not last:
            raise CommandError("dt: no earlier name to repeat")
        words[0] = last
    first = words[0]
    if "y" in flags and not has_wildcard(first):
        # -y: every type that starts with the name, then the first of them in full.
        words[0] = first = _list_matches(ctx, first + "*", types_only=True)[0]
    types_only = bool(flags & {"t", "e", "s"})
    if has_wildcard(first) and len(words) == 1:
        names = _list_matches(ctx, first, types_only=types_only,
                              size=options.size if "s" in flags else None)
        if "d" in flags:
            # -d with a pattern: each matching type in full, verbose.
            for name in names:
                found = _find_type(ctx, name)
                if found is not None:
                    _display(ctx, _Named(found.info, name), None, [], options)
        return

    named: _Named | None = None
    address: int | None = None
    pending = words[1:]
    if _HEX_WORD.match(first) and "n" not in flags:
        address = _address(ctx, first)
        if address is None:
            raise CommandError(f"Syntax error at '{first}'")
    else:
        named = _find_type(ctx, first) if types_only and _NAME_WORD.match(first) else \
            _resolve(ctx, first)
        if named is None and types_only:
            raise CommandError(f"Symbol {first} not found.")
        if named is None:
            address = _address(ctx, first)
            if address is None:
                raise CommandError(f"Symbol {first} not found.")
    if named is None and not pending:
        named = _global_at(ctx, address)
        if named is None:
            where = ctx.console.format_address(address)
            raise CommandError(f"Symbol not found at address {where}.")
        address = None
    if named is None:
        second = pending.pop(0)
        named = _resolve(ctx, second)
        if named is None:
            raise CommandError(f"Symbol {second} not found.")
        first = second
    ctx.state.values["dt_last"] = first
    if isinstance(named, _Local):
        ctx.out.lines(named.lines)
    if named.is_global:
        if address is not None:
            raise CommandError(f"dt: {first} is a global variable; give a type to show "
                               "memory at an address")
        address = named.address

    fields: list[str] = []
    for word in pending:
        if _is_field(word, named.info):
            fields.append(word)
            continue
        if address is None and not named.is_global:
            value = _address(ctx, word)
            if value is not None:
                address = value
                continue
        if _FIELD_WORD.match(word):
            fields.append(word)
            continue
        raise CommandError(f"Syntax error at '{word}'")
    if address is not None:
        ctx.session.require_halted()
    elif list_field is not None or "p" in flags:
        raise CommandError(f"dt: -{'l' if list_field is not None else 'p'} needs an address")
    if list_field is not None:
        _display_list(ctx, named, address, fields, options, list_field, physical="p" in flags)
        return
    if "A" in flags and not fields and address is not None and _instances(unwrap(named.info)):
        _display_instances(ctx, named, address, options, physical="p" in flags)
        return
    _display(ctx, named, address, fields, options, physical="p" in flags)


def _list_matches(ctx: CommandContext, pattern: str, *, types_only: bool = False,
                  size: int | None = None) -> list[str]:
    """``dt module!Pre*``: globals (with their address) and types whose names match
    (``types_only``: types alone; ``size``: only types of that many bytes); returns the
    types' ``module!name`` (``dt -y`` shows the first next)."""
    module_part, _, name_part = pattern.rpartition("!")
    width = 17 if ctx.session.pointer_size == 8 else 8
    lines: list[str] = []
    types: list[str] = []
    for module in _modules_for(ctx, module_part):
        records = []
        if not types_only:
            try:
                records = [r for r in module.match(name_part) if r.kind is SymbolKind.DATA]
            except SymbolError as exc:
                log.debug("%s: %s", module.name, exc)
        for record in sorted(records, key=lambda r: r.name.lower()):
            lines.append(f"{ctx.console.format_address(module.address(record))}  "
                         f"{module.name}!{record.name}")
            ctx.out.row(address=module.address(record), name=f"{module.name}!{record.name}")
        table = _types_of(module)
        for name in table.names(name_part) if table is not None else []:
            if size is not None and _type_size(table, name) != size:
                continue
            lines.append(f"{' ' * (width + 2)}{module.name}!{name}")
            ctx.out.row(name=f"{module.name}!{name}")
            types.append(f"{module.name}!{name}")
    if not lines or (types_only and not types):
        raise CommandError(f"Symbol {pattern} not found.")
    ctx.out.lines(lines)
    return types


def _type_size(table: Any, name: str) -> int | None:
    try:
        info = unwrap(table.find(name))
    except SymbolError as exc:
        log.debug("type %s: %s", name, exc)
        return None
    return info.size if info is not None else None


# -- the local context -----------------------------------------------------------------------

_REGISTER_VALUE = 0xFFFFFFFFFFFFF000    # where dv puts a register's bytes for the display


@command("dv", category=_S, usage="dv [/i] [/t] [/V] [pattern]")
def dv(ctx: CommandContext, args: Args) -> None:
    """Show the parameters and locals of the current frame (.frame selects another).

    /i adds each one's kind (prv param, prv local), /t its type, /V its address."""
    options = args.options("V", "v", "i", "t", "a", "n", "z", "s", "f", "r", "m")
    unsupported = options - {"V", "v", "i", "t"}
    if unsupported:
        raise CommandError(f"dv: /{sorted(unsupported)[0]} is not supported; "
                           "usage: dv [/i] [/t] [/V] [pattern]")
    pattern = args.rest()
    number = selected_frame(ctx.console)
    frames = frames_to(ctx.console, number)
    if number >= len(frames):
        raise CommandError("dv: the selected frame is no longer on the stack")
    try:
        found = frame_locals(ctx.console, frames, number)
    except NoLocals as exc:
        log.debug("dv: %s", exc)
        raise CommandError("Private symbols (symbols.pri) are required for locals.") from None
    variables = [v for v in found.variables
                 if not pattern or fnmatch.fnmatchcase(v.local.name.lower(), pattern.lower())]
    width = max([15] + [len(v.local.name) + 1 for v in variables])
    lines = []
    for variable in variables:
        value = local_value(ctx, variable)
        name = f"{variable.local.name:>{width}}"
        if "t" in options:
            # WinDbg drops the alignment once a type stands before the name.
            name = c_type(variable.type, variable.local.name) if variable.type is not None \
                else variable.local.name
        if options & {"V", "v"}:
            name = f"{_where(ctx, variable)} {name}"
        if "i" in options:
            name = f"prv {'param' if variable.local.is_param else 'local'}  {name}"
        lines.append(f"{name} = {value}")
        ctx.out.row(name=variable.local.name, parameter=variable.local.is_param,
                    address=variable.address, register=variable.local.register,
                    offset=variable.local.offset, value=value)
    ctx.out.lines(lines)


def local_value(ctx: CommandContext, variable: Any) -> str:
    session = ctx.session
    if variable.type is None:
        return "<no type information>"
    if variable.address is None and variable.register_value is None:
        return "<value unavailable>"
    raw = None
    if variable.address is None:
        size = max(1, min(variable.type.size or 8, 8))
        raw = (variable.register_value & ((1 << size * 8) - 1)).to_bytes(size, "little")

    def read(address: int, size: int) -> bytes:
        if raw is not None and address == _REGISTER_VALUE:
            return raw[:size]
        return session.read_virtual(address, size)

    display = TypeDisplay(read, session.pointer_size, symbolizer=ctx.console.symbolizer)
    return display.local_value(variable.type, _REGISTER_VALUE if raw is not None
                               else variable.address)


def _where(ctx: CommandContext, variable: Any) -> str:
    """``dv /V``'s columns: the address and the register-relative location."""
    local = variable.local
    place = f"@{local.register or '?'}"
    if local.offset is not None:
        place += f"{'-' if local.offset < 0 else '+'}0x{abs(local.offset):02x}"
    if variable.address is None:
        return f"{'':>{len(ctx.console.format_address(0))}} {place}"
    return f"{ctx.console.format_address(variable.address)} {place}"


@command(".frame", category=Category.REGISTERS, usage=".frame [/r] [FrameNumber]")
def frame(ctx: CommandContext, args: Args) -> None:
    """Select the stack frame dv looks at, or show the current one (/r adds registers)."""
    options = args.options("r", "c")
    if "c" in options:
        raise CommandError(".frame: /c is not supported; usage: .frame [/r] [FrameNumber]")
    number = args.optional_expression()
    args.expect_end()
    if number is None:
        number = selected_frame(ctx.console)
    frames = frames_to(ctx.console, number)
    if number >= len(frames):
        raise CommandError(f"Frame {number:x} is not on the stack: it has {len(frames)} "
                           f"frame{'s' if len(frames) != 1 else ''}")
    select_frame(ctx.console, number)
    chosen = frames[number]
    line = format_stack([chosen], symbolizer=ctx.console.symbolizer, numbered=True)[1]
    ctx.out.line(line)
    ctx.out.row(number=number, child_sp=chosen.child_sp, return_address=chosen.return_address,
                ip=chosen.instruction_pointer)
    if "r" in options:
        ctx.out.lines(format_registers(FrameRegisters(chosen, ctx.session.registers)))
        ctx.out.lines(ctx.console.location_lines(chosen.instruction_pointer))

