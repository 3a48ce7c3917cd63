"""A small hand-assembled x64 PE32+ image for the unwinder tests, and a unicorn CPU to run it.

Every function below is real code with the unwind data that describes it, written
from the layouts in Microsoft's "x64 exception handling" page. The tests run a
function one instruction at a time in unicorn and unwind at every stop, so each
prolog and epilog position is checked against what the CPU did.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from unicorn import UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL, Uc, UcError
from unicorn import x86_const as X

BASE = 0x140000000
IMAGE_SIZE = 0x4000
PDATA_RVA = 0x3000
XDATA_RVA = 0x2000
STACK_BASE = 0x7FF000000
STACK_SIZE = 0x200000
STACK_TOP = STACK_BASE + STACK_SIZE - 0x1000

RBX, RBP, RSI = 3, 5, 6


def _codes(*slots: tuple[int, int, int] | int) -> bytes:
    """UNWIND_CODE slots: (prolog offset, operation, info) or a raw 16-bit operand."""
    out = bytearray()
    for slot in slots:
        if isinstance(slot, tuple):
            offset, op, info = slot
            out += bytes([offset, op | info << 4])
        else:
            out += struct.pack("<H", slot)
    return bytes(out)


def unwind_info(prolog: int, slots: bytes, *, frame: int = 0, frame_offset: int = 0, flags: int = 0,
                chained: tuple[int, int, int] | None = None, version: int = 1) -> bytes:
    count = len(slots) // 2
    data = bytes([version | flags << 3, prolog, count, frame | frame_offset << 4]) + slots
    if count % 2:
        data += b"\0\0"
    if chained is not None:
        data += struct.pack("<3I", *chained)
    return data


@dataclass(frozen=True)
class Function:
    name: str
    rva: int
    code: bytes
    info: bytes | None          # None: a leaf with no RUNTIME_FUNCTION

    @property
    def end(self) -> int:
        return self.rva + len(self.code)


def _functions() -> list[Function]:
    push = Function("push_alloc", 0x1100, bytes.fromhex(
        "53"                    # push rbx
        "56"                    # push rsi
        "4883ec28"              # sub rsp,28h
        "48c7c305000000"        # mov rbx,5
        "eb00"                  # jmp to the next instruction (inside: not an epilog)
        "4883c428"              # add rsp,28h
        "5e5b"                  # pop rsi; pop rbx
        "c3"), unwind_info(6, _codes((6, 2, 4), (2, 0, RSI), (1, 0, RBX))))
    large = Function("alloc_large", 0x1200, bytes.fromhex(
        "4881ec00100000"        # sub rsp,1000h
        "48899c24f80f0000"      # mov [rsp+0FF8h],rbx
        "4831db"                # xor rbx,rbx
        "488b9c24f80f0000"      # mov rbx,[rsp+0FF8h]
        "4881c400100000"        # add rsp,1000h
        "c3"), unwind_info(0xF, _codes((0xF, 4, RBX), 0xFF8 // 8, (7, 1, 0), 0x1000 // 8)))
    huge = Function("alloc_huge", 0x1300, bytes.fromhex(
        "4881ec00000900"        # sub rsp,90000h
        "48899c2400800800"      # mov [rsp+88000h],rbx
        "0f11b42400000800"      # movups [rsp+80000h],xmm6
        "4831db"                # xor rbx,rbx
        "488b9c2400800800"      # mov rbx,[rsp+88000h]
        "0f10b42400000800"      # movups xmm6,[rsp+80000h]
        "4881c400000900"        # add rsp,90000h
        "c3"), unwind_info(0x17, _codes((0x17, 9, 6), 0x0000, 0x0008, (0xF, 5, RBX), 0x8000, 0x0008,
                                         (7, 1, 1), 0x0000, 0x0009)))
    xmm = Function("save_xmm", 0x1400, bytes.fromhex(
        "4883ec48"              # sub rsp,48h
        "0f11742430"            # movups [rsp+30h],xmm6
        "0f10742430"            # movups xmm6,[rsp+30h]
        "4883c448"              # add rsp,48h
        "c3"), unwind_info(9, _codes((9, 8, 6), 0x30 // 16, (4, 2, 8))))
    frame = Function("frame_pointer", 0x1500, bytes.fromhex(
        "55"                    # push rbp
        "4883ec40"              # sub rsp,40h
        "488d6c2420"            # lea rbp,[rsp+20h]
        "48897518"              # mov [rbp+18h],rsi: 38h above the frame base, not above RSP
        "4881ec00010000"        # sub rsp,100h (a dynamic allocation in the body)
        "4831f6"                # xor rsi,rsi
        "488b7518"              # mov rsi,[rbp+18h]
        "488d6520"              # lea rsp,[rbp+20h]
        "5d"                    # pop rbp
        "c3"), unwind_info(0xE, _codes((0xE, 4, RSI), 0x38 // 8, (0xA, 3, 0), (5, 2, 7), (1, 0, RBP)),
                           frame=RBP, frame_offset=2))
    main = Function("chained_main", 0x1600, bytes.fromhex(
        "53"                    # push rbx
        "4883ec20"              # sub rsp,20h
        "39e4"                  # cmp esp,esp
        "0f84f3000000"          # je cold part (1700h), always taken
        "4883c420"              # add rsp,20h
        "5b"                    # pop rbx
        "c3"), unwind_info(5, _codes((5, 2, 3), (1, 0, RBX))))
    cold = Function("chained_cold", 0x1700, bytes.fromhex(
        "bb02000000"            # mov ebx,2
        "e903ffffff"),          # jmp back to chained_main+0Dh
        unwind_info(0, b"", flags=4, chained=(0x1600, 0x1613, info_rva("chained_main"))))
    tail = Function("tail_call", 0x1800, bytes.fromhex(
        "53"                    # push rbx
        "4883ec20"              # sub rsp,20h
        "31db"                  # xor ebx,ebx
        "4883c420"              # add rsp,20h
        "5b"                    # pop rbx
        "e96f000000"),          # jmp leaf (1880h): a tail call ends the epilog
        unwind_info(5, _codes((5, 2, 3), (1, 0, RBX))))
    leaf = Function("leaf", 0x1880, bytes.fromhex("90c3"), None)
    machframe = Function("interrupt", 0x1900, bytes(16) + b"\x90" * 16,
                         unwind_info(5, _codes((5, 2, 4), (1, 10, 0))))
    machframe_error = Function("interrupt_error", 0x1980, b"\x90" * 32,
                               unwind_info(5, _codes((5, 2, 4), (1, 10, 1))))
    calls_last = Function("calls_last", 0x1A00, bytes.fromhex(
        "53"                    # push rbx
        "4883ec20"              # sub rsp,20h
        "e876000000"),          # call halt (1A80h): the return address is the next function's start
        unwind_info(5, _codes((5, 2, 3), (1, 0, RBX))))
    after_calls_last = Function("after_calls_last", 0x1A0A, bytes.fromhex(
        "56"                    # push rsi
        "4883ec40"              # sub rsp,40h
        "4883c440"              # add rsp,40h
        "5e"                    # pop rsi
        "c3"), unwind_info(5, _codes((5, 2, 7), (1, 0, RSI))))
    halt = Function("halt", 0x1A80, bytes.fromhex("f4"), None)
    ret_n = Function("ret_n", 0x1B00, bytes.fromhex(
        "53"                    # push rbx
        "5b"                    # pop rbx
        "c21000"),              # ret 10h
        unwind_info(1, _codes((1, 0, RBX))))
    return [push, large, huge, xmm, frame, main, cold, tail, leaf, machframe, machframe_error,
            calls_last, after_calls_last, halt, ret_n]


NAMES = ("push_alloc", "alloc_large", "alloc_huge", "save_xmm", "frame_pointer", "chained_main",
         "chained_cold", "tail_call", "leaf", "interrupt", "interrupt_error", "calls_last", "after_calls_last",
         "halt", "ret_n")


def info_rva(name: str) -> int:
    """Where a function's UNWIND_INFO is put: 40h bytes each, in NAMES order."""
    return XDATA_RVA + 0x40 * NAMES.index(name)


