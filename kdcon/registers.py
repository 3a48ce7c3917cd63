"""x64 registers by WinDbg's names, fetched a window of the CONTEXT at a time.

What it does: maps every register name kd accepts (``rax``, ``eax``, ``ax``, ``al``,
``ah``, ``r8d``, ``sil``, ``efl``, flag names such as ``zf``, segment registers,
``dr0``-``dr7``, ``mxcsr``, ``xmm0``-``xmm15``) to its place in the x64 CONTEXT, and
reads only the window a question needs: the 200 bytes from SegCs to Rip for the
general registers (what ``r`` shows: 378 bytes on the wire against 1,338 for the
whole CONTEXT), the XMM block only when asked. A caller that knows which registers
it needs reads just their span first (``prefetch``: a stack walk's ``UNWIND_REGISTERS``
are the 112 bytes from Rbx to Rip); a later question outside that span reads only
the rest of its window. Windows are kept until the target resumes; a write goes back
with SetContextEx for just the bytes changed. ``override`` puts a CONTEXT image
(``.cxr``, ``.trap``) in the place of the thread's own: every question is answered
from it and a write changes only it, until ``clear_override`` or the next stop.
``format_registers`` prints kd's register block.
What it does not do: talk to the link (it gets ``fetch``/``store`` callables), or
know x86 (a 32-bit target would need its own table).
Spec: winnt.h CONTEXT (AMD64) offsets via kd-protocol.md §7.3; kd's ``r`` output.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from kdcon.protocol.errors import ProtocolError

__all__ = [
    "Registers",
    "ShortContext",
    "RegisterInfo",
    "REGISTERS",
    "FLAG_BITS",
    "format_registers",
    "format_register",
    "format_flags",
    "is_register",
    "INTEGER_WINDOW",
    "UNWIND_REGISTERS",
    "CONTEXT_SIZE",
]

# (offset, size) of the CONTEXT windows a command may need.
INTEGER_WINDOW = (0x38, 0xC8)     # SegCs .. Rip (end 0x100)
XMM_WINDOW = (0x1A0, 0x100)       # FltSave.XmmRegisters[16]
MXCSR_WINDOW = (0x34, 4)
CONTEXT_SIZE = 0x4D0              # sizeof(CONTEXT) on x64
# What the unwinder starts from: RIP, RSP, RBP and the nonvolatile registers it
# carries up the stack (Rbx .. Rip in the CONTEXT).
UNWIND_REGISTERS = ("rip", "rsp", "rbp", "rbx", "rsi", "rdi", "r12", "r13", "r14", "r15")


class ShortContext(ProtocolError, OSError):
    """The target answered a CONTEXT read with fewer bytes than asked: one line."""


@dataclass(frozen=True, slots=True)
class RegisterInfo:
    """Where a register lives: ``size`` bytes at CONTEXT ``offset``, shifted by ``shift``
    bits inside it (``ah``), or one EFlags bit (``flag``)."""

    name: str
    offset: int
    size: int
    shift: int = 0
    bits: int = 0            # width in bits when narrower than the storage (ah, flags)


_GPR_OFFSETS = {
    "rax": 0x78, "rcx": 0x80, "rdx": 0x88, "rbx": 0x90, "rsp": 0x98, "rbp": 0xA0,
    "rsi": 0xA8, "rdi": 0xB0, "r8": 0xB8, "r9": 0xC0, "r10": 0xC8, "r11": 0xD0,
    "r12": 0xD8, "r13": 0xE0, "r14": 0xE8, "r15": 0xF0, "rip": 0xF8,
}
_LEGACY = {"rax": "a", "rcx": "c", "rdx": "d", "rbx": "b"}
_INDEX = {"rsp": "sp", "rbp": "bp", "rsi": "si", "rdi": "di"}

# EFlags bits and the two spellings kd shows for clear/set.
FLAG_BITS: dict[str, tuple[int, str, str]] = {
    "of": (11, "nv", "ov"), "df": (10, "up", "dn"), "if": (9, "di", "ei"),
    "sf": (7, "pl", "ng"), "zf": (6, "nz", "zr"), "af": (4, "na", "ac"),
    "pf": (2, "po", "pe"), "cf": (0, "nc", "cy"),
}


def _table() -> dict[str, RegisterInfo]:
    table: dict[str, RegisterInfo] = {}

    def add(name: str, offset: int, size: int, shift: int = 0, bits: int = 0) -> None:
        table[name] = RegisterInfo(name, offset, size, shift, bits)

    for name, offset in _GPR_OFFSETS.items():
        add(name, offset, 8)
        if name in _LEGACY:
            x = _LEGACY[name]
            add(f"e{x}x", offset, 4), add(f"{x}x", offset, 2), add(f"{x}l", offset, 1)
            add(f"{x}h", offset, 1, 8, 8)
        elif name in _INDEX:
            x = _INDEX[name]
            add(f"e{x}", offset, 4), add(x, offset, 2), add(f"{x}l", offset, 1)
        elif name != "rip":
            add(f"{name}d", offset, 4), add(f"{name}w", offset, 2), add(f"{name}b", offset, 1)
    add("eip", 0xF8, 4)
    add("ip", 0xF8, 2)
    for index, name in enumerate(("cs", "ds", "es", "fs", "gs", "ss")):
        add(name, 0x38 + 2 * index, 2)
    add("efl", 0x44, 4)
    add("iopl", 0x44, 4, 12, 2)
    for name, (bit, _, _) in FLAG_BITS.items():
        add(name, 0x44, 4, bit, 1)
    for index, name in enumerate(("dr0", "dr1", "dr2", "dr3", "dr6", "dr7")):
        add(name, 0x48 + 8 * index, 8)
    add("mxcsr", 0x34, 4)
    for index in range(16):
        add(f"xmm{index}", XMM_WINDOW[0] + 16 * index, 16)
    return table


REGISTERS = _table()


def is_register(name: str) -> bool:
    return name.lower() in REGISTERS


Fetch = Callable[[int, int], bytes]
Store = Callable[[int, bytes], None]


class Registers:
    """The current thread's registers for one stop."""

    def __init__(self, fetch: Fetch, store: Store) -> None:
        self._fetch = fetch
        self._store = store
        self._windows: dict[tuple[int, int], bytearray] = {}
        self._override: bytearray | None = None

    def invalidate(self) -> None:
        self._windows.clear()
        self._override = None

    def override(self, context: bytes) -> None:
        """Answer from ``context`` (an x64 CONTEXT's bytes) instead of the thread's
        registers until the next stop; nothing is written to the target."""
        self._override = bytearray(context[:CONTEXT_SIZE].ljust(CONTEXT_SIZE, b"\0"))

    def clear_override(self) -> bool:
        """Back to the thread's own registers; whether a CONTEXT was in their place."""
        had, self._override = self._override is not None, None
        return had

    @property
    def overridden(self) -> bool:
        return self._override is not None

    def seed(self, window: tuple[int, int], data: bytes) -> None:
        """Take a window that arrived another way (a whole GetContext)."""
        self._windows[window] = bytearray(data[: window[1]])

    def _window_for(self, info: RegisterInfo) -> tuple[int, int]:
        for window in (INTEGER_WINDOW, XMM_WINDOW, MXCSR_WINDOW):
            start, size = window
            if start <= info.offset and info.offset + info.size <= start + size:
                return window
        raise KeyError(info.name)

    def _read(self, offset: int, size: int) -> bytes:
        got = self._fetch(offset, size)
        if len(got) < size:
            raise ShortContext(f"the target sent {len(got)} of {size} context bytes")
        return got[:size]

    def _held(self, info: RegisterInfo) -> tuple[tuple[int, int], bytearray] | None:
        """A window read at this stop that holds all of ``info``'s bytes."""
        for window, data in self._windows.items():
            if window[0] <= info.offset and info.offset + info.size <= window[0] + window[1]:
                return window, data
        return None

    def _bytes(self, window: tuple[int, int]) -> bytearray:
        """``window``'s bytes: read now but for the parts spans already read hold."""
        data = self._windows.get(window)
        if data is not None:
            return data
        start, size = window
        inside = sorted((w, d) for w, d in self._windows.items()
                        if start <= w[0] and w[0] + w[1] <= start + size)
        data = bytearray(size)
        at = start
        for (offset, length), part in inside:
            if offset > at:
                data[at - start: offset - start] = self._read(at, offset - at)
            data[offset - start: offset - start + length] = part
            at = max(at, offset + length)
        if at < start + size:
            data[at - start:] = self._read(at, start + size - at)
        for part_window, _ in inside:
            del self._windows[part_window]
        self._windows[window] = data
        return data

    def _located(self, info: RegisterInfo) -> tuple[tuple[int, int], bytearray]:
        if self._override is not None:
            return (0, CONTEXT_SIZE), self._override
        held = self._held(info)
        if held is not None:
            return held
        window = self._window_for(info)
        return window, self._bytes(window)

    def prefetch(self, *names: str) -> None:
        """Read the one CONTEXT span that holds ``names`` unless each is held already
        (KeyError for a name that is no register)."""
        infos = [REGISTERS[name.lower()] for name in names]
        if self._override is not None or not infos \
                or all(self._held(info) is not None for info in infos):
            return
        start = min(info.offset for info in infos)
        end = max(info.offset + info.size for info in infos)
        self._windows[(start, end - start)] = bytearray(self._read(start, end - start))

    def get(self, name: str) -> int:
        """The value of register ``name`` (KeyError for a name that is no register)."""
        info = REGISTERS[name.lower()]
        window, data = self._located(info)
        raw = int.from_bytes(data[info.offset - window[0]: info.offset - window[0] + info.size],
                             "little")
        if info.bits:
            return raw >> info.shift & ((1 << info.bits) - 1)
        return raw

    def cached(self, name: str) -> int | None:
        """``name``'s value if its window was already read (or written) at this stop,
        else None: asks the target nothing."""
        info = REGISTERS[name.lower()]
        if self._override is None and self._held(info) is None:
            return None
        return self.get(name)

    def set(self, name: str, value: int) -> None:
        """Change ``name`` (the bits of a sub-register only) and write it back."""
        info = REGISTERS[name.lower()]
        window, data = self._located(info)
        at = info.offset - window[0]
        if info.bits:
            raw = int.from_bytes(data[at: at + info.size], "little")
            mask = ((1 << info.bits) - 1) << info.shift
            raw = raw & ~mask | (value << info.shift) & mask
        else:
            raw = value & ((1 << (8 * info.size)) - 1)
        encoded = raw.to_bytes(info.size, "little")
        if self._override is not None:
            data[at: at + info.size] = encoded
            return
        self._store(info.offset, encoded)
        for (start, size), held in self._windows.items():
            if start <= info.offset and info.offset + info.size <= start + size:
                held[info.offset - start: info.offset - start + info.size] = encoded

    @property
    def pc(self) -> int:
        return self.get("rip")

    @property
    def sp(self) -> int:
        return self.get("rsp")


