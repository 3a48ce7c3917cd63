"""construct definitions of the KD message bodies other than manipulate requests.

What it does: declares, with windbgkd.h names, the state-change messages (64-bit and the
legacy 32-bit form, with exception, load-symbols and command-string bodies and the AMD64
and x86 control reports), DBGKD_DEBUG_IO (print and prompt), DBGKD_TRACE_IO,
DBGKD_CONTROL_REQUEST and DBGKD_FILE_IO. Every definition parses and builds. Unknown
NewState / ApiNumber values decode to a ``Raw`` member holding the union bytes
(``tagged_union``). ``both_widths`` writes a declaration once and gives its 64- and
32-bit forms, as windbgkd.h declares each pair once with pointer-sized members, and
``fields`` a run of members of one type from their names (manipulate.py and context.py
use both).
What it does not do: DBGKD_MANIPULATE_STATE* (manipulate.py), CONTEXT (context.py),
KDDEBUGGER_DATA64 (debugger_data.py), framing (packet.py, buffer.py).
Spec: windbgkd.h via kd-protocol.md §4 (state change), §6 (debug, trace, control I/O),
§7.1 (file I/O).

DBGKD_ANY_WAIT_STATE_CHANGE (240 bytes, the body of PACKET_TYPE_KD_STATE_CHANGE64)::

    0x00 NewState  0x04 ProcessorLevel  0x06 Processor  0x08 NumberProcessors
    0x10 Thread    0x18 ProgramCounter
    0x20 u (0xA0): DBGKM_EXCEPTION64 | DBGKD_LOAD_SYMBOLS64 | DBGKD_COMMAND_STRING
    0xC0 AnyControlReport (0x30): AMD64 | X86 control report
    then: path / command strings / trace data as packet data
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, TypeVar

from construct import (
    Array,
    Bytes,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    Padded,
    Padding,
    Struct,
    Switch,
    Union,
    this,
)

from .constants import (
    ControlRequestApi,
    DebugIoApi,
    FileIoApi,
    StateChange,
)


__all__ = [
    "tagged_union",
    "API_HEADER",
    "fields",
    "Width",
    "both_widths",
    "EXCEPTION_RECORD64",
    "EXCEPTION_RECORD32",
    "DBGKM_EXCEPTION64",
    "DBGKM_EXCEPTION32",
    "DBGKD_LOAD_SYMBOLS64",
    "DBGKD_LOAD_SYMBOLS32",
    "DBGKD_COMMAND_STRING",
    "AMD64_DBGKD_CONTROL_REPORT",
    "X86_DBGKD_CONTROL_REPORT",
    "DBGKD_ANY_CONTROL_REPORT",
    "DBGKD_WAIT_STATE_CHANGE64",
    "DBGKD_ANY_WAIT_STATE_CHANGE",
    "DBGKD_WAIT_STATE_CHANGE32",
    "DBGKD_PRINT_STRING",
    "DBGKD_GET_STRING",
    "DBGKD_DEBUG_IO",
    "DBGKD_TRACE_IO",
    "DBGKD_CONTROL_REQUEST",
    "DBGKD_CREATE_FILE",
    "DBGKD_READ_FILE",
    "DBGKD_WRITE_FILE",
    "DBGKD_CLOSE_FILE",
    "DBGKD_FILE_IO",
    "STATE_CHANGE64_SIZE",
    "STATE_CHANGE32_SIZE",
    "DEBUG_IO_SIZE",
    "TRACE_IO_SIZE",
    "CONTROL_REQUEST_SIZE",
    "FILE_IO_SIZE",
]


def tagged_union(tag: str, members: Mapping[int, Any], size: int, *, pad: bool = True) -> Any:
    """The union a message's ``tag`` field (ApiNumber, NewState) selects: the member it
    names, or ``Raw`` bytes for a value this side does not know, which decodes and
    rebuilds as it came (STYLE.md 4: unknown input is not a crash). Padded to the
    union's ``size`` unless ``pad`` is false."""
    union = Switch(this[tag], dict(members), default=Struct("Raw" / Bytes(size)))
    return Padded(size, union) if pad else union


# The first fields of every message an ApiNumber selects (debug and trace I/O,
# manipulate state): the API, then the processor's level and number.
API_HEADER = ("ApiNumber" / Int32ul, "ProcessorLevel" / Int16ul, "Processor" / Int16ul)


