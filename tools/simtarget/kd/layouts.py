"""Machine registers to the wire layouts, and stops to state-change payloads.

What it does: turns the machine's register dictionaries into the x64 CONTEXT (1232
bytes) and KSPECIAL_REGISTERS (224 bytes) and back, and builds the STATE_CHANGE64
payloads a real x64 kernel sends: Exception (breakpoint, single step, break-in,
bugcheck, faults) with the AMD64 control report, and LoadSymbols / UnloadSymbols.
What it does not do: decide when to send them (session.py).
Spec: kd-protocol.md §4.2-§4.7 (state change, control report), §7.3 (CONTEXT,
KSPECIAL_REGISTERS), simulated-target.md §5.11.
"""

from __future__ import annotations

from typing import Any, Mapping

from construct import Container, ListContainer

from kdcon.protocol.constants import ReportFlags
from kdcon.protocol.context import (
    CONTEXT_ALL,
    CONTEXT_AMD64,
    CONTEXT_AMD64_SIZE,
    KGDT64_R0_CODE,
    KGDT64_R3_CMTEB,
    KGDT64_R3_DATA,
    KSPECIAL_REGISTERS_AMD64,
    KSPECIAL_REGISTERS_AMD64_SIZE,
    RPL_MASK,
)
from kdcon.protocol.messages import (
    build_exception_state_change,
    build_load_symbols_state_change,
)

__all__ = [
    "build_context",
    "parse_context",
    "build_special_registers",
    "parse_special_registers",
    "control_report",
    "exception_payload",
    "load_symbols_payload",
    "PROCESSOR_LEVEL",
]

PROCESSOR_LEVEL = 6  # a family-6 x64 CPU, as the capture's ProcessorLevel
_FLAT_DATA = KGDT64_R3_DATA | RPL_MASK  # what x64 Windows loads into DS/ES
_TEB_SEGMENT = KGDT64_R3_CMTEB | RPL_MASK

_CONTEXT_TEMPLATE = CONTEXT_AMD64.parse(bytes(CONTEXT_AMD64_SIZE))
_SPECIAL_TEMPLATE = KSPECIAL_REGISTERS_AMD64.parse(bytes(KSPECIAL_REGISTERS_AMD64_SIZE))
_DESCRIPTORS = ("Gdtr", "Idtr")


def _scalars(container: Container) -> dict[str, int]:
    return {k: v for k, v in container.items() if isinstance(v, int) and not k.startswith("_")}


def build_context(registers: Mapping[str, Any]) -> bytes:
    """An x64 CONTEXT from register names as CONTEXT spells them (Rip, Rsp, EFlags, ...).

    ``Xmm`` (16 integers) fills FltSave's XMM registers. Unknown names are ignored;
    missing ones are zero, except ContextFlags, which says which parts are valid.
    """
    context = Container(_CONTEXT_TEMPLATE)
    context["ContextFlags"] = CONTEXT_ALL
    for name, value in registers.items():
        if name in context and isinstance(context[name], int):
            context[name] = value
    xmm = registers.get("Xmm")
    if xmm:
        save = Container(context["FltSave"])
        save["MxCsr"] = registers.get("MxCsr", save["MxCsr"])
        save["XmmRegisters"] = ListContainer(
            Container(Low=v & 0xFFFFFFFFFFFFFFFF, High=v >> 64) for v in xmm)
        context["FltSave"] = save
    return CONTEXT_AMD64.build(context)


def parse_context(data: bytes) -> dict[str, Any]:
    """The integer fields of an x64 CONTEXT by name, and ``Xmm`` (16 128-bit values)."""
    parsed = CONTEXT_AMD64.parse(data)
    out: dict[str, Any] = _scalars(parsed)
    out["Xmm"] = tuple(r.High << 64 | r.Low for r in parsed.FltSave.XmmRegisters)
    return out


def build_special_registers(registers: Mapping[str, int]) -> bytes:
    """KSPECIAL_REGISTERS (§7.3); descriptors as GdtrBase/GdtrLimit, IdtrBase/IdtrLimit."""
    special = Container(_SPECIAL_TEMPLATE)
    for name in _DESCRIPTORS:
        special[name] = Container(Pad=ListContainer([0, 0, 0]),
                                  Limit=registers.get(name + "Limit", 0),
                                  Base=registers.get(name + "Base", 0))
    for name, value in registers.items():
        if name in special and isinstance(special[name], int):
            special[name] = value
    return KSPECIAL_REGISTERS_AMD64.build(special)


def parse_special_registers(data: bytes) -> dict[str, int]:
    parsed = KSPECIAL_REGISTERS_AMD64.parse(data)
    out = _scalars(parsed)
    for name in _DESCRIPTORS:
        out[name + "Limit"] = parsed[name].Limit
        out[name + "Base"] = parsed[name].Base
    return out


def control_report(registers: Mapping[str, int], code: bytes) -> dict[str, Any]:
    """The AMD64 control report (§4.6) from the registers and the bytes at the PC.

    ``code`` must already have armed breakpoints' 0xCC replaced by the original bytes.
    """
    cs = registers.get("SegCs", KGDT64_R0_CODE) or KGDT64_R0_CODE
    flags = ReportFlags.REPORT_INCLUDES_SEGS
    if cs == KGDT64_R0_CODE:
        flags |= ReportFlags.REPORT_STANDARD_CS
    stream = code[:16]
    return {"Amd64ControlReport": dict(
        Dr6=registers.get("Dr6", 0), Dr7=registers.get("Dr7", 0),
        EFlags=registers.get("EFlags", 0), InstructionCount=len(stream), ReportFlags=flags,
        InstructionStream=stream.ljust(16, b"\0"), SegCs=cs,
        SegDs=registers.get("SegDs", _FLAT_DATA) or _FLAT_DATA,
        SegEs=registers.get("SegEs", _FLAT_DATA) or _FLAT_DATA,
        SegFs=registers.get("SegFs", _TEB_SEGMENT) or _TEB_SEGMENT)}


def exception_payload(code: int, address: int, registers: Mapping[str, int], stream: bytes, *,
                      parameters: tuple[int, ...] = (), first_chance: bool = True,
                      thread: int = 0) -> bytes:
    """An Exception state change (§4.3) at the current PC, 240 bytes as Windows 10 sends."""
    return build_exception_state_change(
        code, address, program_counter=registers.get("Rip", address),
        first_chance=int(first_chance), parameters=parameters[:15], thread=thread,
        processor_level=PROCESSOR_LEVEL, control_report=control_report(registers, stream))


def load_symbols_payload(path: str, base: int, size: int, *, checksum: int = 0,
                         unload: bool = False, registers: Mapping[str, int] | None = None,
                         stream: bytes = b"", thread: int = 0) -> bytes:
    """A LoadSymbols (or UnloadSymbols) state change with the image path as data (§4.4)."""
    registers = registers or {}
    return build_load_symbols_state_change(
        path.encode("ascii", "replace"), base, size, checksum=checksum, unload=unload,
        program_counter=registers.get("Rip", 0), thread=thread,
        processor_level=PROCESSOR_LEVEL, control_report=control_report(registers, stream))
