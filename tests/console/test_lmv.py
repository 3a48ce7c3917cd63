"""``lmv`` prints a module's facts in WinDbg's order and forms: the symbol image and
the file mapped from the symbol path once symbols are loaded, the image path a
LoadSymbols report gave, the image name, ``Timestamp`` as a date (or, for a /Brepro
image, as the hash it is), ``CheckSum`` and ``ImageSize``; what is not known is left
out. Expected values are read from the image files with pefile."""

from __future__ import annotations

import io
import time

import pefile

from kdcon.app import App
from kdcon.output import Output
from kdcon.tools.simtarget.hostile import HostileTarget, raw_exception, raw_load_symbols
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.loopback import SimTarget

SYMBOLS = f"{IMAGES_DIR};{IMAGES_DIR / 'checked'}"
IMAGE_DEBUG_TYPE_REPRO = 16
DRIVER_BASE = 0xFFFFF7A000400000


def _facts(image: str) -> tuple[int, int, int, bool]:
    pe = pefile.PE(str(IMAGES_DIR / image), fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_DEBUG"]])
    repro = any(entry.struct.Type == IMAGE_DEBUG_TYPE_REPRO
                for entry in getattr(pe, "DIRECTORY_ENTRY_DEBUG", []))
    return (pe.FILE_HEADER.TimeDateStamp, pe.OPTIONAL_HEADER.CheckSum,
            pe.OPTIONAL_HEADER.SizeOfImage, repro)


def _screen(target: SimTarget, *lines: str) -> str:
    screen = io.StringIO()
    app = App(target.connect(), link_name="loopback", output=Output(screen),
              symbol_path=SYMBOLS, echo_commands=False)
    try:
        app.connect()
        for line in lines[:-1]:
            app.run_line(line)
        mark = len(screen.getvalue())
        assert app.run_line(lines[-1])
        return screen.getvalue()[mark:]
    finally:
        app.close()
        target.close()


def test_lmv_of_a_module_with_its_symbols_loaded():
    stamp, checksum, size, repro = _facts("ntoskrnl.exe")
    shown = _screen(SimTarget(seed=0, break_on_connect=True), "lmvm nt").splitlines()
    expected = ["    Loaded symbol image file: ntoskrnl.exe",
                f"    Mapped memory image file: {IMAGES_DIR / 'ntoskrnl.exe'}",
                # The simulated boot reports its loads (LoadSymbols) before the break.
                "    Image path: \\SystemRoot\\system32\\ntoskrnl.exe",
                "    Image name: ntoskrnl.exe"]
    if repro:
        expected += ["    Image was built with /Brepro flag.",
                     f"    Timestamp:        {stamp:08X} (This is a reproducible build file "
                     "hash, not a timestamp)"]
    else:
        expected += [f"    Timestamp:        {time.strftime('%a %b %e %H:%M:%S %Y', time.gmtime(stamp))}"
                     f" ({stamp:08X})"]
    expected += [f"    CheckSum:         {checksum:08X}", f"    ImageSize:        {size:08X}"]
    assert shown[0] == "start             end                 module name"
    assert shown[1].split()[2] == "nt"
    assert shown[2:] == expected


def test_lmv_of_a_deferred_module_shows_the_module_lists_facts_as_dates():
    stamp, checksum, size, _ = _facts("hal.dll")
    shown = _screen(SimTarget(seed=0, break_on_connect=True), "lmvm hal").splitlines()
    assert "(deferred)" in shown[1]
    date = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(stamp))
    expected = ["    Image path: \\SystemRoot\\system32\\hal.dll",
                "    Image name: hal.dll", f"    Timestamp:        {date} ({stamp:08X})"]
    if checksum:
        expected.append(f"    CheckSum:         {checksum:08X}")
    expected.append(f"    ImageSize:        {size:08X}")
    assert shown[2:] == expected


def test_lmv_shows_the_image_path_a_load_report_gave():
    path = b"\\SystemRoot\\system32\\drivers\\late.sys"
    target = HostileTarget(stops=[
        raw_load_symbols(path, length=len(path), base=DRIVER_BASE, size=0x3000),
        raw_exception(0x80000003, DRIVER_BASE + 0x1000)])
    shown = _screen(target, "sxe ld", "g", "g", "lmvm late").splitlines()
    assert shown[2:] == ["    Image path: \\SystemRoot\\system32\\drivers\\late.sys",
                         "    Image name: late.sys",
                         "    ImageSize:        00003000"]
