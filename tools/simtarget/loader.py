"""The kernel's image loader, done from outside the CPU the way a boot loader does it.

For each image: parse with pefile, map at a kernel address, apply base relocations,
point every IAT slot at the export it names (resolved against the modules loaded
before it; a missing import is collected, and the image is refused with the full
list), and describe it in a KLDR_DATA_TABLE_ENTRY (x64 layout of ``ki.h``; the
fields debuggers walk sit at kd-protocol.md §7.3's offsets) linked into the kernel's
PsLoadedModuleList.  Headers are mapped exactly as in the file: ImageBase is not
patched, so a header read from memory equals the file on disk.

Does not run code: DriverEntry, the load reports and unloading are the kernel's work.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pefile
from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE

from .errors import ImageLoadError, MissingImportsError
from .imagecheck import check_complete
from .layout import PAGE_SIZE
from .memory import GuestMemory

__all__ = ["PeImage", "Module", "parse_image", "check_imports", "map_image", "LdrWriter", "link_entries",
           "LDR_ENTRY_SIZE", "LDRP_KSIM_SYSTEM_IMAGE", "LDRP_KSIM_DRIVER"]

log = logging.getLogger(__name__)

IMAGE_FILE_MACHINE_AMD64 = 0x8664
LDR_ENTRY_SIZE = 0xA0
LDRP_KSIM_SYSTEM_IMAGE = 0x1
LDRP_KSIM_DRIVER = 0x2
LDRP_IMAGE_DLL = 0x4
LDRP_ENTRY_PROCESSED = 0x4000
IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_MEM_WRITE = 0x80000000
_DIRECTORIES = [pefile.DIRECTORY_ENTRY[n] for n in (
    "IMAGE_DIRECTORY_ENTRY_EXPORT", "IMAGE_DIRECTORY_ENTRY_IMPORT",
    "IMAGE_DIRECTORY_ENTRY_BASERELOC", "IMAGE_DIRECTORY_ENTRY_EXCEPTION")]


@dataclass
class PeImage:
    """A parsed image file, not yet mapped."""

    path: Path
    name: str                  # file name as loaded, e.g. "ntoskrnl.exe"
    data: bytes
    pe: pefile.PE
    size_of_image: int
    entry_rva: int
    checksum: int
    timestamp: int
    exports: dict[str, int]    # name -> RVA
    ordinals: dict[int, int]   # ordinal -> RVA
    imports: list[tuple[str, str | int, int]]   # (dll lower-case, name or ordinal, IAT slot RVA)
    pdata_rva: int
    pdata_size: int


@dataclass
class Module:
    """A mapped image, as the loader keeps it."""

    image: PeImage
    base: int
    nt_path: str               # the path reported to the debugger
    ldr_entry: int = 0
    system: bool = False
    exports: dict[str, int] = field(default_factory=dict)   # name -> address

    @property
    def name(self) -> str:
        return self.image.name

    @property
    def size(self) -> int:
        return self.image.size_of_image


def parse_image(path: str | Path, name: str | None = None) -> PeImage:
    """Parse an x64 PE image; ImageLoadError with one clear line otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        pe = pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError as exc:
        raise ImageLoadError(f"{path.name} is not a PE image: {exc.value}") from None
    if pe.FILE_HEADER.Machine != IMAGE_FILE_MACHINE_AMD64:
        raise ImageLoadError(f"{path.name} is not an x64 image (machine {pe.FILE_HEADER.Machine:#x})")
    check_complete(path.name, data, pe)
    try:
        pe.parse_data_directories(directories=_DIRECTORIES)
    except (pefile.PEFormatError, ValueError, IndexError) as exc:
        raise ImageLoadError(f"{path.name} has a damaged data directory: {exc}") from None
    exports: dict[str, int] = {}
    ordinals: dict[int, int] = {}
    if hasattr(pe, "DIRECTORY_ENTRY_EXPORT"):
        for sym in pe.DIRECTORY_ENTRY_EXPORT.symbols:
            ordinals[sym.ordinal] = sym.address
            if sym.name:
                exports[sym.name.decode("ascii", "replace")] = sym.address
    preferred = pe.OPTIONAL_HEADER.ImageBase
    imports: list[tuple[str, str | int, int]] = []
    for entry in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
        dll = entry.dll.decode("ascii", "replace").lower()
        for imp in entry.imports:
            ref: str | int = imp.name.decode("ascii", "replace") if imp.name else imp.ordinal
            imports.append((dll, ref, imp.address - preferred))
    exception = pe.OPTIONAL_HEADER.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXCEPTION"]]
    return PeImage(path=path, name=name or path.name, data=data, pe=pe,
                   size_of_image=pe.OPTIONAL_HEADER.SizeOfImage,
                   entry_rva=pe.OPTIONAL_HEADER.AddressOfEntryPoint,
                   checksum=pe.OPTIONAL_HEADER.CheckSum, timestamp=pe.FILE_HEADER.TimeDateStamp,
                   exports=exports, ordinals=ordinals, imports=imports,
                   pdata_rva=exception.VirtualAddress, pdata_size=exception.Size)


