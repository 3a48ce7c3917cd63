"""``kdcon --loopback --driver X.sys --ioctl ...``: the simulated target's user program
sends the driver its requests once the target runs, so one program debugs a driver's
dispatch routine (wdkdrivers/ioctltest on the simulated kernel). The breakpoint in
the dispatch routine hits, ``k`` walks through nt, and each request's result is the
line kdcon-sim prints, as an event of the console (text and --json). Most cases load
the free trackdemo build, whose DriverEntry does not break in; the default checked one
is run beside the driver once too."""

from __future__ import annotations

import json

import pytest

from tests.simtarget.wdkbuild import build

from .transcripts import run_kdcon

DEVICE_CONTROL = r"\\.\IoctlTestKsim,0x9C402408,hello"
CREATE_LINE = r"kdcon-sim: create \\.\IoctlTestKsim: status 0x00000000, information 0"
IOCTL_LINE = ("kdcon-sim: ioctl 0x9c402408 in=6 out=256: status 0x00000000, information 22, "
              r"output b'reply from the driver\x00'")
COMMANDS = ["bp ioctltest!TestDeviceControl", "g", "g", "k", "bp ioctltest!TestCreateClose", "g"]


@pytest.fixture(scope="module")
def ioctltest(tmp_path_factory):
    return build("ioctltest", tmp_path_factory.mktemp("ioctltest"))


def _run(driver, *extra: str) -> tuple[str, int]:
    args = ["--loopback", "--flavour", "free", "--driver", str(driver),
            "--ioctl", DEVICE_CONTROL, "--batch", "--timeout", "60", *extra]
    for line in COMMANDS:
        args += ["-c", line]
    return run_kdcon(args)


def test_the_dispatch_routine_breaks_and_each_request_reports_its_result(ioctltest):
    text, status = _run(ioctltest)
    assert status == 0, text[-2000:]
    hit = text.index("Breakpoint 0 hit\nioctltest!TestDeviceControl:\n")
    assert text.index(CREATE_LINE) < hit
    stack = text[hit:].split("kd> k\n", 1)[1].split("\n0: kd> ", 1)[0].splitlines()
    assert stack[1].split()[-1] == "ioctltest!TestDeviceControl"
    sites = [line.split()[-1] for line in stack[2:]]
    # PspServiceUserIo attaches the request's thread to the user program's process.
    assert sites[:4] == ["nt!IopCall+0x88", "nt!KiSimServiceIo+0x510", "nt!PspServiceUserIo+0x4d",
                         "nt!KiSimIoEntry+0x44"]
    assert sites[-1].startswith("nt!KiSystemStartup+")
    # The device control completes only after the run on from the breakpoint, and its
    # result comes before the close reaches the driver.
    result = text.index(IOCTL_LINE)
    assert text.index("kd> g", hit) < result < text.index("Breakpoint 1 hit\nioctltest!TestCreateClose:")


def test_json_gives_each_result_as_a_user_io_event(ioctltest):
    text, status = _run(ioctltest, "--json")
    assert status == 0, text[-2000:]
    events = [obj for obj in map(json.loads, text.splitlines())
              if obj.get("type") == "event" and obj.get("event") == "user_io"]
    assert [e["text"] for e in events] == [CREATE_LINE, IOCTL_LINE]
    ioctl = events[1]
    assert ioctl["request"] == "ioctl 0x9c402408 in=6 out=256"
    assert (ioctl["status"], ioctl["information"]) == (0, 22)
    assert bytes.fromhex(ioctl["output"]) == b"reply from the driver\0"


@pytest.mark.parametrize("spec, message", [
    ("x,1", r"kdcon: --ioctl x,1: use DEVICE,CODE,INPUT[,OUTLEN]"),
    ("x,zz,hi", "kdcon: --ioctl x,zz,hi: CODE and OUTLEN are numbers"),
    ("x,1,hex:0g", "kdcon: --ioctl x,1,hex:0g: hex: takes pairs of hex digits"),
])
def test_a_bad_ioctl_is_one_line_and_status_2(spec, message, capsys):
    text, status = run_kdcon(["--loopback", "--ioctl", spec, "--batch"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(message) and err.count("\n") == 1


def test_ioctl_without_loopback_is_refused(capsys):
    text, status = run_kdcon(["--port", "unix:///nowhere", "--ioctl", r"\\.\X,1,a", "--batch"])
    err = capsys.readouterr().err
    assert status == 2
    assert err == ("kdcon: --ioctl needs --loopback (kdcon-sim --ioctl sends them to a "
                   "target kdcon-sim serves)\n")


def test_the_requests_go_through_beside_the_default_checked_trackdemo(ioctltest):
    # The checked trackdemo breaks in at its DriverEntry: the first g stops there.
    args = ["--loopback", "--driver", str(ioctltest), "--ioctl", DEVICE_CONTROL, "--batch",
            "--timeout", "60"]
    for line in ("bp ioctltest!TestCreateClose", "g", "g", "g"):
        args += ["-c", line]
    text, status = run_kdcon(args)
    assert status == 0, text[-2000:]
    assert "Fatal System Error" not in text
    assert text.index(CREATE_LINE) < text.index(IOCTL_LINE)
    assert "Breakpoint 0 hit\nioctltest!TestCreateClose:" in text.split(IOCTL_LINE, 1)[1]
