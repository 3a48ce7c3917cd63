"""Exception directories and UNWIND_INFO: decoding every operation, refusing bad data,
reading tables from files, mapped images and target memory, checked against
llvm-readobj --unwind on the shipped images."""

from __future__ import annotations

import re
import struct
import subprocess

import pytest

from kdcon.pdata import GPRS, FunctionTable, RuntimeFunction, UnwindCode, UnwindError, parse_unwind_info
from kdcon.tools.simtarget.kernel import IMAGES_DIR

from ..oracles import require_tool
from .unwind_image import BASE, FUNCTIONS, build_image, unwind_info

EVERY_OPERATION = unwind_info(0x40, bytes.fromhex(
    "40 1a"            # 40h: PUSH_MACHFRAME, error code           (1 node)
    "3c 69 0000 0800"  # 3Ch: SAVE_XMM128_FAR xmm6, 80000h         (3 nodes)
    "38 78 0300"       # 38h: SAVE_XMM128 xmm7, 3*16               (2 nodes)
    "30 35 0080 0800"  # 30h: SAVE_NONVOL_FAR rbx, 88000h          (3 nodes)
    "28 64 0700"       # 28h: SAVE_NONVOL rsi, 7*8                 (2 nodes)
    "20 03"            # 20h: SET_FPREG                            (1 node)
    "18 11 0000 0900"  # 18h: ALLOC_LARGE 90000h                   (3 nodes)
    "10 01 0002"       # 10h: ALLOC_LARGE 200h*8                   (2 nodes)
    "08 f2"            # 08h: ALLOC_SMALL 15*8+8                   (1 node)
    "01 50"            # 01h: PUSH_NONVOL rbp                      (1 node)
), frame=5, frame_offset=3)
EXPECTED_CODES = (
    UnwindCode(0x40, 10, 1), UnwindCode(0x3C, 9, 6, 0x80000), UnwindCode(0x38, 8, 7, 0x30),
    UnwindCode(0x30, 5, 3, 0x88000), UnwindCode(0x28, 4, 6, 0x38), UnwindCode(0x20, 3, 0),
    UnwindCode(0x18, 1, 1, 0x90000), UnwindCode(0x10, 1, 0, 0x1000), UnwindCode(0x08, 2, 15, 0x80),
    UnwindCode(0x01, 0, 5),
)


def test_every_unwind_operation_decodes_with_its_operand():
    info = parse_unwind_info(EVERY_OPERATION, BASE)
    assert (info.version, info.flags, info.prolog_size, info.frame_register, info.frame_offset) == (1, 0, 0x40, 5, 3)
    assert info.codes == EXPECTED_CODES and info.chained is None


def test_unwind_info_whole_cut_short_and_with_trailing_bytes():
    whole = parse_unwind_info(EVERY_OPERATION, BASE)
    assert parse_unwind_info(EVERY_OPERATION + b"\xcc" * 9, BASE) == whole
    for size in range(len(EVERY_OPERATION)):
        with pytest.raises(UnwindError, match="cut short"):
            parse_unwind_info(EVERY_OPERATION[:size], BASE)


def test_chained_info_names_its_parent_entry():
    data = unwind_info(0, bytes.fromhex("0c340200"), flags=4, chained=(0x1000, 0x1080, 0x2000))
    info = parse_unwind_info(data, BASE)
    assert info.codes == (UnwindCode(0x0C, 4, 3, 0x10),)
    assert info.chained == RuntimeFunction(BASE + 0x1000, BASE + 0x1080, BASE + 0x2000)


def test_version_2_epilog_codes_are_stepped_over():
    data = unwind_info(4, bytes.fromhex("01160000" "0432" "0130"), version=2)
    assert [c.op for c in parse_unwind_info(data, BASE).codes] == [6, 2, 0]


@pytest.mark.parametrize("data,message", [
    (bytes([3, 0, 0, 0]), "version 3"),
    (unwind_info(1, bytes.fromhex("010b")), "unknown unwind operation 11"),
    (unwind_info(1, bytes.fromhex("0104")), "runs past"),
])
def test_bad_unwind_info_is_one_clear_error(data, message):
    with pytest.raises(UnwindError, match=message):
        parse_unwind_info(data, BASE)


