"""Constants of the KD serial protocol, named as in windbgkd.h.

What it does: gives every wire number (leaders, packet types, packet ids, ApiNumbers,
state-change kinds, NTSTATUS values the protocol uses, version flags) one Python name,
plus lookup tables from value to name for decoders. Packet types, state changes and
ApiNumbers are declared as windbgkd.h numbers them, a base and the names in order (a
value's name: ``api_name``, or the table of kd-protocol.md §5.2). What it does not do:
any parsing.
Spec: kd-protocol.md §1.1, §1.5, §2.1, §4.1, §5.2, §5.4, §6, §7.1 (windbgkd.h names).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

__all__ = [
    "PACKET_LEADER",
    "PACKET_LEADER_BYTE",
    "CONTROL_PACKET_LEADER",
    "CONTROL_PACKET_LEADER_BYTE",
    "BREAKIN_PACKET",
    "BREAKIN_PACKET_BYTE",
    "PACKET_TRAILING_BYTE",
    "PACKET_MAX_SIZE",
    "KD_PACKET_HEADER_SIZE",
    "MANIPULATE_HEADER_SIZE",
    "MAX_TRANSFER_SIZE",
    "KD_PRINT_MAX_BYTES",
    "INITIAL_PACKET_ID",
    "SYNC_PACKET_ID",
    "KD_DEFAULT_RETRIES",
    "PacketType",
    "StateChange",
    "ManipulateApi",
    "DebugIoApi",
    "FileIoApi",
    "TraceIoApi",
    "ControlRequestApi",
    "NtStatus",
    "VersionFlags",
    "MachineType",
    "ReportFlags",
    "ContinueStatus",
    "CONTEXT_AMD64",
    "CONTEXT_I386",
    "DBGKD_CACHING",
    "KDBG_OWNER_TAG",
    "packet_type_name",
    "api_name",
    "status_name",
]

# §1.1 byte constants.
PACKET_LEADER = 0x30303030
PACKET_LEADER_BYTE = 0x30
CONTROL_PACKET_LEADER = 0x69696969
CONTROL_PACKET_LEADER_BYTE = 0x69
BREAKIN_PACKET = 0x62626262
BREAKIN_PACKET_BYTE = 0x62
PACKET_TRAILING_BYTE = 0xAA

# §1.4: 4000 payload bytes; QEMU's 4096 disagrees and 4000 is the safe value.
PACKET_MAX_SIZE = 4000
KD_PACKET_HEADER_SIZE = 16
MANIPULATE_HEADER_SIZE = 56
# §1.4 (inferred): 4000 - sizeof(DBGKD_MANIPULATE_STATE64).
MAX_TRANSFER_SIZE = PACKET_MAX_SIZE - MANIPULATE_HEADER_SIZE
KD_PRINT_MAX_BYTES = 512

# §2.1 packet ids.
INITIAL_PACKET_ID = 0x80800000
SYNC_PACKET_ID = 0x00000800

# §2.5 ReactOS KdpDefaultRetries.
KD_DEFAULT_RETRIES = 20


def _numbered(name: str, doc: str, *runs: tuple[int, str]) -> Any:
    """An IntEnum of the names in each run, numbered up by one from the run's base, as
    windbgkd.h numbers its packet types, state changes and ApiNumbers: the order is the
    numbering, so no value is typed by hand. Typed Any because its members are made at
    run time, where no type checker can list them."""
    members = [(member, base + ordinal)
               for base, names in runs for ordinal, member in enumerate(names.split())]
    numbered = IntEnum(name, members, module=__name__, qualname=name)
    numbered.__doc__ = doc
    return numbered


PacketType = _numbered(
    "PacketType",
    "KD_PACKET.PacketType values (§1.5).",
    (0, """
        PACKET_TYPE_UNUSED
        PACKET_TYPE_KD_STATE_CHANGE32
        PACKET_TYPE_KD_STATE_MANIPULATE
        PACKET_TYPE_KD_DEBUG_IO
        PACKET_TYPE_KD_ACKNOWLEDGE
        PACKET_TYPE_KD_RESEND
        PACKET_TYPE_KD_RESET
        PACKET_TYPE_KD_STATE_CHANGE64
        PACKET_TYPE_KD_POLL_BREAKIN
        PACKET_TYPE_KD_TRACE_IO
        PACKET_TYPE_KD_CONTROL_REQUEST
        PACKET_TYPE_KD_FILE_IO
        PACKET_TYPE_MAX
    """),
)

StateChange = _numbered(
    "StateChange",
    "DBGKD_WAIT_STATE_CHANGE NewState values (§4.1).",
    (0x3030, """
        DbgKdExceptionStateChange
        DbgKdLoadSymbolsStateChange
        DbgKdCommandStringStateChange
        DbgKdMaximumStateChange
    """),
)
DbgKdMinimumStateChange = StateChange.DbgKdExceptionStateChange
DbgKdAlternateStateChange = 0x00010000

ManipulateApi = _numbered(
    "ManipulateApi",
    "DBGKD_MANIPULATE_STATE ApiNumber values (§5.2).",
    (0x3130, """
        DbgKdReadVirtualMemoryApi
        DbgKdWriteVirtualMemoryApi
        DbgKdGetContextApi
        DbgKdSetContextApi
        DbgKdWriteBreakPointApi
        DbgKdRestoreBreakPointApi
        DbgKdContinueApi
        DbgKdReadControlSpaceApi
        DbgKdWriteControlSpaceApi
        DbgKdReadIoSpaceApi
        DbgKdWriteIoSpaceApi
        DbgKdRebootApi
        DbgKdContinueApi2
        DbgKdReadPhysicalMemoryApi
        DbgKdWritePhysicalMemoryApi
        DbgKdQuerySpecialCallsApi
        DbgKdSetSpecialCallApi
        DbgKdClearSpecialCallsApi
        DbgKdSetInternalBreakPointApi
        DbgKdGetInternalBreakPointApi
        DbgKdReadIoSpaceExtendedApi
        DbgKdWriteIoSpaceExtendedApi
        DbgKdGetVersionApi
        DbgKdWriteBreakPointExApi
        DbgKdRestoreBreakPointExApi
        DbgKdCauseBugCheckApi
    """),
    # 0x314A-0x314F are unused.
    (0x3150, """
        DbgKdSwitchProcessor
        DbgKdPageInApi
        DbgKdReadMachineSpecificRegister
        DbgKdWriteMachineSpecificRegister
        OldVlm1
        OldVlm2
        DbgKdSearchMemoryApi
        DbgKdGetBusDataApi
        DbgKdSetBusDataApi
        DbgKdCheckLowMemoryApi
        DbgKdClearAllInternalBreakpointsApi
        DbgKdFillMemoryApi
        DbgKdQueryMemoryApi
        DbgKdSwitchPartition
        DbgKdWriteCustomBreakpointApi
        DbgKdGetContextExApi
        DbgKdSetContextExApi
    """),
)
DbgKdMinimumManipulate = ManipulateApi.DbgKdReadVirtualMemoryApi
DbgKdMaximumManipulate = 0x3161

DebugIoApi = _numbered(
    "DebugIoApi",
    "DBGKD_DEBUG_IO ApiNumber values (§6.1).",
    (0x3230, "DbgKdPrintStringApi DbgKdGetStringApi"),
)
TraceIoApi = _numbered(
    "TraceIoApi",
    "DBGKD_TRACE_IO ApiNumber values (§6.4).",
    (0x3330, "DbgKdPrintTraceApi"),
)
ControlRequestApi = _numbered(
    "ControlRequestApi",
    "DBGKD_CONTROL_REQUEST ApiNumber values (§6.4).",
    (0x4300, "DbgKdRequestHardwareBp DbgKdReleaseHardwareBp"),
)
FileIoApi = _numbered(
    "FileIoApi",
    "DBGKD_FILE_IO ApiNumber values (§7.1).",
    (0x3430, "DbgKdCreateFileApi DbgKdReadFileApi DbgKdWriteFileApi DbgKdCloseFileApi"),
)


class NtStatus(IntEnum):
    """NTSTATUS values that travel in KD packets (§4.7, §5.1, §7.1), and those the
    simulated target's host side answers its kernel with (file requests, waits)."""

    STATUS_SUCCESS = 0x00000000
    STATUS_PENDING = 0x00000103
    STATUS_BREAKPOINT = 0x80000003
    STATUS_SINGLE_STEP = 0x80000004
    STATUS_BUFFER_OVERFLOW = 0x80000005
    STATUS_DATATYPE_MISALIGNMENT = 0x80000002
    STATUS_UNSUCCESSFUL = 0xC0000001
    STATUS_NOT_IMPLEMENTED = 0xC0000002
    STATUS_NO_SUCH_FILE = 0xC000000F
    STATUS_ACCESS_VIOLATION = 0xC0000005
    STATUS_INVALID_PARAMETER = 0xC000000D
    STATUS_NO_SUCH_DEVICE = 0xC000000E
    STATUS_ILLEGAL_INSTRUCTION = 0xC000001D
    STATUS_INTEGER_DIVIDE_BY_ZERO = 0xC0000094
    STATUS_NOT_FOUND = 0xC0000225
    STATUS_ASSERTION_FAILURE = 0xC0000420
    STATUS_TIMEOUT = 0x00000102
    STATUS_INVALID_HANDLE = 0xC0000008
    STATUS_INVALID_DEVICE_REQUEST = 0xC0000010
    STATUS_END_OF_FILE = 0xC0000011
    STATUS_ACCESS_DENIED = 0xC0000022
    STATUS_OBJECT_NAME_INVALID = 0xC0000033
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
    STATUS_OBJECT_NAME_COLLISION = 0xC0000035
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000003A
    STATUS_SHARING_VIOLATION = 0xC0000043
    STATUS_DISK_FULL = 0xC000007F
    STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
    STATUS_FILE_IS_A_DIRECTORY = 0xC00000BA
    STATUS_NOT_A_DIRECTORY = 0xC0000103
    STATUS_IO_DEVICE_ERROR = 0xC0000185