def check_imports(image: PeImage, providers: dict[str, PeImage]) -> None:
    """Raise MissingImportsError naming every import no provider exports."""
    missing = []
    for dll, ref, _ in image.imports:
        provider = providers.get(dll)
        if provider is None or (ref not in provider.exports if isinstance(ref, str) else ref not in provider.ordinals):
            missing.append(f"{dll}!{ref}" if isinstance(ref, str) else f"{dll}!#{ref}")
    if missing:
        raise MissingImportsError(image.name, missing)


def map_image(memory: GuestMemory, module: Module, physical: int, providers: dict[str, Module]) -> None:
    """Map, relocate and bind ``module`` at its base; ``providers`` maps DLL names to modules."""
    image = module.image
    check_imports(image, {name: m.image for name, m in providers.items()})
    # Relocation is permanent on a pefile object: work on a fresh parse each time.
    pe = pefile.PE(data=image.data, fast_load=True)
    pe.parse_data_directories(directories=_DIRECTORIES)
    mapped = bytearray(pe.get_memory_mapped_image(ImageBase=module.base))
    size = (image.size_of_image + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    if len(mapped) > size:
        raise ImageLoadError(f"{image.name}: sections extend past SizeOfImage")
    for dll, ref, slot_rva in image.imports:
        if not 0 <= slot_rva <= len(mapped) - 8:
            raise ImageLoadError(f"{image.name}: an import slot lies outside the image (RVA {slot_rva:#x})")
        provider = providers[dll]
        rva = provider.image.exports[ref] if isinstance(ref, str) else provider.image.ordinals[ref]
        struct.pack_into("<Q", mapped, slot_rva, provider.base + rva)
    memory.map(module.base, size, physical, image.name, prot=UC_PROT_READ)
    memory.write_virtual(module.base, bytes(mapped))
    for rva, length, prot in section_protections(pe):
        length = min(length, size - rva)
        if length > 0:
            memory.protect(module.base + rva, length, prot)
    module.exports = {name: module.base + rva for name, rva in image.exports.items()}


def section_protections(pe: pefile.PE) -> list[tuple[int, int, int]]:
    """(rva, length, UC_PROT_*) for the pages of each section, from its characteristics.

    Headers and pages no section covers stay read-only, as the kernel maps an image; a
    page two sections share gets the access of both."""
    pages: dict[int, int] = {}
    for section in pe.sections:
        flags = section.Characteristics
        prot = (UC_PROT_READ | (UC_PROT_WRITE if flags & IMAGE_SCN_MEM_WRITE else 0)
                | (UC_PROT_EXEC if flags & IMAGE_SCN_MEM_EXECUTE else 0))
        start = section.VirtualAddress & ~(PAGE_SIZE - 1)
        end = section.VirtualAddress + max(section.Misc_VirtualSize, section.SizeOfRawData)
        for page in range(start, end, PAGE_SIZE):
            pages[page] = pages.get(page, 0) | prot
    out: list[tuple[int, int, int]] = []
    for page in sorted(pages):
        if out and out[-1][0] + out[-1][1] == page and out[-1][2] == pages[page]:
            out[-1] = (out[-1][0], out[-1][1] + PAGE_SIZE, pages[page])
        else:
            out.append((page, PAGE_SIZE, pages[page]))
    return [entry for entry in out if entry[2] != UC_PROT_READ]


class LdrWriter:
    """Writes KLDR_DATA_TABLE_ENTRY records and their name strings into the loader region."""

    def __init__(self, memory: GuestMemory, start: int, end: int) -> None:
        self._memory = memory
        self._next = start
        self._end = end

    def _alloc(self, size: int) -> int:
        address = self._next
        self._next = (self._next + size + 15) & ~15
        if self._next > self._end:
            raise ImageLoadError("too many modules for the loader block")
        return address

    def _unicode(self, text: str) -> tuple[int, int, int]:
        data = text.encode("utf-16-le")
        address = self._alloc(len(data) + 2)
        self._memory.write_virtual(address, data + b"\0\0")
        return len(data), len(data) + 2, address

    def write_entry(self, module: Module, flags: int) -> int:
        entry = self._alloc(LDR_ENTRY_SIZE)
        full = self._unicode(module.nt_path)
        base_name = self._unicode(module.name)
        image = module.image
        record = bytearray(LDR_ENTRY_SIZE)
        struct.pack_into("<QI", record, 0x10, module.base + image.pdata_rva if image.pdata_size else 0,
                         image.pdata_size)
        struct.pack_into("<QQI", record, 0x30, module.base, module.base + image.entry_rva, image.size_of_image)
        struct.pack_into("<HHIQ", record, 0x48, full[0], full[1], 0, full[2])
        struct.pack_into("<HHIQ", record, 0x58, base_name[0], base_name[1], 0, base_name[2])
        struct.pack_into("<IH", record, 0x68, flags | LDRP_IMAGE_DLL | LDRP_ENTRY_PROCESSED, 1)
        struct.pack_into("<I", record, 0x78, image.checksum)
        struct.pack_into("<I", record, 0x80, image.timestamp)
        self._memory.write_virtual(entry, bytes(record))
        module.ldr_entry = entry
        return entry


def link_entries(memory: GuestMemory, head: int, entries: list[int]) -> None:
    """Make ``head`` (a LIST_ENTRY) a circular list of ``entries`` in order."""
    nodes = [head, *entries]
    for i, node in enumerate(nodes):
        memory.write_virtual(node, struct.pack("<QQ", nodes[(i + 1) % len(nodes)], nodes[i - 1]))
