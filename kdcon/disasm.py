"""x86/x64 disassembly in WinDbg's text: the data behind ``u``, ``ub``, ``uf`` and ``uf /c``.

Instructions are decoded by iced-x86 and formatted with its MASM formatter set up as
WinDbg's disassembler writes: lowercase, hexadecimal with an ``h`` suffix and a leading
``0`` before a letter (``28h``, ``0FFFFFFFFh``), 0-9 in decimal, a size keyword on every
memory operand (``qword ptr [rsp+8]``), no space after commas. Where WinDbg writes an
address it writes it its own way, which a formatter option cannot express, so those
operands are built here: branch targets and RIP-relative or absolute memory operands
become ``module!name+0x10 (fffff803`1a2b3c50)`` (or the bare address without a symbol),
pointer-sized immediates that name a symbol become ``offset name (address)``, string
instructions show their memory operands (``rep stos byte ptr [rdi]``), 64-bit
floating-point operands are ``mmword ptr`` and prefetch operands carry no size.

Lines follow WinDbg 10's layout, checked against published ``u`` and ``uf`` transcripts:
the address, one space, the instruction bytes in a 16-column field, the mnemonic in an
8-column field, the operands; bytes longer than the field push the mnemonic right and
take the room from its field, leaving at least one space. Direct jumps end in
``  Branch``. A byte that does not decode is one ``???`` instruction; memory that cannot
be read ends a listing with ``<address> ??              ???``. Label lines
(``nt!KeBugCheckEx:``) open a listing and mark every instruction that starts a symbol;
``uf`` prints one per basic block, blocks separated by a blank line.

Not here: reading the target, evaluating ``u`` arguments, the effective-address
annotation WinDbg adds for the current instruction, source lines, DML. The caller
supplies a ``Reader`` and a ``Symbolizer``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from iced_x86 import (Decoder, DecoderError, FlowControl, FormatMnemonicOptions, Formatter,
                      FormatterSyntax, MemorySize, MemorySizeOptions, Mnemonic, OpKind, Register)

from .render import format_address

__all__ = [
    "Instruction", "Reader", "Symbolizer", "decode", "format_address", "format_instruction",
    "unassemble", "unassemble_back", "unassemble_function",
]

log = logging.getLogger(__name__)

Symbolizer = Callable[[int], "str | None"]
Reader = Callable[[int, int], bytes]

MAX_INSTRUCTION = 15
# uf gives up on a "function" larger than this many instructions (a runaway flow).
MAX_FUNCTION_INSTRUCTIONS = 20_000
_CHUNK = 256

_BRANCH_FLOWS = {FlowControl.UNCONDITIONAL_BRANCH, FlowControl.INDIRECT_BRANCH,
                 FlowControl.CONDITIONAL_BRANCH}
_NEAR_BRANCHES = {OpKind.NEAR_BRANCH16, OpKind.NEAR_BRANCH32, OpKind.NEAR_BRANCH64}
# String instructions' implicit memory operands: [rsi] may take a segment override, [rdi] not.
_STRING_SOURCE = {OpKind.MEMORY_SEG_SI: "si", OpKind.MEMORY_SEG_ESI: "esi", OpKind.MEMORY_SEG_RSI: "rsi"}
_STRING_DEST = {OpKind.MEMORY_ESDI: "di", OpKind.MEMORY_ESEDI: "edi", OpKind.MEMORY_ESRDI: "rdi"}
_STRING_KINDS = {**_STRING_SOURCE, **_STRING_DEST}
_SIZE_KEYWORD = {MemorySize.UINT8: "byte ptr", MemorySize.UINT16: "word ptr",
                 MemorySize.UINT32: "dword ptr", MemorySize.UINT64: "qword ptr"}
# WinDbg names a string instruction without its size letter; the operands carry the size.
_STRING_NAMES = {
    **dict.fromkeys((Mnemonic.MOVSB, Mnemonic.MOVSW, Mnemonic.MOVSD, Mnemonic.MOVSQ), "movs"),
    **dict.fromkeys((Mnemonic.CMPSB, Mnemonic.CMPSW, Mnemonic.CMPSD, Mnemonic.CMPSQ), "cmps"),
    **dict.fromkeys((Mnemonic.SCASB, Mnemonic.SCASW, Mnemonic.SCASD, Mnemonic.SCASQ), "scas"),
    **dict.fromkeys((Mnemonic.LODSB, Mnemonic.LODSW, Mnemonic.LODSD, Mnemonic.LODSQ), "lods"),
    **dict.fromkeys((Mnemonic.STOSB, Mnemonic.STOSW, Mnemonic.STOSD, Mnemonic.STOSQ), "stos"),
    **dict.fromkeys((Mnemonic.INSB, Mnemonic.INSW, Mnemonic.INSD), "ins"),
    **dict.fromkeys((Mnemonic.OUTSB, Mnemonic.OUTSW, Mnemonic.OUTSD), "outs"),
}
# WinDbg calls a 64-bit floating-point or packed operand "mmword" (``movsd xmm0,mmword ptr [r8]``)
# where MASM says "qword".
_MMWORD = {MemorySize.FLOAT64, MemorySize.PACKED64_FLOAT16, MemorySize.PACKED64_FLOAT32,
           MemorySize.PACKED64_INT8, MemorySize.PACKED64_UINT8, MemorySize.PACKED64_INT16,
           MemorySize.PACKED64_UINT16, MemorySize.PACKED64_INT32, MemorySize.PACKED64_UINT32}
# WinDbg prints the prefetch hints' operand bare (``prefetchw [rdi]``).
_NO_SIZE = {Mnemonic.PREFETCH, Mnemonic.PREFETCHW, Mnemonic.PREFETCHWT1, Mnemonic.PREFETCHNTA,
            Mnemonic.PREFETCHT0, Mnemonic.PREFETCHT1, Mnemonic.PREFETCHT2}


def _formatter(memory_size: int) -> Formatter:
    formatter = Formatter(FormatterSyntax.MASM)
    formatter.hex_prefix = ""
    formatter.hex_suffix = "h"
    formatter.uppercase_hex = True
    formatter.add_leading_zero_to_hex_numbers = True
    formatter.small_hex_numbers_in_decimal = True
    formatter.memory_size_options = memory_size
    formatter.rip_relative_addresses = False
    formatter.show_branch_size = False
    formatter.branch_leading_zeros = False
    formatter.space_after_operand_separator = False
    formatter.masm_add_ds_prefix32 = False
    return formatter


_FORMATTER = _formatter(MemorySizeOptions.ALWAYS)
_BARE_FORMATTER = _formatter(MemorySizeOptions.NEVER)


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction; ``valid`` is False for a byte that does not decode."""

    address: int
    length: int
    raw: bytes
    mnemonic: str
    operands: str
    branch_target: int | None = None
    is_call: bool = False
    is_return: bool = False
    is_branch: bool = False
    is_conditional: bool = False
    memory_address: int | None = None
    valid: bool = True
    stops_flow: bool = False

    @property
    def text(self) -> str:
        """Mnemonic and operands as WinDbg shows them (``mov     qword ptr [rsp+8],rcx``)."""
        if not self.operands:
            return self.mnemonic
        return f"{self.mnemonic:<7} {self.operands}"

    @property
    def end(self) -> int:
        return self.address + self.length


