"""The manipulate dispatch against a scripted machine: one request, one exact reply."""

from __future__ import annotations

import struct

import pytest

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.constants import NtStatus
from kdcon.protocol.context import CONTEXT_AMD64
from kdcon.protocol.messages import build_manipulate, decode_payload
from kdcon.protocol.events import ManipulateReply
from kdcon.tools.simtarget.kd.layouts import build_context, parse_context
from kdcon.tools.simtarget.kd.stub import (
    BugCheckRequest,
    KdStub,
    NoReply,
    Reboot,
    ReportAgain,
    Resume,
    fill,
    search,
)

from .kd_fake_machine import FakeMachine

CODE = 0xFFFFF80000401000
UNSUCCESSFUL = NtStatus.STATUS_UNSUCCESSFUL
STATUS_INVALID_PARAMETER = NtStatus.STATUS_INVALID_PARAMETER
STATUS_DATATYPE_MISALIGNMENT = NtStatus.STATUS_DATATYPE_MISALIGNMENT
STATUS_NO_SUCH_DEVICE = NtStatus.STATUS_NO_SUCH_DEVICE


def _request(api: int, u: dict | None = None, data: bytes = b"", **fields):
    payload = build_manipulate(api, u, data, **fields)
    return decode_payload(2, 0x80800000, payload, from_host=True)


def _reply(stub: KdStub, api: int, u: dict | None = None, data: bytes = b"", **fields
           ) -> ManipulateReply:
    out = stub.handle(_request(api, u, data, **fields))
    assert isinstance(out, bytes)
    reply = decode_payload(2, 0x80800001, out, from_host=False)
    assert isinstance(reply, ManipulateReply)
    return reply


@pytest.fixture
def machine() -> FakeMachine:
    m = FakeMachine()
    m.map(CODE, bytes(range(256)) * 32)  # 8 KiB, two pages, nothing after
    return m


@pytest.fixture
def stub(machine: FakeMachine) -> KdStub:
    return KdStub(machine)


def _read(stub, address, count):
    return _reply(stub, A.DbgKdReadVirtualMemoryApi,
                  dict(TargetBaseAddress=address, TransferCount=count, ActualBytesRead=0))


def test_read_virtual_returns_bytes_and_count(stub):
    reply = _read(stub, CODE + 0x10, 32)
    assert reply.return_status == 0
    assert reply.data == bytes(range(0x10, 0x30))
    assert reply.message.u.ActualBytesRead == 32


def test_read_across_the_last_mapped_page_is_a_short_read(stub):
    reply = _read(stub, CODE + 0x2000 - 8, 64)
    assert reply.return_status == 0
    assert reply.message.u.ActualBytesRead == 8
    assert reply.data == bytes(range(0xF8, 0x100))


def test_read_of_unmapped_memory_fails_with_nothing_read(stub):
    reply = _read(stub, 0x1000, 16)
    assert reply.return_status == UNSUCCESSFUL
    assert reply.message.u.ActualBytesRead == 0 and reply.data == b""


def test_read_is_clamped_to_one_packet(stub):
    reply = _read(stub, CODE, 8000)
    assert reply.message.u.ActualBytesRead == 3944 == len(reply.data)


def test_reply_echoes_junk_in_unused_fields(stub):
    payload = bytearray(build_manipulate(A.DbgKdReadVirtualMemoryApi, dict(
        TargetBaseAddress=CODE, TransferCount=4, ActualBytesRead=0x7777),
        return_status=0x103, processor_level=0x25))
    struct.pack_into("<I", payload, 12, 0xDEADBEEF)  # the pad
    out = stub.handle(decode_payload(2, 0x80800000, bytes(payload), from_host=True))
    assert out[:8] == payload[:8]
    assert out[12:0x10 + 12] == payload[12:0x10 + 12]
    assert struct.unpack_from("<I", out, 8)[0] == 0
    assert out[-4:] == bytes(range(4))


def test_write_virtual_then_read_back(stub, machine):
    reply = _reply(stub, A.DbgKdWriteVirtualMemoryApi, dict(
        TargetBaseAddress=CODE + 4, TransferCount=3, ActualBytesWritten=0), b"abc")
    assert reply.return_status == 0 and reply.message.u.ActualBytesWritten == 3
    assert machine.read_virtual(CODE + 3, 5) == b"\x03abc\x07"


def test_write_to_unmapped_memory_fails(stub):
    reply = _reply(stub, A.DbgKdWriteVirtualMemoryApi, dict(
        TargetBaseAddress=0x5000, TransferCount=2, ActualBytesWritten=0), b"zz")
    assert reply.return_status == UNSUCCESSFUL and reply.message.u.ActualBytesWritten == 0


