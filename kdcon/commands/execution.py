"""Execution: g, gh, gn, p, t, pr, tr, pc, tc, gu, .reboot, .crash, q, qd, sx*.

Output and behaviour are kd's (windbg.md §0.1): a step shows the registers (``pr``
and ``tr`` toggle that) and the next instruction; passes count down only under
``g``; a breakpoint's command string runs when its hit came from ``g``, and a
command in it that resumes the target ends the list.
"""

from __future__ import annotations

from kdcon.protocol.constants import ContinueStatus
from kdcon.protocol.errors import TargetTimeout

from ..argtypes import Args
from ..console import CommandContext
from ..disasm import decode
from ..errors import CommandError
from ..execution import StopOutcome
from ..registry import Category, command
from ..stops import SX_CODES

_E = Category.EXECUTION


def _start_address(ctx: CommandContext, args: Args) -> None:
    """``= start``: resume somewhere else."""
    if args.peek() == "=":
        args.pos = args.text.index("=", args.pos) + 1
        ctx.session.registers.set("rip", args.expression())


def _run(ctx: CommandContext, *, trace: bool = False, stepping: bool = False,
         status: int | None = None, registers: bool = False) -> StopOutcome | None:
    """Resume, show the stop, run a breakpoint's commands; None if the time ran out."""
    executor = ctx.console.executor
    while True:
        try:
            if status is not None:
                stop = executor.resume(trace=trace, status=status)
                outcome = executor.judge(stop, stepping=stepping) or executor.run()
            else:
                outcome = executor.run(trace=trace, stepping=stepping)
        except TargetTimeout:
            _time_is_up(ctx)
            return None
        executor.show(outcome, registers=registers and outcome.breakpoint is None)
        bp = outcome.breakpoint
        if bp is None or bp.command is None or stepping:
            return outcome
        executor.continue_requested = False
        executor.in_breakpoint_commands = True
        try:
            ctx.console.execute(bp.command, nested=True)
        finally:
            executor.in_breakpoint_commands = False
        if not executor.continue_requested:
            return outcome
        status = None


def _time_is_up(ctx: CommandContext) -> None:
    """The run's time limit passed with the target running: break in, then stop."""
    session, executor = ctx.session, ctx.console.executor
    ctx.console.state.values["timed_out"] = True
    session.break_in()
    executor.deadline = None
    try:
        stop = session.wait(_soon(10.0))
        executor.show(executor.judge(stop) or StopOutcome(stop))
    except TargetTimeout:
        pass
    raise CommandError("The run passed its --timeout with the target running; broke in")


