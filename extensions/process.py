"""!process and !thread: the kernel's processes and threads, as kd's kdexts show them.

    !process                         the current process (flags 3)
    !process Process [Flags]         one process, by EPROCESS address or process ID (flags f)
    !process -1 [Flags]              the current process
    !process 0 Flags [ImageName]     every process on PsActiveProcessHead, or those whose
                                     image name matches (flags 3 when omitted)
    !process /s Session ...          only the processes of one session
    !thread [-p] [-t] [Thread [Flags]]
                                     the current thread, or one by ETHREAD address (-t: by
                                     thread ID); -p adds its process's summary

Flags (kd's bits): 0x1 time and priority statistics; 0x2 the threads with their wait
states; 0x4 the threads, one line each, or with their stacks when 0x2 is set too.

Layouts: the kernel PDB's ``nt!_EPROCESS`` and ``nt!_ETHREAD``; for a kernel without
PDB types, or a PDB that lacks just these types (the simulated kernel's), the console's
built-in layout of its Windows build. A warning line names any built-in layout used. The thread list walked is
KPROCESS.ThreadListHead through KTHREAD.ThreadListEntry. The fields of a process or
thread that lie together are read in one request.

Not done: the stack of a thread other than the one the target stopped in (kdcon unwinds
the current context only; such a thread shows its saved stack pointers instead), the
user-mode parts (/m Module, VAD and working-set figures), and impersonation.
"""

from __future__ import annotations

from kdcon.api import ExtensionFailed, Target, bang, require

from ._args import argument
from ._ntobjects import (WAIT_REASONS, Process, Thread, current_process, current_thread,
                         handle_count, irql_name, layout_note, processes, processor_irql,
                         read_prcb, read_process, read_thread, session_id, threads)

require("1.0")

_ALERTABLE = 1 << 5        # KTHREAD.MiscFlags: Alertable (bit 5)
_MODES = ("KernelMode", "UserMode")


def _tick_length(target: Target) -> int | None:
    """The clock tick in 100 ns units, for the tick counts KPROCESS/KTHREAD keep."""
    for name in ("nt!KeMaximumIncrement", "nt!KeTimeIncrement"):
        address = target.symbol(name)
        if address is not None:
            value = target.u32(address)
            if value:
                return value
    return None


def _duration(ticks: int | None, tick: int | None) -> str:
    if ticks is None:
        return "?"
    if tick is None:
        return f"{ticks} ticks"
    ms = ticks * tick // 10_000
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


# -- processes ------------------------------------------------------------------------------


def _process_lines(target: Target, process: Process) -> list[str]:
    count = handle_count(target, process.object_table)
    session = session_id(target, process.session)
    target.row(kind="process", address=process.address, pid=process.pid,
               parent_pid=process.parent_pid, peb=process.peb, dirbase=process.dirbase,
               object_table=process.object_table, handle_count=count, session=session,
               image=process.image)
    return [f"PROCESS {process.address:x}",
            f"    SessionId: {'none' if session is None else session}  "
            f"Cid: {process.pid:04x}    Peb: {process.peb:08x}  "
            f"ParentCid: {process.parent_pid:04x}",
            f"    DirBase: {process.dirbase:08x}  ObjectTable: {process.object_table:08x}  "
            f"HandleCount: {'<Data Not Accessible>' if count is None else f'{count:3d}.'}",
            f"    Image: {process.image}"]


def _statistics_lines(target: Target, process: Process) -> list[str]:
    tick = _tick_length(target)
    mb = 1024 * 1024
    rows = [("DeviceMap", f"{process.get('DeviceMap') or 0:016x}"),
            ("Token", f"{(process.get('Token.Value') or 0) & ~0xF:016x}"),
            ("UserTime", _duration(process.get("Pcb.UserTime"), tick)),
            ("KernelTime", _duration(process.get("Pcb.KernelTime"), tick)),
            ("VirtualSize", f"{(process.get('VirtualSize') or 0) // mb} Mb"),
            ("PeakVirtualSize", f"{(process.get('PeakVirtualSize') or 0) // mb} Mb"),
            ("BasePriority", str(process.get("Pcb.BasePriority") or 0)),
            ("CommitCharge", str(process.get("CommitCharge") or 0))]
    return [f"    {name:<34}{value}" for name, value in rows]


def _show_process(target: Target, process: Process, flags: int,
                  images: dict[int, str]) -> None:
    lines = _process_lines(target, process)
    if flags & 0x1:
        lines += _statistics_lines(target, process)
    target.write("\n".join(lines) + "\n")
    target.out()
    if flags & 0x6:
        level = "full" if flags & 0x6 == 0x6 else ("wait" if flags & 0x2 else "line")
        listed = threads(target, process)
        for each in listed:
            _show_thread(target, each, level, images, indent="        ")
        if listed and level == "line":
            target.out()


