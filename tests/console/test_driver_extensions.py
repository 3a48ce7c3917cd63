"""!drvobj, !devobj, !devstack and !irp on the simulated kernel: trackdemo's device and
the IRP its dispatch routine gets, a filter device over a function device (iostack: a
two-location IRP with the filter's completion routine), a StartIo device with a packet
queued behind the current one (startio); names resolved through the kernel's driver
table; bad addresses and objects of the wrong type as one line; names from the target
escaped."""

from __future__ import annotations

import json
import re

import pytest

from tests.simtarget.wdkbuild import build

from .extension_session import Live
from .transcripts import batch, check_golden, run_kdcon

TRACKDEMO_STOP = ["bp trackdemo!TrackDemoDispatch", "g", "g", "g"]
IOSTACK_IOCTL = r"\\.\IoStackKsim,0x9C432400,hi,32"       # FN_OK: through the filter
STARTIO_CASES = r"\\.\StartIoKsim,0x9C412404,,0"          # IOCTL_STARTIO_CASES


@pytest.fixture(scope="module")
def iostack(tmp_path_factory):
    return build("iostack", tmp_path_factory.mktemp("iostack"))


@pytest.fixture(scope="module")
def startio(tmp_path_factory):
    return build("startio", tmp_path_factory.mktemp("startio"))


def _with_driver(driver, ioctl: str, *commands: str, json_rows: bool = False) -> str:
    args = ["--loopback", "--flavour", "free", "--driver", str(driver), "--ioctl", ioctl,
            "--batch", "--timeout", "60"] + (["--json"] if json_rows else [])
    for line in commands:
        args += ["-c", line]
    text, status = run_kdcon(args)
    assert status == 0, text[-3000:]
    return text.replace(str(driver.parent), "<driver>")


def _after(text: str, command: str) -> list[str]:
    """The lines ``command`` printed."""
    part = text.split(f"kd> {command}\n", 1)[1]
    return part.split("\n0: kd> ", 1)[0].rstrip("\n").splitlines()


def test_trackdemo_driver_device_and_irp_read_as_windbg_shows_them():
    text, status = batch(*TRACKDEMO_STOP, "!drvobj trackdemo 3", "!devobj @rcx",
                         r"!devstack \Device\TrackDemo", "!irp @rdx", "!irp @rdx 1")
    assert status == 0, text[-3000:]
    assert "Traceback" not in text
    check_golden("drivers_trackdemo", text)


def test_the_dispatch_table_names_each_routine():
    text, status = batch(*TRACKDEMO_STOP, r"!drvobj \Driver\trackdemo 2")
    assert status == 0, text[-3000:]
    lines = _after(text, r"!drvobj \Driver\trackdemo 2")
    table = {line[1:3]: line.split()[-1] for line in lines if line.startswith("[")}
    assert len(table) == 28
    assert table["0e"] == "trackdemo!TrackDemoDispatch"
    assert table["00"] == table["02"] == "trackdemo!TrackDemoCreateClose"
    assert table["03"] == "nt!IopInvalidDeviceRequest"
    assert "Device Object list:" not in lines        # flag 1 left out


def test_the_irp_in_rdx_is_the_one_the_device_was_sent():
    text, status = batch(*TRACKDEMO_STOP, "r rcx", "!irp @rdx")
    assert status == 0, text[-3000:]
    device = _after(text, "r rcx")[0].split("=")[1]
    lines = _after(text, "!irp @rdx")
    assert lines[0].startswith("Irp is active with 1 stacks 1 is current (= 0x")
    current = [i for i, line in enumerate(lines) if line.startswith(">[")]
    assert len(current) == 1 and lines[current[0]].startswith(">[IRP_MJ_DEVICE_CONTROL(e), N/A(0)]")
    assert lines[current[0] + 1].split()[2] == device
    assert lines[current[0] + 3].split()[3] == "0000000000222000"     # IOCTL_TRACKDEMO_TICK


def test_a_filter_stack_lists_from_the_top_and_the_irp_carries_its_completion_routine(iostack):
    text = _with_driver(iostack, IOSTACK_IOCTL, "bp iostack!StackDispatch", *["g"] * 5,
                        r"!drvobj \Driver\iostack 5", "!devstack @rcx", "!irp @rdx")
    check_golden("drivers_iostack", text)
    stack = _after(text, "!devstack @rcx")
    assert stack[0].split() == ["!DevObj", "!DrvObj", "!DevExt", "ObjectName"]
    # The function device the IRP reached is the lower one, named; the filter is on top.
    assert stack[1].startswith("  ") and stack[2].startswith("> ")
    assert stack[2].split()[-1] == "IoStackKsim"
    irp = _after(text, "!irp @rdx")
    assert irp[0].startswith("Irp is active with 2 stacks 1 is current")
    assert any(line.endswith("Success Error Cancel") for line in irp)
    assert any(line.split()[-1] == "iostack!FilterDone" for line in irp)


