"""Disassembly in WinDbg's text: published WinDbg lines reproduced byte for byte, real
code from the shipped images symbolised through their PDBs, u / ub / uf / uf /c, and
llvm-objdump as the oracle for instruction boundaries and mnemonics."""

from __future__ import annotations

import re
import struct
import subprocess

import pefile
import pytest

from kdcon.disasm import (decode, format_address, format_instruction, unassemble, unassemble_back,
                          unassemble_function)
from kdcon.pdata import FunctionTable
from kdcon.symbols.session import SymbolSession
from kdcon.tools.simtarget.kernel import IMAGES_DIR

from ..oracles import require_tool

NT_BASE = 0xFFFFF80001000000
TRACKDEMO_BASE = 0xFFFFF80001070000
IMAGES = {"ntoskrnl.exe": (IMAGES_DIR / "ntoskrnl.exe", NT_BASE),
          "trackdemo.sys": (IMAGES_DIR / "free" / "trackdemo.sys", TRACKDEMO_BASE)}

# Lines copied from published WinDbg 10 (and 6.3, plus WinDbg 10's "  Branch") transcripts
# of u and uf, with the symbols those transcripts showed.
WINDBG_LINES = [
    (0xFFFFF803D9987458, "48895c2408", "fffff803`d9987458 48895c2408      mov     qword ptr [rsp+8],rbx"),
    (0xFFFFF803D99874AA, "65488b042588010000",
     "fffff803`d99874aa 65488b042588010000 mov   rax,qword ptr gs:[188h]"),
    (0xFFFFF803D99874EF, "f7058b6b250000002100",
     "fffff803`d99874ef f7058b6b250000002100 test dword ptr [nt!PerfGlobalGroupMask+0x4 (fffff803`d9bde084)],210000h"),
    (0xFFFFF803D99874A4, "0f8336b30c00",
     "fffff803`d99874a4 0f8336b30c00    jae     nt! ?? ::FNODOBFM::`string'+0x21c0 (fffff803`d9a527e0)  Branch"),
    (0xFFFFF803D9987560, "0f0d0f", "fffff803`d9987560 0f0d0f          prefetchw [rdi]"),
    (0xFFFFF803D998751A, "83f8ff", "fffff803`d998751a 83f8ff          cmp     eax,0FFFFFFFFh"),
    (0xFFFFF803D9A5283C, "49c7c0200400c0", "fffff803`d9a5283c 49c7c0200400c0  mov     r8,0FFFFFFFFC0000420h"),
    (0xFFFFF8063D039A77, "66f0440fb1af2c310000",
     "fffff806`3d039a77 66f0440fb1af2c310000 lock cmpxchg word ptr [rdi+312Ch],r13w"),
    (0xFFFFF8063D039D35, "6666660f1f840000000000",
     "fffff806`3d039d35 6666660f1f840000000000 nop word ptr [rax+rax]"),
    (0xFFFFF8063D039810, "49b91400000080f7ffff", "fffff806`3d039810 49b91400000080f7ffff mov r9,0FFFFF78000000014h"),
    (0xFFFFF803D9987708, "f3c3", "fffff803`d9987708 f3c3            rep ret"),
    (0xFFFFF803D99876C9, "cd29", "fffff803`d99876c9 cd29            int     29h"),
    (0xFF8A1FBE, "66f2af", "00000000`ff8a1fbe 66f2af          repne scas word ptr [rdi]"),
    (0xFFFFF80257D3D179, "6e", "fffff802`57d3d179 6e              outs    dx,byte ptr [rsi]"),
    (0x31F4A5, "4883c1e0", "00000000`0031f4a5 4883c1e0        add     rcx,0FFFFFFFFFFFFFFE0h"),
    (0xFFFFF8063D039E31, "f0480fba2e00", "fffff806`3d039e31 f0480fba2e00    lock bts qword ptr [rsi],0"),
    (0x140001004, "488d0d55110000",
     "00000001`40001004 488d0d55110000  lea     rcx,[test!`string' (00000001`40002160)]"),
    (0xFFFFF803D9987646, "e815fb1600",
     "fffff803`d9987646 e815fb1600      call    nt!ExFreePoolWithTag (fffff803`d9af7160)"),
    (0xFFFFF8063D039CCD, "c645bbc0", "fffff806`3d039ccd c645bbc0        mov     byte ptr [rbp-45h],0C0h"),
    (0x31F4B7, "6683780c33", "00000000`0031f4b7 6683780c33      cmp     word ptr [rax+0Ch],33h"),
    (0x14000100B, "ff15df100000",
     "00000001`4000100b ff15df100000    call    qword ptr [test!_imp_printf (00000001`400020f0)]"),
    (0x31F4A9, "eb08", "00000000`0031f4a9 eb08            jmp     00000000`0031f4b3  Branch"),
    (0x31F474, "8b057e010000", "00000000`0031f474 8b057e010000    mov     eax,dword ptr [00000000`0031f5f8]"),
    (0xFFFFF8063D039DFB, "fa", "fffff806`3d039dfb fa              cli"),
    (0x76F6CB70, "cc", "00000000`76f6cb70 cc              int     3"),
    (0x7FFB8AA3439C, "f2410f104808", "00007ffb`8aa3439c f2410f104808    movsd   xmm1,mmword ptr [r8+8]"),
    (0xFFFFF8073D05105E, "f20f11452f", "fffff807`3d05105e f20f11452f      movsd   mmword ptr [rbp+2Fh],xmm0"),
    (0xFFFFF8073D051052, "f20f1005860e0000",
     "fffff807`3d051052 f20f1005860e0000 movsd   xmm0,mmword ptr [Driver+0x1ee0 (fffff807`3d051ee0)]"),
]
# 32-bit code shown by an x86 WinDbg (8-digit addresses).
WINDBG_LINES_32 = [
    (0x0040D7C6, "ff15f8434300", "0040d7c6 ff15f8434300    call    dword ptr [ProcessHistory+0x343f8 (004343f8)]"),
    (0x3C001950, "b889020000", "3c001950 b889020000      mov     eax,289h"),
    (0x0040D7C2, "8d7730", "0040d7c2 8d7730          lea     esi,[edi+30h]"),
]
WINDBG_SYMBOLS = {0xFFFFF803D9BDE084: "nt!PerfGlobalGroupMask+0x4",
                  0xFFFFF803D9A527E0: "nt! ?? ::FNODOBFM::`string'+0x21c0",
                  0x140002160: "test!`string'", 0xFFFFF803D9AF7160: "nt!ExFreePoolWithTag",
                  0x1400020F0: "test!_imp_printf", 0x4343F8: "ProcessHistory+0x343f8",
                  0xFFFFF8073D051EE0: "Driver+0x1ee0"}


