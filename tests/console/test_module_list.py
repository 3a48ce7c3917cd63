"""The module walk reads each image's timestamp where the kernel's build keeps it."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import pytest

from kdcon.app import App
from kdcon.output import Output
from kdcon.tools.simtarget.kd import StopReport, VersionInfo
from kdcon.tools.simtarget.loopback import SimTarget
from tests.simtarget.kd_fake_machine import FakeMachine

LIST_HEAD = 0xFFFFF80000410000
ENTRY = 0xFFFFF80000420000
NAME = 0xFFFFF80000430000


@dataclass
class BuildMachine(FakeMachine):
    build: int = 7601

    def version_info(self) -> VersionInfo:
        return VersionInfo(build=self.build, kern_base=0xFFFFF80000400000,
                           ps_loaded_module_list=LIST_HEAD, debugger_data_list=0)


def _machine(build: int, stamp_at: int) -> BuildMachine:
    machine = BuildMachine(build=build)
    name = "mydrv.sys".encode("utf-16-le")
    entry = bytearray(0xA0)
    struct.pack_into("<QQ", entry, 0, LIST_HEAD, LIST_HEAD)
    struct.pack_into("<QQI", entry, 0x30, 0xFFFFF80000500000, 0, 0x3000)
    struct.pack_into("<HHxxxxQ", entry, 0x58, len(name), len(name), NAME)
    struct.pack_into("<I", entry, stamp_at, 0x5F5E1234)
    machine.map(LIST_HEAD, struct.pack("<QQ", ENTRY, ENTRY))
    machine.map(ENTRY, bytes(entry))
    machine.map(NAME, name)
    machine.map(0xFFFFF80000401000, b"\xcc" + bytes(15))
    machine.stops = [StopReport(kind="exception", code=0x80000003, address=0xFFFFF80000401000)]
    return machine


@pytest.mark.parametrize("build,stamp_at", [(7601, 0x80), (19045, 0x9C), (22631, 0x9C)])
def test_timestamp_comes_from_the_builds_loader_entry_layout(build, stamp_at):
    sim = SimTarget(machine=_machine(build, stamp_at))
    app = App(sim.connect(), link_name="fake", output=Output(stream=io.StringIO()))
    try:
        app.connect()
        (module,) = app.session.modules
    finally:
        app.close()
        sim.close()
    assert module.name == "mydrv.sys" and module.timestamp == 0x5F5E1234
