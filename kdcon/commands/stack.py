"""Stack: k with its letters b, v, p, P, c, n, f, L, M in any combination, a frame count
or a start (``= StackPtr [InstructionPtr] [FrameCount]``), and kd (the raw stack).

x64 frames come from .pdata/UNWIND_INFO (the local image first, target memory
second) with a frame-pointer fallback, and go on past trap frames
(``kdcon.trapframes``). ``kb`` and ``kv`` add the four home-space arguments; ``kv``
also marks a frame that holds a trap frame with ``(TrapFrame @ address)`` (x64 has
no FPO records, so that is all kv adds there); ``kp`` puts each function's
parameters, from its module's PDB, between its name and its offset:
``trackdemo!TrackDemoDispatch(struct _DEVICE_OBJECT * DeviceObject = 0x..., ...)+0x66``;
``kP`` puts one parameter on a line. A parameter held in a register the callee may
have changed (any frame but the first), or one no location record covers at the
frame's address (before the prolog stores it), reads ``<Value unavailable error>``;
a function without private symbols shows no list. ``n`` numbers the frames; ``c``
shows only ``module!function`` a line (``Call Site``, numbered with ``n``); ``f``
adds the ``Memory`` column, the bytes between a frame's Child-SP and the previous
one's. ``kd [WordCount]`` is ``dps`` at RSP. On x64 ``= StackPtr`` starts the walk
there (at RIP unless an InstructionPtr follows), as the k page's x64 forms say.
While ``.lines`` is on each frame ends with ``[file @ line]`` (a caller's from the
byte before its return address); ``L`` hides them. What it does not do: DML
(``M`` is accepted and plain text printed), inline frames, ``~Thread`` or
``Processor`` prefixes, ``.kframes``.
Spec: windbg.md §0.6; the k page of the debugger documentation.
"""

from __future__ import annotations

import logging
from typing import Any

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..frames import NoLocals, frame_locals
from ..registry import Category, command
from ..render import format_address
from ..render.symbols import c_type
from ..trapframes import walk
from ..unwind import Frame, format_stack
from .source import frame_source_suffix

__all__ = ["k", "kd", "c_type"]

log = logging.getLogger(__name__)

_DEFAULT_FRAMES = 20
_UNAVAILABLE = "<Value unavailable error>"
_PARAMETER_INDENT = "\t\t\t"
_MAX_FRAMES = 0xFFFF
# A kernel stack is a few pages: a gap wider than this between two frames is a walk
# that went on from a trap frame on another stack, not a frame's size.
_SAME_STACK = 0x10000
_LETTERS = set("bvpPcnfLM")


@command("k", category=Category.REGISTERS,
         usage="k[b|v|p|P][c][n][f][L][M] [= StackPtr [InstructionPtr]] [FrameCount]",
         aliases=("kb", "kn", "kv", "kp", "kP", "kc", "kbn", "kvn", "kpn", "kPn", "kcn", "knc"),
         suffixes="bvpPcnfLM")
def k(ctx: CommandContext, args: Args) -> None:
    """Show the stack of the current thread (kb, kv, kp, kc, kn, kf: see below).

    b and v add the home-space arguments, v the trap frames, p and P the parameters,
    c names only, n frame numbers, f the distance between frames."""
    letters, start, count = _options(ctx, args)
    symbolizer = ctx.console.symbolizer
    frames, traps = walk(ctx.session, symbolizer, count, start=start)
    if "c" in letters:
        _clean(ctx, frames, numbered="n" in letters)
        return
    lines = format_stack(frames, symbolizer=symbolizer, numbered="n" in letters,
                         args=bool(set(letters) & set("bv")))
    parameters: dict[int, list[str] | None] = {}
    for frame, index in zip(frames, range(1, len(lines))):
        if set(letters) & set("pP"):
            parameters[frame.number] = _parameters(ctx, frames, frame.number)
            lines[index] = _with_parameters(lines[index], symbolizer(frame.instruction_pointer),
                                            parameters[frame.number], one_per_line="P" in letters)
        if "L" not in letters:
            lines[index] += frame_source_suffix(ctx.console, frames, index - 1)
        if "v" in letters and frame.number in traps:
            lines[index] += f" (TrapFrame @ {format_address(traps[frame.number])})"
    distances = _distances(frames)
    if "f" in letters:
        lines = _with_memory(lines, distances, numbered="n" in letters)
    ctx.out.lines(lines)
    for frame, distance in zip(frames, distances):
        row: dict[str, Any] = dict(number=frame.number, child_sp=frame.child_sp,
                                   return_address=frame.return_address, ip=frame.instruction_pointer,
                                   call_site=symbolizer(frame.instruction_pointer), how=frame.how)
        if frame.number in traps:
            row["trap_frame"] = traps[frame.number]
        if parameters.get(frame.number) is not None:
            row["parameters"] = parameters[frame.number]
        if "f" in letters:
            row["memory"] = distance
        ctx.out.row(**row)


@command("kd", category=Category.REGISTERS, usage="kd [WordCount]")
def kd(ctx: CommandContext, args: Args) -> None:
    """Show the raw stack from the stack pointer, a pointer a line with its symbol (dps @rsp)."""
    count = args.optional_expression()
    args.expect_end()
    if count is not None and count <= 0:
        raise CommandError(f"Syntax error at '{args.text.strip()}'")
    rsp = ctx.session.registers.get("rsp")
    display = ctx.console.registry.get("dps")
    if display is None:
        raise CommandError("kd needs the dps command, which is not loaded")
    length = "" if count is None else f" L0x{count:x}"
    display.handler(ctx, Args(f"0x{rsp:x}{length}", ctx.evaluate_prefix, command=ctx.text))