@pytest.mark.parametrize("address,code,line", WINDBG_LINES, ids=[c for _, c, _ in WINDBG_LINES])
def test_published_windbg_lines_are_reproduced(address, code, line):
    (instruction,) = decode(bytes.fromhex(code), address, symbolizer=WINDBG_SYMBOLS.get)
    assert format_instruction(instruction) == line


@pytest.mark.parametrize("address,code,line", WINDBG_LINES_32, ids=[c for _, c, _ in WINDBG_LINES_32])
def test_published_x86_windbg_lines_are_reproduced(address, code, line):
    (instruction,) = decode(bytes.fromhex(code), address, symbolizer=WINDBG_SYMBOLS.get, bitness=32)
    assert format_instruction(instruction, 4) == line


@pytest.mark.parametrize("code,text", [
    ("f3a5", "rep movs dword ptr [rdi],dword ptr [rsi]"),
    ("64a4", "movs    byte ptr [rdi],byte ptr fs:[rsi]"),
    ("a6", "cmps    byte ptr [rsi],byte ptr [rdi]"),
    ("ac", "lods    byte ptr [rsi]"),
    ("6c", "ins     byte ptr [rdi],dx"),
    ("67a5", "movs    dword ptr [edi],dword ptr [esi]"),
    # SSE's movsd shares the string instruction's mnemonic and keeps its own form.
    ("f20f10c1", "movsd   xmm0,xmm1"),
])
def test_string_instructions_show_their_memory_operands(code, text):
    (instruction,) = decode(bytes.fromhex(code), 0x1000)
    assert instruction.text == text


def test_address_text():
    assert format_address(0xFFFFF8031A2B3C40) == "fffff803`1a2b3c40"
    assert format_address(0x1A2B3C40, 4) == "1a2b3c40"


