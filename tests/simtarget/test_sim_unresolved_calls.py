"""A driver linked past routines its linker could not find (lld-link /FORCE:UNRESOLVED)
is refused at load with one line naming each routine and its source line, instead of
running into an unexplained page fault bug check; without its PDB the line names the
call sites and says how to get the names."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from kdcon.tools.simtarget import drvbuild
from kdcon.tools.simtarget.cli import main as sim_main
from kdcon.tools.simtarget.loader import parse_image
from kdcon.tools.simtarget.machine import Machine
from kdcon.tools.simtarget.unresolved import UnresolvedCallError, find_unresolved_calls
from tests.simtarget.simhelpers import TESTDRV
from tests.simtarget.wdkbuild import WDK_DRIVERS, build, require_driver_toolchain


def _forced_link(out_dir):
    """nullimport.sys compiled as build-driver does, linked with /FORCE:UNRESOLVED."""
    require_driver_toolchain()
    source = WDK_DRIVERS / "nullimport" / "nullimport.c"
    obj, image, pdb = out_dir / "nullimport.obj", out_dir / "nullimport.sys", out_dir / "nullimport.pdb"
    subprocess.run([drvbuild.CLANG_CL, *drvbuild.compile_flags(False, [], []), f"/Fo{obj}", "--", str(source)],
                   check=True, capture_output=True)
    linked = subprocess.run([drvbuild.LLD_LINK, "/NOLOGO", "/DRIVER:WDM", "/SUBSYSTEM:NATIVE", "/NODEFAULTLIB",
                             "/MACHINE:X64", "/ENTRY:DriverEntry", "/FORCE:UNRESOLVED", "/DEBUG", f"/PDB:{pdb}",
                             f"/OUT:{image}", str(obj), str(drvbuild.IMAGES_DIR / "ntoskrnl.lib")],
                            capture_output=True, text=True)
    assert linked.returncode == 0, linked.stderr
    assert "KsimRoutineNobodyExports" in linked.stderr   # the linker only warned
    return image


@pytest.fixture(scope="module")
def forced(tmp_path_factory):
    return _forced_link(tmp_path_factory.mktemp("nullimport"))


def test_the_forced_image_has_no_import_for_the_missing_routines(forced):
    names = {ref for _, ref, _ in parse_image(forced).imports}
    assert "DbgPrint" in names
    assert not names & {"KsimRoutineNobodyExports", "KsimOtherMissingRoutine"}


def test_loading_it_is_refused_naming_each_routine_and_its_line(forced):
    with pytest.raises(UnresolvedCallError) as refused:
        Machine(drivers=[forced])
    message = str(refused.value)
    assert "\n" not in message
    assert [c.routine for c in refused.value.calls] == ["KsimRoutineNobodyExports", "KsimOtherMissingRoutine"]
    assert [c.where.rsplit(":", 1)[1] for c in refused.value.calls] == ["17", "18"]
    assert "KsimRoutineNobodyExports (nullimport.c:17, nullimport.sys+0x" in message
    assert "KsimOtherMissingRoutine (nullimport.c:18" in message
    assert "without /FORCE" not in message


def test_without_its_pdb_the_call_sites_are_named_with_the_way_to_get_the_names(forced, tmp_path):
    alone = tmp_path / "nullimport.sys"
    shutil.copyfile(forced, alone)
    with pytest.raises(UnresolvedCallError) as refused:
        Machine(drivers=[alone])
    rvas = [c.rva for c in refused.value.calls]
    assert len(rvas) == 2 and all(c.routine is None for c in refused.value.calls)
    message = str(refused.value)
    assert f"a routine called at nullimport.sys+{rvas[0]:#x}" in message
    assert "link it without /FORCE:UNRESOLVED and the linker names it" in message


def test_kdcon_sim_refuses_it_in_one_line(forced, capsys):
    assert sim_main(["--run", "--driver", str(forced)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "KsimRoutineNobodyExports" in err[0]


def test_drivers_linked_normally_have_no_unresolved_calls(tmp_path):
    assert find_unresolved_calls(parse_image(TESTDRV)) == []
    assert find_unresolved_calls(parse_image(build("ioctltest", tmp_path))) == []
