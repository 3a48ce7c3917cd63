"""Processes, threads and processor blocks read from target memory, for the kernel
extensions (!process, !thread, !irql, !pcr, !prcb, !idt, !analyze).

What it does: ``KernelObject`` reads one kernel structure in a single request and gives
its fields by path (``Pcb.DirectoryTableBase``), through the type ``target.find_type``
gives: the kernel PDB's, or for a type the kernel's PDB lacks (or a kernel without PDB
types) the console's built-in layout of its build (``target.type_layout`` names it); a
kernel that has neither gets one line saying so. On top of it: ``read_process`` and
``read_thread`` decode an EPROCESS or ETHREAD, ``processes`` walks
``PsActiveProcessHead``, ``threads`` a process's thread list, ``current_thread`` and
``current_process`` follow ``$thread``, ``read_pcr`` and ``read_prcb`` follow ``$pcr`` and
``$prcb``, and ``processor_irql`` says at which IRQL the processor stopped.
What it does not do: know a layout itself, print anything, or switch process context
(one address space).

Not an extension itself (the leading underscore keeps the loader away); the built-ins
import it relatively.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdcon.api import ExtensionFailed, Target

__all__ = ["KernelObject", "Process", "Thread", "processes", "threads", "read_process",
           "read_thread", "current_thread", "current_process", "read_pcr", "read_prcb",
           "processor_irql", "irql_name", "handle_count", "session_id", "layout_note",
           "process_list_head", "THREAD_STATES", "WAIT_REASONS"]

_SPECIAL = "ProcessorState.SpecialRegisters."

# The fields these extensions read from each structure: those of them that lie together
# are read in one request when the object is made, the rest when asked for.
_READ_AHEAD: dict[str, tuple[str, ...]] = {
    "_EPROCESS": (
        "Pcb.DirectoryTableBase", "Pcb.BasePriority", "Pcb.KernelTime", "Pcb.UserTime",
        "CreateTime.QuadPart", "UniqueProcessId", "CommitCharge", "PeakVirtualSize",
        "VirtualSize", "ObjectTable", "Token.Value", "InheritedFromUniqueProcessId",
        "DeviceMap", "Session", "ImageFileName", "ActiveThreads", "Peb"),
    "_ETHREAD": (
        "Tcb.InitialStack", "Tcb.StackLimit", "Tcb.KernelStack", "Tcb.MiscFlags",
        "Tcb.ApcState.Process", "Tcb.Priority", "Tcb.Teb", "Tcb.ContextSwitches", "Tcb.State",
        "Tcb.WaitIrql", "Tcb.WaitMode", "Tcb.WaitTime", "Tcb.CallbackStack",
        "Tcb.BasePriority", "Tcb.PriorityDecrement", "Tcb.Process", "Tcb.IdealProcessor",
        "Tcb.WaitReason", "Tcb.Win32Thread", "Tcb.StackBase", "Tcb.KernelTime",
        "Tcb.UserTime", "StartAddress", "Cid.UniqueProcess", "Cid.UniqueThread",
        "Win32StartAddress"),
    "_HANDLE_TABLE": ("HandleCount",),
    "_OBJECT_HEADER": ("PointerCount", "HandleCount", "TypeIndex", "InfoMask"),
    "_MM_SESSION_SPACE": ("SessionId",),
    "_KPCR": ("GdtBase", "TssBase", "Self", "CurrentPrcb", "IdtBase", "Irql", "MajorVersion",
              "MinorVersion", "KdVersionBlock"),
    "_KPRCB": (
        "CurrentThread", "NextThread", "IdleThread", "Number", _SPECIAL + "Cr0",
        _SPECIAL + "Cr2", _SPECIAL + "Cr3", _SPECIAL + "Cr4", _SPECIAL + "Gdtr.Limit",
        _SPECIAL + "Gdtr.Base", _SPECIAL + "Idtr.Limit", _SPECIAL + "Idtr.Base",
        _SPECIAL + "Tr", "CpuType", "MHz", "InterruptCount", "KernelTime", "UserTime",
        "DpcTime", "InterruptTime", "DebuggerSavedIRQL", "VendorString"),
}

# KTHREAD_STATE (Windows Internals): the word !thread prints for each.
THREAD_STATES = ("INITIALIZED", "READY", "RUNNING", "STANDBY", "TERMINATED", "WAIT",
                 "TRANSITION", "DEFERREDREADY", "GATEWAIT")
# KWAIT_REASON (wdm.h), in order.
WAIT_REASONS = (
    "Executive", "FreePage", "PageIn", "PoolAllocation", "DelayExecution", "Suspended",
    "UserRequest", "WrExecutive", "WrFreePage", "WrPageIn", "WrPoolAllocation",
    "WrDelayExecution", "WrSuspended", "WrUserRequest", "WrEventPair", "WrQueue",
    "WrLpcReceive", "WrLpcReply", "WrVirtualMemory", "WrPageOut", "WrRendezvous",
    "WrKeyedEvent", "WrTerminated", "WrProcessInSwap", "WrCpuRateControl",
    "WrCalloutStack", "WrKernel", "WrResource", "WrPushLock", "WrMutex", "WrQuantumEnd",
    "WrDispatchInt", "WrPreempted", "WrYieldExecution", "WrFastMutex", "WrGuardedMutex",
    "WrRundown")

# x64 IRQLs by kd's names (wdm.h; PASSIVE_LEVEL shares LOW_LEVEL's 0).
_IRQL_NAMES = {0: "LOW_LEVEL", 1: "APC_LEVEL", 2: "DISPATCH_LEVEL", 12: "SYNCH_LEVEL",
               13: "CLOCK_LEVEL", 14: "IPI_LEVEL", 15: "HIGH_LEVEL"}


def irql_name(irql: int) -> str:
    """kd's name of an x64 IRQL: DISPATCH_LEVEL, a device level, HIGH_LEVEL, ..."""
    if irql in _IRQL_NAMES:
        return _IRQL_NAMES[irql]
    return "DEVICE_LEVEL" if 3 <= irql <= 11 else "INVALID_LEVEL"


