"""A procedure's parameters and locals from PDB module streams: the simulated target's
checked and free driver PDBs against llvm-pdbutil, and hand-made streams for bad data."""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb.locals import Local, procedure_locals
from kdcon.symbols.pdb.pdbfile import open_pdb
from tests.oracles import require_tool

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"
CHECKED = IMAGES / "checked" / "trackdemo.pdb"
FREE = IMAGES / "free" / "trackdemo.pdb"

_REGISTERS = {"RSP": "rsp", "RBP": "rbp", "RAX": "rax", "RBX": "rbx", "RCX": "rcx",
              "RDX": "rdx", "RSI": "rsi", "RDI": "rdi", "ECX": "ecx", "EAX": "eax",
              "EDX": "edx", "EBX": "ebx", "ESI": "esi", "EDI": "edi",
              **{f"R{n}": f"r{n}" for n in range(8, 16)}}


@dataclass
class _Proc:
    name: str
    segment: int
    offset: int
    locals: list  # [name, is_param, [(kind, register, offset, seg, off, length)]]


def _pdbutil_procedures(path: Path) -> list[_Proc]:
    """S_*PROC32 records and their S_LOCALs with every def-range, from llvm-pdbutil."""
    tool = require_tool("llvm-pdbutil", "llvm-pdbutil-14")
    text = subprocess.run([tool, "dump", "-symbols", str(path)], capture_output=True,
                          text=True, check=True).stdout
    procs: list[_Proc] = []
    inline = 0
    lines = text.splitlines()
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if re.search(r"\| S_[GL]PROC32(_ID)? ", line):
            name = re.search(r"`(.*)`", line).group(1)
            seg, off = re.search(r"addr = (\w+):(\d+)", following).groups()
            procs.append(_Proc(name, int(seg, 16), int(off), []))
            inline = 0
        elif "| S_INLINESITE " in line:
            inline += 1
        elif "| S_INLINESITE_END" in line:
            inline -= 1
        elif inline or not procs:
            continue
        elif "| S_LOCAL " in line:
            name = re.search(r"`(.*)`", line).group(1)
            procs[-1].locals.append([name, "param" in following.split("flags =")[1], []])
        elif "| S_DEFRANGE_FRAMEPOINTER_REL " in line and procs[-1].locals:
            offset, seg, off, length = re.search(
                r"offset = (-?\d+), range = \[(\w+):(\d+),\+(\d+)\)", following).groups()
            procs[-1].locals[-1][2].append(("frame", None, int(offset), int(seg, 16), int(off),
                                            int(length)))
        elif "| S_DEFRANGE_REGISTER " in line and procs[-1].locals:
            register, seg, off, length = re.search(
                r"register = (\w+),.*range start = (\w+):(\d+), length = (\d+)", following).groups()
            procs[-1].locals[-1][2].append(("register", _REGISTERS.get(register), None,
                                            int(seg, 16), int(off), int(length)))
        elif "| S_DEFRANGE_REGISTER_REL " in line and procs[-1].locals:
            register, offset, parent = re.search(
                r"register = (\w+), offset = (-?\d+), offset in parent = (\d+)", following).groups()
            seg, off, length = re.search(r"range = \[(\w+):(\d+),\+(\d+)\)",
                                         lines[index + 2]).groups()
            if parent == "0":
                procs[-1].locals[-1][2].append(("register_rel", _REGISTERS.get(register),
                                                int(offset), int(seg, 16), int(off), int(length)))
    return procs


def _expected(pdb, proc: _Proc, rva: int, frame_register: str | None) -> list[Local]:
    out = []
    for name, is_param, ranges in proc.locals:
        chosen = None
        live = False
        for kind, register, offset, seg, off, length in ranges:
            start = pdb.rva(seg, off)
            live = start is not None and start <= rva < start + length
            if chosen is None or live:
                chosen = (frame_register if kind == "frame" else register, offset)
            if live:
                break
        if chosen is None:
            out.append((name, is_param, None, None, False))
        else:
            out.append((name, is_param, *chosen, live))
    return out


@pytest.mark.parametrize("path", [CHECKED, FREE], ids=["checked", "free"])
def test_every_procedure_has_pdbutils_locals_in_order_with_their_location(path):
    procs = _pdbutil_procedures(path)
    assert sum(len(p.locals) for p in procs) > 100
    with open_pdb(path) as pdb:
        for proc in procs:
            rva = pdb.rva(proc.segment, proc.offset)
            found = procedure_locals(pdb, rva)
            assert found is not None and found.name == proc.name
            got = [(v.name, v.is_param, v.register, v.offset, v.live) for v in found.variables]
            expected = _expected(pdb, proc, rva, found.frame_register)
            assert got == expected, proc.name


