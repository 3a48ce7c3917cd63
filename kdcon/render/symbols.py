"""WinDbg's text for symbol answers: addresses, ``ln``, ``x`` and ``lm`` rows.

Takes the data ``kdcon.symbols.session`` returns (``NearSymbols``,
``SymbolMatch``, ``ModuleRow``) and prints it as WinDbg does, byte for byte
where WinDbg's form is known (windbg.md §0.5, symbols.md §3.4)::

    (fffff800`fc901270)   nt!NtCreateFile   |  (fffff800`fc9012f4)   nt!NtOpenKey
    Exact matches:
        nt!KeSetEvent (struct _KEVENT *, long, unsigned char)

    fffff800`030821cc nt!ViCreateProcessCallbackInternal (<no parameter info>)
    fffff800`01005eed nt!KeGetCurrentIrql (void)
    fffff800`02cece00 nt!PspCreateProcessNotifyRoutine = <no type information>
    prv func   fffff800`0100623b    b nt!KeSetEvent (struct _KEVENT *, long, unsigned char)
    9110b000 HelloWorldDriver!KeTickCount = struct _KSYSTEM_TIME
    9110c000 HelloWorldDriver!__security_cookie = 0x911005a1

    fffff800`02a49000 fffff800`03030000   nt         (pdb symbols)          C:\\sym\\ntkrnlmp.pdb
    fffff880`033bc000 fffff880`033cb000   man      T (no symbols)

A typed global shows its value when a reader is given (``read(address,
size) -> bytes | None``) and ``<Memory access error>`` when it cannot be read;
aggregates show their type. A function shows its argument types when its PDB
gives the procedure's type (``SymbolMatch.arguments``), ``(void)`` for none, and
``(<no parameter info>)`` for publics, exports and functions without type
information. ``c_type`` spells a type as these lists and the stack's ``kp`` do.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from kdcon.symbols.model import SymbolKind
from kdcon.symbols.session import DataType, ModuleRow, NearSymbols, SymbolMatch

from . import format_address
from .values import unwrap

__all__ = ["format_address", "describe", "render_ln", "render_x", "render_lm_row", "Reader",
           "c_type"]

Reader = Callable[[int, int], "bytes | None"]

# dt's names for 64-bit integers are C's; prototypes and the stack spell them as DbgEng does.
_C_NAMES = {"__int64": "int64", "unsigned __int64": "unsigned int64"}


def describe(match: SymbolMatch, pointer_size: int = 8, read: Reader | None = None) -> str:
    """What follows the name in ``x`` and ``Exact matches:``: parameters, type or value."""
    record = match.record
    if record.kind is not SymbolKind.DATA:
        return _prototype(match.arguments)
    if match.data_type is None:
        return "= <no type information>"
    return f"= {_value(match.data_type, match.address, pointer_size, read)}"


def _prototype(arguments: tuple[Any, ...] | None) -> str:
    if arguments is None:
        return "(<no parameter info>)"
    if not arguments:
        return "(void)"
    # A T_NOTYPE (index 0) last argument is how CodeView records C's "...".
    return "(" + ", ".join("..." if info.index == 0 and info.kind == "base" else c_type(info)
                           for info in arguments) + ")"


def c_type(info: Any, name: str = "") -> str:
    """A declaration as prototypes and the stack show it: ``struct _IRP * Irp``,
    ``unsigned long Code``; just the type without a name."""
    text = _c_type(unwrap(info), 0)
    return f"{text} {name}" if name else text


def _c_type(info: Any, depth: int) -> str:
    if info is None or depth > 16:
        return "<unknown>"
    kind = info.kind
    if kind == "pointer":
        target = unwrap(info.type)
        inner = _c_type(target, depth + 1) if target is not None else "void"
        return f"{inner}*" if target is not None and target.kind == "pointer" else f"{inner} *"
    if kind in ("struct", "union", "class", "enum"):
        return f"{kind} {info.name}"
    if kind == "array":
        return f"{_c_type(unwrap(info.type), depth + 1)} [{info.count}]"
    if kind == "procedure":
        return "<function>"
    c_name = getattr(info, "c_name", "") or info.type_name
    return _C_NAMES.get(c_name, c_name)


def _value(data_type: DataType, address: int, pointer_size: int, read: Reader | None) -> str:
    kind = data_type.kind
    if kind in ("aggregate", "unknown") or not data_type.size:
        return data_type.c_name
    raw = read(address, data_type.size) if read is not None else None
    if raw is None or len(raw) < data_type.size:
        return "<Memory access error>"
    raw = bytes(raw[:data_type.size])
    if kind == "pointer":
        return "0x" + format_address(int.from_bytes(raw, "little"), data_type.size)
    if kind == "float":
        return repr(struct.unpack("<f" if data_type.size == 4 else "<d", raw)[0])
    if kind in ("signed", "enum"):
        value = int.from_bytes(raw, "little", signed=True)
        text = f"0n{value}"
        names = [name for name, number in data_type.enumerators if number == value]
        return f"{text} ( {names[0]} )" if names else text
    return f"{int.from_bytes(raw, 'little'):#x}"


def render_ln(near: NearSymbols | None, pointer_size: int = 8, read: Reader | None = None) -> str:
    """The lines ``ln address`` prints ("" when no module holds the address)."""
    if near is None:
        return ""
    fmt = lambda a: format_address(a, pointer_size)  # noqa: E731
    left = ""
    if near.before is not None:
        name = near.before.qualified
        if near.displacement:
            name += f"+{near.displacement:#x}"
        left = f"({fmt(near.before.address)})   {name}"
    right = f"({fmt(near.after.address)})   {near.after.qualified}" if near.after else ""
    lines = [f"{left}   |  {right}".rstrip()]
    if near.past_end and near.before is not None:
        end = near.before.address + near.before.record.size
        lines.append(f"    {fmt(near.address)} is past the end of {near.before.qualified}"
                     f" ({fmt(near.before.address)}-{fmt(end)})")
    if near.exact:
        lines.append("Exact matches:")
        lines += [f"    {m.qualified} {describe(m, pointer_size, read)}" for m in near.exact]
    return "\n".join(lines) + "\n"


def render_x(matches: Iterable[SymbolMatch], pointer_size: int = 8, read: Reader | None = None,
             *, verbose: bool = False, types: bool = False) -> str:
    """The lines ``x pattern`` prints, one per match; ``verbose`` (``/v``) puts the
    symbol's source and kind before the address and its size (hex) after it, ``types``
    (``/t``) a global's data type before its name."""
    lines = []
    for m in matches:
        parts = [f"{_source(m)} {_category(m):<6}"] if verbose else []
        parts.append(format_address(m.address, pointer_size))
        if verbose:
            parts.append(f"{_size(m):4x}")
        if types and m.record.kind is SymbolKind.DATA:
            parts.append(m.data_type.c_name if m.data_type is not None else "<NoType>")
        parts += [m.qualified, describe(m, pointer_size, read)]
        lines.append(" ".join(parts) + "\n")
    return "".join(lines)


