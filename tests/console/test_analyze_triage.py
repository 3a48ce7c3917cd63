"""!analyze's triage without a target: which frame and module it blames and what it
guesses, for bug checks the simulated kernel does not raise on request."""

from __future__ import annotations

from dataclasses import dataclass

from kdcon.extensions import _bugcodes, _triage

NT = 0xFFFFF800_01000000
DRIVER = 0xFFFFF880_04000000
MAPPED = 0xFFFFFA80_00001000


@dataclass
class Module:
    name: str
    base: int
    size: int
    image_name: str


class FakeTarget:
    """Two modules, one readable page, symbols as module+offset."""

    pointer_size = 8

    def modules(self):
        return [Module("nt", NT, 0x100000, "ntoskrnl.exe"),
                Module("mydrv", DRIVER, 0x10000, "mydrv.sys")]

    def name_for(self, address: int):
        for module in self.modules():
            if module.base <= address < module.base + module.size:
                return f"{module.name}!Routine+0x{address - module.base:x}"
        return None

    def format_address(self, address: int) -> str:
        return f"{address >> 32:08x}`{address & 0xFFFFFFFF:08x}"

    def read(self, address: int, size: int) -> bytes:
        return b"\0" * size if MAPPED <= address < MAPPED + 0x1000 else b""

    def run(self, command: str):
        raise AssertionError(f"no command expected: {command}")


def _frames(*ips: tuple[int, str]) -> list[_triage.Frame]:
    return [_triage.Frame(index, ip, name) for index, (ip, name) in enumerate(ips)]


STACK = _frames((NT + 0x10, "nt!KeBugCheckEx"), (NT + 0x20, "nt!KiPageFault+0x80"),
                (NT + 0x500, "nt!ExpSomething+0x10"), (DRIVER + 0x40, "mydrv!Routine+0x40"))


def _place(code_number: int, params: tuple[int, int, int, int]):
    target = FakeTarget()
    code = _bugcodes.describe(code_number)
    return target, code, _triage.locate(target, code, params, STACK)


def test_a_kernel_fault_on_a_driver_s_behalf_follows_the_driver():
    params = (0, 2, 0, NT + 0x500)
    target, code, place = _place(0x0A, params)
    assert place.ip == NT + 0x500
    assert (place.module.name, place.symbol) == ("mydrv", "mydrv!Routine+40")
    cause = " ".join(_triage.bugcheck_cause(target, 0x0A, code, params, place, STACK))
    assert "read 00000000`00000000 at IRQL 2 (DISPATCH_LEVEL)" in cause
    assert "bad pointer" in cause


def test_a_mapped_address_at_dispatch_level_is_called_pageable():
    params = (MAPPED + 8, 2, 1, DRIVER + 0x40)
    target, code, place = _place(0xD1, params)
    cause = " ".join(_triage.bugcheck_cause(target, 0xD1, code, params, place, STACK))
    assert "mydrv!Routine+0x40 wrote fffffa80`00001008" in cause
    assert "most likely pageable" in cause and "mydrv.sys" in cause


def test_an_unhandled_access_violation_names_the_access_and_the_address():
    params = (0xC0000005, DRIVER + 0x40, 1, 0x18)
    target, code, place = _place(0x1E, params)
    assert place.symbol == "mydrv!Routine+40"
    cause = " ".join(_triage.bugcheck_cause(target, 0x1E, code, params, place, STACK))
    assert cause.startswith("Access violation (c0000005) in mydrv!Routine+0x40")
    assert "tried to write to 00000000`00000018" in cause


def test_without_a_faulting_address_the_first_frame_below_the_machinery_is_blamed():
    params = (8, 0, 0, 0)
    target, code, place = _place(0x7F, params)
    assert place.frame is STACK[3] and place.module.name == "mydrv"
    cause = " ".join(_triage.bugcheck_cause(target, 0x7F, code, params, place, STACK))
    assert "a double fault" in cause and "stack overflow" in cause


def test_a_first_chance_exception_stop_says_what_g_and_gn_do():
    target = FakeTarget()
    stop = {"reason": "exception", "code": 0xC0000094, "first_chance": True,
            "symbol": "mydrv!Routine+0x40"}
    sentences, code, blame = _triage.stop_cause(target, stop, DRIVER + 0x40, STACK)
    assert code == 0xC0000094 and blame
    assert sentences[0].startswith("Integer divide-by-zero (c0000094, first chance) at "
                                   "mydrv!Routine+0x40.")


def test_a_stop_from_before_the_extension_loaded_is_said_to_be_unknown():
    sentences, code, blame = _triage.stop_cause(FakeTarget(), None, NT, STACK)
    assert code is None and not blame and "not known" in sentences[0]


def test_a_break_from_an_assertion_names_the_code_that_asserted():
    frames = _frames((NT + 0x10, "nt!DbgBreakPoint"), (NT + 0x30, "nt!RtlAssert+0xc0"),
                     (DRIVER + 0x40, "mydrv!Routine+0x40"))
    stop = {"reason": "exception", "code": 0x80000003, "symbol": "nt!DbgBreakPoint"}
    sentences, code, blame = _triage.stop_cause(FakeTarget(), stop, NT + 0x10, frames)
    assert blame and sentences[0].startswith(
        "An assertion failed in mydrv!Routine+0x40 and its prompt was answered b (break)")
