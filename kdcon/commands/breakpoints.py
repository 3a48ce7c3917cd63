"""Breakpoints: bp, bu, bm, ba, bl, bc, bd, be, .bpcmds.

As WinDbg does it (windbg.md §0.2): ``bp`` on a name that does not resolve becomes a
``bu``, which resolves when its module loads and survives unload and reload; ``bm``
sets a ``bu`` on every match of a pattern (``/d``: ``bp``s); ``ba`` uses one of the
four debug registers, aligned to its size; a kernel target has room for 32 software
breakpoints. A breakpoint is written into the target when the target next resumes.
"""

from __future__ import annotations

from kdcon.symbols.model import SymbolKind

from ..argtypes import Args
from ..breakpoints import KERNEL_BREAKPOINT_LIMIT, Breakpoint, format_bl, format_bpcmd, parse_id_list
from ..console import CommandContext
from ..errors import CommandError
from ..registry import Category, command

_B = Category.BREAKPOINTS


def _leading_id(args: Args) -> int | None:
    """``bp1 addr``: an id written straight after the command name."""
    text = args.text
    if text[:1].isdigit():
        end = 0
        while end < len(text) and text[end].isalnum():
            end += 1
        try:
            value = int(text[:end], 16)
        except ValueError:
            return None
        args.pos = end
        return value
    return None


def _module_of(ctx: CommandContext, address: int) -> str | None:
    module = ctx.session.symbols.module_for(address)
    return module.name if module is not None else None


def _set(ctx: CommandContext, args: Args, kind: str) -> None:
    table = ctx.session.breakpoints
    wanted_id = _leading_id(args)
    one_shot = args.option("1") is not None
    args.options("p", "t")   # process/thread filters: every CPU and thread is the kernel's
    expression = args.expression_text()
    if not expression:
        raise CommandError(f"Numeric expression missing from '{ctx.text}'")
    address = ctx.console.try_resolve(expression)
    passes = 1
    if not args.empty() and args.peek() != '"':
        passes = args.expression()
        if passes == 0:
            passes = 1
    command_string = args.quoted()
    args.expect_end()
    if address is None and kind == "bp":
        ctx.out.line(f"Bp expression '{expression}' could not be resolved, adding deferred bp")
        kind = "bu"
    if address is None:
        ctx.console.user_registers.last_value = 0
    existing = None
    if address is not None:
        existing = next((bp for bp in table.at(address) if bp.id != wanted_id), None)
    elif kind == "bu":
        existing = table.by_expression(expression)
    if wanted_id is None and existing is not None:
        bp = existing
        ctx.out.line(f"breakpoint {bp.id} redefined")
    else:
        bp_id = wanted_id if wanted_id is not None else table.next_id()
        old = table.get(bp_id)
        if old is not None:
            ctx.console.executor.remove_breakpoint(old)
            table.remove(old)
            ctx.out.line(f"breakpoint {bp_id} redefined")
        bp = Breakpoint(id=bp_id, kind=kind, expression=expression)
        if address is not None and address not in {b.address for b in table if not b.hardware} \
                and table.software_in_use() >= KERNEL_BREAKPOINT_LIMIT:
            raise CommandError(f"Unable to set breakpoint: a kernel target allows "
                               f"{KERNEL_BREAKPOINT_LIMIT} breakpoints")
        table.add(bp)
    bp.kind = kind
    bp.expression = expression
    if bp.address != address:
        ctx.console.executor.remove_breakpoint(bp)
    bp.address = address
    bp.module = _module_of(ctx, address) if address is not None else expression.partition("!")[0] \
        if "!" in expression else None
    bp.passes = bp.initial_passes = passes
    bp.command = command_string
    bp.one_shot = one_shot
    bp.enabled = True
    ctx.out.row(id=bp.id, kind=bp.kind, address=address, expression=expression)


@command("bp", category=_B, usage='bp[ID] [/1] address [passes] ["commands"]')
def bp(ctx: CommandContext, args: Args) -> None:
    """Set a breakpoint at an address (a name that does not resolve becomes a bu)."""
    _set(ctx, args, "bp")


@command("bu", category=_B, usage='bu[ID] [/1] expression [passes] ["commands"]')
def bu(ctx: CommandContext, args: Args) -> None:
    """Set a deferred breakpoint that follows its symbol across module loads and reboots."""
    _set(ctx, args, "bu")


@command("bm", category=_B, usage='bm [/d] [/1] module!pattern [passes] ["commands"]')
def bm(ctx: CommandContext, args: Args) -> None:
    """Set a breakpoint on every symbol that matches a pattern."""
    options = args.options("d", "1", "a")
    pattern = args.word()
    if not pattern:
        raise CommandError(f"Numeric expression missing from '{ctx.text}'")
    tail = args.rest()
    # Only code: data symbols are not breakpoint targets (WinDbg's bm says so too).
    matches = [m for m in ctx.session.symbols.match(pattern) if m.record.kind is not SymbolKind.DATA]
    if not matches:
        raise CommandError("No matching code symbols found, no breakpoints set.")
    kind = "bp" if "d" in options else "bu"
    for match in matches:
        sub = Args(f"{'/1 ' if '1' in options else ''}{match.qualified} {tail}",
                   ctx.evaluate_prefix, command=ctx.text)
        before = {b.id for b in ctx.session.breakpoints}
        _set(ctx, sub, kind)
        new = [b for b in ctx.session.breakpoints if b.id not in before]
        bp_id = new[0].id if new else "?"
        ctx.out.line(f"{bp_id:>3}: {ctx.console.format_address(match.address)}          "
                     f'@!"{match.qualified}"')


