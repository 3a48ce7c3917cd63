"""Constants of the KD serial protocol, named as in windbgkd.h.

What it does: gives every wire number (leaders, packet types, packet ids, ApiNumbers,
state-change kinds, NTSTATUS values the protocol uses, version flags) one Python name,
plus lookup tables from value to name for decoders. What it does not do: any parsing.
Spec: kd-protocol.md §1.1, §1.5, §2.1, §4.1, §5.2, §5.4, §6, §7.1 (windbgkd.h names).
"""

from __future__ import annotations

from enum import IntEnum

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


class PacketType(IntEnum):
    """KD_PACKET.PacketType values (§1.5)."""

    PACKET_TYPE_UNUSED = 0
    PACKET_TYPE_KD_STATE_CHANGE32 = 1
    PACKET_TYPE_KD_STATE_MANIPULATE = 2
    PACKET_TYPE_KD_DEBUG_IO = 3
    PACKET_TYPE_KD_ACKNOWLEDGE = 4
    PACKET_TYPE_KD_RESEND = 5
    PACKET_TYPE_KD_RESET = 6
    PACKET_TYPE_KD_STATE_CHANGE64 = 7
    PACKET_TYPE_KD_POLL_BREAKIN = 8
    PACKET_TYPE_KD_TRACE_IO = 9
    PACKET_TYPE_KD_CONTROL_REQUEST = 10
    PACKET_TYPE_KD_FILE_IO = 11
    PACKET_TYPE_MAX = 12


class StateChange(IntEnum):
    """DBGKD_WAIT_STATE_CHANGE NewState values (§4.1)."""

    DbgKdExceptionStateChange = 0x3030
    DbgKdLoadSymbolsStateChange = 0x3031
    DbgKdCommandStringStateChange = 0x3032
    DbgKdMaximumStateChange = 0x3033


DbgKdMinimumStateChange = StateChange.DbgKdExceptionStateChange
DbgKdAlternateStateChange = 0x00010000


class ManipulateApi(IntEnum):
    """DBGKD_MANIPULATE_STATE ApiNumber values (§5.2)."""

    DbgKdReadVirtualMemoryApi = 0x3130
    DbgKdWriteVirtualMemoryApi = 0x3131
    DbgKdGetContextApi = 0x3132
    DbgKdSetContextApi = 0x3133
    DbgKdWriteBreakPointApi = 0x3134
    DbgKdRestoreBreakPointApi = 0x3135
    DbgKdContinueApi = 0x3136
    DbgKdReadControlSpaceApi = 0x3137
    DbgKdWriteControlSpaceApi = 0x3138
    DbgKdReadIoSpaceApi = 0x3139
    DbgKdWriteIoSpaceApi = 0x313A
    DbgKdRebootApi = 0x313B
    DbgKdContinueApi2 = 0x313C
    DbgKdReadPhysicalMemoryApi = 0x313D
    DbgKdWritePhysicalMemoryApi = 0x313E
    DbgKdQuerySpecialCallsApi = 0x313F
    DbgKdSetSpecialCallApi = 0x3140
    DbgKdClearSpecialCallsApi = 0x3141
    DbgKdSetInternalBreakPointApi = 0x3142
    DbgKdGetInternalBreakPointApi = 0x3143
    DbgKdReadIoSpaceExtendedApi = 0x3144
    DbgKdWriteIoSpaceExtendedApi = 0x3145
    DbgKdGetVersionApi = 0x3146
    DbgKdWriteBreakPointExApi = 0x3147
    DbgKdRestoreBreakPointExApi = 0x3148
    DbgKdCauseBugCheckApi = 0x3149
    DbgKdSwitchProcessor = 0x3150
    DbgKdPageInApi = 0x3151
    DbgKdReadMachineSpecificRegister = 0x3152
    DbgKdWriteMachineSpecificRegister = 0x3153
    OldVlm1 = 0x3154
    OldVlm2 = 0x3155
    DbgKdSearchMemoryApi = 0x3156
    DbgKdGetBusDataApi = 0x3157
    DbgKdSetBusDataApi = 0x3158
    DbgKdCheckLowMemoryApi = 0x3159
    DbgKdClearAllInternalBreakpointsApi = 0x315A
    DbgKdFillMemoryApi = 0x315B
    DbgKdQueryMemoryApi = 0x315C
    DbgKdSwitchPartition = 0x315D
    DbgKdWriteCustomBreakpointApi = 0x315E
    DbgKdGetContextExApi = 0x315F
    DbgKdSetContextExApi = 0x3160


DbgKdMinimumManipulate = ManipulateApi.DbgKdReadVirtualMemoryApi
DbgKdMaximumManipulate = 0x3161


class DebugIoApi(IntEnum):
    """DBGKD_DEBUG_IO ApiNumber values (§6.1)."""

    DbgKdPrintStringApi = 0x3230
    DbgKdGetStringApi = 0x3231


class TraceIoApi(IntEnum):
    """DBGKD_TRACE_IO ApiNumber values (§6.4)."""

    DbgKdPrintTraceApi = 0x3330


class ControlRequestApi(IntEnum):
    """DBGKD_CONTROL_REQUEST ApiNumber values (§6.4)."""

    DbgKdRequestHardwareBp = 0x4300
    DbgKdReleaseHardwareBp = 0x4301


class FileIoApi(IntEnum):
    """DBGKD_FILE_IO ApiNumber values (§7.1)."""

    DbgKdCreateFileApi = 0x3430
    DbgKdReadFileApi = 0x3431
    DbgKdWriteFileApi = 0x3432
    DbgKdCloseFileApi = 0x3433


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
