"""x64 stack unwinding from .pdata and UNWIND_INFO, and WinDbg's ``k``/``kn``/``kb`` text.

Spec: Microsoft's "x64 exception handling" (RUNTIME_FUNCTION, UNWIND_INFO, UNWIND_CODE,
the unwind procedure, chained info) and "x64 prolog and epilog" (the legal epilog
forms). One frame is unwound like this:

1. The function entry for RIP is looked up in the image's exception directory (for a
   return address, RIP - 1, since a call can be a function's last instruction).
2. No entry: a leaf function, the return address is at [RSP]. When that is not an
   address in a known image, a frame-pointer frame is tried ([RBP+8], RBP = [RBP]).
3. Frame 0, and a frame interrupted by a machine frame, may stop inside an epilog: the
   code from RIP is matched against ``add rsp,N`` / ``lea rsp,[fp+N]``, ``pop``s and a
   ``ret`` or ``jmp``, and the rest of the epilog is simulated.
4. Otherwise the unwind codes are undone in array order, skipping those whose prolog
   offset lies beyond RIP's offset into the function, then every code of each chained
   UNWIND_INFO; the return address is then popped (or a machine frame gives RIP/RSP).

Reads are few and small (a stack walk over a 115200-baud cable costs 87 us a byte):
every address a frame needs is known before any is read, so each frame reads its
stack slots in one or two ranges; UNWIND_INFO is read once and cached per image; an
exception directory in target memory is binary-searched entry by entry.

``format_stack`` renders WinDbg 10's x64 layout (``Child-SP``, ``RetAddr`` widened by
four columns, ``: Args to Child`` for ``kb``: the four home-space qwords above the
return address). Not here: inline frames, source lines, ``kp`` parameters, trap frames.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from iced_x86 import Code, Decoder, OpKind, Register

from .pdata import (GPRS, MAX_CHAIN, UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL, UWOP_PUSH_MACHFRAME, UWOP_PUSH_NONVOL,
                    UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR, UWOP_SET_FPREG, FunctionTable, Reader,
                    RuntimeFunction, UnwindError, UnwindInfo)
from .render import format_address

__all__ = [
    "Frame", "FunctionTable", "Reader", "RuntimeFunction", "Symbolizer", "UnwindError",
    "format_stack", "unwind",
]

log = logging.getLogger(__name__)

Symbolizer = Callable[[int], "str | None"]

_ICED_GPR64 = {getattr(Register, name.upper()): name for name in GPRS}
VOLATILE = ("rax", "rcx", "rdx", "r8", "r9", "r10", "r11")
_EPILOG_CODE_BYTES = 32


# -- unwinding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One stack frame: where it runs, its stack pointer after its prolog (WinDbg's
    Child-SP), the address it returns to, and the four home-space qwords above that
    return address (``kb``'s Args to Child). ``how`` says what found the return
    address: ``unwind`` (unwind data, epilogs included), ``leaf`` or ``frame-pointer``.
    ``registers`` holds the integer registers as far as they are known in this frame
    (volatile ones only in frame 0). ``machine_frame`` is where the interrupted RIP,
    CS, RFLAGS, RSP and SS lie when this frame's unwind data pushed a machine frame (an
    interrupt or trap handler's frame)."""

    number: int
    child_sp: int
    return_address: int
    instruction_pointer: int
    frame_pointer: int | None
    args: tuple[int, int, int, int]
    how: str
    registers: Mapping[str, int | None] = field(default_factory=dict, compare=False, repr=False)
    machine_frame: int | None = None


@dataclass(frozen=True)
class _Step:
    ip: int
    registers: dict[str, int | None]
    how: str
    args: tuple[int, int, int, int]
    exact: bool            # the caller's IP is an interrupted IP, not a return address
    machine_frame: int | None = None