class KernelObject:
    """One kernel structure at an address; fields by ``A.B`` path.

    The fields these extensions use are read when the object is made, the ones close
    together in one request (a KPRCB is 19 KB on Windows 7, of which a few dozen
    bytes are wanted); any other field is read when asked for. ``source`` says where
    the layout came from: ``"PDB"``, or the console's built-in layout standing in for a
    type the kernel's PDB does not give (``target.type_layout``).
    """

    def __init__(self, target: Target, address: int, name: str) -> None:
        self.target = target
        self.address = address
        self.name = name
        self._specs: dict[str, tuple[int, int, int | None, int | None] | None] = {}
        self._runs: list[tuple[int, bytes]] = []
        self._info = _kernel_type(target, name)
        self.size = self._info.size
        self.source = target.type_layout(f"nt!{name}") or "PDB"
        wanted = [spec for path in _READ_AHEAD.get(name, ())
                  if (spec := self._spec(path)) is not None and spec[1]]
        self._read_runs(sorted((offset, size) for offset, size, _, _ in wanted))

    def _read_runs(self, spans: list[tuple[int, int]]) -> None:
        """Read ``(offset, size)`` spans, neighbours (gaps under 128 bytes) together."""
        merged: list[list[int]] = []
        for offset, size in spans:
            if merged and offset - merged[-1][1] < 0x80:
                merged[-1][1] = max(merged[-1][1], offset + size)
            else:
                merged.append([offset, offset + size])
        for begin, end in merged:
            data = self.target.read(self.address + begin, end - begin)
            if len(data) < end - begin:
                raise ExtensionFailed(f"Cannot read the {self.name.lstrip('_')} at "
                                      f"{self.target.format_address(self.address)}")
            self._runs.append((begin, data))

    def _spec(self, path: str) -> tuple[int, int, int | None, int | None] | None:
        """(offset, size, bit position, bit width) of a field; size 0 for an embedded
        structure; None if this layout has no such field."""
        if path not in self._specs:
            self._specs[path] = _field_spec(self.target, self._info, path)
        return self._specs[path]

    def _bytes(self, offset: int, size: int) -> bytes:
        for begin, data in self._runs:
            if begin <= offset and offset + size <= begin + len(data):
                return data[offset - begin: offset - begin + size]
        data = self.target.read(self.address + offset, size)
        self._runs.append((offset, data))
        return data

    def offset(self, path: str) -> int | None:
        spec = self._spec(path)
        return None if spec is None else spec[0]

    def has(self, path: str) -> bool:
        return self._spec(path) is not None

    def address_of(self, path: str) -> int | None:
        offset = self.offset(path)
        return None if offset is None else self.address + offset

    def get(self, path: str) -> int | None:
        """The field's integer value; None when this layout has no such field (or it
        cannot be read)."""
        spec = self._spec(path)
        if spec is None or not spec[1]:
            return None
        offset, size, bit, width = spec
        data = self._bytes(offset, size)
        if len(data) < size:
            return None
        value = int.from_bytes(data, "little")
        if bit is not None and width is not None:
            value = (value >> bit) & ((1 << width) - 1)
        return value

    def text(self, path: str) -> str:
        """A character-array field up to its NUL."""
        spec = self._spec(path)
        if spec is None or not spec[1]:
            return ""
        return self._bytes(spec[0], spec[1]).split(b"\0", 1)[0].decode("latin-1")


