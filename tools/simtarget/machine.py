"""The simulated machine: one x64 CPU (unicorn 2.1.4, UC_TLB_VIRTUAL) running the
project's ntoskrnl.exe, hal.dll, kdcom.dll and drivers, with the API a KD stub needs.

Public API (no protocol here)::

    m = Machine(seed=0, drivers=[paths], break_on_connect=False)  # checks imports now
    m.boot()                                  # fresh machine; the kernel has not run yet
    ev = m.run(until=None, budget=None, trace=False)   # -> a StopEvent (events.py)
    m.skip_break_instruction()                # what a debugger does before running on
    m.answer_prompt("b")                      # after a DebugPromptStop
    m.request_breakin()                       # any thread; BreakInStop within one slice
    m.read_virtual(addr, n) -> bytes          # readable prefix, original bytes under bps
    m.write_virtual(addr, data) -> int        # bytes written (prefix)
    m.read_physical(pa, n) / m.write_physical(pa, data)
    m.get_context() -> Context ; m.set_context(ctx)          # context.py, incl. Dr0-3/6/7
    m.set_dr7(value)                          # Continue2's Dr7
    m.get_special_registers() -> SpecialRegisters            # KSPECIAL_REGISTERS
    m.write_breakpoint(addr) -> handle 1..32 ; m.restore_breakpoint(handle) -> bool
    m.read_msr(msr) -> int | None ; m.write_msr(msr, value) -> bool
    m.query_memory(addr) -> MemoryInfo | None ; m.search_memory(addr, length, pattern)
    m.reboot() ; m.cause_bugcheck() ; m.set_request(KiSimRequest.X)
    m.io.post(IoRequest...) ; m.io.results   # a user program's I/O to the drivers (userio.py)
    Machine(files=DIR) / m.files.root = DIR  # drive C: of the drivers' ZwCreateFile (hostfiles.py)
    m.modules, m.kernel_symbol(name), m.kern_base, m.ps_loaded_module_list,
    m.kd_debugger_data_block, m.kd_version_block, m.ki_bugcheck_data, m.kpcr, m.kprcb,
    m.current_thread, m.instructions, m.halted

Stop events (events.py, frozen dataclasses): LoadSymbols(image) / UnloadSymbols(image)
with ImageInfo(path, base, size, checksum, timestamp); DebugPrintStop(text, component,
level); DebugPromptStop(text, max_len); BreakpointHit(pc, handle) (handle None for an
``int 3`` in the code); SingleStep(pc); DataBreakpoint(pc, dr6, address); BreakInStop(pc);
BugCheck(pc, code, params, first); ExceptionEvent(code, address, params, first_chance);
Rebooted(); BudgetExhausted(pc, instructions).

Execution model: ``run`` executes slices of SLICE instructions (unicorn's instruction
count) with no per-instruction Python hooks; breakpoints are real 0xCC bytes, single
steps run exactly one instruction, data breakpoints are memory hooks limited to the
watched bytes.  Between slices a pending break-in is delivered as the clock interrupt
through the kernel's IDT: the kernel polls kdcom's UART and breaks with
DbgBreakPointWithStatus(DBG_STATUS_CONTROL_C), so the break lands in kernel code.
Time is instruction based: the guest clock advances 1 us per 100 instructions of
every slice started, never by the host's clock, so a run is deterministic for a seed.

A stop at an ``int 3`` reports RIP at the ``int 3``, as Windows x64 does (KiDispatchException
moves RIP back onto the breakpoint before the debugger sees it).  Running on steps over a
debugger breakpoint (restore, one instruction, re-arm); an ``int 3`` in the code
(DbgBreakPoint, RtlpBreakWithStatusInstruction) runs again unless whoever resumes the
machine moved RIP past it first, as a debugger does (``skip_break_instruction``; over KD,
the host's SetContext).  CPU exceptions are reported first chance and, when run on, handed to the
kernel's handler with the CONTEXT at the fault: the kernel dispatches them to the code's
exception handlers (__try/__except) and bug checks when none takes them; page faults at
DISPATCH_LEVEL and above go to the kernel directly (bug check 0xA / 0xD1), as on Windows.
NT_ASSERT (int 2Ch) is a continuable STATUS_ASSERTION_FAILURE; __fastfail (int 29h) bug checks 0x139.
An exception raised in software (RtlRaiseException, debug service 0x4B01) stops at the raise
site: the CPU holds the CONTEXT the kernel captured for the caller while stopped, and gets its
own registers back when run on, the debugger's changes copied into that CONTEXT first
(docs/simulated-target.md §5, "Where a raised exception stops").
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Callable, Iterable

from unicorn import (UC_ARCH_X86, UC_ERR_FETCH_PROT, UC_ERR_FETCH_UNMAPPED, UC_ERR_INSN_INVALID,
                     UC_ERR_READ_PROT, UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_PROT, UC_ERR_WRITE_UNMAPPED,
                     UC_HOOK_INSN, UC_HOOK_INTR, UC_HOOK_MEM_FETCH_UNMAPPED,
                     UC_HOOK_MEM_READ_UNMAPPED, UC_HOOK_MEM_FETCH_PROT, UC_HOOK_MEM_READ_PROT, UC_HOOK_MEM_WRITE_PROT,
                     UC_HOOK_MEM_WRITE_UNMAPPED, UC_MEM_FETCH_PROT, UC_MEM_FETCH_UNMAPPED, UC_MEM_WRITE_PROT,
                     UC_MEM_WRITE_UNMAPPED,
                     UC_MODE_64, UC_TLB_VIRTUAL, Uc, UcError)
from unicorn import x86_const as X

from kdcon.protocol.constants import NtStatus
from kdcon.protocol.context import CONTEXT_AMD64_SIZE, Context, SpecialRegisters

from . import interrupts, layout
from .breakpoints import BREAKPOINT_TABLE_SIZE, BreakpointTable
from .context import read_context, write_context
from .debugregs import DebugRegisters
from .errors import MachineStateError
from .events import (BreakInStop, BreakpointHit, BudgetExhausted, BugCheck, DataBreakpoint, ExceptionEvent,
                     Rebooted, SingleStep, StopEvent)
from .hostfiles import HostFiles
from .kernelfacts import KernelFacts
from .kernel import KernelImages, boot_kernel
from .memory import GuestMemory, MemoryInfo
from .services import PendingPrompt, PortDevice, decode_debug_service
from .userio import UserIo

__all__ = ["Machine", "SLICE", "MAX_BREAKPOINTS"]

log = logging.getLogger(__name__)

SLICE = 200_000
# emu_start's end address: unicorn stops quietly when RIP reaches it, so it must be an
# address no code can jump to (0 would turn a call through a NULL pointer into a stop).
NEVER_REACHED = 0xFFFFFFFFFFFFFFFF
INSTRUCTIONS_PER_100NS = 10
MAX_BREAKPOINTS = BREAKPOINT_TABLE_SIZE
DBG_STATUS_CONTROL_C = 1
DBG_STATUS_BUGCHECK_FIRST = 3
DBG_STATUS_BUGCHECK_SECOND = 4
MANUALLY_INITIATED_CRASH = 0xE2
KERNEL_SECURITY_CHECK_FAILURE = 0x139
_MASK64 = 0xFFFFFFFFFFFFFFFF
# Fields of a CONTEXT the debugger does not change here: they stay as captured.
_CAPTURE_ONLY = ("ContextFlags", "SegCs", "SegDs", "SegEs", "SegFs", "SegGs", "SegSs")
_UNMAPPED_ERRORS = {UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_FETCH_UNMAPPED,
                    UC_ERR_READ_PROT, UC_ERR_WRITE_PROT, UC_ERR_FETCH_PROT}


def _debug_registers(ctx: Context) -> dict[str, int]:
    return {name: getattr(ctx, name) for name in ("Dr0", "Dr1", "Dr2", "Dr3", "Dr6", "Dr7")}


class Machine(KernelFacts):
    """One simulated x64 machine; see the module docstring for the API."""

    def __init__(self, seed: int = 0, drivers: Iterable[str | Path] = (), break_on_connect: bool = False,
                 images_dir: str | Path | None = None, files: str | Path | None = None) -> None:
        self.seed = seed
        # Drive C: of ZwCreateFile (hostfiles.py); None leaves the machine without one.
        self.files = HostFiles(Path(files) if files is not None else None)
        self.break_on_connect = break_on_connect
        # Parsing and import checks happen now, so a bad driver is refused up front.
        self._images = KernelImages(images_dir, [Path(p) for p in drivers])
        self._uc: Uc | None = None
        self.instructions = 0

    # ---------------------------------------------------------------- boot

    def boot(self) -> None:
        """Build a fresh machine: memory, images, loader block; the CPU at KiSystemStartup."""
        uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)          # kernel addresses, simulated-target.md §5.3
        self._uc = uc
        self.memory = GuestMemory(uc)
        self._state_saved = True
        self._stopped_kprcb: int | None = None  # _before_read's KPRCB address this stop
        self._in_run = False
        self.ports = PortDevice()
        self.files.reset()
        self.ports.file_service = lambda address: self.files.service(self.memory, address)
        if self.break_on_connect:
            self.ports.breakin.set()
        self._kernel = boot_kernel(uc, self.memory, self._images, self.seed)
        self.io = UserIo(self)
        self.debug = DebugRegisters(uc)
        self._breakpoints = BreakpointTable(self.memory)
        self._prompt: PendingPrompt | None = None
        self._deliver_pending: tuple[int, tuple[int, int, int], int] | None = None
        self._raise_site: tuple[int, Context] | None = None
        self._trap: tuple[int, int] | None = None
        self._fault: tuple[int, int] | None = None
        self.instructions = 0
        self.memory.before_read = self._before_read
        uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        uc.hook_add(UC_HOOK_INSN, self._on_in, None, 1, 0, X.UC_X86_INS_IN)
        uc.hook_add(UC_HOOK_INSN, self._on_out, None, 1, 0, X.UC_X86_INS_OUT)
        uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED | UC_HOOK_MEM_FETCH_UNMAPPED
                    | UC_HOOK_MEM_READ_PROT | UC_HOOK_MEM_WRITE_PROT | UC_HOOK_MEM_FETCH_PROT,
                    self._on_unmapped)

    def reboot(self) -> None:
        """Boot again from scratch; the next runs report every module load again."""
        self.boot()

    # ---------------------------------------------------------------- hooks (CPU thread)

    def _on_interrupt(self, uc: Uc, intno: int, _user: object) -> None:
        self._trap = (intno, uc.reg_read(X.UC_X86_REG_RIP))
        uc.emu_stop()

    def _on_in(self, uc: Uc, port: int, size: int, _user: object) -> int:
        return self.ports.port_in(port, size)

    def _on_out(self, uc: Uc, port: int, size: int, value: int, _user: object) -> None:
        if self.ports.port_out(uc, port, value):
            uc.emu_stop()

    def _on_unmapped(self, uc: Uc, access: int, address: int, size: int, value: int, _user: object) -> bool:
        # An access the page's protection forbids faults like one to an absent page: the
        # kernel sees a page fault (write 1, execute 8, read 0), as x64 Windows does.
        kind = (1 if access in (UC_MEM_WRITE_UNMAPPED, UC_MEM_WRITE_PROT)
                else 8 if access in (UC_MEM_FETCH_UNMAPPED, UC_MEM_FETCH_PROT) else 0)
        self._fault = (kind, address)
        return False

    # ---------------------------------------------------------------- running

    def _require(self) -> Uc:
        if self._uc is None:
            raise MachineStateError("the machine has not been booted (call boot())")
        return self._uc

    @property
    def pc(self) -> int:
        return self._require().reg_read(X.UC_X86_REG_RIP)

    def skip_break_instruction(self) -> bool:
        """Move RIP past an ``int 3`` of the code, as a debugger does when it resumes.

        The machine itself never does this (a Windows kernel does not either): it is for
        callers that drive the machine directly, in the debugger's place.  False, and
        nothing changed, when RIP is not on a 0xCC or the 0xCC is a debugger breakpoint
        (which ``run`` steps over by itself).
        """
        uc = self._require()
        pc = uc.reg_read(X.UC_X86_REG_RIP)
        if pc in self.memory.breakpoint_bytes or self.memory.read_virtual(pc, 1) != b"\xcc":
            return False
        uc.reg_write(X.UC_X86_REG_RIP, pc + 1)
        return True

    def request_breakin(self) -> None:
        """Ask for a break-in (the host's 0x62); safe from any thread."""
        self.ports.breakin.set()

    def answer_prompt(self, text: str) -> None:
        """Answer the pending DbgPrompt; the answer is cut to the prompt's buffer size."""
        if self._prompt is None:
            raise MachineStateError("no DbgPrompt is waiting for an answer")
        data = text.encode("latin-1", "replace")[:self._prompt.max_len]
        self.memory.write_virtual(self._prompt.buffer, data)
        self._uc.reg_write(X.UC_X86_REG_RAX, len(data))
        self._prompt = None

    def run(self, until: Callable[[], bool] | None = None, budget: int | None = None,
            trace: bool = False) -> StopEvent:
        """Run until something stops the CPU; ``trace`` runs exactly one instruction.

        ``until`` is checked between slices and ``budget`` caps the instructions run;
        either ending the run gives BudgetExhausted."""
        self._state_saved = False
        self._stopped_kprcb = None
        self._in_run = True
        try:
            event = self._run(until, budget, trace)
        finally:
            self._in_run = False
        self._state_saved = isinstance(event, (BudgetExhausted, Rebooted))
        return event

    def _before_read(self, address: int, size: int) -> None:
        """Store the stopped CPU in KPRCB.ProcessorState, as the kernel does on a debug
        trap (KDDEBUGGER_DATA64.SavedContext points at its ContextFrame).  Done when
        that memory is first read after a stop: reading every register costs more than
        a stop itself."""
        if self._state_saved:
            return
        self._state_saved = True          # the reads below must not come back here
        prcb = self._stopped_kprcb
        if prcb is None:
            prcb = self.kprcb
            if not self._in_run:
                # Read once a stop: every request of a halted CPU comes here, and only
                # the CPU or a debugger's write can move KiProcessorBlock.
                self._stopped_kprcb = prcb
        start = prcb + layout.KPRCB_SPECIAL_REGISTERS
        if prcb and address < start + layout.PROCESSOR_STATE_SIZE and start < address + size:
            self.memory.write_virtual(start, self.get_special_registers().to_bytes() + self.get_context().to_bytes())
        else:
            self._state_saved = False

    def _run(self, until: Callable[[], bool] | None, budget: int | None, trace: bool) -> StopEvent:
        uc = self._require()
        if self._prompt is not None:
            raise MachineStateError("a DbgPrompt is waiting: call answer_prompt() first")
        self._leave_raise_site()
        self.debug.sync()
        if self._deliver_pending is not None:
            vector, args, pc = self._deliver_pending
            self._deliver_pending = None
            self._deliver(vector, args, pc, resumable=False)
        self.debug.resuming_at(uc.reg_read(X.UC_X86_REG_RIP))
        if trace:
            event = self._execute(1)
            return event or SingleStep(pc=uc.reg_read(X.UC_X86_REG_RIP))
        executed = 0
        while True:
            if self.io.busy:
                pc = uc.reg_read(X.UC_X86_REG_RIP)
                self.io.step(uc, self.ports.booted and pc not in self.memory.breakpoint_bytes
                             and interrupts.current_irql(self.memory, self.kpcr) == 0)   # PASSIVE_LEVEL
            if self.ports.breakin.is_set() and interrupts.can_interrupt(self.memory, self.kpcr):
                self._deliver(layout.VECTOR_CLOCK, (0, 0, 0), uc.reg_read(X.UC_X86_REG_RIP), resumable=True)
            count = SLICE if budget is None else min(SLICE, budget - executed)
            if count <= 0:
                return BudgetExhausted(pc=uc.reg_read(X.UC_X86_REG_RIP), instructions=executed)
            event = self._execute(count)
            executed += count
            if event is not None:
                return event
            if until is not None and until():
                return BudgetExhausted(pc=uc.reg_read(X.UC_X86_REG_RIP), instructions=executed)

    def _execute(self, count: int) -> StopEvent | None:
        """Run up to ``count`` instructions from RIP and turn what stopped them into an event."""
        uc = self._uc
        pc = uc.reg_read(X.UC_X86_REG_RIP)
        self._trap = self._fault = None
        self.ports.control = None
        self.debug.hit = None
        self.instructions += count
        self.ports.time_100ns = self.instructions // INSTRUCTIONS_PER_100NS
        original = self.memory.breakpoint_bytes.get(pc)
        if original is not None:
            # Step over an armed breakpoint: the original byte for one instruction.
            self.memory.poke(pc, bytes([original]))
        try:
            uc.emu_start(pc, NEVER_REACHED, count=1 if original is not None else count)
        except UcError as exc:
            return self._on_cpu_error(exc)
        finally:
            if original is not None and pc in self.memory.breakpoint_bytes:
                self.memory.poke(pc, b"\xcc")
        if self.debug.hit is not None:
            return self._on_data_breakpoint()
        if self.ports.control is not None:
            return self._on_control()
        if self._trap is not None:
            return self._on_trap()
        if original is not None and count > 1:
            return self._execute(count - 1)
        return None

    def _on_trap(self) -> StopEvent | None:
        uc = self._uc
        intno, rip = self._trap
        if intno == 3:
            pc = rip - 1
            uc.reg_write(X.UC_X86_REG_RIP, pc)
            handle = self._breakpoints.armed_handle(pc)
            if handle is not None:
                return BreakpointHit(pc=pc, handle=handle)
            if pc == self._kernel.break_with_status:
                status = uc.reg_read(X.UC_X86_REG_RCX) & 0xFFFFFFFF
                if status == DBG_STATUS_CONTROL_C:
                    return BreakInStop(pc=pc)
                if status in (DBG_STATUS_BUGCHECK_FIRST, DBG_STATUS_BUGCHECK_SECOND):
                    data = struct.unpack("<5Q", self.read_virtual(self._kernel.ki_bugcheck_data, 40))
                    return BugCheck(pc=pc, code=data[0], params=tuple(data[1:]),
                                    first=status == DBG_STATUS_BUGCHECK_FIRST)
            return BreakpointHit(pc=pc, handle=None)
        if intno == 0x2D:
            event, prompt = decode_debug_service(uc, self.memory)
            uc.reg_write(X.UC_X86_REG_RIP, rip + 1)        # past the int 3 that follows
            self._prompt = prompt
            if isinstance(event, ExceptionEvent):
                self._enter_raise_site(uc.reg_read(X.UC_X86_REG_RDX))
            return event
        if intno == 1:
            uc.reg_write(X.UC_X86_REG_EFLAGS, uc.reg_read(X.UC_X86_REG_EFLAGS) & ~0x100)
            return SingleStep(pc=rip)
        if intno == 0x2C:
            # NT_ASSERT (__int2c): reported at the instruction; running on continues after it.
            return ExceptionEvent(code=NtStatus.STATUS_ASSERTION_FAILURE, address=rip - 2, params=(), first_chance=True)
        if intno == 0x29:
            # __fastfail in kernel mode: bug check 0x139 with the failure code from rcx.
            uc.reg_write(X.UC_X86_REG_RIP, rip - 2)
            self._call_bugcheck(KERNEL_SECURITY_CHECK_FAILURE, uc.reg_read(X.UC_X86_REG_RCX))
            return None
        if intno == 0:
            return self._exception(NtStatus.STATUS_INTEGER_DIVIDE_BY_ZERO, rip, (), layout.VECTOR_DIVIDE, (0, 0))
        if intno == 13:
            return self._exception(NtStatus.STATUS_ACCESS_VIOLATION, rip, (0, _MASK64), layout.VECTOR_GP, (0, 0))
        return self._exception(NtStatus.STATUS_ILLEGAL_INSTRUCTION, rip, (intno,), intno, (intno, 0))

    def _enter_raise_site(self, address: int) -> None:
        """Stop at the raise site: the CPU takes the CONTEXT RtlRaiseException captured
        (the kernel passes it with the service), as KiDispatchException hands KdTrap that
        context and not its own registers.  The CPU's own state waits for the next run."""
        data = self.memory.read_virtual(address, CONTEXT_AMD64_SIZE) if address else b""
        if len(data) < CONTEXT_AMD64_SIZE:
            return
        own = self.get_context()
        self.set_context(Context.from_bytes(data).replace(**_debug_registers(own)))
        self._raise_site = (address, own)

    def _leave_raise_site(self) -> None:
        """The registers as the debugger left them go back into the raise's CONTEXT (the
        dispatch runs with them, as KdpReport copies them back); the CPU gets its own state."""
        if self._raise_site is None:
            return
        address, own = self._raise_site
        self._raise_site = None
        shown = self.get_context()
        captured = Context.from_bytes(self.memory.read_virtual(address, CONTEXT_AMD64_SIZE))
        kept = {name: getattr(captured, name) for name in _CAPTURE_ONLY}
        self.memory.write_virtual(address, shown.replace(**kept, **_debug_registers(captured)).to_bytes())
        self.set_context(own.replace(**_debug_registers(shown)))

    def _exception(self, code: int, address: int, params: tuple[int, ...], vector: int,
                   args: tuple[int, int]) -> StopEvent:
        self._uc.reg_write(X.UC_X86_REG_RIP, address)
        self._deliver_pending = (vector, (args[0], args[1], address), address)
        return ExceptionEvent(code=code, address=address, params=params, first_chance=True)

    def _on_cpu_error(self, exc: UcError) -> StopEvent | None:
        uc = self._uc
        pc = uc.reg_read(X.UC_X86_REG_RIP)
        if exc.errno in _UNMAPPED_ERRORS and self._fault is not None:
            access, address = self._fault
            if interrupts.current_irql(self.memory, self.kpcr) >= layout.DISPATCH_LEVEL:
                self._deliver(layout.VECTOR_PAGE_FAULT, (address, access, pc), pc, resumable=False)
                return None
            return self._exception(NtStatus.STATUS_ACCESS_VIOLATION, pc, (1 if access == 1 else access, address),
                                   layout.VECTOR_PAGE_FAULT, (address, access))
        if exc.errno == UC_ERR_INSN_INVALID:
            return self._exception(NtStatus.STATUS_ILLEGAL_INSTRUCTION, pc, (), layout.VECTOR_INVALID_OP, (0, 0))
        log.warning("CPU stopped at %#x: %s", pc, exc)
        return self._exception(NtStatus.STATUS_ACCESS_VIOLATION, pc, (0, _MASK64), layout.VECTOR_GP, (0, 0))

    def _on_control(self) -> StopEvent | None:
        command, arg1, arg2 = self.ports.control
        self.ports.control = None
        if command == layout.CONTROL_REBOOT:
            self.boot()
            return Rebooted()
        if command == layout.CONTROL_UNMAP_IMAGE:
            self._kernel.unload_module(arg1)
        return None

    def _on_data_breakpoint(self) -> StopEvent:
        uc = self._uc
        index, address, old, kind = self.debug.hit
        self.debug.hit = None
        if kind != "x":
            if kind == "w":
                # The hook ran before the store and the CPU stopped with RIP still at the
                # storing instruction: undo the store and run the instruction once, whole.
                self.memory.poke(address, old)
            self.debug.suppressed = True
            try:
                uc.emu_start(uc.reg_read(X.UC_X86_REG_RIP), NEVER_REACHED, count=1)
            finally:
                self.debug.suppressed = False
        # An execution breakpoint is a fault: RIP stays at the instruction, which runs
        # when the machine resumes (resuming_at lets it pass once, like EFLAGS.RF).
        dr6 = self.debug.report(index)
        return DataBreakpoint(pc=uc.reg_read(X.UC_X86_REG_RIP), dr6=dr6, address=address)

    # ---------------------------------------------------------------- interrupts

    def _deliver(self, vector: int, args: tuple[int, int, int], return_pc: int, resumable: bool) -> None:
        """Enter the kernel's handler for ``vector`` (interrupts.py has the convention)."""
        handler = interrupts.idt_handler(self.memory, self.kpcr, vector)
        if resumable:
            interrupts.interrupt(self._uc, self.memory, handler, return_pc)
        else:
            interrupts.call_with_context(self._uc, self.memory, handler, args, self.get_context().to_bytes(),
                                         return_pc)

    def cause_bugcheck(self) -> None:
        """Make the CPU call KeBugCheckEx(MANUALLY_INITIATED_CRASH, 0, 0, 0, 0) when run on."""
        self._require()
        self._call_bugcheck(MANUALLY_INITIATED_CRASH, 0)

    def _call_bugcheck(self, code: int, param1: int) -> None:
        """Redirect the CPU into KeBugCheckEx(code, param1, 0, 0, 0), called from RIP."""
        self._leave_raise_site()
        interrupts.call_routine(self._uc, self.memory, self.kernel_symbol("KeBugCheckEx"), (code, param1, 0, 0),
                                self._uc.reg_read(X.UC_X86_REG_RIP))
        self._deliver_pending = None

    def set_request(self, request: int) -> None:
        """Write the kernel's KiSimRequest (layout.KiSimRequest); the system loop acts on it."""
        self.write_virtual(self.kernel_symbol("KiSimRequest"), struct.pack("<I", int(request)))

    # ---------------------------------------------------------------- memory

    def read_virtual(self, address: int, size: int) -> bytes:
        self._require()
        return self.memory.read_virtual(address, size)

    def write_virtual(self, address: int, data: bytes) -> int:
        self._require()
        self._stopped_kprcb = None
        return self.memory.write_virtual(address, data)

    def read_physical(self, address: int, size: int) -> bytes:
        self._require()
        return self.memory.read_physical(address, size)

    def write_physical(self, address: int, data: bytes) -> int:
        self._require()
        self._stopped_kprcb = None
        return self.memory.write_physical(address, data)

    def query_memory(self, address: int) -> MemoryInfo | None:
        self._require()
        return self.memory.query(address)

    def search_memory(self, address: int, length: int, pattern: bytes) -> int | None:
        self._require()
        return self.memory.search(address, length, pattern)

    # ---------------------------------------------------------------- breakpoints

    def write_breakpoint(self, address: int) -> int | None:
        """Add a debugger breakpoint (breakpoints.py has the rules): its handle 1..32, or
        None when refused (a breakpoint already at ``address``, or all 32 in use).  On an
        unmapped address it is deferred and written when the page is mapped."""
        self._require()
        return self._breakpoints.write(address)

    def restore_breakpoint(self, handle: int) -> bool:
        """Remove breakpoint ``handle``; False for a handle that is not in use."""
        self._require()
        return self._breakpoints.restore(handle)

    @property
    def breakpoints(self) -> dict[int, int]:
        """handle -> address of every breakpoint in the table, deferred ones included."""
        return self._breakpoints.addresses()

    # ---------------------------------------------------------------- registers

    def get_context(self) -> Context:
        return read_context(self._require(), self.debug.values())

    def set_context(self, ctx: Context) -> None:
        write_context(self._require(), ctx)
        self.debug.load(ctx.Dr0, ctx.Dr1, ctx.Dr2, ctx.Dr3, ctx.Dr6, ctx.Dr7)

    def set_dr7(self, dr7: int) -> None:
        """Load Dr7 alone, as Continue2 does; Dr0-Dr3 keep their addresses."""
        dr0, dr1, dr2, dr3, dr6, _ = self.debug.values()
        self.debug.load(dr0, dr1, dr2, dr3, dr6, dr7)

    def get_special_registers(self) -> SpecialRegisters:
        uc = self._require()
        _, gdt_base, gdt_limit, _ = uc.reg_read(X.UC_X86_REG_GDTR)
        _, idt_base, idt_limit, _ = uc.reg_read(X.UC_X86_REG_IDTR)
        dr = self.debug.values()
        return SpecialRegisters(Cr0=uc.reg_read(X.UC_X86_REG_CR0), Cr2=0, Cr3=layout.CR3_VALUE,
                                Cr4=uc.reg_read(X.UC_X86_REG_CR4), KernelDr0=dr[0], KernelDr1=dr[1],
                                KernelDr2=dr[2], KernelDr3=dr[3], KernelDr6=dr[4], KernelDr7=dr[5],
                                GdtrLimit=gdt_limit, GdtrBase=gdt_base, IdtrLimit=idt_limit,
                                IdtrBase=idt_base, Tr=0x40, Ldtr=0, MxCsr=uc.reg_read(X.UC_X86_REG_MXCSR),
                                MsrGsBase=uc.reg_read(X.UC_X86_REG_GS_BASE))

    def read_msr(self, msr: int) -> int | None:
        try:
            return self._require().msr_read(msr)
        except UcError:
            return None

    def write_msr(self, msr: int, value: int) -> bool:
        try:
            self._require().msr_write(msr, value & _MASK64)
            return True
        except UcError:
            return False