class _Stack:
    """Stack memory read in the ranges a frame asks for, each byte at most once."""

    def __init__(self, read: Reader) -> None:
        self._read = read
        self._spans: list[tuple[int, bytes]] = []

    def _missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) no earlier read holds."""
        gaps = [(start, end)]
        for span_start, data in self._spans:
            span_end = span_start + len(data)
            cut = []
            for gap_start, gap_end in gaps:
                if span_end <= gap_start or gap_end <= span_start:
                    cut.append((gap_start, gap_end))
                    continue
                if gap_start < span_start:
                    cut.append((gap_start, span_start))
                if span_end < gap_end:
                    cut.append((span_end, gap_end))
            gaps = cut
        return gaps

    def fetch(self, wanted: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, size in sorted(wanted):
            for gap_start, gap_end in self._missing(start, start + size):
                if merged and gap_start <= merged[-1][1] + 16:
                    merged[-1][1] = max(merged[-1][1], gap_end)
                else:
                    merged.append([gap_start, gap_end])
        for start, end in merged:
            self._spans.append((start, bytes(self._read(start, end - start))))

    def qword(self, address: int) -> int | None:
        for start, data in self._spans:
            if start <= address and address + 8 <= start + len(data):
                return struct.unpack_from("<Q", data, address - start)[0]
        return None

    def args(self, address: int) -> tuple[int, int, int, int]:
        values = [self.qword(address + 8 * i) for i in range(4)]
        return tuple(v if v is not None else 0 for v in values)          # type: ignore[return-value]


def _caller_registers(registers: dict) -> dict:
    """The registers a caller can trust: a callee may have changed every volatile one."""
    caller = dict(registers)
    caller.update(dict.fromkeys(VOLATILE))
    return caller


def _return_from(slot: int, registers: dict, stack: _Stack, how: str) -> _Step | None:
    ip = stack.qword(slot)
    if ip is None:
        return None
    caller = _caller_registers(registers)
    caller["rsp"] = slot + 8
    return _Step(ip, caller, how, stack.args(slot + 8), exact=False)


def _epilog(read: Reader, table: FunctionTable, function: RuntimeFunction, info: UnwindInfo, ip: int,
            registers: dict, stack: _Stack) -> _Step | None:
    """Simulate the rest of an epilog when the code at ``ip`` is one; else None."""
    code = bytes(read(ip, _EPILOG_CODE_BYTES))
    decoder = Decoder(64, code, ip=ip)
    rsp = registers["rsp"]
    pops: list[str] = []
    released = 0                  # "ret N" also drops N bytes of arguments
    first = True
    frame_register = GPRS[info.frame_register] if info.frame_register else None
    while decoder.can_decode:
        instr = decoder.decode()
        if instr.is_invalid:
            return None
        c = instr.code
        if first and c in (Code.ADD_RM64_IMM8, Code.ADD_RM64_IMM32) and instr.op0_kind == OpKind.REGISTER \
                and instr.op0_register == Register.RSP:
            rsp = (rsp + instr.immediate(1)) & 0xFFFFFFFFFFFFFFFF
        elif first and c == Code.LEA_R64_M and instr.op0_register == Register.RSP \
                and frame_register is not None and _ICED_GPR64.get(instr.memory_base) == frame_register \
                and instr.memory_index == Register.NONE and registers.get(frame_register) is not None:
            rsp = registers[frame_register] + instr.memory_displacement
            rsp &= 0xFFFFFFFFFFFFFFFF
        elif c == Code.POP_R64:
            pops.append(_ICED_GPR64[instr.op0_register])
        elif c in (Code.RETNQ, Code.RETNQ_IMM16) or _epilog_jump(instr, _ranges(table, function, info)):
            released = instr.immediate(0) if c == Code.RETNQ_IMM16 else 0
            break
        else:
            return None
        first = False
    else:
        return None
    stack.fetch([(rsp, 8 * len(pops) + 40)])
    caller = dict(registers)
    for index, name in enumerate(pops):
        value = stack.qword(rsp + 8 * index)
        if value is None:
            return None
        caller[name] = value
    caller["rsp"] = rsp + 8 * len(pops)
    step = _return_from(caller["rsp"], caller, stack, "unwind")
    if step is not None:
        step.registers["rsp"] += released
    return step


def _ranges(table: FunctionTable, function: RuntimeFunction, info: UnwindInfo) -> list[RuntimeFunction]:
    """The function and the entries its chained UNWIND_INFO leads to."""
    ranges = [function]
    while info.chained is not None and len(ranges) < MAX_CHAIN:
        ranges.append(info.chained)
        info = table.unwind_info(info.chained.unwind_info)
        if info is None:
            break
    return ranges


def _epilog_jump(instr, ranges: list[RuntimeFunction]) -> bool:
    """A jump that may end an epilog: to outside the function (a cold part jumping back
    to the body it is chained to is not leaving it), or through memory with ModRM mod 00
    (``jmp qword ptr [rip+x]``)."""
    if instr.code in (Code.JMP_REL32_64, Code.JMP_REL8_64):
        return not any(instr.near_branch_target in r for r in ranges)
    if instr.code == Code.JMP_RM64 and instr.op0_kind == OpKind.MEMORY:
        return instr.memory_displ_size == 0 or instr.is_ip_rel_memory_operand
    return False


def _unwind_codes(table: FunctionTable, function: RuntimeFunction, info: UnwindInfo, ip: int,
                  registers: dict, stack: _Stack) -> _Step | None:
    chain = [info]
    while chain[-1].chained is not None and len(chain) < MAX_CHAIN:
        parent = table.unwind_info(chain[-1].chained.unwind_info)
        if parent is None:
            return None
        chain.append(parent)
    offset = ip - function.begin
    applied = [(code, link) for depth, link in enumerate(chain) for code in link.codes
               if depth or code.offset <= offset]
    rsp = registers["rsp"]
    base = rsp
    for code, link in applied:
        if code.op == UWOP_SET_FPREG:
            frame = registers.get(GPRS[link.frame_register])
            if frame is None:
                return None
            base = frame - 16 * link.frame_offset
            break
    loads: list[tuple[str, int]] = []
    cursor = rsp
    machine_frame = None
    for code, link in applied:
        op = code.op
        if op == UWOP_PUSH_NONVOL:
            loads.append((GPRS[code.info], cursor))
            cursor += 8
        elif op in (UWOP_ALLOC_SMALL, UWOP_ALLOC_LARGE):
            cursor += code.value
        elif op == UWOP_SET_FPREG:
            cursor = base
        elif op in (UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR):
            loads.append((GPRS[code.info], base + code.value))
        elif op == UWOP_PUSH_MACHFRAME:
            machine_frame = cursor + (8 if code.info else 0)
            break
    top = machine_frame if machine_frame is not None else cursor
    stack.fetch([(address, 8) for _, address in loads] + [(top, 40)])
    caller = dict(registers)
    for name, address in loads:
        value = stack.qword(address)
        if value is None:
            return None
        caller[name] = value
    if machine_frame is None:
        return _return_from(cursor, caller, stack, "unwind")
    ip_value, old_rsp = stack.qword(machine_frame), stack.qword(machine_frame + 24)
    if ip_value is None or old_rsp is None:
        return None
    caller = _caller_registers(caller)
    caller["rsp"] = old_rsp
    return _Step(ip_value, caller, "unwind", stack.args(machine_frame), exact=True,
                 machine_frame=machine_frame)


def _step(ip: int, exact: bool, registers: dict, stack: _Stack, read: Reader,
          function_for: Callable[[int], FunctionTable | None]) -> _Step | None:
    """The caller's state, or None when nothing sensible can be said."""
    lookup = ip if exact else ip - 1
    table = function_for(lookup)
    function = table.lookup(lookup) if table is not None else None
    if function is not None:
        info = table.unwind_info(function.unwind_info)
        if info is not None:
            # At a function's first byte (a breakpoint on it) no epilog can be running
            # and no unwind code applies: the return address is at rsp either way, so
            # the code need not be read. A chained fragment may begin with an epilog.
            if exact and not (ip == function.begin and info.chained is None):
                found = _epilog(read, table, function, info, ip, registers, stack)
                if found is not None:
                    return found
            return _unwind_codes(table, function, info, ip, registers, stack)

    def plausible(step: _Step | None) -> bool:
        return step is not None and step.ip != 0 and function_for(step.ip - 1) is not None

    rsp = registers["rsp"]
    stack.fetch([(rsp, 40)])
    leaf = _return_from(rsp, registers, stack, "leaf")
    if plausible(leaf):
        return leaf
    rbp = registers.get("rbp")
    if rbp is not None and rbp >= rsp:
        stack.fetch([(rbp, 48)])
        saved = stack.qword(rbp)
        by_frame = _return_from(rbp + 8, registers, stack, "frame-pointer")
        if by_frame is not None and saved is not None:
            by_frame.registers["rbp"] = saved
            if plausible(by_frame):
                return by_frame
    return leaf