def _strip(info: Any) -> Any:
    """The type under modifiers (const, volatile) and typedefs."""
    for _ in range(16):
        if info is None or info.kind not in ("modifier", "typedef") or info.type is None:
            break
        info = info.type
    return info


def _kernel_type(target: Target, name: str) -> Any:
    """The type of ``nt!name`` as the target gives it; one line when it gives none."""
    info = target.find_type(f"nt!{name}")
    if info is None or not getattr(info, "size", 0):
        raise ExtensionFailed(f"Type nt!{name} not found: are the kernel's symbols "
                              f"loaded (.reload /f nt)?")
    return info


def _field_spec(target: Target, info: Any, path: str) -> tuple[int, int, int | None, int | None] | None:
    """Where ``path`` lies in the type ``info``: the offsets of each step summed,
    the size of the last (0 for a structure), and a bitfield's position and width."""
    offset = 0
    current = _strip(info)
    spec = None
    for part in path.split("."):
        if current is None or current.kind not in ("struct", "union", "class"):
            return None
        if current.forward and current.name:
            current = _strip(target.find_type(f"nt!{current.name}")) or current
        field = next((f for f in current.fields if f.name == part), None)
        if field is None:
            return None
        offset += field.offset
        current = _strip(field.type)
        kind = current.kind if current is not None else ""
        if field.bit_width is not None or kind == "bitfield":
            base = _strip(current.type) if current is not None else None
            bit = field.bit_position if field.bit_position is not None else current.bit_position
            width = field.bit_width if field.bit_width is not None else current.bit_width
            spec = (offset, base.size if base is not None and base.size else 4, bit, width)
        elif kind in ("struct", "union", "class"):
            spec = (offset, 0, None, None)
        elif kind == "pointer":
            spec = (offset, current.pointer_size or target.pointer_size, None, None)
        else:
            spec = (offset, current.size if current is not None else 0, None, None)
    return spec


def _first(obj: KernelObject, *paths: str) -> int | None:
    """The first of ``paths`` the layout has (the same field under two names)."""
    for path in paths:
        value = obj.get(path)
        if value is not None:
            return value
    return None


@dataclass
class Process:
    """One EPROCESS, decoded."""

    address: int
    pid: int
    parent_pid: int
    peb: int
    dirbase: int
    object_table: int
    session: int
    image: str
    thread_list: int | None     # the list head the threads hang on
    thread_link: str            # the ETHREAD field that list links
    obj: KernelObject

    def get(self, path: str) -> int | None:
        return self.obj.get(path)


@dataclass
class Thread:
    """One ETHREAD (its KTHREAD first), decoded."""

    address: int
    pid: int
    tid: int
    process: int
    state: int
    teb: int
    obj: KernelObject

    def get(self, path: str) -> int | None:
        return self.obj.get(path)

    @property
    def state_name(self) -> str:
        return THREAD_STATES[self.state] if self.state < len(THREAD_STATES) else \
            f"STATE {self.state}"


def read_process(target: Target, address: int) -> Process:
    obj = KernelObject(target, address, "_EPROCESS")
    # Both lists hold every thread; the KPROCESS one links KTHREADs (the start of an
    # ETHREAD), so it also serves a thread layout that only knows the KTHREAD.
    if obj.has("Pcb.ThreadListHead"):
        head, link = obj.address_of("Pcb.ThreadListHead"), "Tcb.ThreadListEntry"
    else:
        head, link = obj.address_of("ThreadListHead"), "ThreadListEntry"
    return Process(
        address=address, pid=obj.get("UniqueProcessId") or 0,
        parent_pid=obj.get("InheritedFromUniqueProcessId") or 0, peb=obj.get("Peb") or 0,
        dirbase=obj.get("Pcb.DirectoryTableBase") or 0,
        object_table=obj.get("ObjectTable") or 0, session=obj.get("Session") or 0,
        image=obj.text("ImageFileName"), thread_list=head, thread_link=link, obj=obj)


def read_thread(target: Target, address: int) -> Thread:
    obj = KernelObject(target, address, "_ETHREAD")
    return Thread(address=address, pid=obj.get("Cid.UniqueProcess") or 0,
                  tid=obj.get("Cid.UniqueThread") or 0,
                  process=_first(obj, "Tcb.Process", "Tcb.ApcState.Process") or 0,
                  state=obj.get("Tcb.State") or 0, teb=obj.get("Tcb.Teb") or 0, obj=obj)


def process_list_head(target: Target) -> int:
    head = target.symbol("nt!PsActiveProcessHead")
    if head is None:
        raise ExtensionFailed("nt!PsActiveProcessHead is not known: are the kernel's "
                              "symbols loaded (.reload /f nt)?")
    return head