def fields(subcon: Any, names: str | Iterable[str]) -> tuple[Any, ...]:
    """Consecutive fields of one type, in the order named (a string of names separated
    by white space, or any iterable of names): windbgkd.h's runs of ULONGs and
    pointer-sized members, declared as the spec lists them."""
    if isinstance(names, str):
        names = names.split()
    return tuple(name / subcon for name in names)

_T = TypeVar("_T")


@dataclass(frozen=True)
class Width:
    """The pointer width one form of a windbgkd.h declaration is written for: ``ptr``
    is its pointer-sized field (ULONG64 in the 64-bit form, ULONG in the 32-bit one)."""

    ptr: Any
    is64: bool

    def wide(self, *subcons: Any) -> tuple[Any, ...]:
        """``subcons`` in the 64-bit form only: the alignment its 8-byte members force."""
        return subcons if self.is64 else ()

    def pick(self, wide: _T, narrow: _T) -> _T:
        """``wide`` for the 64-bit form, ``narrow`` for the 32-bit one."""
        return wide if self.is64 else narrow


def both_widths(declare: Callable[[Width], _T]) -> tuple[_T, _T]:
    """The 64-bit and 32-bit forms of one declaration, ``declare(width)`` written once
    (windbgkd.h declares each pair once, with pointer-sized members)."""
    return declare(Width(Int64ul, True)), declare(Width(Int32ul, False))


# -- §4.3 exception records ---------------------------------------------------------

def _exception(width: Width) -> tuple[Any, Any]:
    record = Struct(
        "ExceptionCode" / Int32ul,
        "ExceptionFlags" / Int32ul,
        "ExceptionRecord" / width.ptr,
        "ExceptionAddress" / width.ptr,
        "NumberParameters" / Int32ul,
        *width.wide("__unusedAlignment" / Int32ul),
        "ExceptionInformation" / Array(15, width.ptr),
    )
    return record, Struct("ExceptionRecord" / record, "FirstChance" / Int32ul,
                          *width.wide(Padding(4)))


(EXCEPTION_RECORD64, DBGKM_EXCEPTION64), (EXCEPTION_RECORD32, DBGKM_EXCEPTION32) = \
    both_widths(_exception)

# -- §4.4 load symbols ---------------------------------------------------------------

DBGKD_LOAD_SYMBOLS64, DBGKD_LOAD_SYMBOLS32 = both_widths(lambda width: Struct(
    "PathNameLength" / Int32ul,
    *width.wide(Padding(4)),
    "BaseOfDll" / width.ptr,
    "ProcessId" / width.ptr,
    "CheckSum" / Int32ul,
    "SizeOfImage" / Int32ul,
    "UnloadSymbols" / Int8ul,
    Padding(width.pick(7, 3)),
))

# -- §4.5 command string -------------------------------------------------------------

DBGKD_COMMAND_STRING = Struct(
    "Flags" / Int32ul,
    "Reserved1" / Int32ul,
    "Reserved2" / Array(7, Int64ul),
)

# -- §4.6 control reports ------------------------------------------------------------

# What the stop reports of the code it stopped at, the same in both architectures'
# reports; EFlags stands before it in the AMD64 one and after it in the x86 one.
_CODE_REPORT = (
    "InstructionCount" / Int16ul,
    "ReportFlags" / Int16ul,
    "InstructionStream" / Bytes(16),
    "SegCs" / Int16ul,
    "SegDs" / Int16ul,
    "SegEs" / Int16ul,
    "SegFs" / Int16ul,
)
AMD64_DBGKD_CONTROL_REPORT = Struct(
    "Dr6" / Int64ul, "Dr7" / Int64ul, "EFlags" / Int32ul, *_CODE_REPORT)
X86_DBGKD_CONTROL_REPORT = Struct(
    "Dr6" / Int32ul, "Dr7" / Int32ul, *_CODE_REPORT, "EFlags" / Int32ul)

# Both readings are offered on parse; building takes whichever key the caller gives.
DBGKD_ANY_CONTROL_REPORT = Padded(
    0x30,
    Union(
        0,
        "Amd64ControlReport" / AMD64_DBGKD_CONTROL_REPORT,
        "X86ControlReport" / X86_DBGKD_CONTROL_REPORT,
    ),
)