def _symbolic(address: int, symbolizer: Symbolizer | None, pointer_size: int) -> str:
    text = format_address(address, pointer_size)
    name = symbolizer(address) if symbolizer is not None else None
    return f"{name} ({text})" if name else text


def _string_operand(instr, kind: int, size: str) -> str:
    segment = ""
    if kind in _STRING_SOURCE and instr.segment_prefix not in (Register.NONE, Register.DS):
        segment = _FORMATTER.format_register(instr.segment_prefix) + ":"
    return f"{size} {segment}[{_STRING_KINDS[kind]}]"


def _string_operands(instr) -> str:
    size = _SIZE_KEYWORD.get(instr.memory_size, "byte ptr")
    parts = []
    for index in range(instr.op_count):
        kind = instr.op_kind(index)
        if kind == OpKind.REGISTER:
            # stos/lods/scas name their accumulator through the size alone; ins/outs keep dx.
            register = instr.op_register(index)
            if register == Register.DX:
                parts.append("dx")
            continue
        parts.append(_string_operand(instr, kind, size))
    return ",".join(parts)


def _is_string(instr) -> bool:
    """A string instruction (SSE's movsd and cmpsd share their mnemonics)."""
    return instr.mnemonic in _STRING_NAMES and any(instr.op_kind(i) in _STRING_KINDS for i in range(instr.op_count))