# -- the shipped images, symbolised through their PDBs --------------------------------------

class Loaded:
    """The shipped images mapped at fixed bases, readable like target memory."""

    def __init__(self) -> None:
        self.images: dict[int, bytearray] = {}
        self.symbols = SymbolSession(f"{IMAGES_DIR};{IMAGES_DIR / 'free'}")
        for name, (path, base) in IMAGES.items():
            image = bytearray(pefile.PE(str(path)).get_memory_mapped_image())
            self.images[base] = image
            self.symbols.add_module(name, base, len(image), read=lambda rva, n, i=image: bytes(i[rva:rva + n]))
        # Bind trackdemo's import of ExAllocatePoolWithTag as the loader would.
        self.iat_slot = self.address("trackdemo!__imp_ExAllocatePoolWithTag")
        struct.pack_into("<Q", self.images[TRACKDEMO_BASE], self.iat_slot - TRACKDEMO_BASE,
                         self.address("nt!ExAllocatePoolWithTag"))

    def address(self, name: str) -> int:
        found = self.symbols.address_of(name)
        assert found is not None, name
        return found

    def read(self, address: int, size: int) -> bytes:
        for base, image in self.images.items():
            if base <= address < base + len(image):
                return bytes(image[address - base:address - base + size])
        return b""

    def symbolize(self, address: int) -> str | None:
        return self.symbols.name_for(address)


@pytest.fixture(scope="module")
def loaded():
    return Loaded()


def _line(loaded: Loaded, address: int) -> str:
    (lines, _) = unassemble(loaded.read, address, 1, symbolizer=loaded.symbolize, label="")
    return lines[-1]


def _nt_code(pattern: str) -> int:
    """Where the one instruction with these bytes lies in the kernel (which is rebuilt
    as the simulated kernel grows, so its addresses move)."""
    pe = pefile.PE(str(IMAGES_DIR / "ntoskrnl.exe"), fast_load=True)
    for section in pe.sections:
        found = section.get_data().find(bytes.fromhex(pattern))
        if found >= 0 and section.Characteristics & 0x20000000:
            return NT_BASE + section.VirtualAddress + found
    raise AssertionError(f"no {pattern} in the kernel's code")


_MOVAPS, _INT2D = _nt_code("440f2955f0"), _nt_code("cd2d")

REAL_LINES = [
    # rip-relative memory through the import table, symbolised
    (TRACKDEMO_BASE + 0x19AF, "fffff800`010719af ff152b300000    call    qword ptr "
                              "[trackdemo!__imp_ExAllocatePoolWithTag (fffff800`010749e0)]"),
    # call target symbolised
    (TRACKDEMO_BASE + 0x1999, "fffff800`01071999 e8e9f6ffff      call    trackdemo!TrackAllocateRecord "
                              "(fffff800`01071087)"),
    # conditional branch into the same function
    (TRACKDEMO_BASE + 0x198C, "fffff800`0107198c 7752            ja      trackdemo!Track_ExAllocatePoolWithTag+0x6c "
                              "(fffff800`010719e0)  Branch"),
    # tail jump through memory
    (TRACKDEMO_BASE + 0x19FE, "fffff800`010719fe 48ff25db2f0000  jmp     qword ptr "
                              "[trackdemo!__imp_ExAllocatePoolWithTag (fffff800`010749e0)]"),
    # rip-relative data
    (TRACKDEMO_BASE + 0x1154, "fffff800`01071154 488d0db54e0000  lea     rcx,"
                              "[trackdemo!TrackLock (fffff800`01076010)]"),
    # immediates with h, sign-extended to 64 bits, and a 64-bit immediate with long bytes
    (TRACKDEMO_BASE + 0x1988, "fffff800`01071988 4883fadf        cmp     rdx,0FFFFFFFFFFFFFFDFh"),
    (TRACKDEMO_BASE + 0x1E63, "fffff800`01071e63 49b9cdcccccccccccccc mov r9,0CCCCCCCCCCCCCCCDh"),
    (TRACKDEMO_BASE + 0x1991, "fffff800`01071991 448bbc2490000000 mov     r15d,dword ptr [rsp+90h]"),
    # negative displacements
    (TRACKDEMO_BASE + 0x1E86, "fffff800`01071e86 8841ff          mov     byte ptr [rcx-1],al"),
    (_MOVAPS, f"{format_address(_MOVAPS)} 440f2955f0      movaps  xmmword ptr [rbp-10h],xmm10"),
    # int 3 padding, int 2Dh, ret
    (TRACKDEMO_BASE + 0x14A2, "fffff800`010714a2 cc              int     3"),
    (_INT2D, f"{format_address(_INT2D)} cd2d            int     2Dh"),
    (TRACKDEMO_BASE + 0x19DF, "fffff800`010719df c3              ret"),
]


