"""Debug registers Dr0-Dr3, Dr6, Dr7 on a CPU that does not implement them.

unicorn keeps the registers but never acts on them, so each enabled breakpoint
becomes a unicorn hook limited to its bytes: a memory hook for write (RW=01) and
read/write (RW=11) watches, a code hook for execution (RW=00).  The hooks record a
hit and stop the CPU; the machine finishes the instruction and reports it with Dr6
set as hardware would (B0-B3, reserved bits as 1).  Hooks change only when the
registers do, and every change flushes the translation cache (simulated-target.md §5.8).
"""

from __future__ import annotations

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, Uc

__all__ = ["DebugRegisters", "DR6_RESERVED"]

DR6_RESERVED = 0xFFFF0FF0
_LENGTHS = {0: 1, 1: 2, 2: 8, 3: 4}


class DebugRegisters:
    """The six debug registers of one CPU and the hooks that stand in for them."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self.dr = [0, 0, 0, 0]
        self.dr6 = DR6_RESERVED
        self.dr7 = 0
        self._hooks: list[int] = []
        self._dirty = False
        self._exec_skip: int | None = None
        self.hit: tuple[int, int, bytes, str] | None = None   # (index, address, old bytes, 'r'/'w'/'x')
        self.suppressed = False

    def values(self) -> tuple[int, int, int, int, int, int]:
        return (*self.dr, self.dr6, self.dr7)

    def load(self, dr0: int, dr1: int, dr2: int, dr3: int, dr6: int, dr7: int) -> None:
        new = [dr0, dr1, dr2, dr3]
        if new != self.dr or dr7 != self.dr7:
            self._dirty = True
        self.dr, self.dr6, self.dr7 = new, dr6 | DR6_RESERVED, dr7

    def report(self, index: int) -> int:
        self.dr6 = DR6_RESERVED | (1 << index)
        return self.dr6

    def resuming_at(self, pc: int) -> None:
        """Like EFLAGS.RF: an execution breakpoint at the resume PC lets one pass."""
        self._exec_skip = pc

    def sync(self) -> None:
        if not self._dirty:
            return
        for hook in self._hooks:
            self._uc.hook_del(hook)
        self._hooks = []
        for index in range(4):
            if not (self.dr7 >> (2 * index)) & 3:
                continue
            rw = (self.dr7 >> (16 + 4 * index)) & 3
            length = _LENGTHS[(self.dr7 >> (18 + 4 * index)) & 3] if rw else 1
            start = self.dr[index] & ~(length - 1)
            end = start + length - 1
            if rw == 0:
                self._hooks.append(self._uc.hook_add(UC_HOOK_CODE, self._on_exec, index, start, start))
            elif rw == 1:
                self._hooks.append(self._uc.hook_add(UC_HOOK_MEM_WRITE, self._on_access, index, start, end))
            elif rw == 3:
                self._hooks.append(self._uc.hook_add(UC_HOOK_MEM_WRITE | UC_HOOK_MEM_READ, self._on_access,
                                                     index, start, end))
        self._uc.ctl_flush_tb()
        self._dirty = False

    def _on_access(self, uc: Uc, access: int, address: int, size: int, value: int, index: int) -> None:
        if self.suppressed or self.hit is not None:
            return
        kind = "w" if access == 17 else "r"   # UC_MEM_WRITE
        self.hit = (index, address, bytes(uc.mem_read(address, size)), kind)
        uc.emu_stop()

    def _on_exec(self, uc: Uc, address: int, size: int, index: int) -> None:
        if self.suppressed or self.hit is not None:
            return
        if self._exec_skip == address:
            self._exec_skip = None
            return
        self.hit = (index, address, b"", "x")
        uc.emu_stop()
