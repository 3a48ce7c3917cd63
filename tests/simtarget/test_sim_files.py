"""Drivers' log files: ZwCreateFile/ZwOpenFile, ZwWriteFile, ZwReadFile,
ZwQueryInformationFile and ZwClose in the simulated kernel, called from a WDK-style
driver (wdkdrivers/filelog), with a host directory as drive C: (``kdcon-sim --files``).
The bytes land in the directory, the documented statuses come back, and no name
reaches outside the directory."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kdcon.protocol.constants import NtStatus
from kdcon.tools.simtarget import cli
from kdcon.tools.simtarget.events import BugCheck
from kdcon.tools.simtarget.hostfiles import OPEN, REQUEST_FORMAT, HostFiles, _Refused, resolve_name
from kdcon.tools.simtarget.layout import KiSimRequest
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.userio import IoRequest, ioctl_requests, parse_ioctl
from tests.simtarget.wdkbuild import build, printed, run_quiet

EXPECTED = {
    "create": "status=0 info=2 writes=0,0 bytes=12,8 query=0 end=20 pos=20",
    "append": "status=0 info=1 write=0 bytes=10 end=30",
    "read": "status=0 read=0 bytes=30 head=first line eof=c0000011 write_on_read_handle=c0000022",
    "dispositions": "collide=c0000035 missing=c0000034 nodir=c000003a create=0,2 overwrite=0,3 supersede=0,0",
    "rules": "sync_without_synchronize=c000000d open=0 no_offset=c000000d offset=0 sharing=c0000043 "
             "closed_twice=c0000008 not_a_file=c0000024",
    "setinfo": "status=0 seek=0 cut=0 end=4 pos=4 bad_class=c0000003 short=c0000004 read_only=c0000022",
    "names": "dots=c0000033 dots2=c0000033 slash=c0000033 link=c0000022 drive=c000003a stream=c0000033 "
             "dir=0,2 systemroot=0 write=0",
}


@pytest.fixture(scope="module")
def filelog(tmp_path_factory) -> Path:
    return build("filelog", tmp_path_factory.mktemp("filelog"))


def drive(tmp_path: Path) -> tuple[Path, Path]:
    """A C: directory with Logs and Windows, and an outside directory linked in as Outside."""
    root, outside = tmp_path / "c", tmp_path / "outside"
    for folder in (root / "Logs", root / "Windows", outside):
        folder.mkdir(parents=True)
    (root / "Outside").symlink_to(outside)
    return root, outside


@pytest.fixture(scope="module")
def logged(filelog, tmp_path_factory):
    root, outside = drive(tmp_path_factory.mktemp("files"))
    machine = Machine(drivers=[filelog], files=root)
    machine.boot()
    return machine, run_quiet(machine), root, outside


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_case_gets_the_documented_statuses(logged, case):
    _, events, _, _ = logged
    assert printed(events, f"file: {case} ") == [f"file: {case} {EXPECTED[case]}"]


def test_the_log_holds_what_was_written_appended_at_the_end(logged):
    _, events, root, _ = logged
    assert not any(isinstance(e, BugCheck) for e in events)
    assert (root / "Logs" / "filelog.txt").read_bytes() == b"first line\r\nsecond\r\nappended\r\n"
    # Names are matched ignoring case, as NTFS does: Logs is the folder that exists.
    assert sorted(p.name for p in (root / "Logs").iterdir()) == ["filelog.txt", "other.txt", "requests.log",
                                                                 "rules.txt", "setinfo.txt"]


def test_an_explicit_offset_writes_there_and_supersede_empties_the_file(logged):
    _, _, root, _ = logged
    assert (root / "Logs" / "rules.txt").read_bytes() == b"\0\0\0abc"
    assert (root / "Logs" / "other.txt").read_bytes() == b""


def test_a_new_position_and_end_of_file_take_effect(logged):
    _, _, root, _ = logged
    assert (root / "Logs" / "setinfo.txt").read_bytes() == b"01ab"


def test_systemroot_is_the_windows_folder_of_the_drive(logged):
    _, _, root, _ = logged
    assert (root / "Windows" / "KsimLogs" / "boot.log").read_bytes() == b"booted\r\n"


def test_no_name_reaches_outside_the_directory(logged):
    _, _, root, outside = logged
    assert list(outside.iterdir()) == []
    assert not (root.parent / "escape.txt").exists()


def test_every_host_file_is_closed_with_its_last_handle(logged):
    machine, _, _, _ = logged
    assert machine.files.open_count == 1                 # the log DriverEntry keeps open


def test_a_kernel_handle_from_driver_entry_logs_a_user_programs_requests(filelog, tmp_path):
    root, _ = drive(tmp_path)
    machine = Machine(drivers=[filelog], files=root)
    machine.boot()
    run_quiet(machine)
    machine.io.post(*ioctl_requests([parse_ioctl(r"\\.\KsimFileLog,0x80002800,first"),
                                     parse_ioctl(r"\\.\KsimFileLog,0x80002800,second")]))
    events = run_quiet(machine)
    # The program's first request started its process, the machine's first: pid 500.
    assert printed(events, "file: line") == ["file: line status=0 bytes=5 pid=500",
                                             "file: line status=0 bytes=6 pid=500"]
    assert (root / "Logs" / "requests.log").read_bytes() == b"firstsecond"
    machine.set_request(KiSimRequest.UNLOAD)
    assert printed(run_quiet(machine), "file: unload") == ["file: unload"]
    assert machine.files.open_count == 0


def test_a_file_routine_at_dispatch_level_bug_checks(filelog, tmp_path):
    root, _ = drive(tmp_path)
    machine = Machine(drivers=[filelog], files=root)
    machine.boot()
    run_quiet(machine)
    machine.io.post(IoRequest.create(r"\\.\KsimFileLog"), IoRequest.ioctl(0, 0x80002804))
    stops = [e for e in run_quiet(machine) if isinstance(e, BugCheck)]
    assert stops and stops[0].code == 0xA and stops[0].params[1] == 2 and stops[0].params[2] == 8
    assert not (root / "Logs" / "dispatch.txt").exists()


def test_without_a_directory_every_drive_name_is_not_found(filelog):
    machine = Machine(drivers=[filelog])
    machine.boot()
    lines = printed(run_quiet(machine), "file: ")
    assert lines[0] == ("file: create status=c000003a info=0 writes=c000003a,c000003a bytes=0,0 query=c0000001 "
                        "end=4294967295 pos=4294967295")
    assert "dots=c000003a" in lines[-1] and "systemroot=c000003a" in lines[-1]


@pytest.mark.parametrize("name, status", [
    (r"\??\C:\..", NtStatus.STATUS_OBJECT_NAME_INVALID),
    (r"\??\C:\a\..\..\b", NtStatus.STATUS_OBJECT_NAME_INVALID),
    (r"\??\C:\.\b", NtStatus.STATUS_OBJECT_NAME_INVALID),
    (r"\??\C:\/etc/passwd", NtStatus.STATUS_OBJECT_NAME_INVALID),
    (r"\??\C:\a\\b", NtStatus.STATUS_OBJECT_NAME_INVALID),
    (r"\??\C:\a" + "\x00b", NtStatus.STATUS_OBJECT_NAME_INVALID),
    (r"\??\C:\Up\secret", NtStatus.STATUS_ACCESS_DENIED),
    (r"\??\C:\Up", NtStatus.STATUS_ACCESS_DENIED),
    (r"\??\C:\loop\x", NtStatus.STATUS_ACCESS_DENIED),
    (r"\??\E:\x", NtStatus.STATUS_OBJECT_PATH_NOT_FOUND),
    (r"\??\C:x", NtStatus.STATUS_OBJECT_PATH_NOT_FOUND),
    (r"\Device\HarddiskVolume1\x", NtStatus.STATUS_OBJECT_PATH_NOT_FOUND),
    (r"\SystemRootX\x", NtStatus.STATUS_OBJECT_PATH_NOT_FOUND),
])
def test_hostile_names_are_refused(tmp_path, name, status):
    root = tmp_path / "c"
    root.mkdir()
    (root / "Up").symlink_to(tmp_path)
    (root / "loop").symlink_to("/")
    with pytest.raises(_Refused) as refused:
        resolve_name(root, name)
    assert refused.value.status == status


def test_names_inside_the_directory_resolve_there(tmp_path):
    root = tmp_path / "c"
    (root / "Windows").mkdir(parents=True)
    assert resolve_name(root, r"\??\c:\x.log") == root.resolve() / "x.log"
    assert resolve_name(root, r"\GLOBAL??\C:\WINDOWS\a") == root.resolve() / "Windows" / "a"
    assert resolve_name(root, r"\SystemRoot") == root.resolve() / "Windows"
    assert resolve_name(root, "\\DosDevices\\C:\\") == root.resolve()


def test_kdcon_sim_run_takes_the_files_directory(filelog, tmp_path, capsys):
    root, _ = drive(tmp_path)
    assert cli.main(["--run", "--no-trackdemo", "--driver", str(filelog), "--files", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"file: create {EXPECTED['create']}" in out
    assert (root / "Logs" / "filelog.txt").read_bytes().endswith(b"appended\r\n")


def test_kdcon_sim_refuses_a_files_directory_that_is_not_there(tmp_path, capsys):
    assert cli.main(["--run", "--no-trackdemo", "--files", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kdcon-sim: --files {tmp_path / 'absent'}: no such directory"]


class FlatMemory:
    """Guest memory for driving HostFiles directly: one flat buffer from address 0."""

    def __init__(self, size: int = 0x1000) -> None:
        self.data = bytearray(size)

    def read_virtual(self, address: int, size: int) -> bytes:
        return bytes(self.data[address:address + size])

    def write_virtual(self, address: int, data: bytes) -> int:
        self.data[address:address + len(data)] = data
        return len(data)


def host_open(files, memory, name: str, access: int, disposition: int, share: int) -> tuple[int, int]:
    """(status, host handle) of an open request the way file.c writes one."""
    encoded = name.encode("utf-16-le")
    memory.write_virtual(0x800, encoded)
    memory.write_virtual(0, struct.pack(REQUEST_FORMAT, OPEN, 0, 0, disposition, 0, access, 0, 0, 0, 0, share, 0,
                                        len(encoded), 0x800))
    files.service(memory, 0)
    fields = struct.unpack(REQUEST_FORMAT, memory.read_virtual(0, struct.calcsize(REQUEST_FORMAT)))
    return fields[1], fields[2]


def test_a_sharing_violation_leaves_the_file_as_it_was(tmp_path):
    (tmp_path / "kept.log").write_bytes(b"keep me")
    files, memory = HostFiles(tmp_path), FlatMemory()
    first = host_open(files, memory, r"\??\C:\kept.log", 0x2, 1, 0)          # FILE_WRITE_DATA, no sharing
    second = host_open(files, memory, r"\??\C:\kept.log", 0x2, 5, 7)         # FILE_OVERWRITE_IF
    assert first[0] == 0 and second[0] == NtStatus.STATUS_SHARING_VIOLATION
    assert (tmp_path / "kept.log").read_bytes() == b"keep me"
    assert files.open_count == 1
    files.reset()
    assert files.open_count == 0