@pytest.mark.parametrize("address,line", REAL_LINES, ids=[f"{a:x}" for a, _ in REAL_LINES])
def test_real_code_operands(loaded, address, line):
    assert _line(loaded, address) == line


def test_undecodable_byte_is_one_question_mark_instruction():
    code = bytes.fromhex("ffff00") + bytes.fromhex("c3")
    lines, next_address = unassemble(lambda a, n: code[a - 0x1000:a - 0x1000 + n], 0x1000, 3)
    assert lines == ["00000000`00001000 ff              ???",
                     "00000000`00001001 ff00            inc     dword ptr [rax]",
                     "00000000`00001003 c3              ret"]
    assert next_address == 0x1004


def test_short_read_ends_the_listing_with_the_memory_error_line(loaded):
    start = loaded.address("trackdemo!Track_ExAllocatePoolWithTag")
    cut = start + 0x1A + 2                      # inside "mov r14,r9" at +1Ah

    def read(address: int, size: int) -> bytes:
        return loaded.read(address, max(0, min(size, cut - address)))

    lines, next_address = unassemble(read, start, 20, symbolizer=loaded.symbolize)
    assert lines[0] == "trackdemo!Track_ExAllocatePoolWithTag:"
    assert lines[-2] == "fffff800`0107198c 7752            ja      trackdemo!Track_ExAllocatePoolWithTag+0x6c " \
                        "(fffff800`010719e0)  Branch"
    assert lines[-1] == "fffff800`0107198e ??              ???"
    assert next_address == start + 0x1A


def test_decoding_whole_in_pieces_and_with_trailing_bytes_agrees(loaded):
    start = loaded.address("trackdemo!Track_ExAllocatePoolWithTag")
    code = loaded.read(start, 0x91)
    whole = decode(code, start)
    assert [i.end for i in whole][-1] == start + 0x91
    assert decode(code + bytes.fromhex("48b8"), start)[:len(whole)] == whole
    for size in range(len(code)):
        prefix = decode(code[:size], start)
        assert prefix == whole[:len(prefix)] and (not prefix or prefix[-1].end <= start + size)
        assert len(prefix) == sum(1 for i in whole if i.end <= start + size)


def test_u_labels_its_start_and_every_symbol_it_enters(loaded):
    start = loaded.address("trackdemo!Track_ExAllocatePoolWithTag") + 0x6C
    lines, next_address = unassemble(loaded.read, start, 16, symbolizer=loaded.symbolize)
    assert lines[0] == "trackdemo!Track_ExAllocatePoolWithTag+0x6c:"
    at = lines.index("trackdemo!Track_ExAllocatePoolWithQuota:")
    assert lines[at + 1].startswith("fffff800`01071a05 4156            push    r14")
    assert len([line for line in lines if not line.endswith(":")]) == 16
    again, after = unassemble(loaded.read, next_address, 4, symbolizer=loaded.symbolize)
    assert again[0] == loaded.symbolize(next_address) + ":"
    continued = unassemble(loaded.read, start, 20, symbolizer=loaded.symbolize)[0]
    assert [x for x in continued if not x.endswith(":")] == \
        [x for x in lines + again if not x.endswith(":")]
    assert after == next_address + sum(len(i.raw) for i in decode(loaded.read(next_address, 64), next_address)[:4])


def _boundaries(loaded: Loaded, begin: int, end: int) -> list[int]:
    return [i.address for i in decode(loaded.read(begin, end - begin), begin)]


def _code_starts(loaded: Loaded, begin: int, end: int) -> list[int]:
    """Instruction starts up to the first byte that is not code (a jump table)."""
    starts = []
    for instruction in decode(loaded.read(begin, end - begin), begin):
        if not instruction.valid:
            break
        starts.append(instruction.address)
    return starts


