"""construct definitions of DBGKD_MANIPULATE_STATE64/32 and every union member.

What it does: declares the 56-byte DBGKD_MANIPULATE_STATE64 (and the 52-byte legacy
DBGKD_MANIPULATE_STATE32) with the API-specific union ``u`` chosen by ApiNumber, for
every ApiNumber of windbgkd.h; DBGKD_GET_VERSION64; both control-set layouts of
Continue2. An ApiNumber with no union layout (Reboot, SwitchProcessor, ...) or an
unknown one decodes ``u`` as ``{"Raw": <40 bytes>}``, so nothing is lost and nothing
raises. What it does not do: build whole packets or choose ids.
Spec: windbgkd.h via kd-protocol.md §5.1-§5.7.

DBGKD_MANIPULATE_STATE64::

    0x00 ApiNumber  0x04 ProcessorLevel  0x06 Processor  0x08 ReturnStatus  0x0C pad
    0x10 u (40 bytes, by ApiNumber)          then: memory bytes / CONTEXT / pattern

Continue2's control set differs by target architecture (§5.3). Parsing offers both
readings (``u.ControlSet.Amd64`` and ``u.ControlSet.X86``); building takes the key
given. The layouts agree only while Dr7's upper half is zero.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

import construct
from construct import Container, Default, Int8ul, Int16ul, Int32ul, Int64ul, Padding, Struct, Union

from .constants import ManipulateApi as A
from .windbgkd import API_HEADER, Width, both_widths, fields, tagged_union

__all__ = [
    "DBGKD_READ_MEMORY64",
    "DBGKD_WRITE_MEMORY64",
    "DBGKD_READ_MEMORY32",
    "DBGKD_WRITE_MEMORY32",
    "DBGKD_GET_CONTEXT",
    "DBGKD_SET_CONTEXT",
    "DBGKD_CONTEXT_EX",
    "DBGKD_WRITE_BREAKPOINT64",
    "DBGKD_WRITE_BREAKPOINT32",
    "DBGKD_RESTORE_BREAKPOINT",
    "DBGKD_CONTINUE",
    "AMD64_DBGKD_CONTROL_SET",
    "X86_DBGKD_CONTROL_SET",
    "DBGKD_CONTINUE2",
    "DBGKD_READ_WRITE_IO64",
    "DBGKD_READ_WRITE_IO32",
    "DBGKD_READ_WRITE_IO_EXTENDED64",
    "DBGKD_READ_WRITE_IO_EXTENDED32",
    "DBGKD_READ_WRITE_MSR",
    "DBGKD_QUERY_SPECIAL_CALLS",
    "DBGKD_SET_SPECIAL_CALL64",
    "DBGKD_SET_INTERNAL_BREAKPOINT64",
    "DBGKD_GET_INTERNAL_BREAKPOINT64",
    "DBGKD_WRITE_CUSTOM_BREAKPOINT",
    "DBGKD_QUERY_MEMORY",
    "DBGKD_SEARCH_MEMORY",
    "DBGKD_FILL_MEMORY",
    "DBGKD_GET_SET_BUS_DATA",
    "DBGKD_BREAKPOINTEX",
    "DBGKD_SWITCH_PARTITION",
    "DBGKD_GET_VERSION64",
    "DBGKD_GET_VERSION32",
    "DBGKD_MANIPULATE_STATE64",
    "DBGKD_MANIPULATE_STATE32",
    "MANIPULATE_STATE64_SIZE",
    "MANIPULATE_STATE32_SIZE",
    "NO_REPLY_APIS",
    "RESUMING_APIS",
    "parse_manipulate_state64",
    "build_manipulate_state64",
]

MANIPULATE_STATE64_SIZE = 56
MANIPULATE_STATE32_SIZE = 52

# -- §5.3 union members --------------------------------------------------------------


def _transfer(done: str) -> tuple[Any, Any]:
    """A memory read's or write's union member; ``done`` names the count transferred."""
    return both_widths(lambda width: Struct(
        "TargetBaseAddress" / width.ptr, "TransferCount" / Int32ul, done / Int32ul))


DBGKD_READ_MEMORY64, DBGKD_READ_MEMORY32 = _transfer("ActualBytesRead")
DBGKD_WRITE_MEMORY64, DBGKD_WRITE_MEMORY32 = _transfer("ActualBytesWritten")
DBGKD_GET_CONTEXT = Struct("Unused" / Int32ul)
DBGKD_SET_CONTEXT = Struct("ContextFlags" / Int32ul)
DBGKD_CONTEXT_EX = Struct(*fields(Int32ul, "Offset ByteCount BytesCopied"))
DBGKD_WRITE_BREAKPOINT64, DBGKD_WRITE_BREAKPOINT32 = both_widths(lambda width: Struct(
    "BreakPointAddress" / width.ptr, "BreakPointHandle" / Int32ul))
DBGKD_RESTORE_BREAKPOINT = Struct("BreakPointHandle" / Int32ul)
DBGKD_CONTINUE = Struct("ContinueStatus" / Int32ul)

# Packed to 4 bytes in windbgkd.h, so Dr7 sits at union offset 8 right after TraceFlag.
AMD64_DBGKD_CONTROL_SET, X86_DBGKD_CONTROL_SET = both_widths(lambda width: Struct(
    "TraceFlag" / Int32ul, *fields(width.ptr, "Dr7 CurrentSymbolStart CurrentSymbolEnd")))
DBGKD_CONTINUE2 = Struct(
    "ContinueStatus" / Int32ul,
    "ControlSet" / Union(0, "Amd64" / AMD64_DBGKD_CONTROL_SET, "X86" / X86_DBGKD_CONTROL_SET),
)

DBGKD_READ_WRITE_IO64 = Struct("IoAddress" / Int64ul, "DataSize" / Int32ul, "DataValue" / Int32ul)
DBGKD_READ_WRITE_IO32 = Struct("DataSize" / Int32ul, "IoAddress" / Int32ul, "DataValue" / Int32ul)
DBGKD_READ_WRITE_IO_EXTENDED64, DBGKD_READ_WRITE_IO_EXTENDED32 = both_widths(lambda width: Struct(
    *fields(Int32ul, "DataSize InterfaceType BusNumber AddressSpace"),
    "IoAddress" / width.ptr,
    "DataValue" / Int32ul,
))
DBGKD_READ_WRITE_MSR = Struct(*fields(Int32ul, "Msr DataValueLow DataValueHigh"))
DBGKD_QUERY_SPECIAL_CALLS = Struct("NumberOfSpecialCalls" / Int32ul)
DBGKD_SET_SPECIAL_CALL64 = Struct("SpecialCall" / Int64ul)
DBGKD_SET_INTERNAL_BREAKPOINT64 = Struct("BreakpointAddress" / Int64ul, "Flags" / Int32ul)
# The reply extends the request with the breakpoint's counts.
DBGKD_GET_INTERNAL_BREAKPOINT64 = Struct(
    *DBGKD_SET_INTERNAL_BREAKPOINT64.subcons,
    *fields(Int32ul, "Calls MaxCallsPerPeriod MinInstructions MaxInstructions TotalInstructions"),
)
DBGKD_WRITE_CUSTOM_BREAKPOINT = Struct(
    "BreakPointAddress" / Int64ul,
    "BreakPointInstruction" / Int64ul,
    "BreakPointHandle" / Int32ul,
    "BreakPointInstructionSize" / Int8ul,
    "BreakPointInstructionAlignment" / Int8ul,
    Padding(2),
)
DBGKD_QUERY_MEMORY = Struct(
    "Address" / Int64ul, "Reserved" / Int64ul, "AddressSpace" / Int32ul, "Flags" / Int32ul
)
DBGKD_SEARCH_MEMORY = Struct(
    # SearchAddress in the request, FoundAddress in the reply (§5.3).
    "SearchAddress" / Int64ul,
    "SearchLength" / Int64ul,
    "PatternLength" / Int32ul,
)
DBGKD_FILL_MEMORY = Struct(
    "Address" / Int64ul, "Length" / Int32ul, "Flags" / Int16ul, "PatternLength" / Int16ul
)
DBGKD_GET_SET_BUS_DATA = Struct(*fields(Int32ul, "BusDataType BusNumber SlotNumber Offset Length"))
DBGKD_BREAKPOINTEX = Struct("BreakPointCount" / Int32ul, "ContinueStatus" / Int32ul)
DBGKD_SWITCH_PARTITION = Struct("Partition" / Int32ul)

# §5.4
DBGKD_GET_VERSION64 = Struct(
    "MajorVersion" / Int16ul,
    "MinorVersion" / Int16ul,
    "ProtocolVersion" / Int8ul,
    "KdSecondaryVersion" / Int8ul,
    "Flags" / Int16ul,
    "MachineType" / Int16ul,
    "MaxPacketType" / Int8ul,
    "MaxStateChange" / Int8ul,
    "MaxManipulate" / Int8ul,
    "Simulation" / Int8ul,
    "Unused" / Int16ul,
    "KernBase" / Int64ul,
    "PsLoadedModuleList" / Int64ul,
    "DebuggerDataList" / Int64ul,
)

# The NT5-era 32-bit version block (the union of DBGKD_MANIPULATE_STATE32).
DBGKD_GET_VERSION32 = Struct(
    "MajorVersion" / Int16ul,
    "MinorVersion" / Int16ul,
    "ProtocolVersion" / Int16ul,
    "Flags" / Int16ul,
    "KernBase" / Int32ul,
    "PsLoadedModuleList" / Int32ul,
    "MachineType" / Int16ul,
    "ThCallbackStack" / Int16ul,
    "NextCallback" / Int16ul,
    "FramePointer" / Int16ul,
    "KiCallUserMode" / Int32ul,
    "KeUserCallbackDispatcher" / Int32ul,
    "BreakpointWithStatus" / Int32ul,
    "DebuggerDataList" / Int32ul,
)

_UNION64 = {
    A.DbgKdReadVirtualMemoryApi: DBGKD_READ_MEMORY64,
    A.DbgKdWriteVirtualMemoryApi: DBGKD_WRITE_MEMORY64,
    A.DbgKdGetContextApi: DBGKD_GET_CONTEXT,
    A.DbgKdSetContextApi: DBGKD_SET_CONTEXT,
    A.DbgKdWriteBreakPointApi: DBGKD_WRITE_BREAKPOINT64,
    A.DbgKdRestoreBreakPointApi: DBGKD_RESTORE_BREAKPOINT,
    A.DbgKdContinueApi: DBGKD_CONTINUE,
    A.DbgKdReadControlSpaceApi: DBGKD_READ_MEMORY64,
    A.DbgKdWriteControlSpaceApi: DBGKD_WRITE_MEMORY64,
    A.DbgKdReadIoSpaceApi: DBGKD_READ_WRITE_IO64,
    A.DbgKdWriteIoSpaceApi: DBGKD_READ_WRITE_IO64,
    A.DbgKdContinueApi2: DBGKD_CONTINUE2,
    A.DbgKdReadPhysicalMemoryApi: DBGKD_READ_MEMORY64,
    A.DbgKdWritePhysicalMemoryApi: DBGKD_WRITE_MEMORY64,
    A.DbgKdQuerySpecialCallsApi: DBGKD_QUERY_SPECIAL_CALLS,
    A.DbgKdSetSpecialCallApi: DBGKD_SET_SPECIAL_CALL64,
    A.DbgKdSetInternalBreakPointApi: DBGKD_SET_INTERNAL_BREAKPOINT64,
    A.DbgKdGetInternalBreakPointApi: DBGKD_GET_INTERNAL_BREAKPOINT64,
    A.DbgKdReadIoSpaceExtendedApi: DBGKD_READ_WRITE_IO_EXTENDED64,
    A.DbgKdWriteIoSpaceExtendedApi: DBGKD_READ_WRITE_IO_EXTENDED64,
    A.DbgKdGetVersionApi: DBGKD_GET_VERSION64,
    A.DbgKdWriteBreakPointExApi: DBGKD_BREAKPOINTEX,
    A.DbgKdRestoreBreakPointExApi: DBGKD_BREAKPOINTEX,
    A.DbgKdReadMachineSpecificRegister: DBGKD_READ_WRITE_MSR,
    A.DbgKdWriteMachineSpecificRegister: DBGKD_READ_WRITE_MSR,
    A.DbgKdSearchMemoryApi: DBGKD_SEARCH_MEMORY,
    A.DbgKdGetBusDataApi: DBGKD_GET_SET_BUS_DATA,
    A.DbgKdSetBusDataApi: DBGKD_GET_SET_BUS_DATA,
    A.DbgKdFillMemoryApi: DBGKD_FILL_MEMORY,
    A.DbgKdQueryMemoryApi: DBGKD_QUERY_MEMORY,
    A.DbgKdSwitchPartition: DBGKD_SWITCH_PARTITION,
    A.DbgKdWriteCustomBreakpointApi: DBGKD_WRITE_CUSTOM_BREAKPOINT,
    A.DbgKdGetContextExApi: DBGKD_CONTEXT_EX,
    A.DbgKdSetContextExApi: DBGKD_CONTEXT_EX,
}

# The 32-bit union: pointer-sized members shrink; physical memory keeps the 64-bit
# form because physical addresses exceed 32 bits even on x86 (PAE).
_UNION32 = {
    **_UNION64,
    A.DbgKdReadVirtualMemoryApi: DBGKD_READ_MEMORY32,
    A.DbgKdWriteVirtualMemoryApi: DBGKD_WRITE_MEMORY32,
    A.DbgKdReadControlSpaceApi: DBGKD_READ_MEMORY32,
    A.DbgKdWriteControlSpaceApi: DBGKD_WRITE_MEMORY32,
    A.DbgKdWriteBreakPointApi: DBGKD_WRITE_BREAKPOINT32,
    A.DbgKdReadIoSpaceApi: DBGKD_READ_WRITE_IO32,
    A.DbgKdWriteIoSpaceApi: DBGKD_READ_WRITE_IO32,
    A.DbgKdReadIoSpaceExtendedApi: DBGKD_READ_WRITE_IO_EXTENDED32,
    A.DbgKdWriteIoSpaceExtendedApi: DBGKD_READ_WRITE_IO_EXTENDED32,
    A.DbgKdGetVersionApi: DBGKD_GET_VERSION32,
    A.DbgKdContinueApi2: Struct("ContinueStatus" / Int32ul, "ControlSet" / X86_DBGKD_CONTROL_SET),
}


def _manipulate_state(width: Width) -> Any:
    return Struct(
        *API_HEADER,
        "ReturnStatus" / Int32ul,
        # Alignment only; kept because targets echo the request's junk here (§10.1).
        *width.wide("Pad" / Default(Int32ul, 0)),
        "u" / tagged_union("ApiNumber", width.pick(_UNION64, _UNION32), 40),
    )


DBGKD_MANIPULATE_STATE64, DBGKD_MANIPULATE_STATE32 = both_widths(_manipulate_state)

# §5.1: the target resumes (or reboots, or bugchecks) instead of replying.
RESUMING_APIS = frozenset(
    {
        A.DbgKdContinueApi,
        A.DbgKdContinueApi2,
        A.DbgKdRebootApi,
        A.DbgKdCauseBugCheckApi,
    }
)
# §5.1: no reply packet at all; SwitchProcessor is answered by a state change and
# ClearAllInternalBreakpoints by the ACK alone.
NO_REPLY_APIS = RESUMING_APIS | {
    A.DbgKdSwitchProcessor,
    A.DbgKdClearAllInternalBreakpointsApi,
}
# After these a host waits for a state change: a new stop, or the same one reported
# again by the processor switched to.
STOP_AWAITING_APIS = RESUMING_APIS | {A.DbgKdSwitchProcessor}


# -- the precompiled fast path ---------------------------------------------------------
#
# Every request and reply crosses DBGKD_MANIPULATE_STATE64 twice (built by one side,
# parsed by the other). tools/bench/simtarget.py measured construct's parse of these 56
# bytes at 87-142 µs per message against a request round trip goal of 200 µs, so the
# hot path reads and writes them with struct formats derived here from the construct
# definitions above, which stay the single source of truth: a layout the derivation does
# not understand (a Union, an Array, a nested struct) has no fast form and goes through
# construct. tests/protocol/test_manipulate_fastpath.py checks both agree for every API.

_FORMAT_CODES = {"<B": "B", "<H": "H", "<L": "I", "<Q": "Q"}
_HEADER_FIELDS = ("ApiNumber", "ProcessorLevel", "Processor", "ReturnStatus", "Pad")
_HEADER_FORMAT = "<IHHII"


def _flat_layout(struct_con: Any) -> tuple[str, tuple[str, ...]] | None:
    """The struct format and field names of a Struct of integers and padding, or None
    when it holds anything else. It reads the classes construct compiles a declaration
    to (``name / x`` is a construct.Renamed, ``Padding(n)`` a construct.Padded), so it
    names them with their module."""
    codes: list[str] = []
    names: list[str] = []
    for sub in struct_con.subcons:
        name = sub.name
        while isinstance(sub, (construct.Renamed, construct.Default)):
            sub = sub.subcon
        if isinstance(sub, construct.FormatField) and sub.fmtstr in _FORMAT_CODES:
            code = _FORMAT_CODES[sub.fmtstr]
        elif name is None and isinstance(sub, construct.Padded) and sub.subcon.sizeof() == 0:
            code = f"{sub.length}x"  # Padding(n)
        else:
            return None
        if name is None and not code.endswith("x"):
            return None
        codes.append(code)
        if name is not None:
            names.append(name)
    return "".join(codes), tuple(names)


def _union_layouts() -> dict[int, tuple[struct.Struct, tuple[str, ...]]]:
    layouts: dict[int, tuple[struct.Struct, tuple[str, ...]]] = {}
    for api, member in _UNION64.items():
        flat = _flat_layout(member)
        if flat is None:
            continue
        codes, names = flat
        union = struct.Struct("<" + codes)
        if union.size > 40:
            continue
        whole = struct.Struct(f"{_HEADER_FORMAT}{codes}{40 - union.size}x")
        layouts[int(api)] = (whole, names)
    return layouts


_FAST_UNION = _union_layouts()
_FAST_RAW = struct.Struct(_HEADER_FORMAT + "40s")
_FAST_API = struct.Struct("<I")


def parse_manipulate_state64(payload: bytes) -> Container:
    """DBGKD_MANIPULATE_STATE64.parse(payload), through struct where the union allows.

    Gives a Container equal to construct's; raises construct's errors where it would.
    """
    if len(payload) < MANIPULATE_STATE64_SIZE:
        return DBGKD_MANIPULATE_STATE64.parse(payload)
    api = _FAST_API.unpack_from(payload)[0]
    layout = _FAST_UNION.get(api)
    if layout is None:
        if api in _UNION64:
            return DBGKD_MANIPULATE_STATE64.parse(payload)
        values = _FAST_RAW.unpack_from(payload)
        return Container(zip(_HEADER_FIELDS, values[:5]), u=Container(Raw=values[5]))
    whole, names = layout
    values = whole.unpack_from(payload)
    message = Container(zip(_HEADER_FIELDS, values[:5]))
    message["u"] = Container(zip(names, values[5:]))
    return message


def build_manipulate_state64(api: int, processor_level: int, processor: int,
                             return_status: int, u: Mapping[str, Any]) -> bytes:
    """DBGKD_MANIPULATE_STATE64.build(...) of these fields, through struct where the
    union is plain integers; construct builds (and reports bad values) otherwise."""
    layout = _FAST_UNION.get(api)
    if layout is not None:
        whole, names = layout
        try:
            return whole.pack(api, processor_level, processor, return_status, 0,
                              *[u[name] for name in names])
        except (KeyError, struct.error, TypeError):
            pass  # construct says what is wrong with the value
    return DBGKD_MANIPULATE_STATE64.build(dict(
        ApiNumber=api, ProcessorLevel=processor_level, Processor=processor,
        ReturnStatus=return_status, u=u))