def _absolute_memory(instr) -> int | None:
    if instr.is_ip_rel_memory_operand:
        return instr.ip_rel_memory_address
    if instr.memory_base == Register.NONE and instr.memory_index == Register.NONE:
        if instr.segment_prefix in (Register.FS, Register.GS):
            return None
        return instr.memory_displacement
    return None


def _operands(instr, bitness: int, symbolizer: Symbolizer | None) -> tuple[str, int | None]:
    """WinDbg's operand text and the absolute memory address an operand names, if any."""
    pointer_size = 8 if bitness == 64 else 4
    if _is_string(instr):
        return _string_operands(instr), None
    formatter = _BARE_FORMATTER if instr.mnemonic in _NO_SIZE else _FORMATTER
    parts = []
    memory_address = None
    for index in range(formatter.operand_count(instr)):
        text = formatter.format_operand(instr, index)
        op = formatter.get_instruction_operand(instr, index)
        kind = instr.op_kind(op) if op is not None else None
        if kind in _NEAR_BRANCHES:
            text = _symbolic(instr.near_branch_target, symbolizer, pointer_size)
        elif kind == OpKind.MEMORY:
            if instr.memory_size in _MMWORD and text.startswith("qword ptr"):
                text = "mmword" + text[len("qword"):]
            address = _absolute_memory(instr)
            if address is not None:
                memory_address = address
                prefix = text[:text.index("[")]
                text = f"{prefix}[{_symbolic(address, symbolizer, pointer_size)}]"
        elif kind == OpKind.IMMEDIATE64 or (kind == OpKind.IMMEDIATE32 and bitness == 32):
            name = symbolizer(instr.immediate(op)) if symbolizer is not None else None
            if name:
                text = f"offset {name} ({format_address(instr.immediate(op), pointer_size)})"
        parts.append(text)
    return ",".join(parts), memory_address


def _mnemonic(instr) -> str:
    if not _is_string(instr):
        return _FORMATTER.format_mnemonic(instr, FormatMnemonicOptions.NONE)
    prefixes = _FORMATTER.format_mnemonic(instr, FormatMnemonicOptions.NO_MNEMONIC)
    return f"{prefixes} {_STRING_NAMES[instr.mnemonic]}".strip()


def _undecodable(address: int, raw: bytes) -> Instruction:
    return Instruction(address=address, length=1, raw=raw[:1], mnemonic="???", operands="",
                       valid=False, stops_flow=True)