def test_ub_lands_exactly_on_the_instruction_before_every_end(loaded):
    table = FunctionTable.from_image(bytes(loaded.images[TRACKDEMO_BASE]), TRACKDEMO_BASE, mapped=True)
    checked = 0
    for name in ("TrackInsertRecord", "Track_ExAllocatePoolWithTag", "TrackDemoDispatch", "Track_Stats"):
        begin = loaded.address(f"trackdemo!{name}")
        function = table.lookup(begin)
        starts = _code_starts(loaded, function.begin, function.end)
        for index in range(8, len(starts)):
            lines = unassemble_back(loaded.read, starts[index], 8, symbolizer=loaded.symbolize)
            shown = [int(line[:17].replace("`", ""), 16) for line in lines if not line.endswith(":")]
            assert shown == starts[index - 8:index], (name, hex(starts[index]))
            assert lines[0] == loaded.symbolize(starts[index - 8]) + ":"
            checked += 1
    assert checked > 100


def test_ub_near_unreadable_memory_shows_what_it_can(loaded):
    end = TRACKDEMO_BASE + 0x1003             # three bytes into .text, after the headers' page
    start = TRACKDEMO_BASE + 0x1000

    def read(address: int, size: int) -> bytes:
        return loaded.read(address, size) if address >= start else b""

    lines = unassemble_back(read, end, 8)
    assert lines == ["fffff800`01071000 83f91c          cmp     ecx,1Ch"]


def test_uf_collects_the_blocks_of_a_function_with_branches(loaded):
    start = loaded.address("trackdemo!Track_ExAllocatePoolWithTag")
    lines = unassemble_function(loaded.read, start, symbolizer=loaded.symbolize)
    labels = [line for line in lines if line.endswith(":")]
    assert labels == ["trackdemo!Track_ExAllocatePoolWithTag:", "trackdemo!Track_ExAllocatePoolWithTag+0x1a:",
                      "trackdemo!Track_ExAllocatePoolWithTag+0x2f:", "trackdemo!Track_ExAllocatePoolWithTag+0x6c:"]
    assert [i for i, line in enumerate(lines) if line == ""] == [i - 1 for i, line in enumerate(lines)
                                                                if line.endswith(":")][1:]
    shown = [int(line[:17].replace("`", ""), 16) for line in lines if line and not line.endswith(":")]
    assert shown == _boundaries(loaded, start, start + 0x91)
    assert lines[-1] == "fffff800`010719fe 48ff25db2f0000  jmp     qword ptr " \
                        "[trackdemo!__imp_ExAllocatePoolWithTag (fffff800`010749e0)]"


def test_uf_does_not_follow_a_jump_to_another_function(loaded):
    start = loaded.address("trackdemo!Track_ExAllocatePoolWithTag")
    limited = unassemble_function(loaded.read, start, symbolizer=loaded.symbolize,
                                  function_range=(start, start + 0x6C))
    assert "trackdemo!Track_ExAllocatePoolWithTag+0x6c:" not in limited
    assert "trackdemo!Track_ExAllocatePoolWithTag+0x2f:" in limited


def test_uf_takes_a_jump_to_another_symbol_as_a_tail_call():
    code = {0x1000: bytes.fromhex("85c9" "7405" "e9f70f0000" "c3"),      # test ecx,ecx; je 1009h; jmp 2000h; ret
            0x2000: bytes.fromhex("90c3")}                              # nop; ret

    def read(address: int, size: int) -> bytes:
        for base, data in code.items():
            if base <= address < base + len(data):
                return data[address - base:address - base + size]
        return b""

    def symbolize(address: int) -> str:
        if address >= 0x2000:
            return "m!g" if address == 0x2000 else f"m!g+{address - 0x2000:#x}"
        return "m!f" if address == 0x1000 else f"m!f+{address - 0x1000:#x}"

    lines = unassemble_function(read, 0x1000, symbolizer=symbolize)
    assert [line for line in lines if line.endswith(":")] == ["m!f:", "m!f+0x4:", "m!f+0x9:"]
    jump = "00000000`00001004 e9f70f0000      jmp     m!g (00000000`00002000)  Branch"
    assert lines[lines.index("m!f+0x4:") + 1] == jump
    followed = unassemble_function(read, 0x1000)
    assert followed[-2:] == ["00000000`00002000 90              nop", "00000000`00002001 c3              ret"]


