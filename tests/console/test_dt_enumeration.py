"""dt's enumeration options: -t (types only), -e (the name is a type), -s Size (types of
that size; -e implied), -d (verbose; with a pattern, each matching type in full). The
types listed are checked against the PDB's own type table."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdcon.commands.types import _parse_options
from kdcon.errors import CommandError
from kdcon.render.types import unwrap
from kdcon.symbols.pdb.pdbfile import open_pdb

from .test_golden_kernel_extensions import output_of
from .transcripts import batch

CHECKED = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images" / "checked"


@pytest.fixture(scope="module")
def sizes() -> dict[str, int | None]:
    """trackdemo's type names and sizes, read from its PDB without the console."""
    with open_pdb(CHECKED / "trackdemo.pdb") as pdb:
        table = pdb.types
        return {name: getattr(unwrap(table.find(name)), "size", None)
                for name in table.names("*")}


@pytest.fixture(scope="module")
def session() -> str:
    text, _ = batch("dt trackdemo!*", "dt -t trackdemo!*", "dt -s 10 trackdemo!*",
                    "dt -s0n16 trackdemo!*", "dt -e trackdemo!TrackDemoTickCount",
                    "dt trackdemo!TrackDemoTickCount", "dt -e nt!_LIST_ENTRY",
                    "dt -d trackdemo!_LIST*", "dt -v trackdemo!_LIST_ENTRY",
                    "dt -d trackdemo!_LIST_ENTRY", "dt -s", "dt -t trackdemo!Nope*", "q")
    return text


def _names(block: str) -> list[str]:
    return [line.strip().partition("!")[2] for line in block.splitlines() if line.strip()]


def test_t_lists_the_types_and_not_the_globals(session, sizes):
    everything = output_of(session, "dt trackdemo!*")
    types = output_of(session, "dt -t trackdemo!*")
    assert "trackdemo!TrackDemoTickCount" in everything
    assert "TrackDemoTickCount" not in types
    assert set(_names(types)) == set(sizes) and len(_names(types)) == len(sizes)


def test_s_lists_only_the_types_of_that_size(session, sizes):
    wanted = {name for name, size in sizes.items() if size == 0x10}
    assert wanted and len(wanted) < len(sizes)
    assert set(_names(output_of(session, "dt -s 10 trackdemo!*"))) == wanted
    assert set(_names(output_of(session, "dt -s0n16 trackdemo!*"))) == wanted


def test_e_takes_the_name_as_a_type_only(session):
    assert output_of(session, "dt -e trackdemo!TrackDemoTickCount") == \
        "Symbol trackdemo!TrackDemoTickCount not found."
    # Without -e the same name is the global, shown with its value.
    assert "not found" not in output_of(session, "dt trackdemo!TrackDemoTickCount")
    assert "+0x008 Blink" in output_of(session, "dt -e nt!_LIST_ENTRY")


def test_d_is_verbose_and_with_a_pattern_shows_each_type_in_full(session):
    verbose = output_of(session, "dt -v trackdemo!_LIST_ENTRY")
    assert output_of(session, "dt -d trackdemo!_LIST_ENTRY") == verbose
    assert output_of(session, "dt -d trackdemo!_LIST*") == \
        "                   trackdemo!_LIST_ENTRY\n" + verbose


def test_bad_enumeration_options_are_one_line(session):
    assert output_of(session, "dt -s").startswith("dt: -s needs a size in bytes; usage: dt ")
    assert output_of(session, "dt -t trackdemo!Nope*") == "Symbol trackdemo!Nope* not found."
    with pytest.raises(CommandError, match="not 'zz'"):
        _parse_options(["-s", "zz", "nt!*"])