def test_a_startio_device_shows_its_current_irp_and_the_packet_queued_behind_it(startio):
    text = _with_driver(startio, STARTIO_CASES, "bp startio!StartIoRoutine", *["g"] * 3,
                        "r rdx", "!devobj @rcx", "!irp @rdx")
    check_golden("drivers_startio", text)
    irp = _after(text, "r rdx")[0].split("=")[1]
    device = _after(text, "!devobj @rcx")
    assert f"Current Irp {irp} " in device[2] + " "
    queued = device[device.index("DeviceQueue: ") + 1:]
    assert len(queued) == 1 and queued[0].strip() not in ("", irp)


def test_json_gives_the_irp_and_its_stack_as_rows(iostack):
    text = _with_driver(iostack, IOSTACK_IOCTL, "bp iostack!StackDispatch", *["g"] * 5,
                        "!irp @rdx", json_rows=True)
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    irps = [row for obj in rows for row in obj.get("rows", ()) if row.get("kind") == "irp"]
    assert irps and irps[0]["stack_count"] == 2 and irps[0]["current"] == 1


@pytest.mark.parametrize("command, line", [
    ("!irp @rsp", r"IRP signature does not match, probably not an IRP \(fffff880`[0-9a-f]{8}: Type 0x"),
    ("!irp 0", r"Cannot read the IRP at 00000000`00000000"),
    ("!devobj @rdx", r"fffffa80`[0-9a-f]{8} is not a device object \(Type 0x6: an IRP\)"),
    ("!drvobj @rcx", r"fffffa80`[0-9a-f]{8} is not a driver object \(Type 0x3: a device object\)"),
    ("!drvobj nosuchdriver", r"No driver object is named \\Driver\\nosuchdriver"),
    (r"!devstack \Device\Nope", r"No device object is named \\Device\\Nope"),
    ("!devobj 1234", r"Cannot read the device object at 00000000`00001234"),
    ("!irp", r"Usage: !irp Address \[Detail\]"),
    ("!drvobj trackdemo 3 4", r"Usage: !drvobj"),
])
def test_a_bad_argument_is_one_line_and_fails_the_batch(command, line):
    text, status = batch(*TRACKDEMO_STOP, command)
    assert status == 1
    printed = text.split(f"kd> {command}\n", 1)[1].rstrip("\n").splitlines()
    assert len(printed) == 1 and re.match(line, printed[0]), printed
    assert "Traceback" not in text


def test_a_device_name_from_the_target_is_escaped():
    live = Live()
    try:
        for command in TRACKDEMO_STOP:
            live.run(command)
        # KsimName.Buffer: "\Device\TrackDemo" becomes "\Device\T" ESC "[ckDemo".
        live.ok("eb poi(@rcx+158)+12 1b 00 5b 00")
        text = live.ok("!devobj @rcx")
        stack = live.ok("!devstack @rcx")
    finally:
        live.close()
    assert "\x1b" not in text and "\x1b" not in stack
    assert text.splitlines()[2].startswith(" T\\x1b[ckDemo "), text
    assert stack.splitlines()[2].endswith("T\\x1b[ckDemo"), stack


@pytest.mark.parametrize("edit, command, expected", [
    # A device list that comes back to its first device lists it once.
    ("eq @rcx+10 @rcx", "!drvobj trackdemo", r"\Afffffa80[0-9a-f]{8}\Z"),
    # A stack count no IRP has.
    ("eb @rdx+42 ff", "!irp @rdx", r"The IRP at fffffa80`[0-9a-f]{8} says it has 255 stack"),
    # A device attached above itself is one line in its stack.
    ("eq @rcx+18 @rcx", "!devstack @rcx", r"> fffffa80[0-9a-f]{8}  \\Driver\\trackdemo"),
])
def test_a_hostile_object_gives_bounded_output(edit, command, expected):
    live = Live()
    try:
        for line in TRACKDEMO_STOP:
            live.run(line)
        live.ok(edit)
        text = live.run(command)
    finally:
        live.close()
    assert "Traceback" not in text
    assert re.search(expected, text.rstrip("\n").splitlines()[-1]), text


def test_a_module_name_before_its_driver_object_exists_gets_the_names_line():
    # At the first break-in trackdemo is loaded and its DriverEntry has not run: the
    # bare word is the module's base as an expression, and the name is what was meant.
    text, status = batch("!drvobj trackdemo", "!devobj trackdemo")
    assert status == 1
    assert "kd> !drvobj trackdemo\nNo driver object is named \\Driver\\trackdemo\n" in text
    assert "kd> !devobj trackdemo\nNo device object is named \\Device\\trackdemo\n" in text
