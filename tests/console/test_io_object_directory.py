"""!drvobj and !devobj find names through the object directory, as on Windows, and
!object \\Driver and !object \\Device list the named driver and device objects (a device
created without a name is in no directory); on a kernel without those directories the
simulated kernel's driver table (nt!IopDrivers) still finds them."""

from __future__ import annotations

import pytest

from kdcon.extensions import _iodata
from tests.simtarget.wdkbuild import build

from .extension_session import Live
from .transcripts import run_kdcon

IOSTACK_IOCTL = r"\\.\IoStackKsim,0x9C432400,hi,32"


@pytest.fixture(scope="module")
def iostack(tmp_path_factory):
    return build("iostack", tmp_path_factory.mktemp("iostack"))


def _after(text: str, command: str) -> list[str]:
    part = text.split(f"kd> {command}\n", 1)[1]
    return part.split("\n0: kd> ", 1)[0].rstrip("\n").splitlines()


def _listing(lines: list[str]) -> dict[str, tuple[str, int]]:
    """Name -> (type, address) of a directory's entries as !object prints them."""
    rows = lines[lines.index(next(line for line in lines if line.strip().startswith("----"))) + 1:]
    return {row.split()[-1]: (row.split()[-2], int(row.split()[-3], 16)) for row in rows}


def test_the_directories_list_named_objects_and_leave_the_unnamed_device_out(iostack):
    commands = [r"!object \Driver", r"!object \Device", r"!drvobj iostack 1",
                r"!devobj \Device\IoStackKsim"]
    args = ["--loopback", "--flavour", "free", "--driver", str(iostack), "--ioctl",
            IOSTACK_IOCTL, "--batch", "--timeout", "60", "-c", "bp iostack!StackDispatch"]
    for line in ["g"] * 5 + commands:
        args += ["-c", line]
    text, status = run_kdcon(args)
    assert status == 0, text[-3000:]
    drivers = _listing(_after(text, commands[0]))
    devices = _listing(_after(text, commands[1]))
    drvobj = _after(text, commands[2])
    driver = int(drvobj[0].split("(")[1].split(")")[0], 16)
    assert drivers["iostack"] == ("Driver", driver)
    assert all(kind == "Driver" for kind, _ in drivers.values())
    listed = [int(word, 16) for line in drvobj[drvobj.index("Device Object list:") + 1:]
              for word in line.split()]
    assert len(listed) == 2                           # the named device and its unnamed filter
    named = int(_after(text, commands[3])[0].split("(")[1].split(")")[0], 16)
    assert devices["IoStackKsim"] == ("Device", named)
    assert [a for a in listed if a not in {a for _, a in devices.values()}] == \
        [a for a in listed if a != named]


@pytest.fixture(scope="module")
def live():
    session = Live(flavour="free")
    session.ok("bp trackdemo!TrackDemoDispatch")
    for _ in range(3):
        session.run("g")
    yield session
    session.close()


def test_without_the_directories_the_driver_table_finds_the_same_objects(live, monkeypatch):
    by_directory = live.ok("!drvobj trackdemo 1"), live.ok(r"!devobj \Device\TrackDemo")
    asked = []

    def no_directory(target, path):
        asked.append(path)
        return None

    monkeypatch.setattr(_iodata, "find_named", no_directory)
    by_table = live.ok("!drvobj trackdemo 1"), live.ok(r"!devobj \Device\TrackDemo")
    assert asked == ["\\Driver\\trackdemo", "\\Driver", "\\Device\\TrackDemo", "\\Device"]
    assert by_table == by_directory
    assert "No driver object is named \\Driver\\nosuch" in live.fails("!drvobj nosuch")
