"""construct definitions: sizes and offsets of the reference, every ApiNumber round-trips,
unknown values decode to raw bytes, and decoding through a connection works three ways."""

from __future__ import annotations

import pytest
from construct import Container

from kdcon.protocol.connection import KdConnection, Role
from kdcon.protocol.constants import (
    KDBG_OWNER_TAG,
    DbgKdMaximumManipulate,
    DebugIoApi,
    FileIoApi,
    ManipulateApi,
    PacketType,
    StateChange,
    api_name,
    packet_type_name,
    status_name,
)
from kdcon.protocol.context import (
    CONTEXT_AMD64,
    CONTEXT_X86,
    KSPECIAL_REGISTERS_AMD64,
    KSPECIAL_REGISTERS_X86,
)
from kdcon.protocol.debugger_data import (
    FIELD_OFFSETS,
    KDDEBUGGER_DATA64,
    KDDEBUGGER_DATA64_SIZE,
    parse_debugger_data,
)
from kdcon.protocol.events import (
    ControlRequest,
    StateChange as StateChangeEvent,
    TraceIo,
    UnknownPacket,
)
from kdcon.protocol.manipulate import (
    DBGKD_MANIPULATE_STATE32,
    DBGKD_MANIPULATE_STATE64,
    NO_REPLY_APIS,
)
from kdcon.protocol.messages import (
    build_exception_state_change,
    build_load_symbols_state_change,
    build_state_change,
)
from kdcon.protocol.packet import build_control_packet, build_data_packet
from kdcon.protocol.windbgkd import (
    DBGKD_ANY_WAIT_STATE_CHANGE,
    DBGKD_CONTROL_REQUEST,
    DBGKD_FILE_IO,
    DBGKD_TRACE_IO,
    DBGKD_WAIT_STATE_CHANGE32,
)

from .kd_feeding import events_three_ways


def offset_of(struct, path: str) -> int:
    """Byte offset of a dotted field path, by building a marker into a zeroed struct."""
    size = struct.sizeof()
    base = struct.parse(bytes(size))
    node = base
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = 0x5A if isinstance(node[parts[-1]], int) else node[parts[-1]]
    marked = struct.build(base)
    return next(i for i, b in enumerate(marked) if b == 0x5A)


@pytest.mark.parametrize("struct,path,offset", [
    (CONTEXT_AMD64, "ContextFlags", 0x30), (CONTEXT_AMD64, "SegCs", 0x38),
    (CONTEXT_AMD64, "EFlags", 0x44), (CONTEXT_AMD64, "Dr7", 0x70),
    (CONTEXT_AMD64, "Rax", 0x78), (CONTEXT_AMD64, "R15", 0xF0), (CONTEXT_AMD64, "Rip", 0xF8),
    (CONTEXT_AMD64, "VectorControl", 0x4A0), (CONTEXT_AMD64, "LastExceptionFromRip", 0x4C8),
    (CONTEXT_X86, "Dr7", 0x18), (CONTEXT_X86, "SegGs", 0x8C), (CONTEXT_X86, "Eip", 0xB8),
    (CONTEXT_X86, "SegSs", 0xC8),
    (KSPECIAL_REGISTERS_AMD64, "KernelDr7", 0x48), (KSPECIAL_REGISTERS_AMD64, "Gdtr.Limit", 0x56),
    (KSPECIAL_REGISTERS_AMD64, "Gdtr.Base", 0x58), (KSPECIAL_REGISTERS_AMD64, "Idtr.Limit", 0x66),
    (KSPECIAL_REGISTERS_AMD64, "Tr", 0x70), (KSPECIAL_REGISTERS_AMD64, "MxCsr", 0x74),
    (KSPECIAL_REGISTERS_AMD64, "Cr8", 0xA0), (KSPECIAL_REGISTERS_AMD64, "Xcr0", 0xD8),
])
def test_register_block_offsets_match_the_reference(struct, path: str, offset: int) -> None:
    assert offset_of(struct, path) == offset


def test_register_block_sizes() -> None:
    assert CONTEXT_AMD64.sizeof() == 1232 and CONTEXT_X86.sizeof() == 716
    assert KSPECIAL_REGISTERS_AMD64.sizeof() == 224 and KSPECIAL_REGISTERS_X86.sizeof() == 84
    ctx = CONTEXT_AMD64.parse(bytes(1232))
    assert CONTEXT_AMD64.build(ctx) == bytes(1232)


def test_xmm0_sits_at_0x1a0_in_the_amd64_context() -> None:
    ctx = CONTEXT_AMD64.parse(bytes(1232))
    ctx.FltSave.XmmRegisters[0].Low = 0x5A
    assert CONTEXT_AMD64.build(ctx).index(0x5A) == 0x1A0