def test_physical_reads_use_the_machine_physical_view(stub):
    reply = _reply(stub, A.DbgKdReadPhysicalMemoryApi, dict(
        TargetBaseAddress=CODE & 0xFFFFFFFF, TransferCount=4, ActualBytesRead=1))
    assert reply.return_status == 0 and reply.data == bytes(range(4))


def test_unknown_api_is_echoed_unsuccessful(stub):
    for api in (0x3151, 0x3154, 0x3157, 0x315E, 0x3199):
        reply = _reply(stub, api)
        assert reply.api == api and reply.return_status == UNSUCCESSFUL


def test_set_context_is_refused_before_get_context(stub, machine):
    context = build_context({**machine.registers, "Rax": 5})
    assert _reply(stub, A.DbgKdSetContextApi, dict(ContextFlags=0), context
                  ).return_status == UNSUCCESSFUL
    got = _reply(stub, A.DbgKdGetContextApi, dict(Unused=0))
    assert got.return_status == 0 and len(got.data) == 1232
    assert CONTEXT_AMD64.parse(got.data).Rip == CODE
    assert _reply(stub, A.DbgKdSetContextApi, dict(ContextFlags=0), context
                  ).return_status == 0
    assert machine.registers["Rax"] == 5
    stub.new_break()
    assert _reply(stub, A.DbgKdSetContextApi, dict(ContextFlags=0), context
                  ).return_status == UNSUCCESSFUL


def test_get_context_for_a_missing_processor_fails(stub):
    assert _reply(stub, A.DbgKdGetContextApi, dict(Unused=0), processor=1
                  ).return_status == UNSUCCESSFUL


def test_get_context_ex_returns_the_asked_window(stub):
    whole = _reply(stub, A.DbgKdGetContextApi, dict(Unused=0)).data
    part = _reply(stub, A.DbgKdGetContextExApi, dict(Offset=0xF8, ByteCount=8, BytesCopied=0))
    assert part.return_status == 0 and part.data == whole[0xF8:0x100]
    assert part.message.u.BytesCopied == 8
    full = _reply(stub, A.DbgKdGetContextExApi, dict(Offset=0, ByteCount=0x4D0, BytesCopied=0))
    assert full.data == whole


def test_set_context_ex_writes_a_window(stub, machine):
    _reply(stub, A.DbgKdGetContextApi, dict(Unused=0))
    reply = _reply(stub, A.DbgKdSetContextExApi, dict(Offset=0x78, ByteCount=8, BytesCopied=0),
                   struct.pack("<Q", 0x1234))
    assert reply.return_status == 0 and machine.registers["Rax"] == 0x1234


def test_breakpoint_write_and_restore_keep_the_original_byte(stub, machine):
    reply = _reply(stub, A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=CODE + 5,
                                                          BreakPointHandle=0))
    handle = reply.message.u.BreakPointHandle
    assert reply.return_status == 0 and 1 <= handle <= 32
    assert machine.pages[CODE][5] == 0xCC
    assert _read(stub, CODE + 4, 3).data == b"\x04\x05\x06"
    assert _reply(stub, A.DbgKdRestoreBreakPointApi, dict(BreakPointHandle=handle)
                  ).return_status == 0
    assert machine.pages[CODE][5] == 5


def test_restore_of_every_unused_handle_fails_quickly(stub):
    statuses = {_reply(stub, A.DbgKdRestoreBreakPointApi, dict(BreakPointHandle=h)).return_status
                for h in range(0, 34)}
    assert statuses == {UNSUCCESSFUL}


def test_a_breakpoint_the_machine_refuses_is_unsuccessful_with_handle_0(stub):
    first = _reply(stub, A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=CODE + 5, BreakPointHandle=0))
    assert first.return_status == 0
    reply = _reply(stub, A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=CODE + 5, BreakPointHandle=7))
    assert reply.return_status == UNSUCCESSFUL and reply.message.u.BreakPointHandle == 0


def test_breakpoint_on_unmapped_address_is_deferred_with_a_handle(stub):
    reply = _reply(stub, A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=0x10,
                                                          BreakPointHandle=0))
    assert reply.return_status == 0 and 1 <= reply.message.u.BreakPointHandle <= 32