# x /v: "prv" for the PDB's own records (procedures, globals, labels), "pub" for
# publics, exports and COFF symbols; "global" for data, "func" for code.
_PRIVATE = (SymbolKind.FUNCTION, SymbolKind.DATA, SymbolKind.LABEL)


def _source(match: SymbolMatch) -> str:
    return "prv" if match.record.kind in _PRIVATE else "pub"


def _category(match: SymbolMatch) -> str:
    return "global" if match.record.kind is SymbolKind.DATA else "func"


def _size(match: SymbolMatch) -> int:
    """A function's length; a global's type size (its record's size without one)."""
    if match.record.kind is SymbolKind.DATA and match.data_type is not None and match.data_type.size:
        return match.data_type.size
    return match.record.size


def render_lm_row(row: ModuleRow, pointer_size: int = 8) -> str:
    """One ``lm`` line: range, name, mismatch letter, ``(state)`` and the symbol file.

    Columns as WinDbg aligns them: the name padded to 8, the letter (or a blank)
    between single spaces, the state padded to 22, then the file.
    """
    start, end = format_address(row.base, pointer_size), format_address(row.end, pointer_size)
    state = f"({row.state})"
    return f"{start} {end}   {row.name:<8} {row.letter or ' '} {state:<22} {row.symbol_file or ''}"
