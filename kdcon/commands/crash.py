"""Crash analysis: .exr (an exception record), .cxr (a context record) and .trap (a trap
frame) as kd shows them on x64.

``.exr Address`` prints the EXCEPTION_RECORD64 at Address, ``.exr -1`` the one the
current stop reported. ``.cxr Address`` and ``.trap Address`` read a CONTEXT or a
KTRAP_FRAME from target memory and make it the register context: ``r``, ``k``, ``u``,
``dv`` and ``@reg`` answer from it (``Registers.override``) until ``.cxr`` with no
address, a resume or the next stop; nothing is written to the target. A trap frame
keeps only the volatile registers, RBP, RIP, RSP, the segment registers and the
flags; the others read as zero, as kd warns. ``.trap`` also takes a CONTEXT record,
which is what the simulated kernel's fault handlers get instead of a KTRAP_FRAME (so
the address ``kv`` shows works with either).
What it does not do: ``.ecxr`` (a user-mode exception context), ``.exr`` on 32-bit
targets, ``.cxr`` flags (``/w``, ``/f``).
Spec: the .exr, .cxr and .trap pages of the debugger documentation; winnt.h
EXCEPTION_RECORD64 and CONTEXT (AMD64); KTRAP_FRAME offsets as Vergilius lists them
for Windows 7 to 11 x64 (unchanged in those releases).
"""

from __future__ import annotations

import struct

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..registers import CONTEXT_SIZE, REGISTERS, format_registers
from ..registry import Category, command
from ..render import format_address
from ..stops import EXCEPTION_NAMES, StopKind

__all__ = ["exr", "cxr", "trap", "exception_record_lines", "trap_frame_context"]

_R = Category.REGISTERS

# EXCEPTION_RECORD64: Code, Flags, Record (u64), Address (u64), NumberParameters, pad,
# ExceptionInformation[15].
_EXCEPTION_RECORD = struct.Struct("<IIQQII15Q")
_MAX_PARAMETERS = 15
_ACCESS_VIOLATION = 0xC0000005
_ACCESS_KIND = {0: "read from", 1: "write to", 8: "execute non-executable"}

# KTRAP_FRAME (x64): where each register kd shows from a trap frame is kept.
KTRAP_FRAME_SIZE = 0x190
_TRAP_FIELDS = {
    "mxcsr": 0x2C, "rax": 0x30, "rcx": 0x38, "rdx": 0x40, "r8": 0x48, "r9": 0x50,
    "r10": 0x58, "r11": 0x60, "dr0": 0xD8, "dr1": 0xE0, "dr2": 0xE8, "dr3": 0xF0,
    "dr6": 0xF8, "dr7": 0x100, "ds": 0x130, "es": 0x132, "fs": 0x134, "gs": 0x136,
    "rbp": 0x158, "rip": 0x168, "cs": 0x170, "efl": 0x178, "rsp": 0x180, "ss": 0x188,
}
_TRAP_XMM = 0x70                   # Xmm0..Xmm5: the volatile ones
_CONTEXT_FLAGS = 0x30
_CONTEXT_AMD64 = 0x00100000
_CONTEXT_CONTROL_INTEGER_SEGMENTS = 0x0010000F
_TRAP_NOTE = ["NOTE: The trap frame does not contain all registers.",
              "Some register values may be zeroed or incorrect."]
_RESET = "Resetting default scope"


def exception_record_lines(code: int, flags: int, address: int, parameters: tuple[int, ...],
                           symbol: str | None) -> list[str]:
    """kd's .exr block for one exception record."""
    where = f" ({symbol})" if symbol else ""
    name = EXCEPTION_NAMES.get(code)
    lines = [f"ExceptionAddress: {format_address(address)}{where}",
             f"   ExceptionCode: {code:08x}" + (f" ({name})" if name else ""),
             f"  ExceptionFlags: {flags:08x}",
             f"NumberParameters: {len(parameters)}"]
    lines += [f"   Parameter[{i}]: {value:016x}" for i, value in enumerate(parameters)]
    if code == _ACCESS_VIOLATION and len(parameters) >= 2 and parameters[0] in _ACCESS_KIND:
        lines.append(f"Attempt to {_ACCESS_KIND[parameters[0]]} address {parameters[1]:016x}")
    return lines