def test_tick_has_its_parameter_and_seven_locals_relative_to_rsp():
    with open_pdb(CHECKED) as pdb:
        tick = next(p for p in pdb.procedures() if p.name == "TrackDemoTick")
        found = procedure_locals(pdb, tick.rva + 0x20)
        types = pdb.types
        assert (found.frame_size, found.callee_saved, found.frame_register) == (0xB8, 0, "rsp")
        assert [(v.name, v.is_param, v.offset) for v in found.variables] == [
            ("Extension", True, 176), ("attributes", False, 128), ("wide", False, 112),
            ("ansi", False, 96), ("directory", False, 88), ("block", False, 80),
            ("mdl", False, 72), ("tick", False, 68)]
        assert types.by_index(found.variables[2].type_index).name == "_UNICODE_STRING"


def test_an_address_outside_every_procedure_has_no_locals():
    with open_pdb(CHECKED) as pdb:
        assert procedure_locals(pdb, 0x100000) is None


# -- hand-made module streams ------------------------------------------------------------------


def _record(kind: int, payload: bytes) -> bytes:
    body = struct.pack("<H", kind) + payload
    body += b"\0" * (-(len(body) + 2) % 4)
    return struct.pack("<H", len(body)) + body


def _stream(extra: bytes = b"") -> tuple[bytes, int]:
    locals_ = (_record(0x1012, struct.pack("<IIIIIHI", 0x40, 0, 0, 8, 0, 0, 1 << 14))
               + _record(0x113E, struct.pack("<IH", 0x74, 1) + b"count\0")
               + _record(0x1142, struct.pack("<iIHH", 0x30, 0x1010, 1, 0x20))
               + _record(0x1111, struct.pack("<iIH", -8, 0x23, 334) + b"saved\0")
               + _record(0x1106, struct.pack("<IH", 0x74, 330) + b"held\0"))
    end_at = 4 + len(_record(0x1110, b"\0" * 35 + b"f\0")) + len(locals_)
    proc = _record(0x1110, struct.pack("<IIIIIIIIHB", 0, end_at, 0, 0x40, 0, 0, 0x1000, 0x1000,
                                       1, 0) + b"f\0")
    data = struct.pack("<I", 4) + proc + locals_ + _record(0x0006, b"") + extra
    return data, len(data)


class _FakePdb:
    machine = 0x8664

    def __init__(self, data: bytes, sym_end: int) -> None:
        self._streams = [(data, sym_end)]

    def module_streams(self):
        return self._streams

    def rva(self, segment: int, offset: int) -> int | None:
        return offset if segment == 1 else None

    def decode_name(self, raw: bytes) -> str:
        return raw.decode()


def test_a_hand_made_stream_gives_every_location_kind():
    found = procedure_locals(_FakePdb(*_stream()), 0x1010)
    assert (found.name, found.frame_size, found.callee_saved, found.frame_register) == \
        ("f", 0x40, 8, "rsp")
    assert found.variables == [Local("count", 0x74, True, "rsp", 0x30),
                               Local("saved", 0x23, False, "rbp", -8),
                               Local("held", 0x74, False, "rcx", None)]


def test_trailing_bytes_after_the_procedure_change_nothing():
    data, _ = _stream()
    padded, end = _stream(_record(0x1106, struct.pack("<IH", 1, 2) + b"x\0") + b"\xff" * 7)
    assert procedure_locals(_FakePdb(padded, len(data)), 0x1010) == \
        procedure_locals(_FakePdb(data, len(data)), 0x1010)


def test_a_truncated_stream_is_a_symbol_file_error_not_a_crash():
    data, _ = _stream()
    for cut in range(8, len(data) - 4, 3):
        try:
            procedure_locals(_FakePdb(data[:cut], cut), 0x1010)
        except SymbolFileError:
            pass


@pytest.mark.parametrize("kind", [0x1012, 0x113E, 0x1142, 0x1144, 0x1145, 0x1141, 0x1111,
                                  0x110B, 0x1106])
def test_a_record_too_short_for_its_fields_is_a_symbol_file_error(kind):
    short = _record(kind, b"")
    proc = _record(0x1110, struct.pack("<IIIIIIIIHB", 0, 4 + 44 + len(short), 0, 0x40, 0, 0,
                                       0x1000, 0x1000, 1, 0) + b"f\0")
    data = struct.pack("<I", 4) + proc + short + _record(0x0006, b"")
    with pytest.raises(SymbolFileError, match="truncated"):
        procedure_locals(_FakePdb(data, len(data)), 0x1010)
