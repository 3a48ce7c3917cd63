"""Fixed facts shared by the simulated kernel and the machine: memory layout,
simulator ports, interrupt vectors and KiSimRequest values.

Everything here mirrors ``src/include/ki.h``; change both together.

Virtual layout (x64 kernel space)::

    0xfffff800'00010000  loader block, LDR entries, module names (64 KB)
    0xfffff800'01000000  ntoskrnl.exe, then hal.dll, kdcom.dll and drivers, each on a
                         64 KB boundary (the whole group slides by the seed, 2 MB steps)
    0xfffff880'000f0000  system thread stack (64 KB, top at 0xfffff880'00100000)
    0xfffffa00'00000000  PFN database: MMPFN[pfn] at + pfn * 0x30, backed only where
                         it describes RAM (pfn.py)
    0xfffffa80'00000000  nonpaged pool (16 MB)

Physical layout: each mapped region is one linear physical run, in the order above
(loader block at 0x10000, images from 0x1000000 in load order, stack at 0x3000000,
the PFN database's pages from 0x4000000, pool at 0x10000000), and the x64 page tables
take 1 MB from CR3 (0x187000: the PML4, then the tables below it).  ``read_physical(pa)``
reads the same RAM the virtual page that run maps reads (paging.py, physical.py).
"""

from __future__ import annotations

__all__ = [
    "PAGE_SIZE", "LOADER_BASE", "LOADER_SIZE", "IMAGE_BASE", "IMAGE_ALIGN", "SEED_SLIDE",
    "STACK_TOP", "STACK_SIZE", "POOL_BASE", "POOL_SIZE", "PFN_DATABASE", "PHYS_LOADER",
    "PHYS_IMAGES", "PHYS_STACK", "PHYS_POOL", "PHYS_PFN", "CR3_VALUE", "COM_PORT",
    "SHARED_USER_DATA", "PHYS_SHARED_USER_DATA",
    "PORT_TIME_LOW", "PORT_TIME_HIGH",
    "PORT_CONTROL", "CONTROL_UNMAP_IMAGE", "CONTROL_HALT", "CONTROL_BOOTED", "CONTROL_REBOOT", "CONTROL_FILE",
    "VECTOR_DIVIDE", "VECTOR_INVALID_OP", "VECTOR_GP", "VECTOR_PAGE_FAULT", "VECTOR_CLOCK",
    "KiSimRequest", "IOCTL", "BAD_ADDRESS", "LOADER_MAGIC", "MAX_DRIVERS", "MAX_MEMORY_RUNS",
    "CLOCK_LEVEL",
    "DISPATCH_LEVEL", "KPCR_IRQL", "KPCR_IDT_BASE", "KPCR_PRCB", "KPRCB_CURRENT_THREAD",
    "KPRCB_SPECIAL_REGISTERS", "PROCESSOR_STATE_SIZE",
    "SYSTEM_TIME_AT_BOOT",
]

import enum

PAGE_SIZE = 0x1000
LOADER_BASE = 0xFFFFF800_00010000
LOADER_SIZE = 0x10000
IMAGE_BASE = 0xFFFFF800_01000000
IMAGE_ALIGN = 0x10000
SEED_SLIDE = 0x200000
STACK_TOP = 0xFFFFF880_00100000
STACK_SIZE = 0x10000
POOL_BASE = 0xFFFFFA80_00000000
POOL_SIZE = 0x1000000
PFN_DATABASE = 0xFFFFFA00_00000000

PHYS_LOADER = 0x10000
PHYS_IMAGES = 0x1000000
PHYS_STACK = 0x3000000
PHYS_POOL = 0x10000000
PHYS_PFN = 0x4000000
CR3_VALUE = 0x187000
# KUSER_SHARED_DATA, where every Windows x64 kernel maps it, and the page behind it.
SHARED_USER_DATA = 0xFFFFF780_00000000
PHYS_SHARED_USER_DATA = 0x20000

# 2025-12-29T16:00:00Z as a FILETIME: the guest's clock starts there at boot.
SYSTEM_TIME_AT_BOOT = 134114976000000000

COM_PORT = 0x3F8
PORT_TIME_LOW = 0x5D0
PORT_TIME_HIGH = 0x5D4
PORT_CONTROL = 0x5D8
CONTROL_UNMAP_IMAGE = 1
CONTROL_HALT = 2
CONTROL_BOOTED = 3
CONTROL_REBOOT = 4
CONTROL_FILE = 5

VECTOR_DIVIDE = 0x00
VECTOR_INVALID_OP = 0x06
VECTOR_GP = 0x0D
VECTOR_PAGE_FAULT = 0x0E
VECTOR_CLOCK = 0xD1

LOADER_MAGIC = 0x4B53494C
MAX_DRIVERS = 32
MAX_MEMORY_RUNS = 16
DISPATCH_LEVEL = 2
CLOCK_LEVEL = 13

# KPCR / KPRCB offsets (ki.h, 7601 x64)
KPCR_IDT_BASE = 0x38
KPCR_IRQL = 0x50
KPCR_PRCB = 0x180
KPRCB_CURRENT_THREAD = 0x08
KPRCB_SPECIAL_REGISTERS = 0x40   # ProcessorState: KSPECIAL_REGISTERS, then CONTEXT at 0x120
PROCESSOR_STATE_SIZE = 0xE0 + 0x4D0

BAD_ADDRESS = 0xFFFFF80B_ADC0DE00


class KiSimRequest(enum.IntEnum):
    """Values of the kernel's exported ``ULONG volatile KiSimRequest``.

    The system loop services one per tick and writes 0 back before acting.
    """

    NONE = 0
    LEAK = 1          # IOCTL_TRACKDEMO_LEAK 0x222004 to every device
    OVERWRITE = 2     # IOCTL_TRACKDEMO_OVERWRITE 0x222008
    STATS = 3         # IOCTL_TRACKDEMO_STATS 0x22200C
    DUMP = 4          # IOCTL_TRACKDEMO_DUMP 0x222010
    VALIDATE = 5      # IOCTL_TRACKDEMO_VALIDATE 0x222014
    UNLOAD = 6        # DriverUnload, unlink, UnloadSymbols, free the image: every driver
    BUGCHECK = 7      # KeBugCheckEx(MANUALLY_INITIATED_CRASH 0xE2, 0, 0, 0, 0)
    BAD_ACCESS = 8    # driver code reads BAD_ADDRESS at DISPATCH_LEVEL -> bug check 0xD1
    BIG_POOL = 9      # allocate 0x1800 bytes of pool tagged 'Ksim' (big pages); again: free it


class IOCTL(enum.IntEnum):
    """Device controls the system loop sends (METHOD_BUFFERED, device type 0x22)."""

    TICK = 0x222000
    LEAK = 0x222004
    OVERWRITE = 0x222008
    STATS = 0x22200C
    DUMP = 0x222010
    VALIDATE = 0x222014
