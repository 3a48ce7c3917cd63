"""Stack: k, kb, kn, kv, kp, kP (and their combinations) with an optional frame count.

x64 frames come from .pdata/UNWIND_INFO (the local image first, target memory
second) with a frame-pointer fallback; ``kb``/``kv`` add the four home-space
arguments; ``n`` numbers the frames.
"""

from __future__ import annotations

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..registry import Category, command
from ..stack import stack_frames
from ..unwind import format_stack

_DEFAULT_FRAMES = 20


@command("k", category=Category.REGISTERS, usage="k[b|v|p|P][n] [frames]",
         aliases=("kb", "kn", "kv", "kp", "kP", "kbn", "kvn", "kpn", "kPn"), suffixes="bvpPnfcL")
def k(ctx: CommandContext, args: Args) -> None:
    """Show the stack of the current thread (kb adds arguments, kn frame numbers)."""
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
    frames = stack_frames(ctx.session, limit=count)
    lines = format_stack(frames, symbolizer=ctx.console.symbolizer, numbered="n" in letters,
                         args=bool(set(letters) & set("bvpP")))
    ctx.out.lines(lines)
    for frame in frames:
        ctx.out.row(number=frame.number, child_sp=frame.child_sp,
                    return_address=frame.return_address, ip=frame.instruction_pointer,
                    call_site=ctx.console.symbolizer(frame.instruction_pointer), how=frame.how)