def _parse_process_args(target: Target, words: list[str]) -> tuple[int | None, list[str]]:
    """(session filter or None, the remaining words) of ``!process`` arguments."""
    session = None
    if words and words[0].lower() in ("/s", "-s"):
        if len(words) < 2:
            raise ExtensionFailed("Usage: !process /s Session [Process [Flags]]")
        session = argument(target, words[1])
        words = words[2:]
    if words and words[0].lower() in ("/m", "-m"):
        raise ExtensionFailed("!process /m: user-mode module lists are not read by this "
                              "kdcon; leave /m out")
    return session, words


@bang("process", usage="!process [/s Session] [Process [Flags]] | !process 0 Flags [ImageName]")
def process(target: Target, args: str) -> None:
    """Show a process, or every process, from the kernel's process list (EPROCESS)."""
    session, words = _parse_process_args(target, args.split())
    if len(words) > 3:
        raise ExtensionFailed("Usage: !process [Process [Flags]] | !process 0 Flags [ImageName]")
    which = argument(target, words[0]) if words else None
    flags = argument(target, words[1]) if len(words) > 1 else None
    image = words[2] if len(words) > 2 else None
    if image is not None and which != 0:
        raise ExtensionFailed("!process: an image name needs Process 0 (!process 0 Flags Name)")
    everything = processes(target)
    images = {p.address: p.image for p in everything}
    if which == 0:
        chosen = [p for p in everything
                  if (session is None or session_id(target, p.session) == session)
                  and (image is None or _image_matches(p.image, image))]
        _warn_layout(target, everything)
        target.out("**** NT ACTIVE PROCESS DUMP ****")
        for each in chosen:
            _show_process(target, each, 0x3 if flags is None else flags, images)
        if image is not None and not chosen:
            raise ExtensionFailed(f"No active process has the image name {image}")
        return
    if which is None or which in (-1, (1 << 64) - 1, 0xFFFFFFFF):
        address = current_process(target)
        default = 0x3
    else:
        address = next((p.address for p in everything if which in (p.address, p.pid)),
                       which)
        default = 0xF
    if address < 0x10000:
        raise ExtensionFailed(f"No process has the ID {address:x} (!process 0 0 lists them)")
    chosen_process = read_process(target, address)
    images.setdefault(address, chosen_process.image)
    _warn_layout(target, [chosen_process])
    _show_process(target, chosen_process, default if flags is None else flags, images)


def _image_matches(have: str, wanted: str) -> bool:
    # EPROCESS keeps the first 15 characters of the image file name.
    return have.lower() == wanted[:15].lower()


def _warn_layout(target: Target, found: list[Process]) -> None:
    note = layout_note(*[p.obj for p in found[:1]])
    if note:
        target.warn(note)


# -- threads --------------------------------------------------------------------------------


def _state_text(target: Target, thread: Thread, running_on: int | None) -> str:
    if thread.state_name == "RUNNING" and running_on is not None:
        return f"RUNNING on processor {running_on:x}"
    if thread.state_name == "WAIT":
        reason = thread.get("Tcb.WaitReason") or 0
        mode = thread.get("Tcb.WaitMode") or 0
        alertable = (thread.get("Tcb.MiscFlags") or 0) & _ALERTABLE
        return (f"WAIT: ({WAIT_REASONS[reason] if reason < len(WAIT_REASONS) else reason}) "
                f"{_MODES[mode] if mode < len(_MODES) else mode} "
                f"{'Alertable' if alertable else 'Non-Alertable'}")
    return thread.state_name


def _running_on(target: Target, thread: Thread) -> int | None:
    """The processor whose PRCB names ``thread`` as current (this one processor's)."""
    prcb = read_prcb(target)
    if prcb.get("CurrentThread") == thread.address:
        return prcb.get("Number") or 0
    return None


