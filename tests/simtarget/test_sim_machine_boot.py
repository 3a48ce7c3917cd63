"""Booting: module list in guest memory, headers, load reports, DbgPrint, refusals."""

from __future__ import annotations

import pytest

from kdcon.tools.simtarget.errors import ImageLoadError, MissingImportsError
from kdcon.tools.simtarget.events import DebugPrintStop, LoadSymbols
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.machine import Machine

from .simhelpers import MISSING, TESTDRV, boot_testdrv, q, run_until_quiet, unicode_string


@pytest.fixture(scope="module")
def booted():
    machine = boot_testdrv()
    events = run_until_quiet(machine)
    return machine, events


def walk_module_list(machine):
    head = machine.ps_loaded_module_list
    found, link = [], q(machine, head)
    while link != head and len(found) < 64:
        found.append((unicode_string(machine, link + 0x58), unicode_string(machine, link + 0x48),
                      q(machine, link + 0x30), int.from_bytes(machine.read_virtual(link + 0x40, 4), "little")))
        link = q(machine, link)
    return found


def test_module_list_in_memory_names_kernel_hal_kdcom_and_driver(booted):
    machine, _ = booted
    names = [entry[0] for entry in walk_module_list(machine)]
    assert names == ["ntoskrnl.exe", "hal.dll", "kdcom.dll", "testdrv.sys"]


def test_module_list_bases_and_sizes_match_the_loaded_images(booted):
    machine, _ = booted
    import pefile
    files = [IMAGES_DIR / "ntoskrnl.exe", IMAGES_DIR / "hal.dll", IMAGES_DIR / "kdcom.dll", TESTDRV]
    for (name, full, base, size), module, path in zip(walk_module_list(machine), machine.modules, files):
        assert base == module.base
        assert size == pefile.PE(str(path), fast_load=True).OPTIONAL_HEADER.SizeOfImage
        assert full.endswith("\\" + name)
    assert walk_module_list(machine)[0][2] == machine.kern_base


def test_module_headers_in_memory_equal_the_files(booted):
    machine, _ = booted
    import pefile
    for module in machine.modules:
        data = module.image.path.read_bytes()
        headers = pefile.PE(data=data, fast_load=True).OPTIONAL_HEADER.SizeOfHeaders
        assert machine.read_virtual(module.base, headers) == data[:headers]


def test_every_module_load_is_reported_in_load_order(booted):
    machine, events = booted
    loads = [e.image for e in events if isinstance(e, LoadSymbols)]
    assert [(i.path.rsplit("\\", 1)[1], i.base, i.size) for i in loads] == \
        [(m.name, m.base, m.size) for m in machine.modules]
    assert loads[3].path == "\\SystemRoot\\system32\\drivers\\testdrv.sys"
    assert loads[3].timestamp == machine.modules[3].image.timestamp


def test_driver_entry_dbgprint_text_arrives(booted):
    _, events = booted
    prints = [e.text for e in events if isinstance(e, DebugPrintStop)]
    assert "testdrv: hello sum=1596 kd=1\n" in prints


def test_system_loop_keeps_ticking_the_driver_after_boot(booted):
    machine, _ = booted
    counter = machine.kernel_symbol("KiSystemLoopCount")
    before = int.from_bytes(machine.read_virtual(counter, 4), "little")
    machine.run(budget=1_000_000)
    assert int.from_bytes(machine.read_virtual(counter, 4), "little") > before


def test_driver_with_missing_imports_is_refused_naming_all_of_them():
    with pytest.raises(MissingImportsError) as info:
        Machine(drivers=[MISSING])
    assert info.value.missing == ["ntoskrnl.exe!KsimNoSuchRoutine", "ntoskrnl.exe!ZwNoSuchService"]
    assert "KsimNoSuchRoutine" in str(info.value) and "ZwNoSuchService" in str(info.value)


def test_a_file_that_is_not_an_image_is_refused_in_one_line(tmp_path):
    bogus = tmp_path / "bogus.sys"
    bogus.write_bytes(b"MZ this is not a driver")
    with pytest.raises(ImageLoadError, match="bogus.sys is not a PE image"):
        Machine(drivers=[bogus])


def test_same_seed_boots_identically_and_seed_moves_the_images():
    a, b, c = Machine(seed=7), Machine(seed=7), Machine(seed=8)
    for m in (a, b, c):
        m.boot()
    ea, eb = run_until_quiet(a), run_until_quiet(b)
    assert ea == eb
    assert a.kern_base == b.kern_base != c.kern_base


def test_an_x86_image_and_a_missing_file_are_refused_in_one_line(tmp_path):
    import struct as _struct
    data = bytearray(TESTDRV.read_bytes())
    e_lfanew = _struct.unpack_from("<I", data, 0x3C)[0]
    _struct.pack_into("<H", data, e_lfanew + 4, 0x14C)          # IMAGE_FILE_MACHINE_I386
    x86 = tmp_path / "x86.sys"
    x86.write_bytes(bytes(data))
    with pytest.raises(ImageLoadError, match="x86.sys is not an x64 image"):
        Machine(drivers=[x86])
    with pytest.raises(ImageLoadError, match="cannot read"):
        Machine(drivers=[tmp_path / "absent.sys"])