def format_flags(eflags: int) -> str:
    """kd's flag letters: ``nv up ei pl zr na po nc``."""
    return " ".join(on if eflags >> bit & 1 else off for bit, off, on in FLAG_BITS.values())


def format_registers(regs: Registers) -> list[str]:
    """The register block ``r`` prints on x64 (without the instruction line)."""
    g = regs.get

    def cell(name: str) -> str:
        return f"{name:>3}={g(name):016x}"

    rows = [("rax", "rbx", "rcx"), ("rdx", "rsi", "rdi"), ("rip", "rsp", "rbp"),
            ("r8", "r9", "r10"), ("r11", "r12", "r13"), ("r14", "r15")]
    lines = [" ".join(cell(name) for name in row) for row in rows]
    eflags = g("efl")
    lines.append(f"iopl={eflags >> 12 & 3:<9x} {format_flags(eflags)}")
    segments = "  ".join(f"{name}={g(name):04x}" for name in ("cs", "ss", "ds", "es", "fs", "gs"))
    lines.append(f"{segments}             efl={eflags:08x}")
    return lines


def format_register(regs: Registers, name: str) -> str:
    """``name=value`` as kd shows one register: as many digits as its size."""
    info = REGISTERS[name.lower()]
    value = regs.get(name)
    if info.bits == 1:
        return f"{name.lower()}={value}"
    digits = 2 * info.size if not info.bits else max(1, (info.bits + 3) // 4)
    if info.size == 16:
        floats = struct.unpack("<4f", value.to_bytes(16, "little"))
        text = " ".join(f"{f:g}" for f in reversed(floats))
        return f"{name.lower()}={text}"
    return f"{name.lower()}={value:0{digits}x}"