def _thread_details(target: Target, thread: Thread, images: dict[int, str],
                    running_on: int | None) -> list[str]:
    tick = _tick_length(target)
    get = thread.get
    attached = get("Tcb.ApcState.Process") or thread.process
    lines = [
        f"{'Owning Process':<26}{thread.process:x}       Image:         "
        f"{images.get(thread.process, '')}",
        f"{'Attached Process':<26}" + ("N/A            Image:         N/A"
                                       if attached == thread.process else
                                       f"{attached:x}       Image:         "
                                       f"{images.get(attached, '')}"),
        f"{'Wait Start TickCount':<26}{get('Tcb.WaitTime') or 0}",
        f"{'Context Switch Count':<26}{get('Tcb.ContextSwitches') or 0:<15}"
        f"IdealProcessor: {get('Tcb.IdealProcessor') or 0}",
        f"{'UserTime':<26}{_duration(get('Tcb.UserTime'), tick)}",
        f"{'KernelTime':<26}{_duration(get('Tcb.KernelTime'), tick)}"]
    if running_on is not None:
        irql, _ = processor_irql(target)
        lines.append(f"{'IRQL':<26}{irql:x} ({irql_name(irql)})")
    elif thread.state_name == "WAIT":
        irql = get("Tcb.WaitIrql") or 0
        lines.append(f"{'Wait IRQL':<26}{irql:x} ({irql_name(irql)})")
    for label, path in (("Start Address", "StartAddress"),
                        ("Win32 Start Address", "Win32StartAddress")):
        address = get(path)
        if address:
            lines.append(f"{label} {target.name_for(address) or f'{address:x}'} "
                         f"(0x{address:x})")
    lines += [
        f"Stack Init {get('Tcb.InitialStack') or 0:x} Current {get('Tcb.KernelStack') or 0:x}",
        f"Base {get('Tcb.StackBase') or 0:x} Limit {get('Tcb.StackLimit') or 0:x} "
        f"Call {get('Tcb.CallbackStack') or 0:x}",
        f"Priority {get('Tcb.Priority') or 0} BasePriority {get('Tcb.BasePriority') or 0} "
        f"UnusualBoost {(get('Tcb.PriorityDecrement') or 0) >> 4} "
        f"ForegroundBoost {(get('Tcb.PriorityDecrement') or 0) & 0xF}"]
    return lines


def _show_thread(target: Target, thread: Thread, level: str, images: dict[int, str],
                 indent: str = "") -> None:
    """One thread: ``line`` (one line), ``wait`` (and its wait state) or ``full``
    (details and stack)."""
    running_on = _running_on(target, thread)
    target.row(kind="thread", address=thread.address, pid=thread.pid, tid=thread.tid,
               process=thread.process, state=thread.state_name, teb=thread.teb,
               processor=running_on)
    head = (f"THREAD {thread.address:x}  Cid {thread.pid:04x}.{thread.tid:04x}  "
            f"Teb: {thread.teb:016x} Win32Thread: {thread.get('Tcb.Win32Thread') or 0:016x} "
            f"{_state_text(target, thread, running_on)}")
    lines = [head]
    if level == "full":
        lines += _thread_details(target, thread, images, running_on)
        if running_on is not None:
            stack = target.run("k")
            lines += stack.rstrip("\n").splitlines()
        else:
            lines.append("(not the thread the target stopped in: its stack is not unwound; "
                         "Stack Init and Current above bound it)")
    target.write("".join(f"{indent}{line}\n" for line in lines))
    if level != "line":
        target.out()


@bang("thread", usage="!thread [-p] [-t] [Thread [Flags]]")
def thread(target: Target, args: str) -> None:
    """Show the current thread, or one given: state, IRQL, stack pointers, and its stack."""
    words = args.split()
    with_process = by_id = False
    while words and words[0].lower() in ("-p", "-t", "/p", "/t"):
        with_process |= words[0][1:].lower() == "p"
        by_id |= words[0][1:].lower() == "t"
        words = words[1:]
    if len(words) > 2:
        raise ExtensionFailed("Usage: !thread [-p] [-t] [Thread [Flags]]")
    flags = argument(target, words[1]) if len(words) > 1 else 0x6
    everything = processes(target)
    images = {p.address: p.image for p in everything}
    if not words or argument(target, words[0]) in (-1, (1 << 64) - 1):
        address = current_thread(target)
    elif by_id:
        wanted = argument(target, words[0])
        found = [t for p in everything for t in threads(target, p) if t.tid == wanted]
        if not found:
            raise ExtensionFailed(f"No thread has the ID {wanted:x}")
        address = found[0].address
    else:
        address = argument(target, words[0])
    chosen = read_thread(target, address)
    note = layout_note(chosen.obj)
    if note:
        target.warn(note)
    if with_process:
        owner = next((p for p in everything if p.address == chosen.process), None)
        if owner is not None:
            target.write("\n".join(_process_lines(target, owner)) + "\n")
    level = "full" if flags & 0x6 == 0x6 or flags & 0x4 == 0 and flags & 0x2 == 0 else (
        "wait" if flags & 0x2 else "line")
    _show_thread(target, chosen, level, images)
