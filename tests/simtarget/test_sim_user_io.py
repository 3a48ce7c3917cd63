"""A user-mode program's I/O played into a WDK-style driver (wdkdrivers/ioctltest):
CreateFile through the DOS name, device controls in each transfer method, buffered
read and write, CloseHandle (cleanup, close), and ``kdcon-sim --run --ioctl``."""

from __future__ import annotations

import struct

import pytest

from kdcon.tools.simtarget import cli
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import USER_BUFFER_BASE, IoRequest, parse_ioctl
from tests.simtarget.wdkbuild import build, printed, run_quiet

REPLY = b"reply from the driver\0"


def ctl_code(function: int, method: int) -> int:
    return 40000 << 16 | function << 2 | method


@pytest.fixture(scope="module")
def ioctltest(tmp_path_factory):
    return build("ioctltest", tmp_path_factory.mktemp("ioctltest"))


@pytest.fixture()
def machine(ioctltest):
    m = Machine(drivers=[ioctltest])
    m.boot()
    assert printed(run_quiet(m), "ioctl:") == ["ioctl: loaded"]
    return m


def play(machine, *requests):
    before = len(machine.io.results)
    machine.io.post(*requests)
    events = run_quiet(machine)
    assert not machine.io.busy
    return machine.io.results[before:], printed(events, "ioctl:")


@pytest.mark.parametrize("function, method, line", [
    (0x900, 1, 'ioctl: direct in="hello" mdl=64'),
    (0x901, 2, 'ioctl: direct in="hello" mdl=64'),
    (0x902, 0, 'ioctl: buffered in=6 "hello"'),
    (0x903, 3, 'ioctl: neither in="hello"'),
])
def test_each_transfer_method_reaches_the_driver_and_returns_its_reply(machine, function, method, line):
    results, lines = play(machine, IoRequest.create(r"\\.\IoctlTestKsim"),
                          IoRequest.ioctl(0, ctl_code(function, method), b"hello\0", 64), IoRequest.close(0))
    assert [r.status for r in results] == [0, 0, 0]
    assert results[0].handle != 0
    assert (results[1].information, results[1].output) == (len(REPLY), REPLY)
    assert lines == ["ioctl: major 0 open=1 mode=1 file=1", line,
                     "ioctl: major 18 open=1 mode=1 file=1", "ioctl: major 2 open=0 mode=1 file=1"]


def test_a_short_output_buffer_gets_what_fits(machine):
    results, _ = play(machine, IoRequest.create(r"\Device\IoctlTestKsim"),
                      IoRequest.ioctl(0, ctl_code(0x902, 0), b"x\0", 5), IoRequest.close(0))
    assert (results[1].information, results[1].output) == (5, b"reply")


def test_write_then_read_goes_through_the_buffered_path(machine):
    results, lines = play(machine, IoRequest.create(r"\\.\IoctlTestKsim"), IoRequest.write(0, b"stored bytes"),
                          IoRequest.read(0, 40), IoRequest.close(0))
    assert (results[1].status, results[1].information) == (0, 12)
    assert (results[2].status, results[2].output) == (0, b"stored bytes")
    assert lines[1:3] == ["ioctl: write 12", "ioctl: read 12"]


def test_an_unknown_code_and_an_unknown_device_fail_with_their_status(machine):
    results, _ = play(machine, IoRequest.create(r"\\.\IoctlTestKsim"), IoRequest.ioctl(0, 0x1234),
                      IoRequest.close(0), IoRequest.create(r"\\.\NoSuchDevice"), IoRequest.ioctl(3, 0x1234))
    assert [r.status for r in results] == [0, 0xC0000010, 0, 0xC0000034, 0xC0000008]


def test_the_user_buffers_sit_in_user_space_where_probes_accept_them(machine):
    results, lines = play(machine, IoRequest.create(r"\\.\IoctlTestKsim"),
                          IoRequest.ioctl(0, ctl_code(0x903, 3), b"abc\0", 8), IoRequest.close(0))
    assert results[1].status == 0 and 'ioctl: neither in="abc"' in lines
    probe_limit = struct.unpack("<Q", machine.read_virtual(machine.kernel_symbol("MmUserProbeAddress"), 8))[0]
    assert USER_BUFFER_BASE + 0x40000 <= probe_limit


