"""Built-in kernel layouts for Windows targets whose ``nt`` PDB cannot be had.

What it does: holds, for a few named Windows versions, the layouts of the kernel
structures the built-in extensions read (loader entries, lists and strings, processes,
threads, the processor control region and block, pool headers, PFN entries), each
table transcribed from a cited public source. ``table_for`` picks the table by the
build number GetVersion reports (``MinorVersion``) and the pointer size, puts in the
offsets and sizes the kernel itself reports in ``KDDEBUGGER_DATA64`` where it reports
them, and returns a ``LayoutTable`` whose types read like a PDB's. ``missing_message``
is the one line for a type nobody can give.
What it does not do: decide when a table is used (the session does: for a kernel type
no PDB gives; ``nt``'s PDB types always win), or cover 32-bit kernels.

Supported (x64): Windows 7 SP1 (7601), Windows 10 1809 (17763), Windows 10 2004 to
22H2 (19041 to 19045), Windows 11 22H2 and 23H2 (22621, 22631).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from .table import LayoutError, LayoutTable, StructSpec, WindowsLayout, moved, parse

__all__ = ["WindowsLayout", "LayoutTable", "LayoutError", "LAYOUTS", "parse", "layout_for",
           "table_for", "debugger_data_overrides", "missing_message", "supported_builds"]

log = logging.getLogger(__name__)


def _registered() -> list[WindowsLayout]:
    from . import win7_sp1_x64, win10_1809_x64, win10_19041_x64, win11_22621_x64

    return [win7_sp1_x64.LAYOUT, win10_1809_x64.LAYOUT, win10_19041_x64.LAYOUT,
            win11_22621_x64.LAYOUT]


LAYOUTS: list[WindowsLayout] = _registered()

# KDDEBUGGER_DATA64's offset fields (wdbgexts.h, kd-protocol.md §7.2) and the member
# each one places: (structure, path from its start). EPROCESS's DirectoryTableBase is
# its Pcb's (a KPROCESS at offset 0 of the EPROCESS in every version).
_KDBG_OFFSETS: dict[str, tuple[str, str]] = {
    "OffsetKThreadNextProcessor": ("_KTHREAD", "NextProcessor"),
    "OffsetKThreadTeb": ("_KTHREAD", "Teb"),
    "OffsetKThreadKernelStack": ("_KTHREAD", "KernelStack"),
    "OffsetKThreadInitialStack": ("_KTHREAD", "InitialStack"),
    "OffsetKThreadApcProcess": ("_KTHREAD", "ApcState.Process"),
    "OffsetKThreadState": ("_KTHREAD", "State"),
    "OffsetKThreadStackLimit": ("_KTHREAD", "StackLimit"),
    "OffsetKThreadStackBase": ("_KTHREAD", "StackBase"),
    "OffsetKThreadQueueListEntry": ("_KTHREAD", "QueueListEntry"),
    "OffsetKThreadWaitReason": ("_KTHREAD", "WaitReason"),
    "OffsetEprocessPeb": ("_EPROCESS", "Peb"),
    "OffsetEprocessParentCID": ("_EPROCESS", "InheritedFromUniqueProcessId"),
    "OffsetEprocessDirectoryTableBase": ("_KPROCESS", "DirectoryTableBase"),
    "OffsetEThreadIrpList": ("_ETHREAD", "IrpList"),
    "OffsetPrcbCurrentThread": ("_KPRCB", "CurrentThread"),
    "OffsetPrcbIdleThread": ("_KPRCB", "IdleThread"),
    "OffsetPrcbMhz": ("_KPRCB", "MHz"),
    "OffsetPrcbCpuType": ("_KPRCB", "CpuType"),
    "OffsetPrcbVendorString": ("_KPRCB", "VendorString"),
    "OffsetPrcbNumber": ("_KPRCB", "Number"),
    "OffsetPcrSelfPcr": ("_KPCR", "Self"),
    "OffsetPcrCurrentPrcb": ("_KPCR", "CurrentPrcb"),
    "OffsetPcrContainedPrcb": ("_KPCR", "Prcb"),
}
_KDBG_SIZES = {"SizeEProcess": "_EPROCESS", "SizeEThread": "_ETHREAD",
               "SizePrcb": "_KPRCB", "SizePcr": "_KPCR"}


def supported_builds() -> list[int]:
    return sorted(build for layout in LAYOUTS for build in layout.builds)


def layout_for(build: int, pointer_size: int) -> WindowsLayout | None:
    """The table for this kernel build, None when none is built in."""
    return next((layout for layout in LAYOUTS
                 if build in layout.builds and layout.pointer_size == pointer_size), None)


def debugger_data_overrides(data: Any) -> tuple[tuple[tuple[str, str, int], ...],
                                                 tuple[tuple[str, int], ...]]:
    """The (structure, path, offset) and (structure, size) facts a parsed
    KDDEBUGGER_DATA64 reports. A field the block does not cover (None) or leaves 0
    says nothing: none of these offsets or sizes is 0 in any kernel."""
    if data is None:
        return (), ()
    offsets = tuple((struct_name, path, int(data[name]))
                    for name, (struct_name, path) in _KDBG_OFFSETS.items()
                    if _reported(data, name))
    sizes = tuple((struct_name, int(data[name])) for name, struct_name in _KDBG_SIZES.items()
                  if _reported(data, name))
    return offsets, sizes


def _reported(data: Any, name: str) -> bool:
    try:
        value = data[name]
    except (KeyError, AttributeError):
        return False
    return bool(value)


def table_for(build: int, pointer_size: int, debugger_data: Any = None) -> LayoutTable | None:
    """The built-in types for this kernel, with what its debugger data block reports
    put in; None when no table is built in for the build."""
    layout = layout_for(build, pointer_size)
    if layout is None:
        return None
    offsets, sizes = debugger_data_overrides(debugger_data)
    return _table(layout, offsets, sizes)


@functools.lru_cache(maxsize=8)
def _table(layout: WindowsLayout, offsets: tuple[tuple[str, str, int], ...],
           sizes: tuple[tuple[str, int], ...]) -> LayoutTable:
    specs: dict[str, StructSpec] = moved(
        layout.specs(), {(s, p): v for s, p, v in offsets}, dict(sizes))
    return LayoutTable(specs, name=layout.name)


def missing_message(type_name: str, build: int | None, pointer_size: int) -> str:
    """The one line for a kernel type that neither a PDB nor a built-in table gives."""
    if build is None:
        return f"Type {type_name} not found: are the module's symbols loaded?"
    bits = "x64" if pointer_size == 8 else "x86"
    layout = layout_for(build, pointer_size)
    if layout is not None:
        return (f"Type {type_name} not found: the kernel has no PDB and the built-in "
                f"{layout.name} layout does not describe it; set a symbol path to "
                f"the kernel's PDB (.sympath, then .reload)")
    return (f"Type {type_name} not found: the kernel has no PDB and kdcon has no built-in "
            f"layout for Windows build {build} ({bits}); set a symbol path to the "
            f"kernel's PDB (.sympath, then .reload)")