@pytest.mark.parametrize("api", [a for a in ManipulateApi])
def test_every_manipulate_api_round_trips_64_and_32(api: ManipulateApi) -> None:
    raw = bytes((i * 37 + api) & 0xFF for i in range(56))
    head = api.to_bytes(4, "little") + raw[4:]
    msg = DBGKD_MANIPULATE_STATE64.parse(head)
    assert msg.ApiNumber == api
    again = DBGKD_MANIPULATE_STATE64.build(msg)
    assert again[:16] == head[:16] and len(again) == 56
    assert DBGKD_MANIPULATE_STATE64.parse(again) == msg
    msg32 = DBGKD_MANIPULATE_STATE32.parse(head[:52])
    assert len(DBGKD_MANIPULATE_STATE32.build(msg32)) == 52


def test_unknown_manipulate_api_keeps_the_raw_union() -> None:
    raw = (0x3199).to_bytes(4, "little") + bytes(12) + bytes(range(40))
    msg = DBGKD_MANIPULATE_STATE64.parse(raw)
    assert msg.u == Container(Raw=bytes(range(40)))
    assert DBGKD_MANIPULATE_STATE64.build(msg) == raw
    assert api_name(0x3199) == "0x3199" and api_name(DbgKdMaximumManipulate - 1) == \
        "DbgKdSetContextExApi"


def test_numbers_declared_in_order_match_the_reference_table() -> None:
    packet_types = PacketType.PACKET_TYPE_KD_STATE_MANIPULATE, PacketType.PACKET_TYPE_KD_FILE_IO
    assert packet_types == (2, 11) and PacketType.PACKET_TYPE_MAX == 12
    assert StateChange.DbgKdCommandStringStateChange == 0x3032
    first_run = (ManipulateApi.DbgKdContinueApi2, ManipulateApi.DbgKdGetVersionApi,
                 ManipulateApi.DbgKdCauseBugCheckApi)
    assert first_run == (0x313C, 0x3146, 0x3149)
    after_the_gap = (ManipulateApi.DbgKdSwitchProcessor, ManipulateApi.DbgKdSearchMemoryApi,
                     ManipulateApi.DbgKdSetContextExApi)
    assert after_the_gap == (0x3150, 0x3156, 0x3160)
    assert (DebugIoApi.DbgKdGetStringApi, FileIoApi.DbgKdCloseFileApi) == (0x3231, 0x3433)
    assert type(ManipulateApi.DbgKdGetVersionApi).__module__ == "kdcon.protocol.constants"


def test_read_memory_union_layout() -> None:
    raw = DBGKD_MANIPULATE_STATE64.build(dict(
        ApiNumber=ManipulateApi.DbgKdReadVirtualMemoryApi, ProcessorLevel=0, Processor=0,
        ReturnStatus=0, u=dict(TargetBaseAddress=0x1122334455667788, TransferCount=0x99,
                               ActualBytesRead=0xAB)))
    assert raw[0x10:0x18] == (0x1122334455667788).to_bytes(8, "little")
    assert raw[0x18] == 0x99 and raw[0x1C] == 0xAB


@pytest.mark.parametrize("api,fields,checks", [
    (ManipulateApi.DbgKdWriteBreakPointApi, dict(BreakPointAddress=0x1000, BreakPointHandle=7),
     {0x18: 7}),
    (ManipulateApi.DbgKdReadIoSpaceExtendedApi, dict(DataSize=4, InterfaceType=1, BusNumber=2,
                                                     AddressSpace=1, IoAddress=0x3F8,
                                                     DataValue=0x55), {0x20: 0xF8, 0x28: 0x55}),
    (ManipulateApi.DbgKdQueryMemoryApi, dict(Address=1, Reserved=0, AddressSpace=2, Flags=7),
     {0x20: 2, 0x24: 7}),
    (ManipulateApi.DbgKdFillMemoryApi, dict(Address=1, Length=9, Flags=1, PatternLength=3),
     {0x18: 9, 0x1C: 1, 0x1E: 3}),
    (ManipulateApi.DbgKdSearchMemoryApi, dict(SearchAddress=1, SearchLength=0x40,
                                              PatternLength=4), {0x18: 0x40, 0x20: 4}),
    (ManipulateApi.DbgKdReadMachineSpecificRegister, dict(Msr=0xC0000082, DataValueLow=1,
                                                          DataValueHigh=2), {0x14: 1, 0x18: 2}),
    (ManipulateApi.DbgKdGetContextExApi, dict(Offset=0, ByteCount=0x4D0, BytesCopied=0),
     {0x14: 0xD0, 0x15: 0x04}),
    (ManipulateApi.DbgKdGetBusDataApi, dict(BusDataType=1, BusNumber=2, SlotNumber=3, Offset=4,
                                            Length=5), {0x10: 1, 0x14: 2, 0x18: 3, 0x1C: 4, 0x20: 5}),
    (ManipulateApi.DbgKdGetInternalBreakPointApi, dict(
        BreakpointAddress=1, Flags=2, Calls=3, MaxCallsPerPeriod=4, MinInstructions=5,
        MaxInstructions=6, TotalInstructions=7), {0x18: 2, 0x1C: 3, 0x2C: 7}),
])
def test_union_members_sit_where_the_reference_puts_them(api, fields, checks) -> None:
    raw = DBGKD_MANIPULATE_STATE64.build(dict(ApiNumber=api, ProcessorLevel=0, Processor=0,
                                              ReturnStatus=0, u=fields))
    for offset, value in checks.items():
        assert raw[offset] == value, (hex(offset), raw.hex())


