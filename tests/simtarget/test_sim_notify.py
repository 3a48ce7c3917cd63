"""Notify routines and object callbacks (wdkdrivers/notifytest): process creation and
exit for the simulated user process, thread creation and exit for system threads and
the user process's thread, image loads of later drivers and of the user image, and
ObRegisterCallbacks pre/post routines on process and thread handles; each as the WDK
reference pages describe, and gone after the driver's unload."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest
from tests.simtarget.test_sim_machine_kernel import tag_counts
from tests.simtarget.wdkbuild import build, printed, run_quiet

IMAGE = r"\Device\HarddiskVolume1\Users\Public"


@pytest.fixture(scope="module")
def drivers(tmp_path_factory):
    out = tmp_path_factory.mktemp("notify")
    plain = out / "plain"
    plain.mkdir()
    return (build("notifytest", out, integrity_check=True), build("notifytest", plain),
            build("evtest", out))


def boot(*drivers):
    machine = Machine(drivers=list(drivers))
    machine.boot()
    return machine, printed(run_quiet(machine), "notify:")


def play(machine, *requests):
    before = len(machine.io.results)
    machine.io.post(*requests)
    events = run_quiet(machine)
    assert not machine.io.busy and not any(isinstance(e, BugCheck) for e in events)
    return machine.io.results[before:], printed(events, "notify:")


def test_registration_statuses_follow_the_reference_pages(drivers):
    _, lines = boot(drivers[0])
    assert lines[0] == ("notify: register process=0 twice=c000000d remove_absent=c000000d process_ex=0 thread=0 "
                        "remove_absent=c000007a image=0 ob_version=c000000d ob_altitude=c000000d ob=0 "
                        "ob_collision=c01c0011 lookup_absent=c000000d")


def test_an_image_without_integritycheck_is_refused_the_ex_routine_and_callbacks(drivers):
    _, lines = boot(drivers[1])
    assert "process_ex=c0000022" in lines[0] and " ob=c0000022" in lines[0]
    assert "process=0 " in lines[0] and "image=0" in lines[0]


def test_a_system_thread_is_reported_with_its_handle_through_the_callbacks(drivers):
    _, lines = boot(drivers[0], drivers[2])
    assert lines[1:4] == [
        "notify: pre thread kernel=1 op=1 desired=100000",
        "notify: post thread kernel=1 granted=100000 status=0 context=5eed registration=1",
        "notify: thread create pid=4 tid=12 irql=0 lookup=0 same=1",
    ]
    assert "notify: thread exit pid=4 tid=12 irql=0" in lines


def test_a_driver_loaded_later_is_a_system_image_load(drivers):
    _, lines = boot(drivers[0], drivers[2])
    assert r"notify: image pid=0 system=1 size=5000 name=\SystemRoot\system32\drivers\evtest.sys" in lines


def test_the_user_process_is_reported_from_start_to_exit(drivers):
    machine, _ = boot(drivers[0])
    results, lines = play(machine, IoRequest.start_process("app.exe"), IoRequest.exit_process())
    pid = results[0].information
    assert lines == [
        f"notify: process create pid={pid} parent=4",
        f"notify: process-ex create pid={pid} parent=4 image={IMAGE}\\app.exe size=72 lookup=0,0 same=1 "
        "parent_pid=4",
        f"notify: thread create pid={pid} tid={pid + 4} irql=0 lookup=0 same=1",
        f"notify: image pid={pid} system=0 size=10000 name={IMAGE}\\app.exe",
        f"notify: thread exit pid={pid} tid={pid + 4} irql=0",
        f"notify: process exit pid={pid} parent=4",
        f"notify: process-ex exit pid={pid} same=1",
    ]
    # Every lookup's reference was given back: only System's own process and thread live.
    for tag in (b"Proc", b"Thre"):
        allocated, freed, _ = tag_counts(machine, tag)
        assert allocated - freed == 1, tag


def test_a_pre_callback_takes_rights_from_a_user_process_handle(drivers):
    machine, _ = boot(drivers[0])
    results, lines = play(machine, IoRequest.start_process(), IoRequest.open_process(0x1FFFFF),
                          IoRequest.close_handle(1))
    assert results[1].granted_access == 0x1FFFFE
    assert lines[-2:] == ["notify: pre process kernel=0 op=1 desired=1fffff",
                          "notify: post process kernel=0 granted=1ffffe status=0 context=5eed registration=1"]


def test_an_ex_routine_can_refuse_a_process(drivers):
    machine, _ = boot(drivers[0])
    results, lines = play(machine, IoRequest.start_process("denied.exe"), IoRequest.start_process("ok.exe"))
    assert results[0].status == 0xC0000022 and results[1].ok
    assert not any("thread create pid" in line and "pid=4 " not in line for line in lines[:2])
    assert lines[-2].startswith("notify: thread create")


def test_unload_removes_every_routine_and_nothing_is_called_after(drivers):
    machine, _ = boot(drivers[0])
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "notify:") == ["notify: unload removed=0,0,0,0 again=c000007a"]
    # The driver's code is gone: a routine still registered would fault here.
    results, lines = play(machine, IoRequest.start_process(), IoRequest.open_process(), IoRequest.exit_process())
    assert lines == [] and results[1].granted_access == 0x1FFFFF


def test_a_user_process_without_drivers_watching_still_starts_and_ends(drivers):
    machine, _ = boot(drivers[2])
    results, _ = play(machine, IoRequest.start_process(), IoRequest.start_process(), IoRequest.exit_process(),
                      IoRequest.exit_process())
    assert [r.status for r in results] == [0, 0xC0000035, 0, 0xC000000D]
