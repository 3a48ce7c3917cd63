"""!irql, !pcr, !prcb and !idt: the processor the target stopped on, as kdexts shows it.

    !irql [Processor]          the IRQL the processor was at when the target stopped
    !pcr [Processor]           its processor control region (KPCR)
    !prcb [Processor]          its processor control block (KPRCB)
    !idt [-a] [Vector]         its interrupt descriptor table, handlers symbolised

The KPCR and KPRCB are found through control space (``$pcr``, ``$prcb``) and read with
the kernel PDB's ``nt!_KPCR`` and ``nt!_KPRCB``; a kernel without them is read with the
console's built-in layout of its build, said in a warning line. The IRQL is
KPRCB.DebuggerSavedIRQL where the kernel has it (Windows x64 saves CR8 there when it
enters the debugger) and KPCR.Irql otherwise. The IDT is where the IDTR the kernel
saved in the PRCB's special registers points (KPCR.IdtBase when none was saved); its
16-byte gates are decoded as the Intel SDM (vol. 3A, 6.14.1) defines them, and an
interrupt-stack (IST) gate shows its stack from the TSS (IST1 at offset 0x24).
Without -a, !idt leaves out gates that are not present, those that go to an
``*UnexpectedInterrupt*`` routine and those that go to the one handler more than half
the vectors share (the same routine when the kernel has no symbols), and says how many
it left out.

Only the current processor can be shown (``~Ns`` makes another one current); another
processor number is refused in one line that says so.
"""

from __future__ import annotations

import struct

from kdcon.api import ExtensionFailed, Target, bang, require

from ._ntobjects import (KernelObject, irql_name, layout_note, processor_irql, read_pcr,
                         read_prcb, special_register)

require("1.0")

_IDT_ENTRY_SIZE = 16
_IDT_VECTORS = 256
_GATE_PRESENT = 0x8000          # attribute word: P is bit 15, IST bits 0-2
_TSS_IST1 = 0x24                # x64 TSS: IST1..IST7, 8 bytes each


def _processor(target: Target, args: str, name: str) -> tuple[int, KernelObject]:
    """The processor number argument, and that processor's KPRCB: only the current one
    is readable."""
    prcb = read_prcb(target)
    current = prcb.get("Number") or 0
    text = args.strip()
    if text:
        try:
            wanted = target.evaluate(text)
        except Exception as exc:  # noqa: BLE001 - the evaluator's message is the line to give
            raise ExtensionFailed(f"!{name}: bad processor {text!r}: {exc}") from None
        if wanted != current:
            raise ExtensionFailed(f"!{name}: only the current processor ({current}) can be "
                                  f"shown: ~{wanted}s makes processor {wanted} current")
    return current, prcb


def _warn(target: Target, *objects: KernelObject) -> None:
    note = layout_note(*objects)
    if note:
        target.warn(note)


@bang("irql", usage="!irql [Processor]")
def irql(target: Target, args: str) -> None:
    """Show the IRQL the processor was at when the target stopped."""
    number, block = _processor(target, args, "irql")
    level, source = processor_irql(target, block)
    target.row(processor=number, irql=level, name=irql_name(level), source=source)
    target.out(f"Debugger saved IRQL for processor 0x{number:x} -- {level:x} "
               f"({irql_name(level)})")


def _label_lines(pairs: list[tuple[str, int | None]]) -> list[str]:
    return [f"    {label:>18}: {value:016x}" for label, value in pairs if value is not None]


@bang("pcr", usage="!pcr [Processor]")
def pcr(target: Target, args: str) -> None:
    """Show the processor control region (KPCR): its self pointer, PRCB, IRQL, IDT, GDT, TSS."""
    number, prcb = _processor(target, args, "pcr")
    kpcr = read_pcr(target)
    _warn(target, kpcr, prcb)
    fields = {"Self": kpcr.get("Self"), "Prcb": kpcr.get("CurrentPrcb"),
              "Irql": kpcr.get("Irql"), "IDT": kpcr.get("IdtBase"),
              "GDT": kpcr.get("GdtBase"), "TSS": kpcr.get("TssBase"),
              "KdVersionBlock": kpcr.get("KdVersionBlock"),
              "CurrentThread": prcb.get("CurrentThread"), "NextThread": prcb.get("NextThread"),
              "IdleThread": prcb.get("IdleThread")}
    target.row(processor=number, address=kpcr.address,
               **{k: v for k, v in fields.items() if v is not None})
    lines = [f"KPCR for Processor {number} at {kpcr.address:x}:",
             f"    Major {kpcr.get('MajorVersion') or 0} Minor {kpcr.get('MinorVersion') or 0}"]
    lines += _label_lines([(k, fields[k]) for k in
                           ("Self", "Prcb", "Irql", "IDT", "GDT", "TSS", "KdVersionBlock")])
    lines.append("")
    lines += _label_lines([(k, fields[k]) for k in ("CurrentThread", "NextThread", "IdleThread")])
    target.write("\n".join(lines) + "\n")


