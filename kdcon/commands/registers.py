"""Registers: r (all, some, assignments, rM masks) in kd's x64 layout.

``r`` reads only the CONTEXT window it shows (SegCs..Rip: 200 bytes), once a stop;
an assignment writes back just the bytes of the register changed.
"""

from __future__ import annotations

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..registers import REGISTERS, format_register, format_registers
from ..registry import Category, command

_R = Category.REGISTERS

# rM masks: 1 integer registers, 2 floating point (x87), 4 segments... kd's bits. The
# integer block (with segments and flags) is what kd shows for the default mask 0x1.
_MASK_INTEGER = 0x1
_MASK_XMM = 0x40


@command("r", category=_R, usage="r [reg[=value]][, reg[=value]...]  |  rM mask",
         suffixes="MFXY")
def r(ctx: CommandContext, args: Args) -> None:
    """Show or change registers."""
    regs = ctx.session.registers
    mask = _MASK_INTEGER
    if args.text.startswith("M"):
        args.pos = 1
        mask = args.expression()
    if args.empty():
        lines: list[str] = []
        if mask & _MASK_INTEGER:
            lines += format_registers(regs)
        if mask & _MASK_XMM:
            lines += [format_register(regs, f"xmm{i}") for i in range(16)]
        lines += ctx.console.location_lines(regs.get("rip"))
        ctx.out.lines(lines)
        ctx.out.row(**{name: regs.get(name) for name in (
            "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rip", "rsp", "rbp", "r8", "r9", "r10",
            "r11", "r12", "r13", "r14", "r15", "efl")})
        return
    shown: list[str] = []
    for part in _split(args.rest()):
        name, equals, value_text = part.partition("=")
        name = name.strip().lstrip("@").lower()
        if name.startswith("$t") and name[2:].isdigit() and int(name[2:]) < 20:
            index = int(name[2:])
            if equals:
                ctx.console.user_registers.values[index] = ctx.evaluate(value_text.strip())
            else:
                shown.append(f"{name}={ctx.console.user_registers.values[index]:016x}")
            continue
        if name not in REGISTERS:
            raise CommandError(f"Bad register error at '{part.strip()}'")
        if equals:
            if not value_text.strip():
                raise CommandError(f"Numeric expression missing from '{part.strip()}'")
            regs.set(name, ctx.evaluate(value_text.strip()))
        else:
            shown.append(format_register(regs, name))
            ctx.out.row(register=name, value=regs.get(name))
    if shown:
        ctx.out.line(" ".join(shown))


def _split(text: str) -> list[str]:
    """``rax, rbx`` / ``rax rbx`` / ``rax=1, rbx=2``: one item per register."""
    parts = [p for p in text.replace(",", " , ").split(" ") if p]
    items: list[str] = []
    for part in parts:
        if part == ",":
            continue
        if items and (items[-1].endswith("=") or part.startswith("=") or
                      (("=" in items[-1]) and not part.replace("@", "").lower() in REGISTERS
                       and "=" not in part and not part.startswith("$t"))):
            items[-1] += part
        else:
            items.append(part)
    return items