class ContinueStatus(IntEnum):
    """ContinueStatus values of Continue/Continue2 (§5.3)."""

    DBG_EXCEPTION_HANDLED = 0x00010001
    DBG_CONTINUE = 0x00010002
    DBG_EXCEPTION_NOT_HANDLED = 0x80010001


class VersionFlags(IntEnum):
    """DBGKD_GET_VERSION64.Flags bits (§5.4)."""

    DBGKD_VERS_FLAG_MP = 0x0001
    DBGKD_VERS_FLAG_DATA = 0x0002
    DBGKD_VERS_FLAG_PTR64 = 0x0004
    DBGKD_VERS_FLAG_NOMM = 0x0008
    DBGKD_VERS_FLAG_HSS = 0x0010
    DBGKD_VERS_FLAG_PARTITIONS = 0x0020


class MachineType(IntEnum):
    """IMAGE_FILE_MACHINE values GetVersion reports (§5.4)."""

    IMAGE_FILE_MACHINE_I386 = 0x014C
    IMAGE_FILE_MACHINE_AMD64 = 0x8664


class ReportFlags(IntEnum):
    """Control report ReportFlags bits (§4.6)."""

    REPORT_INCLUDES_SEGS = 0x0001
    REPORT_STANDARD_CS = 0x0002


