"""The StartIo model in the simulated kernel, driven from a WDK-style driver
(wdkdrivers/startio) by a user program's device controls: IoStartPacket runs StartIo at
DISPATCH_LEVEL with the packet as CurrentIrp when the device is idle and queues it
otherwise; IoStartNextPacket starts queued packets in order and IoStartNextPacketByKey
by sort key; a cancel routine given to IoStartPacket is called for a queued packet, for
the current one and for one cancelled before it was queued; KeInsertDeviceQueue and
KeRemoveDeviceQueue report and clear the busy state as documented; an IRP completed
with its cancel routine still set is bug check 0x48."""

from __future__ import annotations

import struct

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet

ONE = 40001 << 16 | 0x900 << 2
CASES = 40001 << 16 | 0x901 << 2
EXPECTED = {
    "in order": "started=ABC at_once=1 irql=222 completed=3 idle=1 busy=0",
    "by key": "started=ACDB completed=4 busy=0",
    "cancel": "queued=1 current=1 calls=3 started=AC status=c0000120,c0000120,00000000,c0000120 idle=1 busy=0",
    "device queue": "insert=011 removed_entry=1 stray=0 first=1 empty=1 busy_after=0 again=0",
}


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    machine = Machine(drivers=[build("startio", tmp_path_factory.mktemp("startio"))])
    machine.boot()
    assert printed(run_quiet(machine), "startio:") == ["startio: loaded"]
    machine.io.post(IoRequest.create(r"\\.\StartIoKsim"), IoRequest.ioctl(0, ONE, b"", 64),
                    IoRequest.ioctl(0, ONE, b"", 8), IoRequest.ioctl(0, CASES), IoRequest.close(0))
    events = run_quiet(machine)
    assert not machine.io.busy
    return machine, events


def test_a_packet_started_from_dispatch_runs_start_io_at_dispatch_level_as_the_current_irp(played):
    machine, _ = played
    one = machine.io.results[1]
    assert (one.status, one.output) == (0, b"started irql=2 current=1\0")


def test_the_device_is_idle_again_after_each_packet(played):
    machine, _ = played
    # The second packet's buffer is too small: StartIo refuses it, and the device still
    # takes the case packets after it.
    assert machine.io.results[2].status == 0xC0000023
    assert machine.io.results[3].status == 0


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_case_behaves_as_documented(played, case):
    _, events = played
    assert printed(events, f"startio: {case} ") == [f"startio: {case} {EXPECTED[case]}"]


def test_no_bug_check_and_no_irp_left_after_the_unload(played):
    machine, events = played
    assert not any(isinstance(e, BugCheck) for e in events)
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "startio:") == ["startio: unload"]
    allocs, frees, _ = tag_counts(machine, b"Irp ")
    assert allocs == frees and allocs > 0


def test_completing_an_irp_with_its_cancel_routine_set_is_bug_check_0x48(tmp_path):
    machine = Machine(drivers=[build("startio", tmp_path)])
    machine.boot()
    run_quiet(machine)
    machine.io.post(IoRequest.create(r"\\.\StartIoKsim"), IoRequest.ioctl(0, 40001 << 16 | 0x902 << 2))
    bug_checks = [e for e in run_quiet(machine) if isinstance(e, BugCheck)]
    assert len(bug_checks) == 1 and bug_checks[0].code == 0x48
    irp, routine = bug_checks[0].params[:2]
    assert struct.unpack("<H", machine.read_virtual(irp, 2))[0] == 6          # IO_TYPE_IRP
    image = next(m for m in machine.modules if m.name.lower() == "startio.sys")
    assert image.base <= routine < image.base + image.size
