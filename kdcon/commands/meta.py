"""Console commands: ?, n, .help, .echo, .wirestats, vertarget, .bugcheck, .time.

``.help`` lists the registry by category, ``.help CMD`` shows one command's usage;
``.wirestats`` says what the last command and the session cost on the wire;
``.time`` reads the target's clocks from KUSER_SHARED_DATA (InterruptTime, SystemTime,
TimeZoneBias: KSYSTEM_TIME values at 0x08, 0x14 and 0x20 of the x64 layout).
"""

from __future__ import annotations

import struct
from datetime import timedelta

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..expr import format_evaluation
from ..registry import Category, command
from ..render import format_address
from ..render.clock import filetime_datetime, kd_date, kd_uptime, utc_offset
from ..wire import line_seconds

_M = Category.META

# KUSER_SHARED_DATA: where every Windows kernel maps it (x64, x86).
SHARED_USER_DATA = {8: 0xFFFFF78000000000, 4: 0xFFDF0000}
_INTERRUPT_TIME, _SYSTEM_TIME, _TIME_ZONE_BIAS = 0x08, 0x14, 0x20
_CLOCKS_SIZE = 0x2C
_BIAS_PER_MINUTE = 600_000_000          # 100 ns intervals


@command("?", category=_M, usage="? expression", needs_halt=False)
def evaluate_expression(ctx: CommandContext, args: Args) -> None:
    """Evaluate a MASM expression."""
    text = args.rest()
    if not text:
        raise CommandError("Numeric expression missing from '<EOL>'")
    if text.startswith("?"):
        raise CommandError("?? (C++ expressions) is not supported: ? evaluates MASM "
                           "(poi(addr), @reg, mod!sym), dt and dv show typed values")
    value = ctx.evaluate(text)
    ctx.console.user_registers.last_value = value
    ctx.out.line(format_evaluation(value, pointer_size=ctx.session.pointer_size))
    ctx.out.row(value=value)


@command("n", category=_M, usage="n [8|10|16]", needs_halt=False)
def number_base(ctx: CommandContext, args: Args) -> None:
    """Set or show the default number base of expressions."""
    settings = ctx.console.settings
    if not args.empty():
        word = args.word()
        if word not in ("8", "10", "16"):
            raise CommandError(f"Invalid radix at '{word}'")
        settings.radix = int(word)
    ctx.out.line(f"base is {settings.radix}")


@command(".echo", category=_M, usage=".echo [text]", needs_halt=False)
def echo(ctx: CommandContext, args: Args) -> None:
    """Print text."""
    text = args.rest()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    ctx.out.line(text)


@command(".help", category=_M, usage=".help [command | category | keys]", needs_halt=False)
def help_(ctx: CommandContext, args: Args) -> None:
    """List the commands by category, or show one command's usage."""
    registry = ctx.console.registry
    wanted = args.rest()
    if wanted.lower() == "keys":
        from ..terminal import KEYS

        ctx.out.line("Keys of the interactive console:")
        ctx.out.lines([f"  {key:<14} {meaning}" for key, meaning in KEYS])
        return
    if wanted:
        cmd = registry.get(wanted)
        if cmd is None:
            resolved = registry.resolve(wanted)
            cmd = resolved[0] if resolved else None
        if cmd is None:
            raise CommandError(f"No command {wanted}: .help lists them all")
        ctx.out.line(f"{cmd.usage}")
        ctx.out.line(f"  {cmd.summary}")
        if cmd.aliases:
            ctx.out.line(f"  Also: {', '.join(cmd.aliases)}")
        if cmd.details:
            ctx.out.line("")
            ctx.out.line(cmd.details)
        return
    for category in Category:
        members = [c for c in registry if c.category is category]
        if not members:
            continue
        ctx.out.line(f"{category.value}:")
        for cmd in members:
            ctx.out.line(f"  {cmd.name:<12} {cmd.summary}")
        ctx.out.line("")
    ctx.out.line(".help CMD shows the usage of one command; .help keys lists the keys.")


