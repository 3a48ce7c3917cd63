"""!running and !stacks: what each processor runs, and every thread's kernel stack.

    !running [-i] [-t]            each processor's KPRCB with its current and next thread
                                  (and their priorities) and its idle thread; -i shows
                                  idle processors too, -t each processor's stack
    !stacks [Detail [Filter]]     every thread of every process: Cid, ETHREAD, ticks
                                  since it last waited, state and the routine it is
                                  blocked in; Detail 1 adds its whole stack (a frame a
                                  line), 2 each frame as ``kb`` prints it (with the
                                  four home-space arguments); Filter keeps
                                  the threads one of whose frames names it (any case)

Processors are the KPRCBs of ``nt!KiProcessorBlock`` (an entry counts while its
``Number`` says its index), else the one ``$prcb`` gives; a processor is idle when its
CurrentThread is its IdleThread. The queued spin locks (``LockQueue``) are shown as kd
shows them (``.`` free, ``O`` owned, ``W`` waited for) when the KPRCB layout has them.

A stack comes from the console's own walk (``k``): the thread the target stopped in
from the registers, any other thread from its saved kernel stack. There,
KTHREAD.KernelStack points at the frame the context switch left: on x64 Windows (and
the simulated kernel) the switch routine's return address into ``KiSwapContext`` (or the
routine that called the switch, ``nt!KiSwitchTo`` in the simulated kernel) lies in it;
it is found as the first word of the frame that returns just after a ``call`` whose
target is named ``*SwapContext``, and the walk starts from there. A thread running on
another processor, or one whose frame holds no such return address, shows its
StartAddress instead, as kd does for a stack it cannot walk. Blocker skips the
scheduler's own frames (the wait and switch routines) to name the routine that waited.
Ticks is the kernel's tick count (``KUSER_SHARED_DATA.TickCount``, else
``nt!KeTickCount``) less KTHREAD.WaitTime, ``????????`` when the target gives no count.

Spec: the !running and !stacks pages of the debugger documentation (kdexts).
Not done: paged-out stacks (kd's Detail 1 distinction; every stack here is read from
memory), the stack of a thread running on another processor (``~Ns`` then ``k``), and
user-mode frames.
"""

from __future__ import annotations

from typing import Any

from kdcon.api import ExtensionFailed, Target, bang, require

from ._args import argument
from ._ntobjects import (KernelObject, Thread, current_thread, layout_note, processes,
                         read_prcb, read_thread, threads)

require("1.0")

_MAX_PROCESSORS = 256       # KiProcessorBlock entries read, in one request
_STACK_FRAMES = 0x40
_SWITCH_SCAN = 0x200          # bytes of the saved stack searched for the switch's return
_SHARED_TICK_COUNT = 0xFFFFF78000000320   # KUSER_SHARED_DATA.TickCountQuad on x64
_CALL_REL32 = 0xE8
_LOCK_WAIT, _LOCK_OWNER = 0x1, 0x2

# The scheduler's wait and switch routines: Blocker names the routine below them.
_PLUMBING = frozenset((
    "KiSwapContext", "SwapContext", "KiSwapThread", "KiCommitThreadWait", "KiSwitchTo",
    "KiWait", "KiSchedule", "KeWaitForSingleObject", "KeWaitForMultipleObjects",
    "KeWaitForMutexObject", "KeDelayExecutionThread", "KeRemoveQueue", "KeRemoveQueueEx",
    "KiDeliverClock"))

_STATE_WORDS = {"WAIT": "Blocked"}


# -- processors ---------------------------------------------------------------------------------


