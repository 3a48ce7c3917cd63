"""Fixture builders for the symbol-store tests: NT4-style images and DBGs, lld-built PDBs."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from kdcon.symbols.dbgwriter import CoffSymbol, DbgSpec, build_dbg, example_sections
from kdcon.symbols.debugdir import FpoData, build_misc
from kdcon.symbols.pewriter import ImageSpec, build_image
from tests.oracles import require_tool

DRIVER_C = """\
typedef struct _DEMO { unsigned long A; unsigned short B[3]; struct _DEMO *Next; unsigned int Bits : 3; } DEMO;
DEMO DemoGlobal;
unsigned long DemoCounter;
static unsigned long DemoCallback(DEMO *p) { return p->A + 1; }
__declspec(dllexport) unsigned long DemoExported(DEMO *p) { return DemoCallback(p) + DemoCounter; }
long DriverEntry(void *a, void *b) { DemoCounter = DemoExported(&DemoGlobal); return 0; }
"""


@dataclass(frozen=True)
class Nt4Pair:
    image: bytes
    dbg: bytes
    timestamp: int
    size_of_image: int
    checksum: int


def nt4_pair(image_name: str = "ntoskrnl.exe", timestamp: int = 0x37CDB039, checksum: int = 0x1A2B3,
             symbols: tuple[tuple[str, int, int], ...] = (("_KeBugCheckEx@20", 1, 0x100),
                                                          ("_KiServiceTable", 3, 0x20),
                                                          ("@KfAcquireSpinLock@4", 1, 0x200)),
             nb10: tuple[str, int, int] | None = None) -> Nt4Pair:
    """A split x86 image (MISC names its DBG) and its DBG with COFF symbols and FPO."""
    stem = image_name.rsplit(".", 1)[0]
    image = build_image(ImageSpec(name=image_name, machine=0x014C, timestamp=timestamp, checksum=checksum,
                                  characteristics=0x0302, image_base=0x80400000, text_size=0x3000,
                                  exports={"KeBugCheckEx": 0x1100},
                                  debug=[(4, build_misc(stem + ".dbg"))], map_debug_data=False))
    from kdcon.symbols.pe import read_image
    size = read_image(image).identity.size_of_image
    dbg = build_dbg(DbgSpec(image_name=image_name, timestamp=timestamp, checksum=checksum, size_of_image=size,
                            image_base=0x80400000, sections=example_sections(),
                            exported_names=["KeBugCheckEx"], nb10=nb10,
                            coff_symbols=[CoffSymbol(n, s, v) for n, s, v in symbols],
                            fpo=[FpoData(0x1100, 0x40, 2, 5, 3, 2, False, True, 0)]))
    return Nt4Pair(image, dbg, timestamp, size, checksum)


def put(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def build_lld_driver(directory: str, variant: int = 0) -> tuple[str, str]:
    """drv.sys + drv.pdb from clang-cl and lld-link (x64); ``variant`` changes the code."""
    clang = require_tool("clang-cl-14", "clang-cl")
    lld = require_tool("lld-link")
    os.makedirs(directory, exist_ok=True)
    source = os.path.join(directory, "drv.c")
    with open(source, "w") as handle:
        handle.write(DRIVER_C + f"int DemoVariant = {variant};\n")
    run = dict(cwd=directory, check=True, capture_output=True)
    subprocess.run([clang, "--target=x86_64-pc-windows-msvc", "/c", "/Z7", "/GS-", "/Od", "/Brepro",
                    "-ffile-compilation-dir=.", "/Fodrv.obj", "drv.c"], **run)
    subprocess.run([lld, "/Brepro", "/DRIVER", "/SUBSYSTEM:NATIVE", "/NODEFAULTLIB", "/ENTRY:DriverEntry",
                    "/DEBUG", "/PDB:drv.pdb", "/PDBALTPATH:drv.pdb", "/OUT:drv.sys", "drv.obj"], **run)
    return os.path.join(directory, "drv.sys"), os.path.join(directory, "drv.pdb")


def copy(source: str, destination: str) -> str:
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.copyfile(source, destination)
    return destination