def test_uf_c_lists_the_calls_with_their_targets(loaded):
    start = loaded.address("trackdemo!Track_ExAllocatePoolWithTag")
    nt = loaded.address("nt!ExAllocatePoolWithTag")
    assert unassemble_function(loaded.read, start, symbolizer=loaded.symbolize, calls_only=True) == [
        "trackdemo!Track_ExAllocatePoolWithTag (fffff800`01071974)",
        "  trackdemo!Track_ExAllocatePoolWithTag+0x25 (fffff800`01071999):",
        "    call to trackdemo!TrackAllocateRecord (fffff800`01071087)",
        "  trackdemo!Track_ExAllocatePoolWithTag+0x3b (fffff800`010719af):",
        f"    call to nt!ExAllocatePoolWithTag ({format_address(nt)})",
        "  trackdemo!Track_ExAllocatePoolWithTag+0x59 (fffff800`010719cd):",
        "    call to trackdemo!TrackGuardAndRecord (fffff800`010718c6)",
        "  trackdemo!Track_ExAllocatePoolWithTag+0x71 (fffff800`010719e5):",
        "    call to trackdemo!TrackCountCall (fffff800`010712c8)",
    ]


# -- llvm-objdump as the oracle --------------------------------------------------------------

# Where llvm-objdump's names differ from MASM's (and WinDbg's) for the same instruction:
# int3, movabs, 66 90 (xchg ax,ax), string instructions named with their size letter.
_LLVM_NAMES = {("int3", "int"), ("movabs", "mov"), ("nop", "xchg")}


def _same_mnemonic(llvm: str, ours: str) -> bool:
    if llvm == ours or (llvm, ours) in _LLVM_NAMES:
        return True
    return llvm[:-1] == ours and llvm[-1] in "bwdq" and ours.split()[-1] in ("lods", "stos", "movs", "scas", "cmps")


def _objdump(path) -> list[tuple[int, int, str]]:
    tool = require_tool("llvm-objdump", "llvm-objdump-14")
    text = subprocess.run([tool, "-d", "--x86-asm-syntax=intel", str(path)], capture_output=True, text=True,
                          check=True).stdout
    pattern = re.compile(r"^[ \t]*([0-9a-f]+):[ ]((?:[0-9a-f]{2} )+)[ \t]*([a-z0-9]+)?(?:[ \t]+([a-z0-9]+))?", re.M)
    out = []
    for match in pattern.finditer(text):
        mnemonic = match[3] or ""
        if mnemonic in ("rep", "repne", "lock") and match[4]:
            mnemonic = f"{mnemonic} {match[4]}"
        out.append((int(match[1], 16), len(match[2].split()), mnemonic))
    return out


@pytest.mark.parametrize("name", ["ntoskrnl.exe", "trackdemo.sys"])
def test_whole_functions_match_llvm_objdump(loaded, name):
    path, base = IMAGES[name]
    preferred = pefile.PE(str(path)).OPTIONAL_HEADER.ImageBase
    oracle = {address - preferred + base: (size, mnemonic) for address, size, mnemonic in _objdump(path)}
    table = FunctionTable.from_image(path.read_bytes(), base)
    compared = skipped = 0
    for function in table.functions():
        instructions = decode(loaded.read(function.begin, function.end - function.begin), function.begin)
        if not all(i.valid and i.address in oracle for i in instructions):
            skipped += 1                        # a jump table inside the function's range
            continue
        for instruction in instructions:
            size, mnemonic = oracle[instruction.address]
            assert instruction.length == size, hex(instruction.address)
            assert _same_mnemonic(mnemonic, instruction.mnemonic), (hex(instruction.address), mnemonic)
            compared += 1
    # Jump tables sit inside a few functions' ranges (switches); never most of them.
    assert skipped <= sum(1 for _ in table.functions()) // 10
    assert compared > 1000


def test_uf_at_unreadable_memory_says_no_code_found_as_kd_does():
    from .test_golden_kernel_extensions import output_of
    from .transcripts import batch

    text, status = batch("uf 0", "u 0 L1")
    assert output_of(text, "uf 0").strip() == "No code found, aborting"
    assert output_of(text, "u 0 L1").strip() == "00000000`00000000 ??              ???"
    assert status == 1