# §7.3 ContextFlags architecture bits.
CONTEXT_AMD64 = 0x00100000
CONTEXT_I386 = 0x00010000

# §5.3 caching flags carried in ActualBytes of physical reads and writes.
DBGKD_CACHING = {
    "DBGKD_CACHING_UNKNOWN": 0,
    "DBGKD_CACHING_CACHED": 1,
    "DBGKD_CACHING_UNCACHED": 2,
    "DBGKD_CACHING_WRITE_COMBINED": 3,
}

# §7.2: 'KDBG' as a little-endian u32.
KDBG_OWNER_TAG = 0x4742444B

_API_ENUMS: tuple[type[IntEnum], ...] = (
    ManipulateApi,
    DebugIoApi,
    TraceIoApi,
    ControlRequestApi,
    FileIoApi,
    StateChange,
)


def packet_type_name(value: int) -> str:
    """The windbgkd.h name of a PacketType, or UNKNOWN(n) for any other value."""
    try:
        return PacketType(value).name
    except ValueError:
        return f"UNKNOWN({value})"


def api_name(value: int) -> str:
    """The windbgkd.h name of any ApiNumber / NewState, or ``0x....`` when unknown."""
    for enum in _API_ENUMS:
        try:
            return enum(value).name
        except ValueError:
            continue
    return f"0x{value:04x}"


def status_name(value: int) -> str:
    """A readable NTSTATUS: its name when the protocol knows it, else hex."""
    try:
        return NtStatus(value).name
    except ValueError:
        return f"0x{value:08x}"