@bang("prcb", usage="!prcb [Processor]")
def prcb(target: Target, args: str) -> None:
    """Show the processor control block (KPRCB): IRQL, threads, number, counts and CPU."""
    number, block = _processor(target, args, "prcb")
    _warn(target, block)
    level, _ = processor_irql(target, block)
    current, following, idle = (block.get("CurrentThread") or 0, block.get("NextThread") or 0,
                                block.get("IdleThread") or 0)
    lines = [f"PRCB for Processor {number} at {block.address:x}:",
             f"Current IRQL -- {level}",
             f"Threads--  Current {current:016x} Next {following:016x} Idle {idle:016x}"]
    member = block.get("GroupSetMember")
    if member is None:
        member = block.get("SetMember")
    lines.append(f"Processor Index {number} Number ({block.get('Group') or 0}, {number})"
                 + (f" GroupSetMember {member:x}" if member is not None else ""))
    counts = {name: block.get(name) for name in
              ("InterruptCount", "DpcTime", "InterruptTime", "KernelTime", "UserTime")}
    if counts["InterruptCount"] is not None:
        lines.append(f"Interrupt Count -- {counts['InterruptCount']:08x}")
    if None not in counts.values():
        lines += [f"Times -- Dpc    {counts['DpcTime']:08x} Interrupt {counts['InterruptTime']:08x} ",
                  f"         Kernel {counts['KernelTime']:08x} User      {counts['UserTime']:08x} "]
    vendor = block.text("VendorString")
    mhz, cpu = block.get("MHz"), block.get("CpuType")
    if vendor or mhz or cpu:
        lines.append(f"CPU Type {cpu or 0} MHz {mhz or 0} Vendor {vendor}")
    target.row(processor=number, address=block.address, irql=level, current_thread=current,
               next_thread=following, idle_thread=idle,
               **{k: v for k, v in counts.items() if v is not None})
    target.write("\n".join(lines) + "\n")


# -- the IDT --------------------------------------------------------------------------------


def _idt_base(target: Target) -> tuple[int, int]:
    """(base, number of vectors) of the IDT: the saved IDTR, else KPCR.IdtBase."""
    prcb_block = read_prcb(target)
    base = special_register(prcb_block, "IdtrBase")
    limit = special_register(prcb_block, "IdtrLimit")
    if base:
        count = (limit + 1) // _IDT_ENTRY_SIZE if limit else _IDT_VECTORS
        return base, min(count, _IDT_VECTORS)
    kpcr = read_pcr(target)
    base = kpcr.get("IdtBase")
    if not base:
        raise ExtensionFailed("Neither the saved IDTR nor KPCR.IdtBase gives the IDT")
    return base, _IDT_VECTORS


def _gate(raw: bytes) -> tuple[int, int, bool]:
    """(handler, IST index, present) of one x64 interrupt gate (Intel SDM 6.14.1)."""
    low, _selector, attributes, middle, high, _ = struct.unpack("<HHHHII", raw)
    return low | middle << 16 | high << 32, attributes & 0x7, bool(attributes & _GATE_PRESENT)


def _default_handler(gates: list[tuple[int, int, bool]]) -> int | None:
    """The handler most vectors share, when it serves over half of them: the kernel's
    routine for vectors nobody claimed (named or not in the symbols)."""
    counts: dict[int, int] = {}
    for handler, _, present in gates:
        if present:
            counts[handler] = counts.get(handler, 0) + 1
    if not counts:
        return None
    handler, count = max(counts.items(), key=lambda item: item[1])
    return handler if count * 2 > len(gates) else None


def _ist_stack(target: Target, index: int) -> int | None:
    tss = read_pcr(target).get("TssBase")
    if not tss:
        return None
    data = target.read(tss + _TSS_IST1 + 8 * (index - 1), 8)
    return struct.unpack("<Q", data)[0] if len(data) == 8 else None


@bang("idt", usage="!idt [-a] [Vector]")
def idt(target: Target, args: str) -> None:
    """Show the interrupt descriptor table: each vector's handler, symbolised."""
    words = args.split()
    show_all = bool(words) and words[0].lower() in ("-a", "/a")
    if show_all:
        words = words[1:]
    if len(words) > 1:
        raise ExtensionFailed("Usage: !idt [-a] [Vector]")
    only = None
    if words:
        try:
            only = int(words[0], 16)
        except ValueError:
            raise ExtensionFailed(f"!idt: bad vector {words[0]!r} (hex, 0 to ff)") from None
        if not 0 <= only < _IDT_VECTORS:
            raise ExtensionFailed(f"!idt: bad vector {words[0]!r} (hex, 0 to ff)")
    if target.pointer_size != 8:
        raise ExtensionFailed("!idt decodes x64 interrupt gates only (this target is 32-bit)")
    base, count = _idt_base(target)
    table = target.read(base, count * _IDT_ENTRY_SIZE)
    if len(table) < _IDT_ENTRY_SIZE:
        raise ExtensionFailed(f"Cannot read the IDT at {target.format_address(base)}")
    gates = [_gate(table[at: at + _IDT_ENTRY_SIZE])
             for at in range(0, len(table) - _IDT_ENTRY_SIZE + 1, _IDT_ENTRY_SIZE)]
    default = _default_handler(gates)
    lines = ["", f"Dumping IDT: {base:x}", ""]
    left_out: dict[str, int] = {}
    for vector, (handler, ist, present) in enumerate(gates):
        if only is not None and vector != only:
            continue
        name = target.name_for(handler) if present else None
        if not show_all and only is None and (
                not present or handler == default or (name and "UnexpectedInterrupt" in name)):
            key = name or "not present"
            left_out[key] = left_out.get(key, 0) + 1
            continue
        target.row(vector=vector, handler=handler if present else None, symbol=name,
                   ist=ist, present=present)
        if not present:
            lines.append(f"{vector:02x}:\t<not present>")
            continue
        line = f"{vector:02x}:\t{handler:016x} {name or ''}".rstrip()
        if ist:
            stack = _ist_stack(target, ist)
            if stack is not None:
                line += f"\tStack = 0x{stack:016X}"
        lines.append(line)
    if left_out:
        lines.append("")
        lines += [f"({n} vector{'s' if n != 1 else ''} "
                  f"{'not present' if what == 'not present' else 'go to ' + what}: "
                  f"!idt -a lists them)" for what, n in sorted(left_out.items())]
    target.write("\n".join(lines) + "\n")
