"""kdcon-sim --driver refuses, in one line, a file that is not a whole driver image.

Cut files (headers, section table, section data), non-native subsystems, the kernel
given as a driver (also renamed), DLLs (hal.dll, kdcom.dll, a driver marked DLL) and an
image with no entry point in its code: through the installed ``kdcon-sim`` program and
through the loader API (``KernelImages``). The rules: tools/simtarget/imagecheck.py.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pefile
import pytest

from kdcon.tools.simtarget.errors import ImageLoadError
from kdcon.tools.simtarget.kernel import IMAGES_DIR, KernelImages

from .simhelpers import TESTDRV

KERNEL = IMAGES_DIR / "ntoskrnl.exe"


def _patched(tmp_path: Path, name: str, field: str, value: int, *, header: str = "OPTIONAL_HEADER",
             fmt: str = "<H") -> Path:
    """testdrv.sys with one header field set to ``value`` (``fmt`` is the field's size)."""
    data = bytearray(TESTDRV.read_bytes())
    pe = pefile.PE(data=bytes(data), fast_load=True)
    struct.pack_into(fmt, data, getattr(pe, header).get_field_absolute_offset(field), value)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def _cut(tmp_path: Path, length: int) -> Path:
    path = tmp_path / f"cut{length}.sys"
    path.write_bytes(TESTDRV.read_bytes()[:length])
    return path


def _copy(tmp_path: Path, source: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copyfile(source, path)
    return path


def _section_end() -> int:
    pe = pefile.PE(str(TESTDRV), fast_load=True)
    return max(s.PointerToRawData + s.SizeOfRawData for s in pe.sections)


CASES = {
    # name: (how to make the file, what the one line must say)
    "empty": (lambda t: _cut(t, 0), "not a PE image"),
    "dos header only": (lambda t: _cut(t, 100), "not a PE image"),
    "headers cut": (lambda t: _cut(t, 600), "is truncated"),
    "section data cut": (lambda t: _cut(t, _section_end() - 1), "is truncated: section"),
    "gui subsystem": (lambda t: _patched(t, "gui.sys", "Subsystem", 2), "a Windows GUI program"),
    "console subsystem": (lambda t: _patched(t, "cui.sys", "Subsystem", 3), "a Windows console program"),
    "kernel": (lambda t: KERNEL, "is the kernel (ntoskrnl.exe)"),
    "renamed kernel": (lambda t: _copy(t, KERNEL, "mydriver.sys"), "is the kernel (ntoskrnl.exe)"),
    "hal": (lambda t: IMAGES_DIR / "hal.dll", "is a DLL (hal.dll)"),
    "kdcom": (lambda t: IMAGES_DIR / "kdcom.dll", "is a DLL (kdcom.dll)"),
    "driver marked dll": (lambda t: _patched(t, "dll.sys", "Characteristics", 0x2022, header="FILE_HEADER"),
                          "is a DLL"),
    "no entry point": (lambda t: _patched(t, "noentry.sys", "AddressOfEntryPoint", 0, fmt="<I"), "has no entry point"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_loader_refuses_with_one_line_naming_the_file(tmp_path, case):
    make, says = CASES[case]
    path = make(tmp_path)
    with pytest.raises(ImageLoadError) as refused:
        KernelImages(None, [path])
    message = str(refused.value)
    assert "\n" not in message and message.startswith(path.name) and says in message, message


def test_a_whole_driver_is_still_accepted():
    images = KernelImages(None, [TESTDRV])
    assert [i.name for i in images.drivers] == ["testdrv.sys"]


@pytest.mark.parametrize("case", ["section data cut", "headers cut", "gui subsystem", "kernel", "hal"])
def test_kdcon_sim_refuses_in_one_line_and_exits_2(tmp_path, case):
    program = shutil.which("kdcon-sim")
    assert program, "kdcon-sim is not installed (pip install -e .)"
    make, says = CASES[case]
    path = make(tmp_path)
    done = subprocess.run([program, "--listen", f"unix://{tmp_path / 'kd.sock'}", "--driver", str(path)],
                          capture_output=True, text=True, timeout=60)
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and done.stdout == ""
    assert len(lines) == 1 and lines[0].startswith(f"kdcon-sim: {path.name} ") and says in lines[0], done.stderr
    assert not (tmp_path / "kd.sock").exists()