FUNCTIONS = {f.name: f for f in _functions()}
assert tuple(FUNCTIONS) == NAMES


def build_image() -> tuple[bytes, dict[str, int]]:
    """The mapped image and each function's UNWIND_INFO RVA."""
    image = bytearray(IMAGE_SIZE)
    image[0:2] = b"MZ"
    struct.pack_into("<I", image, 0x3C, 0x80)
    image[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", image, 0x84, 0x8664, 0, 0, 0, 0, 0xF0, 0x22)
    optional = 0x98
    struct.pack_into("<H", image, optional, 0x20B)
    struct.pack_into("<Q", image, optional + 24, BASE)
    struct.pack_into("<I", image, optional + 56, IMAGE_SIZE)
    struct.pack_into("<I", image, optional + 108, 16)
    infos: dict[str, int] = {}
    entries = []
    for function in sorted(FUNCTIONS.values(), key=lambda f: f.rva):
        image[function.rva:function.end] = function.code
        if function.info is None:
            continue
        rva = info_rva(function.name)
        image[rva:rva + len(function.info)] = function.info
        infos[function.name] = rva
        entries.append((function.rva, function.end, rva))
    for index, entry in enumerate(entries):
        struct.pack_into("<3I", image, PDATA_RVA + 12 * index, *entry)
    struct.pack_into("<II", image, optional + 112 + 8 * 3, PDATA_RVA, 12 * len(entries))
    # Stubs that call each function: "call rel32; hlt", one every 16 bytes from 1000h.
    for index, function in enumerate(FUNCTIONS.values()):
        stub = 0x1000 + 16 * index
        image[stub] = 0xE8
        struct.pack_into("<i", image, stub + 1, function.rva - (stub + 5))
        image[stub + 5] = 0xF4
    return bytes(image), infos


def stub_for(name: str) -> int:
    return BASE + 0x1000 + 16 * list(FUNCTIONS).index(name)


class Cpu:
    """Unicorn with the image and a stack mapped; runs one instruction per ``step``."""

    NONVOLATILE = {"rbx": X.UC_X86_REG_RBX, "rbp": X.UC_X86_REG_RBP, "rsi": X.UC_X86_REG_RSI,
                   "rdi": X.UC_X86_REG_RDI, "r12": X.UC_X86_REG_R12, "r13": X.UC_X86_REG_R13,
                   "r14": X.UC_X86_REG_R14, "r15": X.UC_X86_REG_R15}

    def __init__(self, image: bytes) -> None:
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self.uc.mem_map(BASE, IMAGE_SIZE, UC_PROT_ALL)
        self.uc.mem_write(BASE, image)
        self.uc.mem_map(STACK_BASE, STACK_SIZE, UC_PROT_ALL)

    def start(self, address: int, **registers: int) -> None:
        self.uc.reg_write(X.UC_X86_REG_RIP, address)
        self.uc.reg_write(X.UC_X86_REG_RSP, STACK_TOP)
        for name, value in registers.items():
            self.uc.reg_write(self.NONVOLATILE[name], value)

    def step(self) -> None:
        self.uc.emu_start(self.rip, 0, count=1)

    @property
    def rip(self) -> int:
        return self.uc.reg_read(X.UC_X86_REG_RIP)

    @property
    def rsp(self) -> int:
        return self.uc.reg_read(X.UC_X86_REG_RSP)

    def registers(self) -> dict[str, int]:
        return {name: self.uc.reg_read(reg) for name, reg in self.NONVOLATILE.items()}

    def read(self, address: int, size: int) -> bytes:
        """Target memory as a debugger reads it: the readable prefix."""
        out = bytearray()
        while len(out) < size:
            here = address + len(out)
            piece = min(size - len(out), 0x1000 - here % 0x1000)
            try:
                out += self.uc.mem_read(here, piece)
            except UcError:
                break
        return bytes(out)
