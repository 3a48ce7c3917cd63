"""Shared pieces of the simulated target's acceptance tests (real machine, host role).

``booted`` attaches a KD host to a fresh SimTarget, follows the boot (one LoadSymbols
per module, each answered with Continue2) up to trackdemo's BreakIfKdPresent and
returns everything the tests need. Addresses come from the files on disk: exports
with pefile, static routines and data from the PDB with llvm-pdbutil (the oracle).
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pefile

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.constants import NtStatus
from kdcon.protocol.events import StateChange
from kdcon.tools.simtarget.loopback import SimTarget
from tests.oracles import require_tool

from .kd_host import KdHost

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"
TRACKDEMO_SOURCE = IMAGES.parent / "src" / "trackdemo" / "trackdemo.c"
FILES = {
    "ntoskrnl.exe": IMAGES / "ntoskrnl.exe",
    "hal.dll": IMAGES / "hal.dll",
    "kdcom.dll": IMAGES / "kdcom.dll",
    "trackdemo.sys": IMAGES / "checked" / "trackdemo.sys",
}
STATUS_BREAKPOINT = NtStatus.STATUS_BREAKPOINT
STATUS_SINGLE_STEP = NtStatus.STATUS_SINGLE_STEP
LOAD_SYMBOLS = 0x3031
EXCEPTION = 0x3030
KI_SIM_LEAK, KI_SIM_OVERWRITE, KI_SIM_UNLOAD, KI_SIM_BUGCHECK, KI_SIM_BAD_ACCESS = 1, 2, 6, 7, 8
BAD_ADDRESS = 0xFFFFF80BADC0DE00  # what KiSimRequest 8 makes driver code read (the kernel's layout)


@dataclass
class Booted:
    sim: SimTarget
    host: KdHost
    loads: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (base, size)
    first: StateChange | None = None
    initial_break: StateChange | None = None

    def base(self, module: str) -> int:
        return self.loads[module][0]

    def export(self, module: str, name: str) -> int:
        return self.base(module) + export_rva(module, name)

    def set_request(self, value: int) -> None:
        address = self.export("ntoskrnl.exe", "KiSimRequest")
        assert self.host.write_virtual(address, struct.pack("<I", value)) == 4

    def close(self) -> None:
        self.host.close()
        self.sim.close()


def boot(*, seed: int = 0, **kwargs) -> Booted:
    sim = SimTarget(seed=seed, **kwargs)
    booted = Booted(sim=sim, host=KdHost(sim.connect()))
    try:
        follow_boot(booted)
    except BaseException:
        booted.close()
        raise
    return booted


def follow_boot(booted: Booted, timeout: float = 20.0,
                first: StateChange | None = None) -> None:
    """Answer every LoadSymbols with Continue2 until the first exception stop, starting
    with ``first`` if the caller already took the first stop."""
    host = booted.host
    while True:
        stop = first if first is not None else host.next_stop(timeout)
        first = None
        if booted.first is None:
            booted.first = stop
        if stop.new_state != LOAD_SYMBOLS:
            booted.initial_break = stop
            return
        load = stop.message.u
        name = stop.data.rstrip(b"\0").decode().rsplit("\\", 1)[-1]
        booted.loads[name] = (load.BaseOfDll, load.SizeOfImage)
        host.continue2()


def exception_code(stop: StateChange) -> int:
    return stop.message.u.ExceptionRecord.ExceptionCode


def get_context(host: KdHost):
    from kdcon.protocol.context import CONTEXT_AMD64

    reply = host.request(A.DbgKdGetContextApi, dict(Unused=0))
    assert reply.return_status == 0 and len(reply.data) == 1232
    return CONTEXT_AMD64.parse(reply.data)


@lru_cache(maxsize=None)
def export_rva(module: str, name: str) -> int:
    pe = pefile.PE(str(FILES[module]), fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXPORT"]])
    for symbol in pe.DIRECTORY_ENTRY_EXPORT.symbols:
        if symbol.name and symbol.name.decode() == name:
            return symbol.address
    raise KeyError(f"{module} exports no {name}")


@lru_cache(maxsize=None)
def _pdbutil_dump(pdb: Path, what: str) -> str:
    tool = require_tool("llvm-pdbutil")
    return subprocess.run([tool, "dump", what, str(pdb)], check=True, capture_output=True,
                          text=True).stdout


def pdb_rva(pdb: Path, name: str) -> int:
    """RVA of a procedure or global in ``pdb``, read by llvm-pdbutil (the oracle)."""
    sections = [int(m.group(1), 16) for m in re.finditer(
        r"^\s*([0-9A-Fa-f]+) virtual address", _pdbutil_dump(pdb, "-section-headers"), re.M)]
    for what in ("-symbols", "-globals", "-publics"):
        match = re.search(r"`" + re.escape(name) + r"`\s*\n.*?addr = (\d{4}):(\d+)",
                          _pdbutil_dump(pdb, what))
        if match:
            return sections[int(match.group(1)) - 1] + int(match.group(2))
    raise KeyError(f"{pdb.name} has no symbol {name}")


def instruction_length(image: Path, rva: int) -> int:
    """Length of the instruction at ``rva`` of ``image``, by llvm-objdump (the oracle)."""
    tool = require_tool("llvm-objdump", "llvm-objdump-14")
    pe = pefile.PE(str(image), fast_load=True)
    va = pe.OPTIONAL_HEADER.ImageBase + rva
    out = subprocess.run([tool, "-d", f"--start-address={va:#x}", f"--stop-address={va + 16:#x}",
                          str(image)], check=True, capture_output=True, text=True).stdout
    lines = [line for line in out.splitlines() if re.match(r"^\s*[0-9a-f]+:\s", line)]
    first = re.match(r"^\s*[0-9a-f]+:\s+((?:[0-9a-f]{2} )+)", lines[0])
    assert first, out
    return len(first.group(1).split())