@command("ba", category=_B, usage='ba[ID] {e|r|w|i}{1|2|4|8} [/1] address [passes] ["commands"]')
def ba(ctx: CommandContext, args: Args) -> None:
    """Set a processor (data) breakpoint on execute, read or write of 1, 2, 4 or 8 bytes."""
    table = ctx.session.breakpoints
    wanted_id = _leading_id(args)
    spec = args.word().lower()
    if len(spec) < 2 or spec[0] not in "erwi" or spec[1:] not in ("1", "2", "4", "8"):
        raise CommandError(f"Syntax error at '{spec}': ba takes an access (e, r, w) and a size "
                           "(1, 2, 4, 8), as in ba w4 address")
    access, size = spec[0], int(spec[1:])
    if access == "i":
        raise CommandError("I/O breakpoints (ba i) exist only on x86 targets")
    if access == "e" and size != 1:
        raise CommandError("Execution breakpoints must have size 1")
    one_shot = args.option("1") is not None
    expression = args.expression_text()
    address = ctx.evaluate(expression) if expression else None
    if address is None:
        raise CommandError(f"Numeric expression missing from '{ctx.text}'")
    if address % size:
        raise CommandError(f"Data breakpoint must be aligned: {ctx.console.format_address(address)} "
                           f"is not a multiple of {size}")
    passes = 1
    if not args.empty() and args.peek() != '"':
        passes = args.expression() or 1
    command_string = args.quoted()
    args.expect_end()
    bp_id = wanted_id if wanted_id is not None else table.next_id()
    old = table.get(bp_id)
    slot = old.slot if old is not None and old.hardware else table.free_slot()
    if slot is None:
        raise CommandError("Too many data breakpoints: x64 has 4 debug registers")
    if old is not None:
        ctx.console.executor.remove_breakpoint(old)
        table.remove(old)
        ctx.out.line(f"breakpoint {bp_id} redefined")
    table.add(Breakpoint(id=bp_id, kind="ba", expression=expression, address=address,
                         access=access, size=size, slot=slot, passes=passes,
                         initial_passes=passes, command=command_string, one_shot=one_shot,
                         module=_module_of(ctx, address)))
    ctx.out.row(id=bp_id, kind="ba", address=address, access=access, size=size)


@command("bl", category=_B, usage="bl [ids]", needs_halt=False)
def bl(ctx: CommandContext, args: Args) -> None:
    """List breakpoints: id, enabled, address, passes (initial), symbol, commands."""
    table = ctx.session.breakpoints
    chosen = table.select(parse_id_list(args.rest(), [b.id for b in table])) if not args.empty() \
        else list(table)
    for bp in chosen:
        name_for = ctx.console.symbolizer if ctx.session.halted else (lambda a: None)
        ctx.out.line(format_bl(bp, name_for=name_for, format_address=ctx.console.format_address))
        ctx.out.row(id=bp.id, kind=bp.kind, enabled=bp.enabled, address=bp.address,
                    expression=bp.expression, passes=bp.passes, initial_passes=bp.initial_passes,
                    command=bp.command, hits=bp.hits)


def _ids(ctx: CommandContext, args: Args) -> list[Breakpoint]:
    text = args.rest()
    if not text:
        raise CommandError(f"Syntax error: {ctx.text.split()[0]} takes breakpoint ids, "
                           "a range (1-3) or *")
    table = ctx.session.breakpoints
    try:
        ids = parse_id_list(text, [b.id for b in table])
    except ValueError:
        raise CommandError(f"Syntax error at '{text}'") from None
    return table.select(ids)


@command("bc", category=_B, usage="bc ids | *")
def bc(ctx: CommandContext, args: Args) -> None:
    """Clear (delete) breakpoints."""
    for bp in _ids(ctx, args):
        ctx.console.executor.remove_breakpoint(bp)
        ctx.session.breakpoints.remove(bp)


@command("bd", category=_B, usage="bd ids | *")
def bd(ctx: CommandContext, args: Args) -> None:
    """Disable breakpoints (they stay in the list)."""
    for bp in _ids(ctx, args):
        ctx.console.executor.remove_breakpoint(bp)
        bp.enabled = False


@command("be", category=_B, usage="be ids | *")
def be(ctx: CommandContext, args: Args) -> None:
    """Enable breakpoints."""
    for bp in _ids(ctx, args):
        bp.enabled = True


@command(".bpcmds", category=_B, usage=".bpcmds", needs_halt=False)
def bpcmds(ctx: CommandContext, args: Args) -> None:
    """Print the commands that would set every breakpoint again."""
    for bp in ctx.session.breakpoints:
        ctx.out.line(format_bpcmd(bp))
