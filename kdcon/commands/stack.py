"""Stack: k, kb, kn, kv, kp, kP (and their combinations) with an optional frame count.

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
a function without private symbols shows no list. ``n`` numbers the frames.
What it does not do: ``kc``, ``kd``, ``kf``, ``kL``, ``kM`` (the letters are taken and
ignored), ``= StackPtr`` starts, inline frames, source lines.
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
from ..render.types import unwrap
from ..trapframes import walk
from ..unwind import Frame, format_stack

__all__ = ["k", "c_type"]

log = logging.getLogger(__name__)

_DEFAULT_FRAMES = 20
_UNAVAILABLE = "<Value unavailable error>"
_PARAMETER_INDENT = "\t\t\t"
# dt's names for 64-bit integers are C's; the stack and dv /t spell them as DbgEng does.
_C_NAMES = {"__int64": "int64", "unsigned __int64": "unsigned int64"}


@command("k", category=Category.REGISTERS, usage="k[b|v|p|P][n] [frames]",
         aliases=("kb", "kn", "kv", "kp", "kP", "kbn", "kvn", "kpn", "kPn"), suffixes="bvpPnfcL")
def k(ctx: CommandContext, args: Args) -> None:
    """Show the stack of the current thread (kb arguments, kv trap frames, kp parameters)."""
    letters = ctx.text.split()[0][1:] if ctx.text[:1] == "k" else ""
    text = args.text
    while text[:1].isalpha():
        letters += text[0]
        text = text[1:]
    if set(letters) - set("bvpPnfcL"):
        raise CommandError(f"Syntax error at '{args.text.strip()}'")
    sub = Args(text, ctx.evaluate_prefix, command=ctx.text)
    count = sub.optional_expression() or _DEFAULT_FRAMES
    sub.expect_end()
    symbolizer = ctx.console.symbolizer
    frames, traps = walk(ctx.session, symbolizer, count)
    lines = format_stack(frames, symbolizer=symbolizer, numbered="n" in letters,
                         args=bool(set(letters) & set("bv")))
    parameters: dict[int, list[str] | None] = {}
    for frame, index in zip(frames, range(1, len(lines))):
        if "v" in letters and frame.number in traps:
            lines[index] += f" (TrapFrame @ {format_address(traps[frame.number])})"
        if set(letters) & set("pP"):
            parameters[frame.number] = _parameters(ctx, frames, frame.number)
            lines[index] = _with_parameters(lines[index], symbolizer(frame.instruction_pointer),
                                            parameters[frame.number], one_per_line="P" in letters)
    ctx.out.lines(lines)
    for frame in frames:
        row: dict[str, Any] = dict(number=frame.number, child_sp=frame.child_sp,
                                   return_address=frame.return_address, ip=frame.instruction_pointer,
                                   call_site=symbolizer(frame.instruction_pointer), how=frame.how)
        if frame.number in traps:
            row["trap_frame"] = traps[frame.number]
        if parameters.get(frame.number) is not None:
            row["parameters"] = parameters[frame.number]
        ctx.out.row(**row)


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


def c_type(info: Any, name: str = "") -> str:
    """A declaration as the stack shows it: ``struct _IRP * Irp``, ``unsigned long Code``."""
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