def _read(ctx: CommandContext, address: int, size: int, what: str) -> bytes:
    try:
        data = ctx.session.read_virtual(address, size)
    except MemoryError:
        data = b""
    if len(data) < size:
        raise CommandError(f"Unable to read the {what} at {format_address(address)}")
    return data


@command(".exr", category=_R, usage=".exr Address  |  .exr -1")
def exr(ctx: CommandContext, args: Args) -> None:
    """Show an exception record (-1: the exception the target last reported)."""
    text = args.rest()
    if not text:
        raise CommandError("Numeric expression missing from '<EOL>'")
    at = ctx.evaluate(text)
    if at == (1 << 8 * ctx.session.pointer_size) - 1:          # -1, however it was written
        stop = ctx.session.stop
        if stop is None or stop.kind is not StopKind.EXCEPTION:
            raise CommandError("The last event was not an exception")
        record = stop.raw.message.u.ExceptionRecord if stop.raw is not None else None
        flags = record.ExceptionFlags if record is not None else 0
        code, address, parameters = stop.code, stop.exception_address, stop.parameters
    else:
        raw = _read(ctx, at, _EXCEPTION_RECORD.size, "exception record")
        code, flags, _, address, count, _, *information = _EXCEPTION_RECORD.unpack(raw)
        if count > _MAX_PARAMETERS:
            raise CommandError(f"The record at {format_address(at)} says it has {count} "
                               f"parameters (at most {_MAX_PARAMETERS}): not an exception record")
        parameters = tuple(information[:count])
    ctx.out.lines(exception_record_lines(code, flags, address, parameters,
                                         ctx.console.symbolizer(address)))
    ctx.out.row(code=code, flags=flags, address=address, parameters=list(parameters))


def trap_frame_context(frame: bytes) -> bytes:
    """A CONTEXT image holding what a KTRAP_FRAME keeps; the rest is zero."""
    context = bytearray(CONTEXT_SIZE)
    struct.pack_into("<I", context, _CONTEXT_FLAGS, _CONTEXT_CONTROL_INTEGER_SEGMENTS)
    for name, at in _TRAP_FIELDS.items():
        info = REGISTERS[name]
        context[info.offset: info.offset + info.size] = frame[at: at + info.size]
    xmm = REGISTERS["xmm0"].offset
    context[xmm: xmm + 6 * 16] = frame[_TRAP_XMM: _TRAP_XMM + 6 * 16]
    return bytes(context)


def _is_context(data: bytes) -> bool:
    """ContextFlags of an x64 CONTEXT: CONTEXT_AMD64 and only its own low bits."""
    flags, = struct.unpack_from("<I", data, _CONTEXT_FLAGS)
    return flags & 0x00F00000 == _CONTEXT_AMD64 and not flags & 0x000FFF80


def _show(ctx: CommandContext, lines: list[str] | None = None) -> None:
    regs = ctx.session.registers
    rip = regs.get("rip")
    ctx.out.lines((lines or []) + format_registers(regs) + ctx.console.location_lines(rip))
    ctx.out.row(**{name: regs.get(name) for name in (
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rip", "rsp", "rbp", "r8", "r9", "r10",
        "r11", "r12", "r13", "r14", "r15", "efl")})


def _record_address(ctx: CommandContext, args: Args) -> int | None:
    """The record's address, or None after ``.cxr``/``.trap`` alone went back to the
    stop's own registers."""
    text = args.rest()
    if text:
        return ctx.evaluate(text)
    ctx.session.registers.clear_override()
    ctx.out.line(_RESET)
    return None


@command(".cxr", category=_R, usage=".cxr [Address]")
def cxr(ctx: CommandContext, args: Args) -> None:
    """Use the CONTEXT record at Address as the register context (no address: the stop's own)."""
    at = _record_address(ctx, args)
    if at is None:
        return
    ctx.session.registers.override(_read(ctx, at, CONTEXT_SIZE, "context record"))
    _show(ctx)


@command(".trap", category=_R, usage=".trap [Address]")
def trap(ctx: CommandContext, args: Args) -> None:
    """Use the trap frame at Address as the register context (no address: the stop's own)."""
    at = _record_address(ctx, args)
    if at is None:
        return
    raw = _read(ctx, at, KTRAP_FRAME_SIZE, "trap frame")
    if _is_context(raw):
        ctx.session.registers.override(_read(ctx, at, CONTEXT_SIZE, "context record"))
        _show(ctx)
        return
    ctx.session.registers.override(trap_frame_context(raw))
    _show(ctx, _TRAP_NOTE)
