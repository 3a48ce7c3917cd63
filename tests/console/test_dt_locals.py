"""``dt Name`` on a parameter or local of the selected frame, as WinDbg takes it, and
``dv /i /t`` (each one's kind and type).

The simulated kernel's TrackDemoTick, three steps in, has its locals stored on the stack;
``.frame 1`` selects TrackDemoDispatch, whose ``Irp`` is also the name of a kernel type.
"""

from __future__ import annotations

import pytest

from .test_golden_kernel_extensions import output_of
from .transcripts import batch


@pytest.fixture(scope="module")
def in_tick() -> str:
    text, _ = batch("bp trackdemo!TrackDemoTick", "g", "g", "dt tick", "p 3", "dv /V",
                    "dt attributes", "dt Extension", "dt tick", "dv /t", "dv /i /t /V tick",
                    ".frame 1", "dv /V Irp", "dt Irp")
    return text


def _address_of(dv_line: str) -> str:
    return dv_line.split()[0]


def test_a_structure_local_shows_its_address_type_and_fields(in_tick):
    where = next(line for line in output_of(in_tick, "dv /V").splitlines()
                 if " attributes = " in line)
    shown = output_of(in_tick, "dt attributes").splitlines()
    assert shown[0] == f"Local var @ 0x{_address_of(where)} Type _OBJECT_ATTRIBUTES"
    assert shown[1].startswith("   +0x000 Length ")
    assert any("ObjectName" in line for line in shown)


def test_a_pointer_local_shows_the_pointer_then_the_structure_it_points_to(in_tick):
    value = next(line for line in output_of(in_tick, "dv /V").splitlines()
                 if " Extension = " in line).rsplit("= ", 1)[1]
    shown = output_of(in_tick, "dt Extension").splitlines()
    assert shown[0].startswith("Local var @ 0x") and shown[0].endswith("Type _TRACKDEMO_EXTENSION*")
    assert shown[1] == value
    assert shown[2].startswith("   +0x000 WorkBuffer ")


def test_a_local_the_prolog_has_not_stored_yet_is_one_line():
    text, _ = batch("bp trackdemo!TrackDemoTick", "g", "g", "dt tick")
    assert output_of(text, "dt tick").strip() == \
        "dt: tick is not live at this address (dv shows it unavailable)"


def test_a_local_named_like_a_kernel_type_is_the_local(in_tick):
    where = output_of(in_tick, "dv /V Irp").split()[0]
    shown = output_of(in_tick, "dt Irp").splitlines()
    assert shown[0] == f"Local var @ 0x{where} Type _IRP*"
    assert shown[2].startswith("   +0x000 Type ")


def test_dv_t_puts_each_type_before_its_name(in_tick):
    lines = output_of(in_tick, "dv /t").splitlines()
    assert "struct _TRACKDEMO_EXTENSION * Extension = " in lines[0]
    assert lines[0].startswith("struct ")
    assert any(line.startswith("unsigned long tick = ") for line in lines)


def test_dv_i_says_param_or_local_before_the_address(in_tick):
    where = next(line for line in output_of(in_tick, "dv /V").splitlines() if " tick = " in line)
    line = output_of(in_tick, "dv /i /t /V tick").strip()
    assert line == f"prv local  {' '.join(where.split()[:2])} unsigned long tick = " \
        f"{where.rsplit('= ', 1)[1]}"