def _link_offset(target: Target, name: str, field: str) -> int:
    """Where the LIST_ENTRY ``field`` lies in ``name``, without reading an object."""
    spec = _field_spec(target, _kernel_type(target, name), field)
    if spec is None:
        raise ExtensionFailed(f"nt!{name} has no field {field}: not a layout these "
                              f"extensions know")
    return spec[0]


def processes(target: Target) -> list[Process]:
    """Every process on PsActiveProcessHead, in list order."""
    link = _link_offset(target, "_EPROCESS", "ActiveProcessLinks")
    found = []
    for entry in target.list_entries(process_list_head(target), limit=65536):
        target.check_cancelled()
        found.append(read_process(target, entry - link))
    return found


def threads(target: Target, process: Process) -> list[Thread]:
    """The threads on ``process``'s thread list."""
    if process.thread_list is None:
        return []
    link = _link_offset(target, "_ETHREAD", process.thread_link)
    found = []
    for entry in target.list_entries(process.thread_list, limit=65536):
        target.check_cancelled()
        found.append(read_thread(target, entry - link))
    return found


def _pseudo(target: Target, name: str) -> int:
    try:
        value = target.evaluate(f"@${name}")
    except Exception as exc:  # noqa: BLE001 - the evaluator's error is the line to give
        raise ExtensionFailed(f"${name} is not known: {exc}") from None
    if not value:
        raise ExtensionFailed(f"${name} is not known on this target")
    return value


def current_thread(target: Target) -> int:
    """``$thread``: the thread the target stopped in."""
    return _pseudo(target, "thread")


def current_process(target: Target) -> int:
    """The process the current thread runs in (KTHREAD.ApcState.Process)."""
    thread = read_thread(target, current_thread(target))
    address = _first(thread.obj, "Tcb.ApcState.Process") or thread.process
    if not address:
        raise ExtensionFailed("The current thread names no process")
    return address


def read_pcr(target: Target) -> KernelObject:
    """The KPCR of the processor the target stopped on (``$pcr``)."""
    return KernelObject(target, _pseudo(target, "pcr"), "_KPCR")


def read_prcb(target: Target) -> KernelObject:
    """The KPRCB of the processor the target stopped on (``$prcb``)."""
    return KernelObject(target, _pseudo(target, "prcb"), "_KPRCB")


def special_register(prcb: KernelObject, name: str) -> int | None:
    """A KSPECIAL_REGISTERS field the kernel saved in the PRCB when it stopped; the
    descriptor registers by their flat names (``IdtrBase``, ``GdtrLimit``)."""
    paths = [f"{_SPECIAL}{name}", f"SpecialRegisters.{name}"]
    if name[:4] in ("Gdtr", "Idtr"):
        paths.insert(0, f"{_SPECIAL}{name[:4]}.{name[4:]}")
    return _first(prcb, *paths)


def processor_irql(target: Target, prcb: KernelObject | None = None) -> tuple[int, str]:
    """The IRQL the processor was at when the target stopped, and where it was read.

    Windows x64 keeps the IRQL in CR8 and its debugger entry saves it in
    KPRCB.DebuggerSavedIRQL; a kernel without that field keeps it in KPCR.Irql.
    """
    saved = (prcb or read_prcb(target)).get("DebuggerSavedIRQL")
    if saved is not None:
        return saved, "KPRCB.DebuggerSavedIRQL"
    irql = read_pcr(target).get("Irql")
    if irql is None:
        raise ExtensionFailed("Neither KPRCB.DebuggerSavedIRQL nor KPCR.Irql is in the "
                              "kernel's layout")
    return irql, "KPCR.Irql"


def handle_count(target: Target, object_table: int) -> int | None:
    """HANDLE_TABLE.HandleCount of a process's object table; 0 when it has none."""
    if not object_table:
        return 0
    try:
        return KernelObject(target, object_table, "_HANDLE_TABLE").get("HandleCount")
    except ExtensionFailed:
        return None


def session_id(target: Target, session: int) -> int | None:
    """MM_SESSION_SPACE.SessionId of a process's session; None for none."""
    if not session:
        return None
    try:
        return KernelObject(target, session, "_MM_SESSION_SPACE").get("SessionId")
    except ExtensionFailed:
        return None


def layout_note(*objects: KernelObject) -> str | None:
    """The warning to give when the kernel's PDB lacks a type and the built-in is used."""
    built_in = [o for o in objects if o.source != "PDB"]
    if not built_in:
        return None
    names = sorted({f"nt!{o.name}" for o in built_in})
    return (f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} not in the "
            f"kernel's symbols: using the {built_in[0].source} layout")
