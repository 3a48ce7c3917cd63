"""Is this file a whole image, and is it a driver?  One clear line when it is not.

What it does: ``check_complete`` refuses an image file that is cut short: headers
shorter than SizeOfHeaders says, a section table that runs past the end of the file, or
a section whose raw data does (the kernel's image loader refuses such a file as an
invalid image format).  ``check_driver`` refuses, for ``kdcon-sim --driver``, an image
that is not a kernel-mode driver:

Rule 1: the kernel itself.  Its export directory names it (ntoskrnl.exe and the other
        kernel builds); the linker writes that name, so a renamed copy is still known.
Rule 2: a DLL (hal.dll, kdcom.dll, any image with IMAGE_FILE_DLL): the kernel loads
        those as dependencies, never as drivers, and they have no DriverEntry.
Rule 3: a subsystem other than IMAGE_SUBSYSTEM_NATIVE (1): a user-mode program or DLL.
Rule 4: no entry point, or one outside the image's executable sections.

What it does not do: parse (loader.py) or check imports (loader.check_imports).
Spec: PE/COFF specification (Microsoft), "Optional Header Windows-Specific Fields"
(Subsystem), "Characteristics" (IMAGE_FILE_DLL), "Section Table", "Export Directory
Table" (Name RVA); docs/simulated-target.md §4.
"""

from __future__ import annotations

import pefile

from .errors import ImageLoadError

__all__ = ["check_complete", "check_driver", "KERNEL_IMAGE_NAMES", "IMAGE_SUBSYSTEM_NATIVE"]

IMAGE_SUBSYSTEM_NATIVE = 1
IMAGE_FILE_DLL = 0x2000
IMAGE_SCN_MEM_EXECUTE = 0x20000000
KERNEL_IMAGE_NAMES = frozenset({"ntoskrnl.exe", "ntkrnlmp.exe", "ntkrnlpa.exe", "ntkrpamp.exe"})
_SUBSYSTEMS = {2: "a Windows GUI program", 3: "a Windows console program", 9: "a Windows CE program",
               10: "an EFI application", 11: "an EFI boot service driver", 12: "an EFI runtime driver",
               14: "an Xbox program", 16: "a Windows boot application"}
_SECTION_HEADER_SIZE = 40


def check_complete(name: str, data: bytes, pe: pefile.PE) -> None:
    """ImageLoadError when the file holds less than its headers say it has."""
    size = len(data)
    headers = pe.OPTIONAL_HEADER.SizeOfHeaders
    if size < headers:
        raise ImageLoadError(f"{name} is truncated: its headers need {headers} bytes and the file has {size}")
    table = (pe.DOS_HEADER.e_lfanew + 4 + pe.FILE_HEADER.sizeof() + pe.FILE_HEADER.SizeOfOptionalHeader
             + _SECTION_HEADER_SIZE * pe.FILE_HEADER.NumberOfSections)
    if size < table or len(pe.sections) != pe.FILE_HEADER.NumberOfSections:
        raise ImageLoadError(f"{name} is truncated: its section table ends at {table:#x}, past the end of "
                             f"the {size}-byte file")
    for section in pe.sections:
        end = section.PointerToRawData + section.SizeOfRawData
        if section.SizeOfRawData and end > size:
            label = section.Name.rstrip(b"\0").decode("ascii", "replace") or "(unnamed)"
            raise ImageLoadError(f"{name} is truncated: section {label} needs bytes up to {end:#x} and the "
                                 f"file has {size}")


def _export_name(pe: pefile.PE) -> str:
    exports = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    name = getattr(exports, "name", None) if exports is not None else None
    return name.decode("ascii", "replace").lower() if name else ""


def check_driver(name: str, pe: pefile.PE) -> None:
    """ImageLoadError when the (complete) image is not a kernel-mode driver (Rules 1-4)."""
    exported_as = _export_name(pe)
    if exported_as in KERNEL_IMAGE_NAMES or name.lower() in KERNEL_IMAGE_NAMES:
        kernel = exported_as or name.lower()
        raise ImageLoadError(f"{name} is the kernel ({kernel}), not a driver: kdcon-sim loads its own kernel; "
                             "give --driver a .sys")
    if pe.FILE_HEADER.Characteristics & IMAGE_FILE_DLL:
        raise ImageLoadError(f"{name} is a DLL{f' ({exported_as})' if exported_as else ''}, not a driver: "
                             "the kernel loads DLLs such as hal.dll and kdcom.dll only as dependencies")
    subsystem = pe.OPTIONAL_HEADER.Subsystem
    if subsystem != IMAGE_SUBSYSTEM_NATIVE:
        kind = _SUBSYSTEMS.get(subsystem, f"subsystem {subsystem}")
        raise ImageLoadError(f"{name} is {kind}, not a native kernel-mode driver (subsystem must be 1)")
    entry = pe.OPTIONAL_HEADER.AddressOfEntryPoint
    if not any(s.Characteristics & IMAGE_SCN_MEM_EXECUTE
               and s.VirtualAddress <= entry < s.VirtualAddress + max(s.Misc_VirtualSize, s.SizeOfRawData)
               for s in pe.sections):
        raise ImageLoadError(f"{name} has no entry point in its code (AddressOfEntryPoint {entry:#x}): "
                             "a driver starts at DriverEntry")
