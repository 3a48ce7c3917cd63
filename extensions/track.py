"""Track: a driver's resource-tracking records, read from target memory through its PDB.

    !trackstats [module]              statistics per class (Track_Stats's report)
    !trackdump [module]               every live record (Track_DumpAllocated's report)
    !trackvalidate [module]           guard bytes of every live memory block
    !trackleaks [module]              the leak report for what is live now
    !trackleaks -atunload module      run to the module's Track_Close, judge there

Track (track.md) keeps its records in the LIST_ENTRY list ``TrackRecordList`` of
``TRACK_RECORD``s and its statistics in ``TrackMemoryStats``, ``TrackResourceStats`` and
``TrackHandleStats``. These commands find them by symbol and read them with the
module's own PDB types, so they work while the target is halted anywhere: above
PASSIVE_LEVEL, in the middle of a request, without the driver's help. The reports are
the driver's, byte for byte; a module argument limits them to one driver (default:
every loaded module that has Track).

The leak gate: ``!trackleaks`` fails when any record is live, so ``kdcon --batch``
exits 1. The check that matters is at unload, after DriverUnload's clean-up and before
Track frees its records: ``!trackleaks -atunload mydrv`` sets a one-shot breakpoint on
``mydrv!Track_Close``, resumes, and gives the verdict when it hits (a breakpoint that
waits for the driver to load if it is not loaded yet). ``!trackvalidate`` fails when a
guard byte changed and names each damaged block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdcon.api import ExtensionFailed, Target, bang, printable, require

require("1.0")

BANNER = "*" * 40
ERROR_LINE = "Track Error ****************"
# TRACK_RECORD.Flags (track.h: #defines, which a PDB does not carry).
TRACK_RECORD_HAS_SIZE = 0x1
TRACK_RECORD_GUARDED = 0x2
_FUNCTION_PREFIX = "TrackFn"


@dataclass
class Record:
    allocator: str
    source: str
    line: int
    size: int
    value: int
    flags: int

    def report_lines(self, value: str | None = None) -> list[str]:
        """The lines TrackPrintRecord prints (``Value`` only in the dump)."""
        lines = [f"AllocatorFn : {self.allocator}", f"   Source   : {self.source}",
                 f"   Line     : {self.line}"]
        if self.flags & TRACK_RECORD_HAS_SIZE:
            lines.append(f"   Size     : {self.size}")
        if value is not None:
            lines.append(f"   Value    : {value}")
        return lines

    def row(self, module: str) -> dict[str, Any]:
        return {"module": module, "allocator": self.allocator, "source": self.source,
                "line": self.line, "size": self.size if self.flags & TRACK_RECORD_HAS_SIZE
                else None, "value": self.value}


class TrackedModule:
    """One driver's Track globals, found through its symbols."""

    def __init__(self, target: Target, module: str, head: int) -> None:
        self.target = target
        self.module = module
        self.head = head

    def symbol(self, name: str) -> int:
        address = self.target.symbol(f"{self.module}!{name}")
        if address is None:
            raise ExtensionFailed(f"{self.module}!{name} is not a known symbol: is this "
                                  f"Track's layout?")
        return address

    @property
    def initialized(self) -> bool:
        return bool(self.target.u8(self.symbol("TrackInitialized")))

    def stats(self, name: str, type_name: str) -> Any:
        return self.target.typed(self.symbol(name), f"{self.module}!{type_name}")

    def records(self) -> list[Record]:
        found = []
        for view in self.target.walk_list(self.head, f"{self.module}!_TRACK_RECORD",
                                          "ListEntry"):
            allocator = view.Allocator
            name = allocator.name or "?"
            found.append(Record(
                allocator=name[len(_FUNCTION_PREFIX):] if name.startswith(_FUNCTION_PREFIX)
                else name,
                source=printable(view.Source.string(), newlines=False),
                line=view.Line, size=view.Size, value=view.Value, flags=view.Flags))
        return found


def _module_names(target: Target) -> list[str]:
    return [module.name for module in target.modules()]


def tracked_modules(target: Target, wanted: str) -> list[TrackedModule]:
    """The modules that use Track (``wanted`` only, when given); one line if none."""
    names = _module_names(target)
    if wanted:
        stem = wanted.rsplit(".", 1)[0] if wanted.lower().endswith((".sys", ".dll", ".exe")) \
            else wanted
        match = next((n for n in names if n.lower() == stem.lower()), None)
        if match is None:
            raise ExtensionFailed(f"No module {wanted} is loaded (lm lists them)")
        names = [match]
    found = []
    for name in names:
        head = target.symbol(f"{name}!TrackRecordList")
        if head is not None:
            found.append(TrackedModule(target, name, head))
    if not found:
        if wanted:
            raise ExtensionFailed(f"{names[0]} does not use Track "
                                  f"(no {names[0]}!TrackRecordList symbol)")
        raise ExtensionFailed("No loaded module uses Track (none has a TrackRecordList symbol)")
    return found


def _active(target: Target, track: TrackedModule, several: bool) -> bool:
    if several:
        target.out(f"{track.module}:")
    if track.initialized:
        return True
    target.out(f"Track is not active in {track.module} (TrackInitialized is FALSE): "
               f"no live records")
    return False


