"""Disassembly: u, ub, uf (with /c) in WinDbg's MASM syntax, symbolised operands.

``u`` with no address continues where the last listing ended (and at the current
instruction after a stop); reads go through the per-stop cache. With ``.lines`` on,
``u``, ``ub`` and ``uf`` label each change of source line as kd does:
``name+0x12 [file @ line]:`` (in ``uf`` every block's label names its line).
"""

from __future__ import annotations

from .. import disasm
from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..registry import Category, command
from .source import source_suffix

_D = Category.DISASSEMBLY


def _read(ctx: CommandContext):
    return lambda address, size: ctx.session.read_virtual(address, size)


@command("u", category=_D, usage="u [address] [L count | end]", repeatable=True)
def u(ctx: CommandContext, args: Args) -> None:
    """Disassemble 8 instructions (or a range) from an address."""
    state = ctx.console.state
    start, count = args.range(8)
    if state.repeating and state.next_unassemble is not None:
        start = state.next_unassemble
    if start is None:
        start = state.next_unassemble if state.next_unassemble is not None \
            else ctx.session.registers.get("rip")
    lines, next_address = disasm.unassemble(_read(ctx), start, count,
                                            symbolizer=ctx.console.symbolizer)
    state.next_unassemble = next_address
    ctx.out.lines(_with_source(ctx, lines))


def _with_source(ctx: CommandContext, lines: list[str]) -> list[str]:
    """The listing with a ``name [file @ line]:`` label where the source line changes."""
    if not ctx.session.symbols.load_lines:
        return lines
    out: list[str] = []
    previous = ""
    for line in lines:
        if not line:
            previous = ""              # uf's next block: its label names its line again
            out.append(line)
            continue
        if line.endswith(":"):
            out.append(line)
            continue
        try:
            address = int(line.split(" ", 1)[0].replace("`", ""), 16)
        except ValueError:
            out.append(line)
            continue
        suffix = source_suffix(ctx.console, address)
        if suffix and suffix != previous:
            if out and out[-1].endswith(":"):
                out[-1] = out[-1][:-1] + suffix + ":"
            else:
                name = ctx.console.symbolizer(address)
                if name:
                    out.append(f"{name}{suffix}:")
        previous = suffix
        out.append(line)
    return out


@command("ub", category=_D, usage="ub [address] [L count]")
def ub(ctx: CommandContext, args: Args) -> None:
    """Disassemble the 8 instructions (or count) that end at an address."""
    end, count = args.range(8)
    if end is None:
        end = ctx.session.registers.get("rip")
    ctx.out.lines(_with_source(ctx, disasm.unassemble_back(
        _read(ctx), end, count, symbolizer=ctx.console.symbolizer)))


@command("uf", category=_D, usage="uf [/c] address")
def uf(ctx: CommandContext, args: Args) -> None:
    """Disassemble a whole function by following its branches (/c: only its calls)."""
    options = args.options("c", "D", "m", "o", "O", "i")
    if args.empty():
        raise CommandError(f"Numeric expression missing from '{ctx.text}'")
    start = args.expression()
    args.expect_end()
    read = _read(ctx)
    if not read(start, 1):
        # kd's answer when the start is not readable code, not a ??-line listing.
        raise CommandError("No code found, aborting")
    lines = disasm.unassemble_function(read, start, symbolizer=ctx.console.symbolizer,
                                       calls_only="c" in options)
    ctx.out.lines(lines if "c" in options else _with_source(ctx, lines))