def unwind(rip: int, rsp: int, rbp: int, *, read: Reader,
           function_for: Callable[[int], FunctionTable | None], max_frames: int = 256,
           registers: Mapping[str, int] | None = None) -> list[Frame]:
    """Walk the stack from a stopped CPU.

    ``function_for(address)`` gives the FunctionTable of the image holding ``address``
    (None outside every known image); ``registers`` may add other nonvolatile
    registers (``rbx``, ``r12``...) for frame registers other than RBP. The walk ends at
    a return address of 0, one outside every known image, a stack pointer that does
    not move up, unreadable memory, or ``max_frames``."""
    state: dict[str, int | None] = dict.fromkeys(GPRS)
    for name, value in (registers or {}).items():
        if name.lower() in state:
            state[name.lower()] = value
    state["rsp"], state["rbp"] = rsp, rbp
    stack = _Stack(read)
    frames: list[Frame] = []
    ip, exact = rip, True
    for number in range(max_frames):
        sp = state["rsp"]
        step = _step(ip, exact, state, stack, read, function_for)
        if step is None:
            frames.append(Frame(number, sp, 0, ip, state["rbp"], stack.args(sp + 8), "leaf", dict(state)))
            break
        frames.append(Frame(number, sp, step.ip, ip, state["rbp"], step.args, step.how, dict(state),
                            step.machine_frame))
        caller_sp = step.registers["rsp"]
        moved = caller_sp != sp if step.exact else caller_sp > sp
        lookup = step.ip if step.exact else step.ip - 1
        if step.ip == 0 or not moved or function_for(lookup) is None:
            break
        ip, exact, state = step.ip, step.exact, step.registers
    return frames


# -- WinDbg text ---------------------------------------------------------------------------


def _call_site(ip: int, symbolizer: Symbolizer | None) -> str:
    name = symbolizer(ip) if symbolizer is not None else None
    if name:
        return name
    return f"0x{ip:x}" if ip < 1 << 32 else f"0x{format_address(ip)}"


def format_stack(frames: list[Frame], *, symbolizer: Symbolizer | None, numbered: bool = False,
                 args: bool = False) -> list[str]:
    """``k`` / ``kn`` / ``kb`` / ``kbn`` lines (header first) in WinDbg 10's x64 layout."""
    if args:
        header = f"{'Child-SP':<18}{'RetAddr':<22}: {'Args to Child':<71} : Call Site"
    else:
        header = f"{'Child-SP':<18}{'RetAddr':<22}Call Site"
    lines = [(" # " + header) if numbered else header]
    for frame in frames:
        row = f"{format_address(frame.child_sp)} {format_address(frame.return_address)}     "
        if args:
            row += ": " + " ".join(format_address(v) for v in frame.args) + " : "
        row += _call_site(frame.instruction_pointer, symbolizer)
        lines.append(f"{frame.number:02x} {row}" if numbered else row)
    return lines