def _decode_at(code: bytes, offset: int, address: int, bitness: int,
               symbolizer: Symbolizer | None) -> Instruction | None:
    """The instruction at ``code[offset:]``; None when the bytes end inside it."""
    decoder = Decoder(bitness, code[offset:offset + MAX_INSTRUCTION], ip=address)
    instr = decoder.decode()
    if instr.is_invalid:
        if decoder.last_error == DecoderError.NO_MORE_BYTES and len(code) - offset < MAX_INSTRUCTION:
            return None
        return _undecodable(address, code[offset:])
    flow = instr.flow_control
    operands, memory_address = _operands(instr, bitness, symbolizer)
    target = None
    if instr.op_count and instr.op_kind(0) in _NEAR_BRANCHES:
        target = instr.near_branch_target
    return Instruction(
        address=address, length=instr.len, raw=bytes(code[offset:offset + instr.len]),
        mnemonic=_mnemonic(instr), operands=operands, branch_target=target,
        is_call=flow in (FlowControl.CALL, FlowControl.INDIRECT_CALL),
        is_return=flow == FlowControl.RETURN,
        is_branch=flow in _BRANCH_FLOWS,
        is_conditional=flow == FlowControl.CONDITIONAL_BRANCH,
        memory_address=memory_address,
        stops_flow=flow in (FlowControl.RETURN, FlowControl.UNCONDITIONAL_BRANCH,
                            FlowControl.INDIRECT_BRANCH, FlowControl.EXCEPTION),
    )


def decode(code: bytes, address: int, *, symbolizer: Symbolizer | None = None,
           bitness: int = 64) -> list[Instruction]:
    """Every instruction in ``code`` from its start; an instruction cut off by the end of
    ``code`` is left out, an undecodable byte is a one-byte ``???``."""
    out: list[Instruction] = []
    offset = 0
    while offset < len(code):
        instr = _decode_at(code, offset, address + offset, bitness, symbolizer)
        if instr is None:
            break
        out.append(instr)
        offset += instr.length
    return out


def format_instruction(insn: Instruction, pointer_size: int = 8) -> str:
    """One WinDbg line: ``fffff803`1a2b3c45 4883ec28        sub     rsp,28h``."""
    address = format_address(insn.address, pointer_size)
    raw = insn.raw.hex()
    if len(raw) <= 15:
        body = f"{raw:<15} {insn.text}"
    else:
        head = f"{raw} {insn.mnemonic}"
        body = f"{head:<24} {insn.operands}" if insn.operands else head
    line = f"{address} {body}".rstrip()
    if insn.is_branch and insn.branch_target is not None:
        line += "  Branch"
    return line


def unreadable_line(address: int, pointer_size: int = 8) -> str:
    """WinDbg's line for code it could not read."""
    return f"{format_address(address, pointer_size)} {'??':<15} ???"


class _Code:
    """Target bytes fetched on demand in aligned chunks and kept for one command."""

    def __init__(self, read: Reader) -> None:
        self._read = read
        self._chunks: dict[int, bytes] = {}

    def _chunk(self, base: int) -> bytes:
        data = self._chunks.get(base)
        if data is None:
            data = bytes(self._read(base, _CHUNK)[:_CHUNK])
            self._chunks[base] = data
        return data

    def bytes_at(self, address: int, size: int) -> bytes:
        """Up to ``size`` readable bytes from ``address`` (fewer where memory ends)."""
        out = bytearray()
        while len(out) < size:
            here = address + len(out)
            base = here - here % _CHUNK
            chunk = self._chunk(base)
            piece = chunk[here - base:here - base + size - len(out)]
            out += piece
            if len(chunk) < _CHUNK or not piece:
                break
        return bytes(out)


def _instruction_at(code: _Code, address: int, bitness: int,
                    symbolizer: Symbolizer | None) -> Instruction | None:
    """The instruction at ``address``, or None when its bytes cannot be read."""
    data = code.bytes_at(address, MAX_INSTRUCTION)
    return _decode_at(data, 0, address, bitness, symbolizer) if data else None


def _exact(name: str | None) -> bool:
    return bool(name) and "+" not in name


def _listing(instructions: Iterable[Instruction], *, symbolizer: Symbolizer | None,
             label: str | None, pointer_size: int) -> list[str]:
    lines: list[str] = []
    for index, instr in enumerate(instructions):
        if index == 0:
            name = label if label is not None else (symbolizer(instr.address) if symbolizer else None)
            if name:
                lines.append(f"{name}:")
        elif symbolizer is not None:
            name = symbolizer(instr.address)
            if _exact(name):
                lines.append(f"{name}:")
        lines.append(format_instruction(instr, pointer_size))
    return lines


