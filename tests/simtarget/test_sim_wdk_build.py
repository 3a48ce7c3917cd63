"""`kdcon-sim build-driver`: WDK-style sources build with clang-cl, lld-link and mingw-w64's
DDK headers into a driver the simulated kernel loads, with its PDB beside it."""

from __future__ import annotations

import pefile
import pytest

from kdcon.tools.simtarget import cli, drvbuild
from kdcon.tools.simtarget.imagecheck import check_driver
from kdcon.tools.simtarget.machine import Machine
from tests.simtarget.wdkbuild import WDK_DRIVERS, build, printed, require_driver_toolchain, run_quiet


@pytest.fixture(scope="module")
def twofiles(tmp_path_factory):
    return build("twofiles", tmp_path_factory.mktemp("twofiles"))


def test_a_driver_of_two_sources_builds_with_its_pdb_beside_it(twofiles):
    assert twofiles.is_file() and twofiles.with_suffix(".pdb").is_file()
    pe = pefile.PE(str(twofiles))
    check_driver(twofiles.name, pe)
    imports = {imp.name.decode() for entry in pe.DIRECTORY_ENTRY_IMPORT for imp in entry.imports}
    assert {entry.dll.decode().lower() for entry in pe.DIRECTORY_ENTRY_IMPORT} == {"ntoskrnl.exe"}
    # The compatibility header's choices show in the imports: the kernel's IRQL routines,
    # not mingw's CR8 inlines; the kernel's version check, not mingw's wdmlib stand-in.
    assert {"KfRaiseIrql", "KeLowerIrql", "KeGetCurrentIrql", "RtlIsNtDdiVersionAvailable", "ExAllocatePool2",
            "ExAllocatePoolWithTag", "ExRaiseStatus", "__C_specific_handler"} <= imports
    assert not any(name.startswith("Wdmlib") for name in imports)


def test_the_two_source_driver_runs_what_the_header_settles(twofiles):
    machine = Machine(drivers=[twofiles])
    machine.boot()
    lines = printed(run_quiet(machine), "two:")
    assert lines == ["two: irql 0 then 2", "two: zero=0 bits=01 other=7 caught=c0000001 win7=1"]


def test_the_command_line_builds_a_driver_and_names_its_outputs(tmp_path, capsys):
    require_driver_toolchain()
    out = tmp_path / "sub" / "seh.sys"
    assert cli.main(["build-driver", str(WDK_DRIVERS / "sehtest"), "-o", str(out)]) == 0
    assert out.is_file() and (tmp_path / "sub" / "seh.pdb").is_file()
    assert str(out) in capsys.readouterr().out


def test_a_compile_error_shows_the_compiler_and_ends_in_one_line(tmp_path, capsys):
    require_driver_toolchain()
    bad = tmp_path / "bad.c"
    bad.write_text("#include <ntddk.h>\nNTSTATUS DriverEntry(PDRIVER_OBJECT d, PUNICODE_STRING r) { return nope; }\n")
    assert cli.main(["build-driver", str(bad), "-o", str(tmp_path / "bad.sys")]) == 1
    err = capsys.readouterr().err
    assert "use of undeclared identifier 'nope'" in err
    assert err.rstrip("\n").splitlines()[-1] == "kdcon-sim build-driver: compiling bad.c failed (clang-cl-14 exit status 1)"
    assert not (tmp_path / "bad.sys").exists()


@pytest.mark.parametrize("argv, message", [
    (["nowhere", "-o", "x.sys"], "nowhere: no such file or folder"),
    ([".", "-o", "x.exe"], "a driver image ends in .sys"),
])
def test_bad_inputs_end_in_one_line(tmp_path, monkeypatch, capsys, argv, message):
    require_driver_toolchain()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.c").write_text("int x;\n")
    assert drvbuild.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_missing_compiler_is_named_with_its_debian_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(drvbuild, "CLANG_CL", "clang-cl-does-not-exist")
    monkeypatch.setitem(drvbuild._PACKAGES, "clang-cl-does-not-exist", "clang-tools-14")
    assert drvbuild.main([str(tmp_path), "-o", str(tmp_path / "x.sys")]) == 1
    assert "clang-cl-does-not-exist is not installed (Debian: apt-get install clang-tools-14)" in capsys.readouterr().err
