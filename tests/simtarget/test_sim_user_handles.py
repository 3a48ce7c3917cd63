"""Handles from the simulated user program (wdkdrivers/evtest): the program runs in a
process of its own with a handle table, creates an event and passes its handle in the
IOCTL input; the driver takes it with ObReferenceObjectByHandle(EVENT_MODIFY_STATE,
*ExEventObjectType, UserMode) and sets it, and the program's wait reports it.  The
reference checks type, access and handle kind as documented."""

from __future__ import annotations

import struct

import pytest

from kdcon.tools.simtarget import cli
from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest, IoctlSpec, ioctl_requests, parse_ioctl
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet

REGISTER, HANDLES = 0x80002400, 0x80002404
DEVICE = r"\\.\KsimEvTest"
SYNCHRONIZE = 0x100000


@pytest.fixture(scope="module")
def evtest(tmp_path_factory):
    return build("evtest", tmp_path_factory.mktemp("evtest"))


@pytest.fixture()
def machine(evtest):
    m = Machine(drivers=[evtest])
    m.boot()
    assert printed(run_quiet(m), "evt:") == ["evt: loaded"]
    return m


def play(machine, *requests):
    before = len(machine.io.results)
    machine.io.post(*requests)
    events = run_quiet(machine)
    for _ in range(100):                  # a wait keeps the program busy while the guest runs
        if not machine.io.busy:
            break
        events += run_quiet(machine)
    assert not machine.io.busy
    assert not any(isinstance(e, BugCheck) for e in events)
    return machine.io.results[before:], printed(events, "evt:")


def register(handle_from: int, delay_ms: int = 0, opened: int = 0) -> IoRequest:
    """The IOCTL with the handle request ``handle_from`` made, on the file request ``opened``."""
    data = bytes(8) + struct.pack("<ii", delay_ms, 0)
    return IoRequest.ioctl(opened, REGISTER, data, 0, handles=((0, handle_from),))


def test_the_drivers_event_set_is_seen_by_the_programs_wait(machine):
    results, lines = play(machine, IoRequest.start_process("evapp.exe"), IoRequest.create_event(),
                          IoRequest.create(DEVICE), register(1, opened=2), IoRequest.wait(1, 50),
                          IoRequest.close(2), IoRequest.close_handle(1), IoRequest.exit_process())
    pid = results[0].information
    assert results[1].handle and results[1].handle & 0x80000000 == 0 and results[1].handle % 4 == 0
    assert lines == [f"evt: register status=0 pid={pid} mode=1 delay=0"]
    assert results[4].status == 0 and results[4].describe().endswith("event signalled")
    assert all(r.ok for r in results)


def test_a_timer_dpc_sets_the_event_later(machine):
    results, lines = play(machine, IoRequest.create_event(), IoRequest.create(DEVICE), register(0, 30, opened=1),
                          IoRequest.wait(0, 5), IoRequest.wait(0, 200), IoRequest.close_handle(0))
    assert lines[0].endswith("delay=30")
    assert results[3].status == 0x102 and results[3].describe().endswith("event timed out")
    assert results[4].status == 0


@pytest.mark.parametrize("requests, status", [
    ([IoRequest.create_event(access=SYNCHRONIZE)], 0xC0000022),       # no EVENT_MODIFY_STATE granted
    ([IoRequest.open_process()], 0xC0000024),                         # a process is no event
])
def test_the_reference_checks_access_and_type_for_a_user_mode_caller(machine, requests, status):
    results, lines = play(machine, *requests, IoRequest.create(DEVICE), register(0, opened=1))
    assert lines[0].startswith(f"evt: register status={status:x} ")
    assert results[-1].status == status


def test_a_handle_the_program_never_had_is_invalid(machine):
    data = struct.pack("<Qii", 0x1234, 0, 0)
    results, lines = play(machine, IoRequest.create(DEVICE), IoRequest.ioctl(0, REGISTER, data))
    assert lines[0].startswith("evt: register status=c0000008 ")