def unassemble(read: Reader, start: int, count: int = 8, *, symbolizer: Symbolizer | None = None,
               label: str | None = None, bitness: int = 64) -> tuple[list[str], int]:
    """``u``: ``count`` instructions from ``start`` as WinDbg lines, and where the next
    ``u`` continues. ``label`` replaces the opening label line's symbol."""
    pointer_size = 8 if bitness == 64 else 4
    code = _Code(read)
    instructions: list[Instruction] = []
    address = start
    failed = False
    while len(instructions) < count:
        instr = _instruction_at(code, address, bitness, symbolizer)
        if instr is None:
            failed = True
            break
        instructions.append(instr)
        address = instr.end
    lines = _listing(instructions, symbolizer=symbolizer, label=label, pointer_size=pointer_size)
    if failed:
        if not instructions and symbolizer is not None and label is None:
            name = symbolizer(address)
            if name:
                lines.append(f"{name}:")
        lines.append(unreadable_line(address, pointer_size))
    return lines, address


def _window(read: Reader, end: int, size: int) -> tuple[int, bytes]:
    """The longest readable run of bytes that ends at ``end``, at most ``size`` long."""
    start = end - size
    while start < end:
        data = bytes(read(start, end - start))
        if len(data) == end - start:
            return start, data
        # A hole at the start (an unmapped page before the code): try from the next page.
        start = (start | 0xFFF) + 1
    return end, b""


def _backward_chain(code: bytes, base: int, count: int, bitness: int) -> list[int]:
    """Offsets of the ``count`` instructions that end exactly at ``len(code)``.

    Every start offset is decoded; the streams that land on the end vote for the
    boundaries they pass through, and the chain is built backwards from the end
    through the best-supported predecessor, as x86 streams resynchronise. Streams
    through undecodable bytes (one-byte ``???``) count only when no clean one lands."""
    size = len(code)
    steps: list[tuple[int, bool] | None] = []
    for offset in range(size):
        instr = _decode_at(code, offset, base + offset, bitness, None)
        steps.append(None if instr is None else (offset + instr.length, instr.valid))
    for clean in (True, False):
        following = [s[0] if s is not None and (s[1] or not clean) else None for s in steps]
        chain = _vote(following, size, count)
        if len(chain) == count or not clean and chain:
            return chain
    return chain


def _vote(following: list[int | None], size: int, count: int) -> list[int]:
    lands = [False] * (size + 1)
    lands[size] = True
    for offset in range(size - 1, -1, -1):
        nxt = following[offset]
        lands[offset] = nxt is not None and nxt <= size and lands[nxt]
    votes = [0] * (size + 1)
    for offset in range(size):
        if not lands[offset]:
            continue
        position = offset
        while position < size:
            votes[position] += 1
            position = following[position]
    chain: list[int] = []
    current = size
    while len(chain) < count:
        candidates = [o for o in range(max(0, current - MAX_INSTRUCTION), current)
                      if lands[o] and following[o] == current]
        if not candidates:
            break
        best = max(candidates, key=lambda o: (votes[o], -o))
        chain.append(best)
        current = best
    chain.reverse()
    return chain


def unassemble_back(read: Reader, end: int, count: int = 8, *, symbolizer: Symbolizer | None = None,
                    bitness: int = 64) -> list[str]:
    """``ub``: the ``count`` instructions that end exactly at ``end``."""
    pointer_size = 8 if bitness == 64 else 4
    start, code = _window(read, end, count * MAX_INSTRUCTION)
    offsets = _backward_chain(code, start, count, bitness)
    instructions = [_decode_at(code, o, start + o, bitness, symbolizer) for o in offsets]
    if not instructions:
        return [unreadable_line(end - 1, pointer_size)] if not code else []
    return _listing(instructions, symbolizer=symbolizer, label=None, pointer_size=pointer_size)