def _options(ctx: CommandContext, args: Args) -> tuple[str, tuple[int, int] | None, int]:
    """The option letters, where the walk starts (None: the registers) and the frame count.

    x64 forms (the k page): ``k [FrameCount]``, ``k = StackPtr FrameCount`` and
    ``k = StackPtr InstructionPtr FrameCount``; ``k = StackPtr`` alone shows the
    default count. A walk from another stack pointer starts at RIP unless given one."""
    first = ctx.text.split()[0] if ctx.text.split() else ""
    letters = first[1:] if first[:1] == "k" and first[1:].isalpha() else ""
    text = args.text
    while text[:1].isalpha():
        letters += text[0]
        text = text[1:]
    if set(letters) - _LETTERS:
        raise CommandError(f"Syntax error at '{args.text.strip()}'")
    sub = Args(text, ctx.evaluate_prefix, command=ctx.text)
    if sub.peek() != "=":
        count = sub.optional_expression()
        sub.expect_end()
        return letters, None, _checked_count(count, sub)
    sub.pos += 1
    values = [sub.expression("=")]
    while len(values) < 3 and (value := sub.optional_expression()) is not None:
        values.append(value)
    sub.expect_end()
    registers = ctx.session.registers
    if len(values) == 3:
        return letters, (values[1], values[0]), _checked_count(values[2], sub)
    count = values[1] if len(values) == 2 else None
    return letters, (registers.get("rip"), values[0]), _checked_count(count, sub)


def _checked_count(count: int | None, args: Args) -> int:
    if not count:
        return _DEFAULT_FRAMES
    if count < 0 or count > _MAX_FRAMES:
        raise CommandError(f"Frame count out of range in '{args.text.strip()}' "
                           f"(1 to 0x{_MAX_FRAMES:x})")
    return count


# -- kc, kf ------------------------------------------------------------------------------------

def _clean(ctx: CommandContext, frames: list[Frame], numbered: bool) -> None:
    """``kc``: module!function a line, no offsets, addresses or arguments."""
    symbolizer = ctx.console.symbolizer
    lines = [" # Call Site" if numbered else "Call Site"]
    for frame in frames:
        name = _clean_name(symbolizer(frame.instruction_pointer), frame.instruction_pointer)
        lines.append(f"{frame.number:02x} {name}" if numbered else name)
        ctx.out.row(number=frame.number, call_site=name, ip=frame.instruction_pointer)
    ctx.out.lines(lines)


def _clean_name(name: str | None, address: int) -> str:
    if not name:
        return format_address(address)
    # module!function+0x66 loses its offset; module+0x1234 (no symbol) says where it is.
    return name.partition("+")[0] if "!" in name else name


def _distances(frames: list[Frame]) -> list[int | None]:
    """``kf``'s Memory: the bytes between a frame's Child-SP and the one below it; none
    for the first frame, nor where the walk moved to another stack (a trap frame's)."""
    out: list[int | None] = [None]
    for below, frame in zip(frames, frames[1:]):
        gap = frame.child_sp - below.child_sp
        out.append(gap if 0 <= gap < _SAME_STACK else None)
    return out[: len(frames)]


def _with_memory(lines: list[str], distances: list[int | None], numbered: bool) -> list[str]:
    at = 3 if numbered else 0
    header = lines[0][:at] + f"{'Memory':>8}  " + lines[0][at:]
    rows = []
    for line, distance in zip(lines[1:], distances):
        field = f"{distance:>8x}  " if distance is not None else " " * 10
        rows.append(line[:at] + field + line[at:])
    return [header, *rows]


# -- kp, kP ------------------------------------------------------------------------------------

def _with_parameters(line: str, call_site: str | None, parameters: list[str] | None,
                     one_per_line: bool) -> str:
    """The frame's line with ``(parameters)`` after the function's name."""
    if parameters is None or not call_site or not line.endswith(call_site):
        return line
    name, plus, offset = call_site.partition("+")
    if not parameters:
        listed = "void"
    elif one_per_line:
        listed = "".join(f"\n{_PARAMETER_INDENT}{p}, " for p in parameters)[:-2]
    else:
        listed = ", ".join(parameters)
    return f"{line[: len(line) - len(call_site)]}{name}({listed}){plus}{offset}"


def _parameters(ctx: CommandContext, frames: list[Frame], number: int) -> list[str] | None:
    """``type name = value`` for each parameter the PDB records, None without private
    symbols for the frame's function."""
    try:
        found = frame_locals(ctx.console, frames, number)
    except NoLocals as exc:
        log.debug("kp: frame %d: %s", number, exc)
        return None
    return [f"{c_type(v.type, v.local.name)} = {_value(ctx, v)}"
            for v in found.variables if v.local.is_param]


def _value(ctx: CommandContext, variable: Any) -> str:
    from .types import local_value

    # Not live: no location record covers the frame's address (a parameter the prolog
    # has yet to store, say), so the place the PDB names holds something else.
    if variable.type is None or not variable.local.live:
        return _UNAVAILABLE
    if variable.address is None and variable.register_value is None:
        return _UNAVAILABLE
    text = local_value(ctx, variable)
    return _UNAVAILABLE if text == "??" else text