def test_breakpoint_ex_writes_and_restores_a_list(stub, machine):
    entries = struct.pack("<QI4x", CODE + 1, 0) + struct.pack("<QI4x", CODE + 2, 0)
    reply = _reply(stub, A.DbgKdWriteBreakPointExApi, dict(BreakPointCount=2, ContinueStatus=0),
                   entries)
    assert reply.return_status == 0
    handles = [struct.unpack_from("<QI4x", reply.data, i * 16)[1] for i in range(2)]
    assert all(handles) and machine.read_virtual(CODE, 3) == b"\x00\x01\x02"
    assert machine.pages[CODE][1:3] == b"\xcc\xcc"
    back = b"".join(struct.pack("<QI4x", 0, h) for h in handles)
    assert _reply(stub, A.DbgKdRestoreBreakPointExApi, dict(BreakPointCount=2, ContinueStatus=0),
                  back).return_status == 0
    assert machine.pages[CODE][1:3] == b"\x01\x02"


def test_continue2_resumes_with_trace_flag_and_dr7(stub):
    out = stub.handle(_request(A.DbgKdContinueApi2, dict(ContinueStatus=0x10002, ControlSet=dict(
        Amd64=dict(TraceFlag=1, Dr7=0x401, CurrentSymbolStart=1, CurrentSymbolEnd=0)))))
    assert out == Resume(status=0x10002, trace=True, dr7=0x401)
    out = stub.handle(_request(A.DbgKdContinueApi, dict(ContinueStatus=0x10001)))
    assert out == Resume(status=0x10001)


def test_actions_that_send_no_reply(stub):
    assert stub.handle(_request(A.DbgKdRebootApi)) == Reboot()
    assert stub.handle(_request(A.DbgKdCauseBugCheckApi)) == BugCheckRequest()
    assert stub.handle(_request(A.DbgKdSwitchProcessor, processor=0)) == ReportAgain(processor=0)
    assert stub.handle(_request(A.DbgKdClearAllInternalBreakpointsApi)) == NoReply()


def test_control_space_pointers_and_special_registers(stub, machine):
    def control(index, count):
        return _reply(stub, A.DbgKdReadControlSpaceApi, dict(
            TargetBaseAddress=index, TransferCount=count, ActualBytesRead=0))
    assert struct.unpack("<Q", control(1, 8).data)[0] == machine.control_pointer(1)
    assert struct.unpack("<Q", control(3, 8).data)[0] == machine.current_thread()
    special = control(2, 0xE0)
    assert special.return_status == 0 and len(special.data) == 0xE0
    assert struct.unpack_from("<QQQQ", special.data)[2] == machine.special["Cr3"]
    assert struct.unpack_from("<Q", special.data, 0x58)[0] == machine.special["GdtrBase"]
    assert control(7, 8).return_status == UNSUCCESSFUL
    new = bytearray(special.data)
    struct.pack_into("<Q", new, 0x48, 0x155)  # KernelDr7
    written = _reply(stub, A.DbgKdWriteControlSpaceApi, dict(
        TargetBaseAddress=2, TransferCount=0xE0, ActualBytesWritten=0), bytes(new))
    assert written.return_status == 0 and machine.special["KernelDr7"] == 0x155
    refused = _reply(stub, A.DbgKdWriteControlSpaceApi, dict(
        TargetBaseAddress=1, TransferCount=8, ActualBytesWritten=0), bytes(8))
    assert refused.return_status == UNSUCCESSFUL


def test_get_version_reports_the_kernel(stub, machine):
    reply = _reply(stub, A.DbgKdGetVersionApi)
    v = reply.message.u
    info = machine.version_info()
    assert reply.return_status == 0
    assert (v.MajorVersion, v.MinorVersion, v.ProtocolVersion, v.KdSecondaryVersion) == (
        0xF, 7601, 6, 2)
    assert v.Flags == 6 and v.MachineType == 0x8664 and v.MaxPacketType == 12
    assert (v.KernBase, v.PsLoadedModuleList, v.DebuggerDataList) == (
        info.kern_base, info.ps_loaded_module_list, info.debugger_data_list)


def test_io_space_reads_all_ones_and_checks_size_and_alignment(stub):
    def io(api, port, size):
        return _reply(stub, api, dict(IoAddress=port, DataSize=size, DataValue=0))
    read = io(A.DbgKdReadIoSpaceApi, 0x3F8, 1)
    assert read.return_status == 0 and read.message.u.DataValue == 0xFF
    assert io(A.DbgKdReadIoSpaceApi, 0x80, 4).message.u.DataValue == 0xFFFFFFFF
    assert io(A.DbgKdReadIoSpaceApi, 0x80, 3).return_status == STATUS_INVALID_PARAMETER
    assert io(A.DbgKdReadIoSpaceApi, 0x81, 2).return_status == STATUS_DATATYPE_MISALIGNMENT
    assert io(A.DbgKdWriteIoSpaceApi, 0x80, 1).return_status == 0
    extended = _reply(stub, A.DbgKdReadIoSpaceExtendedApi, dict(
        DataSize=2, InterfaceType=1, BusNumber=0, AddressSpace=1, IoAddress=0x60, DataValue=0))
    assert extended.return_status == 0 and extended.message.u.DataValue == 0xFFFF
    memory_space = _reply(stub, A.DbgKdReadIoSpaceExtendedApi, dict(
        DataSize=2, InterfaceType=5, BusNumber=0, AddressSpace=0, IoAddress=0x60, DataValue=0))
    assert memory_space.return_status == UNSUCCESSFUL


