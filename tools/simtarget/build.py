"""Rebuild the simulated target's images: ntoskrnl.exe, hal.dll, kdcom.dll, the test
drivers and (when its sources are present) trackdemo.sys in checked and free flavours.

Uses clang-cl-14, lld-link and llvm-dlltool with the reproducible flags of
simulated-target.md §3.3-§3.4: the same sources give byte-identical images and PDBs
wherever the build runs, because every tool runs inside a scratch copy of ``src/``
with relative paths only.  Import libraries come from the ``.def`` files next to the
sources (``ntoskrnl.lib`` and ``hal.lib`` are what drivers link against).

Outputs (under ``--out``, default the package's ``images/``)::

    ntoskrnl.exe/.pdb  hal.dll/.pdb  kdcom.dll/.pdb  ntoskrnl.lib  hal.lib
    test/testdrv.sys/.pdb           a small driver for machine tests
    test/missingimports.sys/.pdb    imports routines ntoskrnl does not export
    checked/trackdemo.sys/.pdb      /Od -DDBG=1  (when src/trackdemo/ exists)
    free/trackdemo.sys/.pdb         /O1 -DDBG=0

Does not run anything it builds; the machine (``machine.py``) loads the images.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BuildError", "SRC_DIR", "IMAGES_DIR", "build_all", "main"]

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
SRC_DIR = PACKAGE_DIR / "src"
IMAGES_DIR = PACKAGE_DIR / "images"

CLANG_CL = "clang-cl-14"
LLD_LINK = "lld-link"
DLLTOOL = "llvm-dlltool"

# simulated-target.md §3.3/§3.4: /Brepro and -ffile-compilation-dir=. make objects
# location-independent; /PDBSOURCEPATH and /PDBALTPATH do the same for PDB and image.
# -fno-builtin keeps the optimiser from turning memset/memcpy loops into calls to
# themselves in a freestanding kernel.
COMPILE_FLAGS = ["--target=x86_64-pc-windows-msvc", "/c", "/Zi", "/GS-", "/W3", "/Brepro",
                 "-ffile-compilation-dir=.", "/clang:-fno-builtin", "-Iinclude"]
LINK_FLAGS = ["/Brepro", "/NODEFAULTLIB", "/MACHINE:X64", "/DEBUG", "/PDBALTPATH:%_PDB%",
              "/PDBSOURCEPATH:C:\\src", "/SUBSYSTEM:NATIVE"]


class BuildError(Exception):
    """A compiler or linker failed; the message carries its output."""


@dataclass
class Image:
    """One linked image: its sources, flags and where it goes."""

    name: str                      # output file name, e.g. "hal.dll"
    out_dir: str                   # relative to the output root ("" for the root)
    sources: list[str]             # relative to src/
    link_flags: list[str]
    libs: list[str] = field(default_factory=lambda: ["lib/ntoskrnl.lib"])
    compile_flags: list[str] = field(default_factory=list)


def _run(argv: list[str], cwd: Path) -> None:
    log.debug("run %s (in %s)", " ".join(argv), cwd)
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{argv[0]} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def _images(src: Path) -> list[Image]:
    def c_files(folder: str) -> list[str]:
        return sorted(str(p.relative_to(src)).replace(os.sep, "/") for p in (src / folder).glob("*.c"))

    images = [
        Image("ntoskrnl.exe", "", c_files("ntoskrnl"),
              ["/ENTRY:KiSystemStartup", "/BASE:0x140000000", "/DEF:ntoskrnl/ntoskrnl.def"],
              libs=["lib/hal.lib", "lib/kdcom.lib"], compile_flags=["/O1"]),
        Image("hal.dll", "", c_files("hal"),
              ["/DLL", "/DRIVER", "/ENTRY:HalDllEntry", "/BASE:0x180000000", "/DEF:hal/hal.def"],
              compile_flags=["/O1"]),
        Image("kdcom.dll", "", c_files("kdcom"),
              ["/DLL", "/DRIVER", "/ENTRY:KdcomDllEntry", "/BASE:0x180000000", "/DEF:kdcom/kdcom.def"],
              libs=["lib/ntoskrnl.lib", "lib/hal.lib"], compile_flags=["/O1"]),
        Image("testdrv.sys", "test", ["testdrv/testdrv.c"],
              ["/DRIVER:WDM", "/ENTRY:DriverEntry", "/BASE:0x140000000"], compile_flags=["/O1"]),
        Image("missingimports.sys", "test", ["testdrv/missingimports.c"],
              ["/DRIVER:WDM", "/ENTRY:DriverEntry", "/BASE:0x140000000"],
              libs=["lib/missing.lib"], compile_flags=["/O1"]),
    ]
    track = c_files("track") if (src / "track").is_dir() else []
    if (src / "trackdemo").is_dir() and c_files("trackdemo"):
        sources = track + c_files("trackdemo")
        for flavour, flags in (("checked", ["/Od", "-DDBG=1"]), ("free", ["/O1", "-DDBG=0"])):
            images.append(Image("trackdemo.sys", flavour, sources,
                                ["/DRIVER:WDM", "/ENTRY:DriverEntry", "/BASE:0x140000000"],
                                compile_flags=flags + ["-Itrack", "-Itrackdemo"]))
    return images


def _build_image(work: Path, image: Image) -> list[Path]:
    stem = Path(image.name).stem
    obj_dir = Path("obj") / (image.out_dir or "root") / stem
    (work / obj_dir).mkdir(parents=True, exist_ok=True)
    objs = []
    for source in image.sources:
        obj = (obj_dir / Path(source).name).with_suffix(".obj").as_posix()
        _run([CLANG_CL, *COMPILE_FLAGS, *image.compile_flags, f"/Fo{obj}", source], work)
        objs.append(obj)
    out_dir = Path("out") / image.out_dir if image.out_dir else Path("out")
    (work / out_dir).mkdir(parents=True, exist_ok=True)
    out = (out_dir / image.name).as_posix()
    pdb = (out_dir / f"{stem}.pdb").as_posix()
    implib = (obj_dir / f"{stem}.lib").as_posix()   # lld-link 14 has no /NOIMPLIB
    _run([LLD_LINK, *LINK_FLAGS, *image.link_flags, f"/PDB:{pdb}", f"/IMPLIB:{implib}", f"/OUT:{out}",
          *objs, *image.libs], work)
    return [work / out, work / pdb]


def build_all(out_dir: Path) -> list[Path]:
    """Build every image into ``out_dir``; returns the files written (relative paths)."""
    for tool in (CLANG_CL, LLD_LINK, DLLTOOL):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is not installed (Debian: clang-tools-14 lld llvm)")
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="ksim-build-") as tmp:
        work = Path(tmp)
        shutil.copytree(SRC_DIR, work, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        (work / "lib").mkdir()
        for module in ("ntoskrnl", "hal", "kdcom"):
            _run([DLLTOOL, "-m", "i386:x86-64", "-d", f"{module}/{module}.def",
                  "-l", f"lib/{module}.lib"], work)
        _run([DLLTOOL, "-m", "i386:x86-64", "-d", "testdrv/missing.def", "-l", "lib/missing.lib"], work)
        products = [work / "lib" / "ntoskrnl.lib", work / "lib" / "hal.lib"]
        for image in _images(work):
            products += _build_image(work, image)
        for product in products:
            rel = product.relative_to(work / "out") if (work / "out") in product.parents else Path(product.name)
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp_target = target.with_name(target.name + ".tmp")
            shutil.copyfile(product, tmp_target)
            os.replace(tmp_target, target)
            written.append(rel)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdcon.tools.simtarget.build",
                                     description="Rebuild the simulated target's images.")
    parser.add_argument("--out", type=Path, default=IMAGES_DIR,
                        help="output directory (default: the package's images/)")
    args = parser.parse_args(argv)
    try:
        written = build_all(args.out)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    for rel in written:
        print(rel.as_posix())
    return 0


if __name__ == "__main__":
    sys.exit(main())