def test_no_pool_is_left_after_the_requests_and_the_unload(machine):
    play(machine, IoRequest.create(r"\\.\IoctlTestKsim"), IoRequest.ioctl(0, ctl_code(0x902, 0), b"a\0", 64),
         IoRequest.ioctl(0, ctl_code(0x900, 1), b"a\0", 64), IoRequest.write(0, b"zz"), IoRequest.close(0))
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "ioctl:") == ["ioctl: unload"]
    table = struct.unpack("<Q", machine.read_virtual(machine.kernel_symbol("PoolTrackTable"), 8))[0]
    size = struct.unpack("<Q", machine.read_virtual(machine.kernel_symbol("PoolTrackTableSize"), 8))[0]
    live = {}
    for i in range(size):
        key, allocs, frees = struct.unpack("<Iii", machine.read_virtual(table + 0x28 * i, 12))
        if key:
            live[key.to_bytes(4, "little")] = allocs - frees
    # The I/O manager's file objects, system buffers, IRPs and MDLs, and the link names.
    for tag in (b"File", b"IoBf", b"Irp ", b"Mdl ", b"Link"):
        assert live.get(tag, 0) == 0, tag


@pytest.mark.parametrize("spec, parsed", [
    (r"\\.\IoctlTest,0x9C402608,hello", (r"\\.\IoctlTest", 0x9C402608, b"hello\0", 256)),
    (r"\Device\X,7,hex:0001ff,16", (r"\Device\X", 7, b"\x00\x01\xff", 16)),
    (r"\Device\X,7,", (r"\Device\X", 7, b"", 256)),
])
def test_ioctl_specs_parse(spec, parsed):
    assert parse_ioctl(spec)[:4] == parsed


@pytest.mark.parametrize("spec", ["x", r"\Device\X,nope,a", r"\Device\X,1,hex:zz", r"\Device\X,1,a,999999999"])
def test_bad_ioctl_specs_are_refused_in_one_line(spec):
    with pytest.raises(ValueError, match="--ioctl"):
        parse_ioctl(spec)


def test_kdcon_sim_run_replays_ioctls_without_a_debugger(ioctltest, capsys):
    status = cli.main(["--run", "--no-trackdemo", "--driver", str(ioctltest),
                       "--ioctl", r"\\.\IoctlTestKsim,0x9C402408,hello", "--ioctl", r"\\.\Nope,1,"])
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out[0] == "ioctl: loaded" and out[-1] == "ioctl: unload"
    assert "kdcon-sim: ioctl 0x9c402408 in=6 out=256: status 0x00000000, information 22, " \
           "output b'reply from the driver\\x00'" in out
    assert "kdcon-sim: create \\\\.\\Nope: status 0xc0000034, information 0" in out


def test_kdcon_sim_wants_a_debugger_link_or_run(capsys):
    assert cli.main(["--no-trackdemo"]) == 2
    assert "give --listen URL" in capsys.readouterr().err


def test_a_breakpoint_in_the_dispatch_routine_hits_under_a_replayed_request(ioctltest, machine):
    import pefile

    from kdcon.tools.simtarget.events import BreakpointHit
    from tests.oracles import require_tool
    from tests.simtarget.simhelpers import pdb_publics

    pdbutil = require_tool("llvm-pdbutil", "llvm-pdbutil-14")
    module = next(m for m in machine.modules if m.name == "ioctltest.sys")
    sections = [s.VirtualAddress for s in pefile.PE(str(ioctltest), fast_load=True).sections]
    dispatch = pdb_publics(pdbutil, ioctltest.with_suffix(".pdb"), module.base, sections)["TestDeviceControl"]
    handle = machine.write_breakpoint(dispatch)
    machine.io.post(IoRequest.create(r"\\.\IoctlTestKsim"), IoRequest.ioctl(0, ctl_code(0x902, 0), b"hi\0", 8),
                    IoRequest.close(0))
    event = machine.run(until=lambda: not machine.io.busy)
    while not isinstance(event, BreakpointHit):
        event = machine.run(until=lambda: not machine.io.busy)
    assert (event.pc, event.handle) == (dispatch, handle)
    # The caller is the kernel's I/O path: the return address lies in ntoskrnl.exe.
    kernel = machine.modules[0]
    ret = struct.unpack("<Q", machine.read_virtual(machine.get_context().Rsp, 8))[0]
    assert kernel.base <= ret < kernel.base + kernel.size
    machine.restore_breakpoint(handle)
    run_quiet(machine)
    assert [r.status for r in machine.io.results[-3:]] == [0, 0, 0]
    assert machine.io.results[-2].output == b"reply fr"