def test_msr_read_write_and_absent_msr(stub, machine):
    reply = _reply(stub, A.DbgKdReadMachineSpecificRegister, dict(
        Msr=0xC0000082, DataValueLow=0, DataValueHigh=0))
    u = reply.message.u
    assert reply.return_status == 0 and (u.DataValueHigh << 32 | u.DataValueLow) == 0xFFFFF80000402000
    assert _reply(stub, A.DbgKdWriteMachineSpecificRegister, dict(
        Msr=0xC0000082, DataValueLow=0x1000, DataValueHigh=0xFFFFF800)).return_status == 0
    assert machine.msrs[0xC0000082] == 0xFFFFF80000001000
    assert _reply(stub, A.DbgKdReadMachineSpecificRegister, dict(
        Msr=0x1234, DataValueLow=0, DataValueHigh=0)).return_status == STATUS_NO_SUCH_DEVICE


def test_query_memory_reports_kernel_space_and_permissions(stub, machine):
    machine.map(0xFFFFF80000500000, b"x", "r")
    reply = _reply(stub, A.DbgKdQueryMemoryApi, dict(Address=0xFFFFF80000500010, Reserved=0,
                                                      AddressSpace=0, Flags=0))
    assert reply.return_status == 0
    assert (reply.message.u.AddressSpace, reply.message.u.Flags) == (2, 1)
    assert _reply(stub, A.DbgKdQueryMemoryApi, dict(Address=0x7000, Reserved=0, AddressSpace=0,
                                                     Flags=0)).return_status == UNSUCCESSFUL


def test_search_memory_finds_a_pattern_across_a_page_boundary(stub):
    pattern = bytes([0xFE, 0xFF, 0x00, 0x01])  # straddles CODE+0x1000
    reply = _reply(stub, A.DbgKdSearchMemoryApi, dict(
        SearchAddress=CODE + 0xF00, SearchLength=0x400, PatternLength=4), pattern)
    assert reply.return_status == 0
    assert reply.message.u.SearchAddress == CODE + 0xFFE
    missing = _reply(stub, A.DbgKdSearchMemoryApi, dict(
        SearchAddress=CODE, SearchLength=0x3000, PatternLength=3), b"zzz")
    assert missing.return_status == UNSUCCESSFUL


def test_search_skips_unmapped_pages():
    mem = FakeMachine()
    mem.map(0x10000, b"a" * 16)
    mem.map(0x12000, b"\0" * 8 + b"needle")
    assert search(mem.read_virtual, 0x10000, 0x3000, b"needle") == 0x12008
    assert search(mem.read_virtual, 0x10000, 0x200D, b"needle") is None


def test_fill_memory_repeats_the_pattern(stub, machine):
    reply = _reply(stub, A.DbgKdFillMemoryApi, dict(Address=CODE + 0xFFE, Length=7, Flags=1,
                                                     PatternLength=3), b"xyz")
    assert reply.return_status == 0 and reply.message.u.Length == 7
    assert machine.read_virtual(CODE + 0xFFE, 7) == b"xyzxyzx"
    short = _reply(stub, A.DbgKdFillMemoryApi, dict(Address=CODE + 0x1FFE, Length=7, Flags=1,
                                                     PatternLength=1), b"q")
    assert short.return_status == UNSUCCESSFUL and short.message.u.Length == 2


def test_fill_stops_at_the_first_unwritable_byte():
    mem = FakeMachine()
    mem.map(0x20000, bytes(0x1000))
    assert fill(mem.write_virtual, 0x20FF0, 0x40, b"ab") == 0x10


def test_context_layout_round_trips_the_registers():
    registers = {"Rip": 1, "Rsp": 2, "R15": 3, "EFlags": 0x202, "Dr7": 0x401, "SegCs": 0x10,
                 "Xmm": tuple((i << 64) | (0x1111 * i) for i in range(16))}
    data = build_context(registers)
    parsed = parse_context(data)
    assert {k: parsed[k] for k in registers} == registers
    assert struct.unpack_from("<QQ", data, 0x1A0 + 16 * 3) == (0x3333, 3)  # Xmm3 at §7.3