@bang("trackstats", usage="!trackstats [module]")
def trackstats(target: Target, args: str) -> None:
    """Show Track's statistics: bytes allocated, peak, and calls and live objects per class."""
    modules = tracked_modules(target, args.strip())
    for track in modules:
        if not _active(target, track, len(modules) > 1):
            continue
        memory = track.stats("TrackMemoryStats", "_TRACK_MEMORY_STATS")
        classes = [("Memory", memory),
                   ("Resource", track.stats("TrackResourceStats", "_TRACK_STATS")),
                   ("Handle", track.stats("TrackHandleStats", "_TRACK_STATS"))]
        lines = [BANNER, "Track Statistics:", BANNER,
                 f"Bytes Allocated : {memory.BytesAllocated}",
                 f"Peak Bytes      : {memory.PeakBytes}"]
        for name, stats in classes:
            lines.append(f"{name:<16}: {stats.TotalCalls} calls, {stats.CurrentCount} live")
            target.row(module=track.module, kind=name.lower(), calls=stats.TotalCalls,
                       live=stats.CurrentCount,
                       **({"bytes": memory.BytesAllocated, "peak": memory.PeakBytes}
                          if stats is memory else {}))
        target.write("\n".join(lines) + "\n")


@bang("trackdump", usage="!trackdump [module]")
def trackdump(target: Target, args: str) -> None:
    """List every live Track record: allocator, call site, size and value."""
    modules = tracked_modules(target, args.strip())
    for track in modules:
        if not _active(target, track, len(modules) > 1):
            continue
        records = track.records()
        lines = [BANNER, "Track Live Allocations/Resources:", BANNER]
        for record in records:
            lines += record.report_lines(target.format_address(record.value))
            target.row(**record.row(track.module))
        lines.append(f"Live records: {len(records)}")
        target.write("\n".join(lines) + "\n")


def _guard_damage(target: Target, at: int, size: int, fill: int) -> int | None:
    """How many of the ``size`` guard bytes at ``at`` changed; None if unreadable."""
    data = target.read(at, size)
    if len(data) < size:
        return None
    return sum(1 for byte in data if byte != fill)


@bang("trackvalidate", usage="!trackvalidate [module]")
def trackvalidate(target: Target, args: str) -> None:
    """Check the guard bytes around every live Track memory block; name each damaged one."""
    modules = tracked_modules(target, args.strip())
    damaged_total = 0
    for track in modules:
        if not _active(target, track, len(modules) > 1):
            continue
        guard = target.u32(track.symbol("TrackGuardSize"))
        fill = target.u8(track.symbol("TrackGuardFill"))
        checked, damaged = 0, []
        for record in track.records():
            if not record.flags & TRACK_RECORD_GUARDED:
                continue
            checked += 1
            under = _guard_damage(target, record.value - guard, guard, fill)
            over = _guard_damage(target, record.value + record.size, guard, fill)
            target.row(module=track.module, value=record.value, size=record.size,
                       allocator=record.allocator, source=record.source, line=record.line,
                       underwrite=under, overwrite=over)
            if under == 0 and over == 0:
                continue
            damaged.append((record, under, over))
        for record, under, over in damaged:
            kind = ("Underwrite and Overwrite" if under and over else
                    "Underwrite" if under else "Overwrite")
            target.write("\n".join([
                ERROR_LINE, f"Memory {kind} corruption",
                f"Allocation point: {record.source}, line {record.line}", ERROR_LINE]) + "\n")
        for record, under, over in damaged:
            sides = [_damage_text(count, guard, where)
                     for count, where in ((under, "before"), (over, "after")) if count != 0]
            target.out(f"Corrupt block {target.format_address(record.value)}, {record.size} "
                       f"bytes from {record.allocator}: {' and '.join(sides)}")
        if not damaged:
            target.out(f"Track: {checked} guarded block{'s' if checked != 1 else ''} in "
                       f"{track.module}, no corruption")
        damaged_total += len(damaged)
    if damaged_total:
        raise ExtensionFailed(f"Track found {damaged_total} corrupt block"
                              f"{'s' if damaged_total != 1 else ''}")


def _damage_text(count: int | None, guard: int, where: str) -> str:
    if count is None:
        return f"the guard bytes {where} it are unreadable"
    return f"{count} of the {guard} guard bytes {where} it changed"


@bang("trackleaks", usage="!trackleaks [-atunload] [module]")
def trackleaks(target: Target, args: str) -> None:
    """Report every live Track record as a leak, and fail if there is one (the leak gate)."""
    words = args.split()
    at_unload = bool(words) and words[0].lower() in ("-atunload", "/atunload")
    if at_unload:
        words = words[1:]
    if len(words) > 1 or (at_unload and not words):
        raise ExtensionFailed("Usage: !trackleaks [module] | !trackleaks -atunload module")
    wanted = words[0] if words else ""
    if at_unload:
        _run_to_close(target, wanted)
    leaked = 0
    modules = tracked_modules(target, wanted)
    for track in modules:
        if not _active(target, track, len(modules) > 1):
            continue
        records = track.records()
        if records:
            lines = [BANNER, "Track Reports Allocation/Resource Leaks:", BANNER]
            for record in records:
                lines += record.report_lines()
                target.row(**record.row(track.module))
            target.write("\n".join(lines) + "\n")
        else:
            target.out(f"Track: no leaks in {track.module}")
        leaked += len(records)
    if leaked:
        raise ExtensionFailed(f"Track reports {leaked} leak{'s' if leaked != 1 else ''}")


def _run_to_close(target: Target, module: str) -> None:
    """Resume until ``module!Track_Close`` is entered: DriverUnload has cleaned up, and
    Track has not yet let go of its records."""
    stem = module.rsplit(".", 1)[0] if module.lower().endswith(".sys") else module
    where = f"{stem}!Track_Close"
    breakpoint = target.breakpoint(where, one_shot=True)
    target.out(f"Running to {where} for the leak verdict at unload")
    stop = target.go()
    if stop.fields.get("breakpoint") != breakpoint.id:
        breakpoint.remove()
        raise ExtensionFailed(f"The target stopped before {where}: no leak verdict")