@command(".wirestats", category=_M, usage=".wirestats", needs_halt=False)
def wirestats(ctx: CommandContext, args: Args) -> None:
    """What the last command and the whole session cost on the wire."""
    results = [r for r in ctx.console.results if r.command.strip() != ".wirestats"]
    total = ctx.session.wire()
    if results:
        last = results[-1]
        ctx.out.line(f"Last command: {last.command}")
        ctx.out.line(f"  {last.round_trips} round trips, {last.wire_bytes} bytes "
                     f"({line_seconds(last.wire_bytes) * 1000:.1f} ms at 115200 baud)")
    ctx.out.line(f"Session: {total.round_trips} round trips, {total.bytes_sent} bytes sent, "
                 f"{total.bytes_received} bytes received "
                 f"({line_seconds(total.total):.2f} s at 115200 baud)")
    cache = ctx.session.memory
    ctx.out.line(f"Memory cache: {cache.requests} reads, {cache.bytes_fetched} bytes fetched")
    ctx.out.row(round_trips=total.round_trips, bytes_sent=total.bytes_sent,
                bytes_received=total.bytes_received)


@command("vertarget", category=_M, usage="vertarget")
def vertarget(ctx: CommandContext, args: Args) -> None:
    """Show the target's version and kernel base."""
    version = ctx.session.version
    fmt = ctx.console.format_address
    flavour = "Free" if version.MajorVersion == 0xF else "Checked"
    stop = ctx.session.stop
    cpus = stop.processor_count if stop is not None else 1
    ctx.out.line(f"Windows Kernel Version {version.MinorVersion} {'MP' if cpus > 1 else 'UP'} "
                 f"({cpus} procs) {flavour} x64")
    ctx.out.line(f"Kernel base = 0x{fmt(version.KernBase)} PsLoadedModuleList = "
                 f"0x{fmt(version.PsLoadedModuleList)}")
    ctx.out.line(f"Protocol version {version.ProtocolVersion}, machine type "
                 f"{version.MachineType:#06x}, {len(ctx.session.modules)} modules loaded")


@command(".bugcheck", category=_M, usage=".bugcheck")
def bugcheck(ctx: CommandContext, args: Args) -> None:
    """Show the bug check code and its four parameters."""
    data = ctx.session.debugger_data
    if data is None or not data.KiBugcheckData:
        raise CommandError("The debugger data block is not available: no bug check data")
    raw = ctx.session.read_virtual(data.KiBugcheckData, 40)
    if len(raw) < 40:
        raise CommandError("Unable to read the bug check data")
    code, *params = struct.unpack("<5Q", raw)
    ctx.out.line(f"Bugcheck code {code & 0xFFFFFFFF:08X}")
    ctx.out.line("Arguments " + " ".join(ctx.console.format_address(p) for p in params))
    ctx.out.row(code=code & 0xFFFFFFFF, parameters=params)


@command(".time", category=_M, usage=".time [-h Hours]")
def time_(ctx: CommandContext, args: Args) -> None:
    """Show the target's time and how long it has been up."""
    hours = None
    text = args.rest()
    if text:
        if not text.startswith("-h"):
            raise CommandError(f"Syntax error at '{text}'")
        if not text[2:].strip():
            raise CommandError("Numeric expression missing from '<EOL>'")
        hours = ctx.evaluate(text[2:].strip())
        if hours >= 1 << 63:
            hours -= 1 << 64
        if not -24 <= hours <= 24:
            raise CommandError(f"-h {hours}: the offset from UTC is in hours, -24 to 24")
    base = SHARED_USER_DATA.get(ctx.session.pointer_size, SHARED_USER_DATA[8])
    try:
        raw = ctx.session.read_virtual(base, _CLOCKS_SIZE)
    except MemoryError:
        raw = b""
    if len(raw) < _CLOCKS_SIZE:
        raise CommandError("Unable to read KUSER_SHARED_DATA at "
                           f"{format_address(base, ctx.session.pointer_size)}")
    interrupt, system, bias = (_ksystem_time(raw, at) for at in (
        _INTERRUPT_TIME, _SYSTEM_TIME, _TIME_ZONE_BIAS))
    # TimeZoneBias is UTC minus local time; -h gives local minus UTC.
    minutes = hours * 60 if hours is not None else -(bias // _BIAS_PER_MINUTE)
    local = filetime_datetime(system) + timedelta(minutes=minutes)
    ctx.out.line(f"Debug session time: {kd_date(local, milliseconds=True)} {utc_offset(minutes)}")
    ctx.out.line(f"System Uptime: {kd_uptime(interrupt)}")
    ctx.out.row(system_time=system, time_zone_bias=bias, interrupt_time=interrupt,
                utc_offset_minutes=minutes)


def _ksystem_time(raw: bytes, at: int) -> int:
    """A KSYSTEM_TIME (LowPart, High1Time, High2Time) as one signed 64-bit count. The
    kernel writes High2Time first, then LowPart and High1Time in one store: those two agree."""
    low, high1, _ = struct.unpack_from("<Iii", raw, at)
    return (high1 << 32) | low