def test_handles_go_where_obj_kernel_handle_says_and_kernel_ones_refuse_user_mode(machine):
    _, lines = play(machine, IoRequest.create(DEVICE), IoRequest.ioctl(0, HANDLES), IoRequest.close(0))
    assert lines == ["evt: handles open=0,0 user_kernel_bit=0 kernel_kernel_bit=1 kernel_as_user=c0000008 "
                     "kernel_as_kernel=0 close=0,0"]


def test_process_exit_closes_the_programs_handles(machine):
    before = tag_counts(machine, b"Even")
    results, _ = play(machine, IoRequest.start_process(), IoRequest.create_event(), IoRequest.create_event(),
                      IoRequest.exit_process())
    after = tag_counts(machine, b"Even")
    assert after[0] - before[0] == 2 and after[1] - before[1] == 2
    # After the exit the handle is gone with the process.
    results, _ = play(machine, IoRequest.wait(1, 0))
    assert results[0].status == 0xC0000008


def test_an_event_the_driver_still_references_outlives_the_program(machine):
    before = tag_counts(machine, b"Even")
    play(machine, IoRequest.start_process(), IoRequest.create_event(), IoRequest.create(DEVICE),
         register(1, 40, opened=2), IoRequest.close(2), IoRequest.exit_process())
    assert tag_counts(machine, b"Even")[1] == before[1]          # the timer's reference keeps it
    machine.io.post(IoRequest.start_process())
    run_quiet(machine, budget=8_000_000)                          # the timer fires
    after = tag_counts(machine, b"Even")
    assert after[0] - before[0] == 1 and after[1] - before[1] == 1


def test_open_process_grants_what_was_asked_without_callbacks(machine):
    results, _ = play(machine, IoRequest.start_process(), IoRequest.open_process(0x1FFFFF),
                      IoRequest.open_process(0x1FFFFF, process_id=4), IoRequest.close_handle(1))
    assert results[1].granted_access == 0x1FFFFF
    assert results[2].status == 0xC000000B                       # System is not opened here
    assert results[3].ok


@pytest.mark.parametrize("spec, parsed", [
    (r"\\.\E,1,hex:{event}01000000", IoctlSpec(r"\\.\E", 1, bytes(8) + b"\1\0\0\0", 256, 0, 100)),
    (r"\\.\E,1,hex:aa{event:250},8", IoctlSpec(r"\\.\E", 1, b"\xaa" + bytes(8), 8, 1, 250)),
])
def test_the_event_placeholder_parses(spec, parsed):
    assert parse_ioctl(spec) == parsed


@pytest.mark.parametrize("spec", [r"\\.\E,1,hex:{event}{event}", r"\\.\E,1,hex:{event:x}", r"\\.\E,1,hex:{evnt}",
                                  r"\\.\E,1,hex:{event"])
def test_bad_placeholders_are_refused_in_one_line(spec):
    with pytest.raises(ValueError, match="--ioctl"):
        parse_ioctl(spec)


def test_ioctl_requests_wrap_the_program_in_its_process():
    requests = ioctl_requests([parse_ioctl(r"\\.\E,1,hex:{event}")])
    names = [r.describe().split(" access")[0] for r in requests]
    assert names == ["create event", r"create \\.\E", "ioctl 0x1 in=8 out=256", "wait", "close", "close handle",
                     "exit process"]
    assert requests[2].handles == ((0, 0),)
    # The first four fields alone are a spec too (what the loopback's child is sent).
    assert ioctl_requests([(r"\\.\E", 1, b"x", 8)])[1].data == b"x"


def test_kdcon_sim_run_reports_whether_the_event_was_signalled(evtest, capsys):
    assert cli.main(["--run", "--no-trackdemo", "--driver", str(evtest),
                     "--ioctl", DEVICE + ",0x80002400,hex:{event}0500000000000000"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "kdcon-sim: wait: status 0x00000000, event signalled" in out
    assert out[0] == "evt: loaded" and out[-1] == "evt: unload"
    assert "kdcon-sim: exit process: status 0x00000000, information 0" in out