def test_continue2_x86_control_set_layout() -> None:
    raw = DBGKD_MANIPULATE_STATE64.build(dict(
        ApiNumber=ManipulateApi.DbgKdContinueApi2, ProcessorLevel=0, Processor=0,
        ReturnStatus=0, u=dict(ContinueStatus=0x10002, ControlSet=dict(X86=dict(
            TraceFlag=1, Dr7=0x400, CurrentSymbolStart=1, CurrentSymbolEnd=2)))))
    assert raw[0x14] == 1 and raw[0x18:0x1A] == b"\x00\x04" and raw[0x1C] == 1
    assert raw[0x20] == 2
    assert ManipulateApi.DbgKdContinueApi2 in NO_REPLY_APIS


def test_state_change_sizes_and_union_offsets() -> None:
    assert DBGKD_ANY_WAIT_STATE_CHANGE.sizeof() == 0xF0
    assert DBGKD_WAIT_STATE_CHANGE32.sizeof() == 0x68
    payload = build_exception_state_change(
        0xC0000005, 0x401000, program_counter=0x401001, parameters=(1, 0xDEAD),
        control_report={"Amd64ControlReport": dict(
            Dr6=0xFFFE0FF0, Dr7=0x400, EFlags=2, InstructionCount=16, ReportFlags=1,
            InstructionStream=bytes(range(16)), SegCs=0x10, SegDs=0x30, SegEs=0x30,
            SegFs=0x30)})
    assert len(payload) == 0xF0
    assert payload[0x20:0x24] == (0xC0000005).to_bytes(4, "little")
    assert payload[0x30:0x38] == (0x401000).to_bytes(8, "little")  # ExceptionAddress
    assert payload[0x38] == 2  # NumberParameters
    assert payload[0xB8] == 1  # FirstChance
    assert payload[0xC8:0xCA] == b"\x00\x04"  # Dr7
    assert payload[0xD8:0xE8] == bytes(range(16))  # InstructionStream
    assert payload[0xE8] == 0x10  # SegCs
    msg = DBGKD_ANY_WAIT_STATE_CHANGE.parse(payload)
    assert msg.ControlReport.X86ControlReport.Dr6 == 0xFFFE0FF0  # both readings offered


def test_legacy_32bit_state_change_parses_and_builds() -> None:
    raw = DBGKD_WAIT_STATE_CHANGE32.build(dict(
        NewState=StateChange.DbgKdLoadSymbolsStateChange, ProcessorLevel=6, Processor=0,
        NumberProcessors=1, Thread=0x80001000, ProgramCounter=0x80400000,
        u=dict(PathNameLength=8, BaseOfDll=0x80400000, ProcessId=0, CheckSum=1,
               SizeOfImage=0x1000, UnloadSymbols=0)))
    assert len(raw) == 0x68 and raw[0x14] == 8
    packet = build_data_packet(PacketType.PACKET_TYPE_KD_STATE_CHANGE32, 0x80800800,
                               raw + b"ntoskrnl\0")
    events, _ = events_three_ways(lambda: KdConnection(Role.HOST), packet)
    (event,) = events
    assert isinstance(event, StateChangeEvent) and event.program_counter == 0x80400000
    assert event.message.u.SizeOfImage == 0x1000 and event.data == b"ntoskrnl\0"