def test_table_from_memory_reads_headers_in_two_reads_and_probes_entries():
    image, _ = build_image()
    reads: list[tuple[int, int]] = []

    def read(address: int, size: int) -> bytes:
        reads.append((address, size))
        offset = address - BASE
        return image[offset:offset + size] if 0 <= offset < len(image) else b""

    table = FunctionTable.from_memory(read, BASE)
    assert len(reads) == 2
    whole = FunctionTable.from_image(image, BASE, mapped=True)
    for function in FUNCTIONS.values():
        for rip in range(BASE + function.rva - 1, BASE + function.end + 1):
            reads.clear()
            assert table.lookup(rip) == whole.lookup(rip)
            assert len(reads) <= 5                  # log2 of 10 entries, rounded up, plus one
    reads.clear()
    assert table.lookup(BASE + FUNCTIONS["push_alloc"].rva + 3) is not None and reads == []


def test_indirect_entry_is_followed():
    image, infos = build_image()
    image = bytearray(image)
    # Point the first entry at a RUNTIME_FUNCTION placed elsewhere, low bit set.
    struct.pack_into("<3I", image, 0x3800, 0x1100, 0x1116, infos["push_alloc"])
    struct.pack_into("<I", image, 0x3000 + 8, 0x3800 | 1)
    table = FunctionTable.from_image(bytes(image), BASE, mapped=True)
    assert table.lookup(BASE + 0x1105) == RuntimeFunction(BASE + 0x1100, BASE + 0x1116, BASE + infos["push_alloc"])


def test_not_a_pe32_plus_image():
    with pytest.raises(UnwindError, match="not a PE32\\+ image"):
        FunctionTable.from_image(b"MZ" + bytes(0x200), BASE)
    assert FunctionTable.from_memory(lambda address, size: bytes(size), BASE) is None
    assert FunctionTable.from_memory(lambda address, size: b"", BASE) is None


_OPS = {"PUSH_NONVOL": 0, "ALLOC_LARGE": 1, "ALLOC_SMALL": 2, "SET_FPREG": 3, "SAVE_NONVOL": 4,
        "SAVE_NONVOL_FAR": 5, "SAVE_XMM128": 8, "SAVE_XMM128_FAR": 9, "PUSH_MACHFRAME": 10}


def _readobj(path) -> list[tuple[int, int, int, list[tuple]]]:
    tool = require_tool("llvm-readobj", "llvm-readobj-14")
    text = subprocess.run([tool, "--unwind", str(path)], capture_output=True, text=True, check=True).stdout
    entries = []
    for block in text.split("RuntimeFunction {")[1:]:
        start, end, info = (int(re.search(rf"{key}: .*?\(0x([0-9A-F]+)\)", block)[1], 16)
                            for key in ("StartAddress", "EndAddress", "UnwindInfoAddress"))
        codes = []
        for offset, name, args in re.findall(r"0x([0-9A-F]+): (\w+)\s*(.*)", block):
            fields = dict(re.findall(r"(\w+)=(\w+)", args))
            codes.append((int(offset, 16), _OPS[name], fields))
        entries.append((start, end, info, codes))
    return entries


def _as_oracle(code: UnwindCode, info) -> tuple:
    fields = {}
    if code.op in (0, 4, 5):
        fields["reg"] = GPRS[code.info].upper()
    if code.op in (8, 9):
        fields["reg"] = f"XMM{code.info}"
    if code.op in (1, 2):
        fields["size"] = str(code.value)
    if code.op in (4, 5, 8, 9):
        fields["offset"] = f"0x{code.value:X}"
    if code.op == 3:
        fields.update(reg=GPRS[info.frame_register].upper(), offset=f"0x{16 * info.frame_offset:X}")
    return code.offset, code.op, fields


@pytest.mark.parametrize("name", ["ntoskrnl.exe", "hal.dll", "free/trackdemo.sys", "checked/trackdemo.sys"])
def test_tables_of_the_shipped_images_match_llvm_readobj(name):
    path = IMAGES_DIR / name
    image = path.read_bytes()
    oracle = _readobj(path)
    preferred = struct.unpack_from("<Q", image, struct.unpack_from("<I", image, 0x3C)[0] + 24 + 24)[0]
    table = FunctionTable.from_image(image, preferred)
    assert table.count == len(oracle) > 0
    assert [(f.begin, f.end, f.unwind_info) for f in table.functions()] == [entry[:3] for entry in oracle]
    for start, end, info_address, codes in oracle:
        function = table.lookup(start)
        assert function == RuntimeFunction(start, end, info_address)
        assert table.lookup(end - 1) == function and table.lookup(end) != function
        info = table.unwind_info(info_address)
        assert [_as_oracle(code, info) for code in info.codes] == codes