def _follows(target: int, entry_name: str | None, symbolizer: Symbolizer | None,
             function_range: tuple[int, int] | None) -> bool:
    """Whether ``uf`` follows a branch to ``target`` (a jump to another function's entry
    is a tail call, not part of this function)."""
    if function_range is not None:
        return function_range[0] <= target < function_range[1]
    if symbolizer is not None:
        name = symbolizer(target)
        if _exact(name) and name != entry_name:
            return False
    return True


def _function_instructions(code: _Code, start: int, bitness: int, symbolizer: Symbolizer | None,
                           function_range: tuple[int, int] | None) -> tuple[dict[int, Instruction | None], set[int]]:
    """Every instruction reachable from ``start`` (None where the code could not be
    read) and the addresses that begin a basic block."""
    entry_name = symbolizer(start) if symbolizer is not None else None
    found: dict[int, Instruction | None] = {}
    block_starts = {start}
    work = [start]
    while work and len(found) < MAX_FUNCTION_INSTRUCTIONS:
        address = work.pop()
        while address not in found and len(found) < MAX_FUNCTION_INSTRUCTIONS:
            instr = _instruction_at(code, address, bitness, symbolizer)
            found[address] = instr
            if instr is None:
                break
            target = instr.branch_target
            if instr.is_branch and target is not None and _follows(target, entry_name, symbolizer, function_range):
                block_starts.add(target)
                work.append(target)
            if instr.stops_flow:
                break
            if instr.is_conditional:
                block_starts.add(instr.end)
            address = instr.end
    return found, block_starts


def _blocks(found: dict[int, Instruction | None], block_starts: set[int]) -> list[list[int]]:
    blocks: list[list[int]] = []
    previous: Instruction | None = None
    for address in sorted(found):
        instr = found[address]
        if (not blocks or address in block_starts or previous is None
                or previous.end != address or previous.stops_flow):
            blocks.append([])
        blocks[-1].append(address)
        previous = instr
    return blocks


def _call_target(instr: Instruction, read: Reader, bitness: int) -> int | None:
    if instr.branch_target is not None:
        return instr.branch_target
    if instr.memory_address is not None:
        size = 8 if bitness == 64 else 4
        data = read(instr.memory_address, size)
        if len(data) == size:
            return int.from_bytes(data, "little")
    return None


def unassemble_function(read: Reader, start: int, *, symbolizer: Symbolizer | None = None,
                        function_range: tuple[int, int] | None = None, calls_only: bool = False,
                        bitness: int = 64) -> list[str]:
    """``uf`` (and ``uf /c`` with ``calls_only``): the function's basic blocks, found by
    following its branches from ``start``, in address order.

    ``function_range`` (start, end) limits which branch targets are followed; without
    it a jump to the exact start of another symbol is taken as a tail call."""
    pointer_size = 8 if bitness == 64 else 4
    code = _Code(read)
    found, block_starts = _function_instructions(code, start, bitness, symbolizer, function_range)
    if calls_only:
        return _calls_listing(found, start, read, symbolizer, bitness)
    lines: list[str] = []
    for block in _blocks(found, block_starts):
        if lines:
            lines.append("")
        name = symbolizer(block[0]) if symbolizer is not None else None
        if name:
            lines.append(f"{name}:")
        for address in block:
            instr = found[address]
            lines.append(format_instruction(instr, pointer_size) if instr is not None
                         else unreadable_line(address, pointer_size))
    return lines


def _calls_listing(found: dict[int, Instruction | None], start: int, read: Reader,
                   symbolizer: Symbolizer | None, bitness: int) -> list[str]:
    pointer_size = 8 if bitness == 64 else 4
    lines = [_symbolic(start, symbolizer, pointer_size)]
    for address in sorted(found):
        instr = found[address]
        if instr is None or not instr.is_call:
            continue
        target = _call_target(instr, read, bitness)
        callee = _symbolic(target, symbolizer, pointer_size) if target is not None else instr.operands
        lines.append(f"  {_symbolic(address, symbolizer, pointer_size)}:")
        lines.append(f"    call to {callee}")
    return lines
