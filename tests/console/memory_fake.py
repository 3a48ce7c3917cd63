"""A session double for the memory commands: a few mapped pages, a physical space,
symbols, and a log of every request the commands cause, behind a real Console."""

from __future__ import annotations

import io
from types import SimpleNamespace

from kdcon.console import Console
from kdcon.memory import MemoryCache
from kdcon.output import Output

PAGE = 0x1000
# Readable virtual memory: three pages at 0x10000 and one at 0x20000 (0x13000 is a hole).
VIRTUAL = ((0x10000, 0x3000), (0x20000, 0x1000))
PHYSICAL = ((0x1000, 0x2000),)
RIP = 0x10040
SYMBOLS = {"demo!Table": 0x10100, "demo!Start": 0x10000, "demo!Text": 0x10200}


def pattern(address: int) -> int:
    """The byte the fake memory holds at ``address`` before any write."""
    return (address * 7 + 3) & 0xFF


class _Space:
    def __init__(self, regions: tuple[tuple[int, int], ...]) -> None:
        self.regions = [(base, bytearray(pattern(a) for a in range(base, base + size)))
                        for base, size in regions]

    def _region(self, address: int) -> tuple[int, bytearray] | None:
        for base, data in self.regions:
            if base <= address < base + len(data):
                return base, data
        return None

    def read(self, address: int, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            found = self._region(address + len(out))
            if found is None:
                break
            base, data = found
            offset = address + len(out) - base
            out += data[offset:offset + size - len(out)]
        return bytes(out)

    def write(self, address: int, payload: bytes) -> int:
        done = 0
        while done < len(payload):
            found = self._region(address + done)
            if found is None:
                break
            base, data = found
            offset = address + done - base
            take = min(len(payload) - done, len(data) - offset)
            data[offset:offset + take] = payload[done:done + take]
            done += take
        return done


class FakeHost:
    def __init__(self, session: FakeSession) -> None:
        self.session = session
        self.fills: list[tuple[int, int, bytes, bool]] = []
        self.fill_works = True

    def fill_memory(self, address: int, length: int, pattern_: bytes, *,
                    physical: bool = False) -> int:
        self.session.requests.append(("fill", address, length))
        self.fills.append((address, length, pattern_, physical))
        if not self.fill_works:
            return 0
        data = (pattern_ * (length // len(pattern_) + 1))[:length]
        space = self.session.physical_space if physical else self.session.virtual_space
        return space.write(address, data)


class FakeSession:
    """What the memory commands use of ``kdcon.session.Session``."""

    pointer_size = 8
    halted = True
    stop = None

    def __init__(self) -> None:
        self.virtual_space = _Space(VIRTUAL)
        self.physical_space = _Space(PHYSICAL)
        self.requests: list[tuple[str, int, int]] = []
        self.memory = MemoryCache(self._fetch_virtual, max_transfer=3944)
        self.physical = MemoryCache(self._fetch_physical, max_transfer=3944)
        self.registers = SimpleNamespace(get=lambda name: {"rip": RIP}[name.lower()])
        self.symbols = SimpleNamespace(address_of=SYMBOLS.get, module=lambda name: None,
                                       name_for=self._name_for)
        self.host = FakeHost(self)

    def _name_for(self, address: int) -> str | None:
        best = max(((a, n) for n, a in SYMBOLS.items() if a <= address), default=None)
        if best is None or address - best[0] >= 0x100:
            return None
        return f"{best[1]}+{address - best[0]:#x}" if address != best[0] else best[1]

    def _fetch_virtual(self, address: int, size: int) -> bytes:
        self.requests.append(("read", address, size))
        return self.virtual_space.read(address, size)

    def _fetch_physical(self, address: int, size: int) -> bytes:
        self.requests.append(("read physical", address, size))
        return self.physical_space.read(address, size)

    def require_halted(self) -> None:
        pass

    def wire(self) -> SimpleNamespace:
        return SimpleNamespace(round_trips=len(self.requests), total=0)

    def read_virtual(self, address: int, size: int) -> bytes:
        return self.memory.read(address, size)

    def read_physical(self, address: int, size: int) -> bytes:
        return self.physical.read(address, size)

    def write_virtual(self, address: int, data: bytes) -> int:
        self.requests.append(("write", address, len(data)))
        try:
            return self.virtual_space.write(address, data)
        finally:
            self.memory.invalidate()
            self.physical.invalidate()

    def write_physical(self, address: int, data: bytes) -> int:
        self.requests.append(("write physical", address, len(data)))
        try:
            return self.physical_space.write(address, data)
        finally:
            self.memory.invalidate()
            self.physical.invalidate()


class Harness:
    """A console over a ``FakeSession``; ``run(line)`` returns what the line printed."""

    def __init__(self) -> None:
        self.session = FakeSession()
        self.stream = io.StringIO()
        self.console = Console(self.session, Output(self.stream))  # type: ignore[arg-type]

    def run(self, line: str) -> str:
        start = self.stream.tell()
        self.console.execute(line)
        self.stream.seek(start)
        text = self.stream.read()
        self.stream.seek(0, io.SEEK_END)
        return text

    def lines(self, line: str) -> list[str]:
        return self.run(line).splitlines()

    @property
    def last(self):
        return self.console.results[-1]