def _soon(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


def _go(ctx: CommandContext, args: Args, status: int | None) -> None:
    executor = ctx.console.executor
    if executor.in_breakpoint_commands:
        args.rest()
        executor.continue_requested = True
        return
    _start_address(ctx, args)
    temporary = []
    while not args.empty():
        temporary.append(args.expression())
        if len(temporary) > 10:
            raise CommandError("Too many break addresses: g takes at most 10")
    handles = [ctx.session.host.write_breakpoint(address) for address in temporary]
    try:
        _run(ctx, status=status)
    finally:
        if ctx.session.halted:
            for handle in handles:
                ctx.session.host.restore_breakpoint(handle)


@command("g", category=_E, usage="g [= start] [address ...]", resumes=True)
def g(ctx: CommandContext, args: Args) -> None:
    """Go: resume the target until a breakpoint, an exception or a break-in."""
    _go(ctx, args, None)


@command("gh", category=_E, usage="gh [= start]", resumes=True)
def gh(ctx: CommandContext, args: Args) -> None:
    """Go with the exception handled (DBG_EXCEPTION_HANDLED)."""
    _go(ctx, args, ContinueStatus.DBG_EXCEPTION_HANDLED)


@command("gn", category=_E, usage="gn [= start]", resumes=True)
def gn(ctx: CommandContext, args: Args) -> None:
    """Go with the exception not handled (DBG_EXCEPTION_NOT_HANDLED)."""
    _go(ctx, args, ContinueStatus.DBG_EXCEPTION_NOT_HANDLED)


def _instruction_at_pc(ctx: CommandContext):
    pc, code = ctx.session.code_at_pc()
    decoded = decode(code, pc) if code else []
    return pc, (decoded[0] if decoded else None)


def _step(ctx: CommandContext, args: Args, *, over: bool) -> None:
    settings = ctx.console.settings
    if args.peek() == "r" and (len(args.remaining().strip()) == 1):
        args.rest()
        settings.step_registers = not settings.step_registers
        return
    _start_address(ctx, args)
    count = args.optional_expression() or 1
    after = args.quoted()
    ctx.console.state.values["stepping"] = True
    try:
        for _ in range(count):
            if not _one_step(ctx, over=over):
                break
    finally:
        ctx.console.state.values["stepping"] = False
    if after:
        ctx.console.execute(after, nested=True)


def _one_step(ctx: CommandContext, *, over: bool) -> bool:
    """One ``p``/``t``; False when the stop was not the step's own (a breakpoint)."""
    registers = ctx.console.settings.step_registers
    if over:
        pc, insn = _instruction_at_pc(ctx)
        if insn is not None and insn.raw[:1] != b"\xcc" and (
                insn.is_call or insn.mnemonic.startswith(("rep", "int"))):
            outcome = _run_to(ctx, insn.end, registers=registers)
            return outcome is not None and outcome.stop.pc == insn.end
    outcome = _run(ctx, trace=True, stepping=True, registers=registers)
    return outcome is not None and outcome.breakpoint is None and outcome.stop.is_single_step


def _run_to(ctx: CommandContext, address: int, *, registers: bool,
            above_sp: int | None = None) -> StopOutcome | None:
    """Run until ``address`` (with the stack above ``above_sp``, for ``gu``)."""
    session, executor = ctx.session, ctx.console.executor
    mine = not session.breakpoints.at(address)
    handle = session.host.write_breakpoint(address) if mine else None
    try:
        while True:
            try:
                outcome = executor.run(stepping=True)
            except TargetTimeout:
                _time_is_up(ctx)
                return None
            if outcome.stop.pc == address and outcome.stop.is_breakpoint and outcome.breakpoint is None:
                if above_sp is not None and session.registers.get("rsp") <= above_sp:
                    continue
                executor.show(outcome, registers=registers, banner=False)
                return outcome
            executor.show(outcome, registers=registers and outcome.breakpoint is None)
            return outcome
    finally:
        if handle is not None and session.halted:
            session.host.restore_breakpoint(handle)


@command("p", category=_E, usage='p [= start] [count] ["command"]  |  pr', resumes=True,
         repeatable=True, suffixes="r")
def p(ctx: CommandContext, args: Args) -> None:
    """Step over one instruction (calls run to their return); pr toggles the register dump."""
    _step(ctx, args, over=True)


@command("t", category=_E, usage='t [= start] [count] ["command"]  |  tr', resumes=True,
         repeatable=True, suffixes="r")
def t(ctx: CommandContext, args: Args) -> None:
    """Trace one instruction, into calls; tr toggles the register dump."""
    _step(ctx, args, over=False)


def _until_call(ctx: CommandContext, args: Args, *, over: bool) -> None:
    """``pc``/``tc``: step (over or into calls) until the next instruction is a call."""
    count = args.optional_expression() or 1
    args.expect_end()
    ctx.console.state.values["stepping"] = True
    try:
        for _ in range(count):
            while True:
                if not _one_step_quiet(ctx, over=over):
                    return
                _pc, insn = _instruction_at_pc(ctx)
                if insn is not None and insn.is_call:
                    break
    finally:
        ctx.console.state.values["stepping"] = False


def _one_step_quiet(ctx: CommandContext, *, over: bool) -> bool:
    """One step without showing it; False (after showing it) when something else stopped
    the target: a breakpoint, an exception."""
    executor = ctx.console.executor
    _pc, insn = _instruction_at_pc(ctx)
    if over and insn is not None and insn.is_call:
        session = ctx.session
        handle = session.host.write_breakpoint(insn.end) if not session.breakpoints.at(insn.end) \
            else None
        try:
            outcome = executor.run(stepping=True)
        finally:
            if handle is not None and session.halted:
                session.host.restore_breakpoint(handle)
        if outcome.stop.pc == insn.end and outcome.breakpoint is None:
            return True
    else:
        outcome = executor.run(trace=True, stepping=True)
        if outcome.breakpoint is None and outcome.stop.is_single_step:
            return True
    executor.show(outcome)
    return False


@command("pc", category=_E, usage="pc [count]", resumes=True, repeatable=True)
def pc(ctx: CommandContext, args: Args) -> None:
    """Step over until the next call instruction."""
    _until_call(ctx, args, over=True)
    _show_here(ctx)


@command("tc", category=_E, usage="tc [count]", resumes=True, repeatable=True)
def tc(ctx: CommandContext, args: Args) -> None:
    """Trace until the next call instruction."""
    _until_call(ctx, args, over=False)
    _show_here(ctx)


def _show_here(ctx: CommandContext) -> None:
    session = ctx.session
    if session.halted:
        from ..registers import format_registers

        lines = format_registers(session.registers) if ctx.console.settings.step_registers else []
        lines += ctx.console.location_lines(session.registers.get("rip"))
        ctx.out.lines(lines)


@command("gu", category=_E, usage="gu", resumes=True, repeatable=True)
def gu(ctx: CommandContext, args: Args) -> None:
    """Go up: run until the current function returns to its caller."""
    from ..stack import stack_frames

    args.expect_end()
    frames = stack_frames(ctx.session, limit=2)
    if not frames or not frames[0].return_address:
        raise CommandError("Unable to find the return address of the current function")
    frame = frames[0]
    _run_to(ctx, frame.return_address, registers=ctx.console.settings.step_registers,
            above_sp=frame.child_sp)


@command(".reboot", category=_E, usage=".reboot", resumes=True)
def reboot(ctx: CommandContext, args: Args) -> None:
    """Reboot the target; breakpoints stay in the table and resolve again as modules load."""
    session, executor = ctx.session, ctx.console.executor
    # A rebooted target holds none of them, nor the debug registers ba armed.
    executor.forget_written()
    for bp in session.breakpoints:
        if bp.kind != "ba" and bp.module is not None:
            bp.address = None if bp.kind == "bu" else bp.address
    session.host.reboot()
    session.state = session.state.RUNNING
    ctx.out.line("Shutdown occurred at (the target is rebooting)...unloading all symbol tables.")
    ctx.out.line("Waiting to reconnect...")
    session.forget_modules()
    try:
        stop = session.wait(executor.deadline)
    except TargetTimeout:
        _time_is_up(ctx)
        return
    session.after_reboot()
    _say_connected(ctx, stop.processor_count or 1)
    outcome = executor.judge(stop) or executor.run()
    executor.show(outcome)
    if ctx.console.healer is not None:
        ctx.console.healer.run_restart_script()      # -cfr: every time the target restarts


def _say_connected(ctx: CommandContext, cpus: int) -> None:
    """The lines kd prints when a rebooted target attaches again, as at the first attach."""
    session = ctx.session
    version = session.version
    build = version.MinorVersion
    flavour = "Free" if version.MajorVersion == 0xF else "Checked"
    fmt = ctx.console.format_address
    ctx.out.lines([
        f"Connected to Windows {build} x64 target, ptr64 TRUE",
        "Kernel Debugger connection established.",
        f"Windows Kernel Version {build} {'MP' if cpus > 1 else 'UP'} ({cpus} procs) "
        f"{flavour} x64",
        f"Kernel base = 0x{fmt(version.KernBase)} PsLoadedModuleList = "
        f"0x{fmt(version.PsLoadedModuleList)}"])


@command(".crash", category=_E, usage=".crash", resumes=True)
def crash(ctx: CommandContext, args: Args) -> None:
    """Make the target bug check (0xE2, MANUALLY_INITIATED_CRASH) and stop in it."""
    session, executor = ctx.session, ctx.console.executor
    session.host.cause_bugcheck()
    session.state = session.state.RUNNING
    try:
        stop = session.wait(executor.deadline)
    except TargetTimeout:
        _time_is_up(ctx)
        return
    outcome = executor.judge(stop) or executor.run()
    executor.show(outcome)


@command("q", category=_E, usage="q", needs_halt=False)
def q(ctx: CommandContext, args: Args) -> None:
    """Quit, leaving the target halted."""
    ctx.out.line("quit:")
    ctx.console.quit_requested = True


@command("qd", category=_E, usage="qd", needs_halt=False)
def qd(ctx: CommandContext, args: Args) -> None:
    """Detach: resume the target, then quit."""
    if ctx.session.halted:
        ctx.console.executor._insert_breakpoints()
        ctx.session.resume()
    ctx.out.line("quit:")
    ctx.console.quit_requested = True


def _sx(ctx: CommandContext, args: Args, mode: str) -> None:
    settings = ctx.console.settings
    if args.empty():
        for name, value in sorted(settings.exceptions.items()):
            ctx.out.line(f"{name:>8} - {_SX_TEXT[value]}")
        return
    event = args.word()
    name, _, module = event.partition(":")
    name = name.lower()
    if name not in settings.exceptions and name not in SX_CODES:
        try:
            code = int(name, 16)
        except ValueError:
            raise CommandError(f"Syntax error at '{event}'") from None
        # A code kd also knows by name sets that filter: sxe c0000005 is sxe av.
        name = _SX_NAME_BY_CODE.get(code, f"{code:x}")
    settings.exceptions[name] = mode
    if name == "ld":
        settings.load_filter = module or None


_SX_NAME_BY_CODE = {code: name for name, code in SX_CODES.items()}
_SX_TEXT = {"sxe": "break", "sxd": "second-chance break", "sxn": "output", "sxi": "ignore"}

for _mode, _summary in (("sxe", "Break on the event (ld[:module], ud, av, bpe, ...)."),
                        ("sxd", "Break only on the event's second chance."),
                        ("sxn", "Show the event without breaking."),
                        ("sxi", "Ignore the event.")):
    def _handler(ctx: CommandContext, args: Args, _m: str = _mode) -> None:
        _sx(ctx, args, _m)

    _handler.__doc__ = _summary
    command(_mode, category=_E, usage=f"{_mode} [event[:module]]", needs_halt=False)(_handler)


@command("sx", category=_E, usage="sx", needs_halt=False)
def sx(ctx: CommandContext, args: Args) -> None:
    """List what each event does (sxe, sxd, sxn and sxi change it)."""
    if not args.empty():
        raise CommandError(f"Syntax error at '{args.rest()}': sx only lists; "
                           "sxe, sxd, sxn or sxi sets an event")
    _sx(ctx, args, "")
