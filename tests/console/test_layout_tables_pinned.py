"""Every built-in kernel layout resolves to the structures pinned in layout_golden/.

A version table is written as its differences from the tables it shares with other
versions; this pins what each resolves to, member by member, so that a change to a shared
part cannot move another version's offsets unseen. ``KDCON_UPDATE_LAYOUTS=1`` rewrites the
pinned files after a deliberate change (review the diff).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from kdcon import layouts
from kdcon.layouts import parse
from kdcon.layouts.table import revised

PINNED = Path(__file__).parent / "layout_golden"


def render(layout: layouts.WindowsLayout) -> str:
    """The structures of ``layout`` in the order they resolve, one member a line."""
    lines = [f"{layout.name}: builds {', '.join(map(str, layout.builds))}; "
             f"pointer size {layout.pointer_size}; {layout.source}"]
    for spec in layout.specs().values():
        lines.append(f"{spec.kind} {spec.name} ({spec.size:#x})")
        lines += [f"    +{m.offset:#05x} {m.name} : {m.type}" for m in spec.members]
    return "\n".join(lines) + "\n"


def _file(layout: layouts.WindowsLayout) -> Path:
    return PINNED / (re.sub(r"[^0-9A-Za-z]+", "_", layout.name).strip("_").lower() + ".txt")


@pytest.mark.parametrize("layout", layouts.LAYOUTS, ids=lambda layout: layout.name)
def test_each_layout_resolves_to_its_pinned_structures(layout):
    now = render(layout)
    if os.environ.get("KDCON_UPDATE_LAYOUTS"):
        _file(layout).write_text(now)
    assert now == _file(layout).read_text()


def test_the_rendering_shows_a_moved_member():
    layout = layouts.LAYOUTS[0]
    moved = layouts.WindowsLayout(layout.name, layout.builds, layout.source,
                                  layout.text.replace("+0x180 UniqueProcessId",
                                                      "+0x188 UniqueProcessId"))
    assert render(moved) != render(layout)
    assert "+0x188 UniqueProcessId : Ptr64 Void" in render(moved)


def test_a_revision_moves_members_in_place_adds_new_ones_and_resizes():
    base = parse("""
_A (0x20)
    +0x000 First  : Uint4B
    +0x008 Second : Uint8B
_B (0x8)
    +0x000 Only   : Uint8B
""")
    changes = parse("""
_A (0x30)
    +0x010 Second : Uint8B
    +0x018 Third  : Uint4B
_C (0x4)
    +0x000 New    : Uint4B
""")
    result = revised(base, changes)
    assert list(result) == ["_A", "_B", "_C"]
    assert result["_A"].size == 0x30
    assert [(m.name, m.offset) for m in result["_A"].members] == [
        ("First", 0), ("Second", 0x10), ("Third", 0x18)]
    assert result["_B"] == base["_B"] and result["_C"] == changes["_C"]


def test_a_version_written_as_changes_resolves_over_its_base():
    base = layouts.layout_for(19041, 8)
    eleven = layouts.layout_for(22621, 8)
    assert eleven.base is base
    specs, under = eleven.specs(), base.specs()
    assert list(specs) == list(under)
    assert specs["_EPROCESS"].member("DeviceMap").type == "_EX_FAST_REF"
    assert specs["_EPROCESS"].member("Peb") == under["_EPROCESS"].member("Peb")
