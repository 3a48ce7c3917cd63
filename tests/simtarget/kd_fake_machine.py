"""A small scripted machine for the kd stub's own tests (no CPU, no images).

It keeps sparse memory pages with permissions, a register set, 32 breakpoint slots and
a queue of stops that ``run`` hands out one by one; with the queue empty, ``run`` waits
for ``request_breakin`` like a CPU spinning in the kernel's system loop. Tests of the
whole target use the real machine; this one pins the stub's rules down exactly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kdcon.tools.simtarget.kd import StopReport, VersionInfo

PAGE = 0x1000


@dataclass
class FakeMachine:
    pages: dict[int, bytearray] = field(default_factory=dict)
    perms: dict[int, str] = field(default_factory=dict)
    registers: dict[str, int] = field(default_factory=lambda: {
        "Rip": 0xFFFFF80000401000, "Rsp": 0xFFFFF80000800000, "EFlags": 0x202,
        "SegCs": 0x10, "Dr7": 0x400, "Dr6": 0xFFFF0FF0})
    special: dict[str, int] = field(default_factory=lambda: {
        "Cr0": 0x80050033, "Cr3": 0x1AA000, "Cr4": 0x6F8, "GdtrBase": 0xFFFFF80000050000,
        "GdtrLimit": 0x57, "Tr": 0x40})
    msrs: dict[int, int] = field(default_factory=lambda: {0xC0000082: 0xFFFFF80000402000})
    stops: list[StopReport] = field(default_factory=list)
    breakpoints: dict[int, tuple[int, int]] = field(default_factory=dict)
    prompt_answers: list[str] = field(default_factory=list)
    resumes: list[tuple[bool, int | None]] = field(default_factory=list)
    reboots: int = 0
    bugchecks: int = 0
    breakin: threading.Event = field(default_factory=threading.Event)
    reboot_stops: list[StopReport] = field(default_factory=list)

    # -- memory -------------------------------------------------------------------------

    def map(self, address: int, data: bytes, perms: str = "rwx") -> None:
        first, last = address & ~(PAGE - 1), (address + max(len(data), 1) - 1) & ~(PAGE - 1)
        for page in range(first, last + 1, PAGE):
            self.pages.setdefault(page, bytearray(PAGE))
            self.perms[page] = perms
        self.write_virtual(address, data)

    def read_virtual(self, address: int, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            at = address + len(out)
            page = self.pages.get(at & ~(PAGE - 1))
            if page is None:
                break
            offset = at & (PAGE - 1)
            out += page[offset: offset + size - len(out)]
        for handle, (bp, original) in self.breakpoints.items():
            if original is not None and address <= bp < address + len(out):
                out[bp - address] = original
        return bytes(out)

    def write_virtual(self, address: int, data: bytes) -> int:
        done = 0
        while done < len(data):
            at = address + done
            page = self.pages.get(at & ~(PAGE - 1))
            if page is None:
                break
            offset = at & (PAGE - 1)
            take = min(PAGE - offset, len(data) - done)
            page[offset: offset + take] = data[done: done + take]
            done += take
        return done

    # Physical memory: identity-mapped onto the low 4 GiB alias of the pages.
    def read_physical(self, address: int, size: int) -> bytes:
        return self.read_virtual(address | 0xFFFFF80000000000, size)

    def write_physical(self, address: int, data: bytes) -> int:
        return self.write_virtual(address | 0xFFFFF80000000000, data)

    def query_memory(self, address: int) -> str | None:
        return self.perms.get(address & ~(PAGE - 1))

    # -- registers ----------------------------------------------------------------------

    def get_context(self) -> dict[str, int]:
        return dict(self.registers)

    def set_context(self, context: dict[str, int]) -> None:
        self.registers.update({k: context[k] for k in ("Rip", "Rsp", "Rax", "EFlags", "Dr7")})

    def get_special_registers(self) -> dict[str, int]:
        return dict(self.special)

    def set_special_registers(self, registers: dict[str, int]) -> None:
        self.special.update(registers)

    def control_pointer(self, index: int) -> int | None:
        return {0: 0xFFFFF80000060000, 1: 0xFFFFF80000060180, 3: 0xFFFFF80000070000}.get(index)

    def current_thread(self) -> int:
        return 0xFFFFF80000070000

    def read_msr(self, msr: int) -> int | None:
        return self.msrs.get(msr)

    def write_msr(self, msr: int, value: int) -> bool:
        if msr not in self.msrs:
            return False
        self.msrs[msr] = value
        return True

    def version_block(self) -> bytes:
        return self.version_info().to_bytes()

    def version_info(self) -> VersionInfo:
        return VersionInfo(build=7601, kern_base=0xFFFFF80000400000,
                           ps_loaded_module_list=0xFFFFF80000410000,
                           debugger_data_list=0xFFFFF80000410100)

    # -- breakpoints --------------------------------------------------------------------

    def write_breakpoint(self, address: int) -> int:
        # The real table's rules (tools/simtarget/breakpoints.py): one entry per address,
        # 32 entries, an unreadable address deferred (kept with no original byte).
        if any(bp == address for bp, _ in self.breakpoints.values()):
            return 0
        original = self.read_virtual(address, 1)
        for handle in range(1, 33):
            if handle not in self.breakpoints:
                self.breakpoints[handle] = (address, original[0] if original else None)
                if original:
                    self.write_virtual(address, b"\xcc")
                return handle
        return 0

    def restore_breakpoint(self, handle: int) -> bool:
        entry = self.breakpoints.pop(handle, None)
        if entry is None:
            return False
        if entry[1] is not None:
            self.write_virtual(entry[0], bytes([entry[1]]))
        return True

    # -- running ------------------------------------------------------------------------

    def request_breakin(self) -> None:
        self.breakin.set()

    def run(self, until=None) -> StopReport:
        if self.stops:
            return self.stops.pop(0)
        # Spin like the kernel's system loop, checking between slices.
        while not self.breakin.wait(0.01):
            if until is not None and until():
                return StopReport(kind="none")
        self.breakin.clear()
        return StopReport(kind="exception", code=0x80000003, address=self.registers["Rip"])

    def describe(self, stop: StopReport) -> StopReport:
        return stop

    def resume(self, trace: bool, dr7: int | None) -> None:
        self.resumes.append((trace, dr7))
        if trace:
            self.registers["Rip"] += 1
            self.stops.insert(0, StopReport(kind="exception", code=0x80000004,
                                            address=self.registers["Rip"]))

    def answer_prompt(self, text: str) -> None:
        self.prompt_answers.append(text)

    def reboot(self) -> None:
        self.reboots += 1
        self.stops[:0] = list(self.reboot_stops)

    def cause_bugcheck(self) -> None:
        self.bugchecks += 1
        self.stops.insert(0, StopReport(kind="exception", code=0x80000003,
                                        address=self.registers["Rip"]))