def test_load_symbols_and_command_string_decode_through_a_connection() -> None:
    load = build_load_symbols_state_change(b"\\SystemRoot\\system32\\ntoskrnl.exe",
                                           0xFFFFF80000000000, 0x200000, checksum=0x1234)
    command = build_state_change(StateChange.DbgKdCommandStringStateChange,
                                 dict(Flags=0, Reserved1=0, Reserved2=[0] * 7),
                                 b"name\0.reload\0", program_counter=0x1000)
    # Each to a fresh host: a second stop before a Continue would be the first one
    # reported again (state.py Rule 12).
    (first,), _ = events_three_ways(lambda: KdConnection(Role.HOST),
                                    build_data_packet(7, 0x80800800, load))
    (second,), _ = events_three_ways(lambda: KdConnection(Role.HOST),
                                     build_data_packet(7, 0x80800800, command))
    assert first.message.u.PathNameLength == 34 and first.data.endswith(b"ntoskrnl.exe\0")
    assert first.message.u.BaseOfDll == 0xFFFFF80000000000
    assert second.new_state == StateChange.DbgKdCommandStringStateChange
    assert second.data == b"name\0.reload\0"


def test_unknown_packet_types_decode_to_unknown_with_raw_bytes() -> None:
    stream = (build_data_packet(0, 0x80800800, b"abc") + build_data_packet(99, 0x80800001, b"d")
              + b"iiii" + (42).to_bytes(2, "little") + bytes(10))
    events, host = events_three_ways(lambda: KdConnection(Role.HOST), stream)
    assert [(type(e), e.kind, e.packet_type) for e in events] == [
        (UnknownPacket, "data", 0), (UnknownPacket, "data", 99), (UnknownPacket, "control", 42)]
    assert events[0].raw == b"abc"
    # Not ACKed: no target sends these, so the header was most likely damaged (it is
    # outside the checksum); RESEND asks for the packet again (state.py Rule 10).
    resend = build_control_packet(PacketType.PACKET_TYPE_KD_RESEND, 0)
    assert host.data_to_send() == resend * 2
    assert packet_type_name(99) == "UNKNOWN(99)" and status_name(0xC0000001) == \
        "STATUS_UNSUCCESSFUL"


def test_trace_io_and_control_request_decode() -> None:
    trace = DBGKD_TRACE_IO.build(dict(ApiNumber=0x3330, ProcessorLevel=0, Processor=0,
                                      u=dict(PrintTrace=dict(LengthOfData=3)))) + b"xyz"
    control = DBGKD_CONTROL_REQUEST.build(dict(ApiNumber=0x4300, u=dict(
        HardwareBreakPointNumber=2, Available=1)))
    stream = build_data_packet(9, 0x80800800, trace) + build_data_packet(10, 0x80800001, control)
    events, _ = events_three_ways(lambda: KdConnection(Role.HOST), stream)
    assert isinstance(events[0], TraceIo) and events[0].data == b"xyz"
    assert events[0].message.u.PrintTrace.LengthOfData == 3
    assert isinstance(events[1], ControlRequest) and events[1].message.u.Available == 1


def test_file_io_layout() -> None:
    raw = DBGKD_FILE_IO.build(dict(ApiNumber=FileIoApi.DbgKdCreateFileApi, Status=0, u=dict(
        DesiredAccess=1, FileAttributes=2, ShareAccess=3, CreateDisposition=4,
        CreateOptions=5, Handle=0x66, Length=0x77)))
    assert len(raw) == 64 and raw[8] == 1 and raw[0x18] == 5
    assert raw[0x20] == 0x66 and raw[0x28] == 0x77
    read = DBGKD_FILE_IO.parse((FileIoApi.DbgKdReadFileApi).to_bytes(4, "little") + bytes(60))
    assert read.u.Length == 0 and DebugIoApi.DbgKdGetStringApi == 0x3231


def test_debugger_data_block_honours_its_size_and_tag() -> None:
    assert KDDEBUGGER_DATA64.sizeof() == KDDEBUGGER_DATA64_SIZE == 0x380
    block = bytearray(0x380)
    block[0x10:0x14] = KDBG_OWNER_TAG.to_bytes(4, "little")
    block[0x14:0x18] = (0x340).to_bytes(4, "little")
    block[0x48:0x50] = (0xFFFFF80000123450).to_bytes(8, "little")
    block[0x360:0x368] = (0xFFFFF68000000000).to_bytes(8, "little")
    parsed = parse_debugger_data(bytes(block))
    assert parsed.PsLoadedModuleList == 0xFFFFF80000123450
    assert parsed.PteBase is None  # beyond Header.Size: absent, not guessed
    assert FIELD_OFFSETS["PteBase"] == 0x360
    assert parse_debugger_data(bytes(block[:0x100])).MmPageSize is None
    assert parse_debugger_data(bytes(block[:0x100])).PsLoadedModuleList == 0xFFFFF80000123450
    block[0x10] = 0
    assert parse_debugger_data(bytes(block)) is None
    assert parse_debugger_data(b"short") is None
