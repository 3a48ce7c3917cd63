"""Boot-time assembly of the kernel: which images, where they go, the loader block.

``KernelImages`` parses ntoskrnl.exe, hal.dll, kdcom.dll and the drivers once and
checks every import up front.  ``boot_kernel`` maps them into a fresh machine
(``layout`` gives the addresses; the seed slides the image area in 2 MB steps),
builds the LDR entries and PsLoadedModuleList, maps and fills the PFN database
(``pfn.py``), writes the KSIM_LOADER_BLOCK of ``ki.h`` and leaves the CPU at
KiSystemStartup(LoaderBlock).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

from unicorn import UC_PROT_ALL, Uc
from unicorn import x86_const as X

from . import layout
from .errors import ImageLoadError, SimTargetError
from .imagecheck import check_driver
from .loader import (LDRP_KSIM_DRIVER, LDRP_KSIM_SYSTEM_IMAGE, LdrWriter, Module, PeImage, check_imports,
                     link_entries, map_image, parse_image)
from .memory import GuestMemory
from .pfn import build_pfn_database
from .unresolved import check_unresolved_calls

__all__ = ["IMAGES_DIR", "SYSTEM_IMAGES", "KernelImages", "BootedKernel", "boot_kernel", "trackdemo_image"]

log = logging.getLogger(__name__)

IMAGES_DIR = Path(__file__).resolve().parent / "images"
SYSTEM_IMAGES = ("ntoskrnl.exe", "hal.dll", "kdcom.dll")
LOADER_BLOCK_FORMAT = "<IIQQQQQQQQII"


def trackdemo_image(flavour: str = "checked") -> Path:
    """The committed trackdemo.sys of a flavour ("checked" or "free"); its PDB is beside it."""
    if flavour not in ("checked", "free"):
        raise ValueError(f"trackdemo comes in checked and free flavours, not {flavour!r}")
    return IMAGES_DIR / flavour / "trackdemo.sys"


class KernelImages:
    """The parsed system images and drivers of one machine."""

    def __init__(self, images_dir: str | Path | None, drivers: list[Path]) -> None:
        directory = Path(images_dir) if images_dir else IMAGES_DIR
        self.system = [parse_image(directory / name) for name in SYSTEM_IMAGES]
        if len(drivers) > layout.MAX_DRIVERS:
            raise ImageLoadError(f"at most {layout.MAX_DRIVERS} drivers can be loaded")
        self.drivers = [parse_image(path) for path in drivers]
        for image in self.drivers:
            check_driver(image.name, image.pe)
            check_unresolved_calls(image)
        providers = {image.name.lower(): image for image in self.system}
        for image in self.system + self.drivers:
            check_imports(image, providers)


@dataclass
class BootedKernel:
    """What the machine needs to know about the kernel it booted."""

    memory: GuestMemory
    modules: list[Module] = field(default_factory=list)

    def export(self, name: str) -> int:
        try:
            return self.modules[0].exports[name]
        except KeyError:
            raise SimTargetError(f"ntoskrnl.exe exports no {name}") from None

    @property
    def break_with_status(self) -> int:
        return self.export("RtlpBreakWithStatusInstruction")

    @property
    def ki_bugcheck_data(self) -> int:
        return self.export("KiBugCheckData")

    def unload_module(self, base: int) -> None:
        """The kernel unlinked a driver and asks for its image to be freed."""
        for module in self.modules:
            if module.base == base and not module.system:
                self.modules.remove(module)
                self.memory.unmap(base)
                return
        log.warning("unmap request for %#x, which is no loaded driver", base)


def _seed_slide(seed: int) -> int:
    return ((seed * 0x9E3779B1) & 0xFFFFFFFF) % 32 * layout.SEED_SLIDE


def boot_kernel(uc: Uc, memory: GuestMemory, images: KernelImages, seed: int) -> BootedKernel:
    memory.map(layout.LOADER_BASE, layout.LOADER_SIZE, layout.PHYS_LOADER, "loader block")
    memory.map(layout.STACK_TOP - layout.STACK_SIZE, layout.STACK_SIZE, layout.PHYS_STACK, "system stack")
    # Windows 7's nonpaged pool is executable (NonPagedPoolNx came with Windows 8); the
    # loader block and the stack are data.
    memory.map(layout.POOL_BASE, layout.POOL_SIZE, layout.PHYS_POOL, "nonpaged pool", prot=UC_PROT_ALL)
    memory.map(layout.SHARED_USER_DATA, layout.PAGE_SIZE, layout.PHYS_SHARED_USER_DATA,
               "KUSER_SHARED_DATA")

    kernel = BootedKernel(memory=memory)
    base = layout.IMAGE_BASE + _seed_slide(seed)
    images_in_order: list[tuple[PeImage, bool]] = [(i, True) for i in images.system]
    images_in_order += [(i, False) for i in images.drivers]
    for image, system in images_in_order:
        folder = "\\SystemRoot\\system32\\" if system else "\\SystemRoot\\system32\\drivers\\"
        kernel.modules.append(Module(image=image, base=base, nt_path=folder + image.name, system=system))
        base += (image.size_of_image + layout.IMAGE_ALIGN + 0xFFFF) & ~0xFFFF   # one 64 KB gap
    providers = {m.name.lower(): m for m in kernel.modules if m.system}
    physical = layout.PHYS_IMAGES
    for module in kernel.modules:
        map_image(memory, module, physical, providers)
        physical += (module.size + 0xFFF) & ~0xFFF

    writer = LdrWriter(memory, layout.LOADER_BASE + 0x400, layout.LOADER_BASE + layout.LOADER_SIZE)
    entries = [writer.write_entry(m, LDRP_KSIM_SYSTEM_IMAGE if m.system else LDRP_KSIM_DRIVER)
               for m in kernel.modules]
    link_entries(memory, kernel.export("PsLoadedModuleList"), entries)

    pfn_database, runs = build_pfn_database(memory)

    drivers = [m.ldr_entry for m in kernel.modules if not m.system]
    block = struct.pack(LOADER_BLOCK_FORMAT, layout.LOADER_MAGIC, 1, seed & 0xFFFFFFFFFFFFFFFF,
                        layout.POOL_BASE, layout.POOL_SIZE, layout.STACK_TOP,
                        layout.STACK_TOP - layout.STACK_SIZE, layout.SYSTEM_TIME_AT_BOOT,
                        layout.CR3_VALUE, layout.PHYS_POOL, len(drivers), 0)
    block += struct.pack(f"<{layout.MAX_DRIVERS}Q", *(drivers + [0] * (layout.MAX_DRIVERS - len(drivers))))
    block += struct.pack("<QII", pfn_database, len(runs), 0)
    block += b"".join(struct.pack("<QQ", base, count) for base, count in runs)
    memory.write_virtual(layout.LOADER_BASE, block)

    # KiSystemStartup(LoaderBlock): RSP is 16n+8 at entry, a zero return address.
    rsp = layout.STACK_TOP - 0x38
    memory.write_virtual(rsp, bytes(8))
    uc.reg_write(X.UC_X86_REG_RSP, rsp)
    uc.reg_write(X.UC_X86_REG_RCX, layout.LOADER_BASE)
    uc.reg_write(X.UC_X86_REG_RIP, kernel.modules[0].base + kernel.modules[0].image.entry_rva)
    uc.reg_write(X.UC_X86_REG_EFLAGS, 0x202)
    return kernel