def processor_blocks(target: Target) -> list[KernelObject]:
    """Each processor's KPRCB, in processor order."""
    table = target.symbol("nt!KiProcessorBlock")
    found: list[KernelObject] = []
    if table is not None:
        width = target.pointer_size
        data = target.read(table, _MAX_PROCESSORS * width)
        for index in range(len(data) // width):
            address = int.from_bytes(data[index * width:(index + 1) * width], "little")
            if not address:
                break
            try:
                prcb = KernelObject(target, address, "_KPRCB")
            except ExtensionFailed:
                break
            # Past the array's end lie other variables: an entry counts while its
            # KPRCB says it is that processor.
            if (prcb.get("Number") or 0) != index:
                break
            found.append(prcb)
    if not found:
        found.append(read_prcb(target))
    return found


def _lock_text(target: Target, prcb: KernelObject) -> str:
    """kd's letters for the KPRCB's queued spin locks, '' when the layout has none."""
    offset = prcb.offset("LockQueue")
    if offset is None:
        return ""
    entry = 2 * target.pointer_size             # KSPIN_LOCK_QUEUE: Next, Lock
    info = target.find_type("nt!_KPRCB")
    field = next((f for f in getattr(info, "fields", ()) if f.name == "LockQueue"), None)
    size = getattr(getattr(field, "type", None), "size", 0) or 0
    count = size // entry if size else 0
    data = target.read(prcb.address + offset, count * entry) if count else b""
    letters = []
    for index in range(len(data) // entry):
        lock = int.from_bytes(data[index * entry + target.pointer_size:(index + 1) * entry],
                              "little")
        letters.append("O" if lock & _LOCK_OWNER else "W" if lock & _LOCK_WAIT else ".")
    return "".join(letters)


def _priority(target: Target, thread: int) -> int:
    return read_thread(target, thread).get("Tcb.Priority") or 0


def _mask(numbers: list[int]) -> int:
    mask = 0
    for number in numbers:
        mask |= 1 << number
    return mask


# Column starts of !running's table: Prcbs, Current, (pri), Next, (pri), Idle.
_RUNNING_COLUMNS = ((7, "Prcbs"), (25, "Current"), (41, "(pri)"), (47, "Next"),
                    (63, "(pri)"), (69, "Idle"))


def _running_header() -> str:
    line = ""
    for column, word in _RUNNING_COLUMNS:
        line = line.ljust(column) + word
    return line


@bang("running", usage="!running [-i] [-t]")
def running(target: Target, args: str) -> None:
    """Show each processor's current, next and idle thread (-i idle ones too, -t stacks)."""
    letters = set()
    for word in args.split():
        if word[:1] not in "-/" or not set(word[1:].lower()) <= {"i", "t"} or len(word) < 2:
            raise ExtensionFailed("Usage: !running [-i] [-t]")
        letters |= set(word[1:].lower())
    prcbs = processor_blocks(target)
    note = layout_note(prcbs[0])
    if note:
        target.warn(note)
    numbers = [p.get("Number") or 0 for p in prcbs]
    idle = [n for n, p in zip(numbers, prcbs) if p.get("CurrentThread") == p.get("IdleThread")]
    here = read_prcb(target).address
    lines = ["", f"System Processors:  ({_mask(numbers):016x})",
             f"  Idle Processors:  ({_mask(idle):016x})"]
    if len(idle) == len(prcbs):
        lines.append("All processors idle.")
    if "i" in letters or len(idle) < len(prcbs):
        lines += ["", _running_header()]
    for number, prcb in zip(numbers, prcbs):
        current = prcb.get("CurrentThread") or 0
        next_thread = prcb.get("NextThread") or 0
        idle_thread = prcb.get("IdleThread") or 0
        if number in idle and "i" not in letters:
            continue
        row = (f"{number:3d}    {prcb.address:016x}  {current:016x} "
               f"({_priority(target, current):2d}) ")
        row += (f"{next_thread:016x} ({_priority(target, next_thread):2d}) " if next_thread
                else " " * 22)
        row += f"{idle_thread:016x}  {_lock_text(target, prcb)}"
        lines.append(row.rstrip())
        target.row(processor=number, prcb=prcb.address, current=current, next=next_thread or None,
                   idle=idle_thread, is_idle=number in idle)
        if "t" in letters:
            lines.append("")
            if prcb.address == here:
                lines += target.run("k").rstrip("\n").splitlines()
            else:
                lines.append(f"(processor {number}'s stack is in its own registers: "
                             f"~{number}s then k shows it)")
            lines.append("")
    target.write("\n".join(lines) + "\n")


# -- stacks ----------------------------------------------------------------------------------


def _switch_return(target: Target, thread: Thread) -> tuple[int, int] | None:
    """(stack pointer after the switch's return, that return address) in the frame at
    KTHREAD.KernelStack, or None when it holds none."""
    stack = thread.get("Tcb.KernelStack") or 0
    top = thread.get("Tcb.InitialStack") or thread.get("Tcb.StackBase") or 0
    if not stack or (top and stack >= top):
        return None
    length = min(_SWITCH_SCAN, top - stack) if top else _SWITCH_SCAN
    data = target.read(stack, length)
    width = target.pointer_size
    for index in range(len(data) // width):
        value = int.from_bytes(data[index * width:(index + 1) * width], "little")
        name = target.name_for(value) if value > 0xFFFF else None
        if not name or "!" not in name:
            continue
        call = target.read(value - 5, 5)
        if len(call) < 5 or call[0] != _CALL_REL32:
            continue
        callee = (value + int.from_bytes(call[1:], "little", signed=True)) & ((1 << 64) - 1)
        if "SwapContext" in (target.name_for(callee) or ""):
            return stack + (index + 1) * width, value
    return None


def thread_frames(target: Target, thread: Thread, stopped_in: int,
                  command: str = "k") -> tuple[list[dict[str, Any]], str]:
    """The thread's frames as ``k`` (or ``kb``) gives them (rows with call_site,
    child_sp, return_address) and its text; no frames when the stack cannot be walked."""
    if thread.address == stopped_in:
        out = target.run(f"{command} 0x{_STACK_FRAMES:x}")
    elif thread.state_name == "RUNNING":
        return [], ""
    else:
        start = _switch_return(target, thread)
        if start is None:
            return [], ""
        out = target.run(f"{command} = 0x{start[0]:x} 0x{start[1]:x} 0x{_STACK_FRAMES:x}")
    if not out.ok:
        return [], ""
    return [row for row in out.rows if "call_site" in row], out


def _function(call_site: str) -> str:
    return call_site.partition("!")[2].partition("+")[0]


def _blocker(names: list[str]) -> str:
    for name in names:
        if _function(name) not in _PLUMBING:
            return name
    return names[0] if names else ""


def _tick_count(target: Target) -> int | None:
    data = target.read(_SHARED_TICK_COUNT, 4)
    if len(data) == 4:
        return int.from_bytes(data, "little")
    address = target.symbol("nt!KeTickCount")
    if address is not None:
        data = target.read(address, 4)
        if len(data) == 4:
            return int.from_bytes(data, "little")
    return None


def _parse_stacks_args(target: Target, args: str) -> tuple[int, str | None]:
    words = args.split(None, 1)
    detail = 0
    if words:
        detail = argument(target, words[0], "Detail")
        if detail not in (0, 1, 2):
            raise ExtensionFailed("Usage: !stacks [Detail [FilterString]] (Detail 0, 1 or 2)")
    wanted = words[1].strip() if len(words) > 1 else None
    return detail, wanted or None


@bang("stacks", usage="!stacks [Detail [FilterString]]")
def stacks(target: Target, args: str) -> None:
    """Show every thread's state and the routine it is blocked in (Detail 1, 2: its stack)."""
    detail, wanted = _parse_stacks_args(target, args)
    stopped_in = current_thread(target)
    ticks_now = _tick_count(target)
    everything = processes(target)
    note = layout_note(*[p.obj for p in everything[:1]])
    if note:
        target.warn(note)
    lines = ["Proc.Thread  .Thread  Ticks   ThreadState Blocker"]
    shown = 0
    for done, process in enumerate(everything):
        target.progress(done, len(everything), "processes")
        group = []
        for thread in threads(target, process):
            frames, text = thread_frames(target, thread, stopped_in,
                                         "kb" if detail == 2 else "k")
            names = [row["call_site"] or target.format_address(row.get("ip") or 0)
                     for row in frames]
            if not names:
                start = thread.get("StartAddress") or 0
                names = [target.name_for(start) or target.format_address(start)]
            if wanted and not any(wanted.lower() in name.lower() for name in names):
                continue
            wait_time = thread.get("Tcb.WaitTime")
            ticks = ("????????" if ticks_now is None or wait_time is None
                     else f"{(ticks_now - wait_time) & 0xFFFFFFFF:08x}")
            state = _STATE_WORDS.get(thread.state_name, thread.state_name)
            head = f"{thread.pid:4x}.{thread.tid:06x}  {thread.address:016x} {ticks} {state:<10} "
            group.append(head + (_blocker(names) if detail == 0 else names[0]))
            if detail == 1:
                group += [" " * len(head) + name for name in names[1:]]
            elif detail == 2 and text:
                group += [" " * len(head) + line for line in text.rstrip("\n").splitlines()]
            target.row(pid=thread.pid, tid=thread.tid, thread=thread.address,
                       process=process.address, image=process.image, state=state,
                       blocker=_blocker(names), frames=names)
            shown += 1
        if group or not wanted:
            lines.append(f"{'':28}[{process.address:016x} {process.image}]")
            lines += group
            lines.append("")
    if lines[-1]:
        lines.append("")
    lines.append(f"Threads Processed: {shown}")
    target.write("\n".join(lines) + "\n")
