"""kdcon-sim build-driver: build a WDM driver from its unmodified sources for the
simulated kernel, with free tools only.

    kdcon-sim build-driver SRCDIR|FILE.c ... -o OUT.sys [--release] [-D NAME[=VALUE]]
                           [-I DIR] [--entry NAME] [--integritycheck]

Compiles every ``*.c`` of SRCDIR (or the files named) with Debian's clang-cl-14 against
the DDK headers of ``mingw-w64-common`` (``/usr/share/mingw-w64/include/ddk``), with the
project's compatibility headers in front of them (``src/wdk/``: ``kdcon_wdk.h`` is
included before every source, ``wdm.h`` wraps mingw's, ``dontuse.h`` is empty), and
links with lld-link into an x64 WDM driver with its PDB beside it (OUT.pdb), against
import libraries that carry the real export names of ntoskrnl.exe and hal.dll
(``images/ntoskrnl.lib``, ``images/hal.lib``) and a small ``wdmsec.lib`` made from
``src/wdk/wdmsec.c`` (IoCreateDeviceSecure, a static library in the WDK).
``--integritycheck`` links with /INTEGRITYCHECK (IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY),
which PsSetCreateProcessNotifyRoutineEx and ObRegisterCallbacks require of a caller.

Debug builds (the default) use ``/Od -DDBG=1``, as the WDK's Debug configuration does,
so breakpoints and locals match the source; ``--release`` uses ``/O2 -DDBG=0``.  The
PDB records the sources' absolute paths, so a debugger finds them.

A limit of clang 14 (not of the kernel): the scope table of a ``__try`` block covers
the code from the block's first call on, so a fault in an instruction before any call
of the block (a bare pointer read as its first statement) is not caught there, where
MSVC's would be; a fault inside a called routine always is.  (``-fasync-exceptions``
does not change this in clang 14.)

Does not run the driver (``kdcon-sim --driver OUT.sys`` does) and does not check its
imports against the kernel (the machine does, naming every missing routine).
Failures (a missing source or tool, a compiler or linker error) end in one line on
stderr, the tool's own messages before it, and exit status 1; a bad command line, 2.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DriverBuildError", "BuiltDriver", "build_driver", "compile_flags", "main",
           "DDK_INCLUDE", "MINGW_INCLUDE", "WDK_COMPAT_DIR"]

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
WDK_COMPAT_DIR = PACKAGE_DIR / "src" / "wdk"
IMAGES_DIR = PACKAGE_DIR / "images"
MINGW_INCLUDE = Path("/usr/share/mingw-w64/include")
DDK_INCLUDE = MINGW_INCLUDE / "ddk"

CLANG_CL = "clang-cl-14"
LLD_LINK = "lld-link"
LLVM_LIB = "llvm-lib"
_PACKAGES = {CLANG_CL: "clang-tools-14", LLD_LINK: "lld", LLVM_LIB: "llvm"}

# -fgnuc-version: without it mingw's _mingw.h defines __attribute__ away and clang's
# own intrinsic headers break.  -isystem marks the header folders as system headers, so
# their warnings (pragma pack, redeclared builtins) stay out of the driver's output.
_BASE_FLAGS = ["--target=x86_64-pc-windows-msvc", "/c", "/Zi", "/GS-", "/W3", "-fgnuc-version=4.2.1",
               "/D_AMD64_", "/DAMD64", "/D_WIN64", "/D_KERNEL_MODE", "/DPOOL_TAGGING=1"]


class DriverBuildError(Exception):
    """A tool is missing or failed; the message is the line the user sees."""


@dataclass(frozen=True)
class BuiltDriver:
    """What a build wrote."""

    image: Path
    pdb: Path
    sources: tuple[Path, ...]


def compile_flags(release: bool = False, defines: Sequence[str] = (), includes: Sequence[Path] = ()) -> list[str]:
    """The clang-cl flags for one driver source, without /Fo and the file."""
    flags = list(_BASE_FLAGS)
    flags += ["/O2", "/DDBG=0"] if release else ["/Od", "/DDBG=1"]
    flags += [f"/D{d}" for d in defines]
    flags += [f"/I{Path(i).resolve()}" for i in includes]
    flags += [f"/clang:-isystem{d}" for d in (WDK_COMPAT_DIR, DDK_INCLUDE, MINGW_INCLUDE)] + ["/FIkdcon_wdk.h"]
    return flags


def _require_tools(images: Path) -> None:
    for tool in (CLANG_CL, LLD_LINK, LLVM_LIB):
        if shutil.which(tool) is None:
            raise DriverBuildError(f"{tool} is not installed (Debian: apt-get install {_PACKAGES[tool]})")
    if not (DDK_INCLUDE / "wdm.h").is_file():
        raise DriverBuildError(f"no DDK headers in {DDK_INCLUDE} (Debian: apt-get install mingw-w64-common)")
    for lib in ("ntoskrnl.lib", "hal.lib"):
        if not (images / lib).is_file():
            raise DriverBuildError(f"{images / lib} is missing: rebuild the kernel with "
                                   "python -m kdcon.tools.simtarget.build")


def _run(argv: list[str], cwd: Path, what: str) -> None:
    log.debug("run %s", " ".join(argv))
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        if output:
            print(output, file=sys.stderr)
        raise DriverBuildError(f"{what} failed ({argv[0]} exit status {proc.returncode})")
    if output:
        print(output, file=sys.stderr)     # warnings: the user's to read, as from any build


def find_sources(inputs: Sequence[str | Path]) -> list[Path]:
    """Every .c of each folder given (not recursive) and each file given, in order."""
    sources: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.c") if p.is_file())
            if not found:
                raise DriverBuildError(f"{path}: no .c files in this folder")
            sources += found
        elif path.is_file():
            sources.append(path)
        else:
            raise DriverBuildError(f"{path}: no such file or folder")
    names = [s.stem.lower() for s in sources]
    for name in set(names):
        if names.count(name) > 1:
            raise DriverBuildError(f"two sources are named {name}.c: their objects would collide")
    return [s.resolve() for s in sources]


def build_driver(inputs: Sequence[str | Path], out: str | Path, *, release: bool = False,
                 defines: Sequence[str] = (), includes: Sequence[str | Path] = (),
                 entry: str = "DriverEntry", images_dir: str | Path | None = None,
                 integrity_check: bool = False) -> BuiltDriver:
    """Compile and link a driver; OUT and its .pdb are written, nothing else is left.

    ``images_dir`` holds the kernel's import libraries (default: the package's images)."""
    images = Path(images_dir) if images_dir else IMAGES_DIR
    _require_tools(images)
    sources = find_sources(inputs)
    out = Path(out).resolve()
    if out.suffix.lower() != ".sys":
        raise DriverBuildError(f"-o {out.name}: a driver image ends in .sys")
    out.parent.mkdir(parents=True, exist_ok=True)
    pdb = out.with_suffix(".pdb")
    flags = compile_flags(release, defines, [Path(i) for i in includes])
    with tempfile.TemporaryDirectory(prefix="kdcon-drv-") as tmp:
        work = Path(tmp)
        objs = []
        for source in sources:
            obj = work / f"{source.stem}.obj"
            # The source's folder first, as MSBuild compiles from the project folder;
            # "--" because clang-cl reads an absolute path such as /work/x.c as options.
            _run([CLANG_CL, *flags, f"/I{source.parent}", f"/Fo{obj}", "--", str(source)], source.parent,
                 f"compiling {source.name}")
            objs.append(str(obj))
        _run([CLANG_CL, *compile_flags(True), f"/Fo{work / 'wdmsec.obj'}", "--",
              str(WDK_COMPAT_DIR / "wdmsec.c")],
             work, "compiling wdmsec.c")
        _run([LLVM_LIB, "/NOLOGO", f"/OUT:{work / 'wdmsec.lib'}", str(work / "wdmsec.obj")], work,
             "making wdmsec.lib")
        tmp_out = work / out.name
        tmp_pdb = work / pdb.name
        _run([LLD_LINK, "/NOLOGO", "/DRIVER:WDM", "/SUBSYSTEM:NATIVE", "/NODEFAULTLIB", "/MACHINE:X64",
              f"/ENTRY:{entry}", "/DEBUG", f"/PDB:{tmp_pdb}", "/PDBALTPATH:%_PDB%",
              *(["/INTEGRITYCHECK"] if integrity_check else []),
              f"/IMPLIB:{work / 'unused.lib'}", f"/OUT:{tmp_out}", *objs,
              str(images / "ntoskrnl.lib"), str(images / "hal.lib"), str(work / "wdmsec.lib")],
             work, f"linking {out.name}")
        shutil.copyfile(tmp_out, out)
        shutil.copyfile(tmp_pdb, pdb)
    return BuiltDriver(image=out, pdb=pdb, sources=tuple(sources))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdcon-sim build-driver",
        description="Build a WDM driver's sources into an x64 .sys (and .pdb) for the simulated kernel, "
                    "with clang-cl, lld-link and mingw-w64's DDK headers.")
    parser.add_argument("inputs", nargs="+", metavar="SRCDIR|FILE.c",
                        help="a folder (every .c in it) or source files")
    parser.add_argument("-o", "--out", required=True, metavar="OUT.sys", help="the driver image to write")
    parser.add_argument("--release", action="store_true", help="optimise (/O2, DBG=0) instead of /Od, DBG=1")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=VALUE]",
                        help="define a macro; repeatable")
    parser.add_argument("-I", dest="includes", action="append", default=[], metavar="DIR",
                        help="add an include folder; repeatable")
    parser.add_argument("--entry", default="DriverEntry", help="entry point (default DriverEntry)")
    parser.add_argument("--integritycheck", action="store_true",
                        help="link with /INTEGRITYCHECK (needed for process-notify Ex routines and "
                             "ObRegisterCallbacks)")
    parser.add_argument("--debug", action="store_true", help="show the commands run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="kdcon-sim build-driver: %(message)s")
    try:
        built = build_driver(args.inputs, args.out, release=args.release, defines=args.defines,
                             includes=args.includes, entry=args.entry, integrity_check=args.integritycheck)
    except DriverBuildError as exc:
        print(f"kdcon-sim build-driver: {exc}", file=sys.stderr)
        return 1
    print(f"{built.image} ({len(built.sources)} sources), symbols in {built.pdb.name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