def _wait_state_change(width: Width) -> Any:
    # §4.2: the legacy type-1 message is the 32-bit form, 0x68 bytes.
    return Struct(
        "NewState" / Int32ul,
        "ProcessorLevel" / Int16ul,
        "Processor" / Int16ul,
        "NumberProcessors" / Int32ul,
        *width.wide(Padding(4)),
        "Thread" / width.ptr,
        "ProgramCounter" / width.ptr,
        "u" / tagged_union("NewState", {
            StateChange.DbgKdExceptionStateChange:
                "Exception" / width.pick(DBGKM_EXCEPTION64, DBGKM_EXCEPTION32),
            StateChange.DbgKdLoadSymbolsStateChange:
                "LoadSymbols" / width.pick(DBGKD_LOAD_SYMBOLS64, DBGKD_LOAD_SYMBOLS32),
            StateChange.DbgKdCommandStringStateChange: "CommandString" / DBGKD_COMMAND_STRING,
        }, width.pick(0xA0, 0x54)),
    )


DBGKD_WAIT_STATE_CHANGE64, DBGKD_WAIT_STATE_CHANGE32 = both_widths(_wait_state_change)
DBGKD_ANY_WAIT_STATE_CHANGE = Struct(
    *DBGKD_WAIT_STATE_CHANGE64.subcons,
    "ControlReport" / DBGKD_ANY_CONTROL_REPORT,
)
STATE_CHANGE64_SIZE = 0xF0
STATE_CHANGE32_SIZE = 0x68

# -- §6.1 debug I/O ------------------------------------------------------------------

DBGKD_PRINT_STRING = Struct(
    "LengthOfString" / Int32ul,
    # Not a windbgkd.h field: the union's other half. Windows leaves junk here (0x7FF
    # in the captured DbgPrint, §1.6), kept so captured packets rebuild byte-exactly.
    "Unused" / Int32ul,
)

DBGKD_GET_STRING = Struct(
    "LengthOfPromptString" / Int32ul,
    "LengthOfStringRead" / Int32ul,
)

DBGKD_DEBUG_IO = Struct(
    *API_HEADER,
    "u" / tagged_union("ApiNumber", {
        DebugIoApi.DbgKdPrintStringApi: DBGKD_PRINT_STRING,
        DebugIoApi.DbgKdGetStringApi: DBGKD_GET_STRING,
    }, 8, pad=False),
)
DEBUG_IO_SIZE = 16

# -- §6.4 trace I/O and control requests -------------------------------------------------

DBGKD_TRACE_IO = Struct(
    *API_HEADER,
    "u" / Padded(
        56,
        Union(
            0,
            "ReserveSpace" / Array(7, Int64ul),
            "PrintTrace" / Struct("LengthOfData" / Int32ul),
        ),
    ),
)
TRACE_IO_SIZE = 64

DBGKD_CONTROL_REQUEST = Struct(
    "ApiNumber" / Int32ul,
    "u" / tagged_union("ApiNumber", {
        ControlRequestApi.DbgKdRequestHardwareBp: "RequestBreakpoint"
        / Struct("HardwareBreakPointNumber" / Int32ul, "Available" / Int32ul),
        ControlRequestApi.DbgKdReleaseHardwareBp: "ReleaseBreakpoint"
        / Struct("HardwareBreakPointNumber" / Int32ul, "Released" / Int32ul),
    }, 8, pad=False),
)
CONTROL_REQUEST_SIZE = 12

# -- §7.1 file I/O -------------------------------------------------------------------

DBGKD_CREATE_FILE = Struct(
    *fields(Int32ul, "DesiredAccess FileAttributes ShareAccess CreateDisposition CreateOptions"),
    Padding(4),
    "Handle" / Int64ul,
    "Length" / Int64ul,
)

DBGKD_READ_FILE = Struct("Handle" / Int64ul, "Offset" / Int64ul, "Length" / Int32ul)
DBGKD_WRITE_FILE = Struct("Handle" / Int64ul, "Offset" / Int64ul, "Length" / Int32ul)
DBGKD_CLOSE_FILE = Struct("Handle" / Int64ul)

DBGKD_FILE_IO = Struct(
    "ApiNumber" / Int32ul,
    "Status" / Int32ul,
    "u" / tagged_union("ApiNumber", {
        FileIoApi.DbgKdCreateFileApi: DBGKD_CREATE_FILE,
        FileIoApi.DbgKdReadFileApi: DBGKD_READ_FILE,
        FileIoApi.DbgKdWriteFileApi: DBGKD_WRITE_FILE,
        FileIoApi.DbgKdCloseFileApi: DBGKD_CLOSE_FILE,
    }, 56),
)
FILE_IO_SIZE = 64
