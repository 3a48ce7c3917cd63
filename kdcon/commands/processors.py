"""Processors: ``~`` (the current processor) and ``~Ns`` (change the current processor).

``~Ns`` asks processor N to report its stop (DbgKdSwitchProcessor, answered by a
state change from that CPU) and takes that stop as the current one: the prompt
becomes ``N: kd>`` and registers, ``k``, ``r``, ``$pcr``/``$prcb`` (``!pcr``,
``!prcb``) then address that CPU, as kd does. A number past the processor count is
refused in one line and nothing is sent; the current processor is already the one
addressed, so ``~Ns`` on it sends nothing either (a one-CPU target's ``~0s``).
What it does not do: ``~`` before another command (``~1 r`` is kd's ``1r``), nor
change a processor other than the current one.
Spec: windbg.md (``~s (Change Current Processor)``); kd-protocol.md §5.1.
"""

from __future__ import annotations

import logging

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..registry import Category, command

__all__ = ["processor"]

log = logging.getLogger(__name__)

_R = Category.REGISTERS


@command("~", category=_R, usage="~  |  ~Ns")
def processor(ctx: CommandContext, args: Args) -> None:
    """Show the current processor, or make processor N (~Ns) the current one."""
    text = args.rest()
    stop = ctx.session.stop
    current = stop.processor if stop is not None else ctx.session.stop_processor[0]
    count = stop.processor_count if stop is not None else ctx.session.stop_processor[1]
    if not text or text == "s":
        ctx.out.line(f".  {current}")
        ctx.out.row(processor=current, processors=count)
        return
    if not text.endswith("s"):
        raise CommandError(f"Syntax error in '~{text}'")
    number_text = text[:-1].strip()
    # As in kd's thread syntax: a plain number is decimal, ``[expression]`` any expression.
    if number_text.startswith("[") and number_text.endswith("]"):
        number = ctx.evaluate(number_text[1:-1])
    elif number_text.isdigit():
        number = int(number_text)
    else:
        raise CommandError(f"Syntax error in '~{text}'")
    if not 0 <= number < count:
        raise CommandError(f"Illegal thread error in '~{text}'")
    if number != current:
        stop = ctx.session.switch_processor(number)
        ctx.console.state.next_unassemble = ctx.console.state.next_dump = None
        ctx.out.lines(ctx.console.location_lines(stop.pc, stop.instruction_stream))
    ctx.out.row(processor=ctx.session.stop.processor, processors=count)
