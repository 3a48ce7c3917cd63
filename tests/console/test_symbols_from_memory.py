"""A driver whose image is not on the symbol path, only its PDB: the console learns the
image's CodeView record from target memory, with the target searching for it."""

from __future__ import annotations

import io
import shutil

import pytest

from kdcon.app import App
from kdcon.output import Output
from kdcon.symbols.pe import read_image
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.loopback import SimTarget

# Every manipulate request and its reply, with their ACKs, besides the data they carry
# (kd-protocol.md §1.4): 16-byte header, 56-byte DBGKD_MANIPULATE_STATE64, trailer byte.
ROUND_TRIP = 2 * (16 + 56 + 1) + 2 * 16


@pytest.fixture()
def console(tmp_path):
    shutil.copy(IMAGES_DIR / "checked" / "trackdemo.pdb", tmp_path)
    sim = SimTarget(seed=0, break_on_connect=True)
    app = App(sim.connect(), link_name="kdsim", output=Output(stream=io.StringIO()),
              symbol_path=str(tmp_path), timeout=60)
    app.connect()
    yield app
    app.close()
    sim.close()


def _identify(app):
    module = app.session.symbols.module("trackdemo")
    app.session.memory.invalidate()
    before = app.session.wire()
    module.load()
    after = app.session.wire()
    return module, after.round_trips - before.round_trips, after.total - before.total


def test_identifying_a_driver_from_memory_costs_a_search_and_one_read(console):
    module, trips, cost = _identify(console)
    expected = read_image(str(IMAGES_DIR / "checked" / "trackdemo.sys")).identity
    assert module.state.value == "private pdb symbols"
    assert (module.image.identity.guid, module.image.identity.age) == (expected.guid, expected.age)
    assert trips == 2
    # The search carries its 4-byte pattern out and nothing back; the read brings the
    # 24-byte record and a name of up to 104 bytes.
    assert cost <= 2 * ROUND_TRIP + 4 + 24 + 104 <= 600


def test_a_target_that_refuses_the_search_costs_the_header_walk(console, monkeypatch):
    asked = []

    def refuse(start, length, pattern):
        asked.append(pattern)
        return None

    monkeypatch.setattr(console.session.host, "search_memory", refuse)
    module, trips, _ = _identify(console)
    assert asked == [b"RSDS"]
    assert module.state.value == "private pdb symbols"
    assert trips == 3        # e_lfanew; the headers to the debug directory; the directory and its record


def test_the_headers_are_read_only_when_something_needs_them(console):
    module, _, _ = _identify(console)
    before = console.session.wire().round_trips
    assert module.image.is_64bit
    assert console.session.wire().round_trips - before == 3
    assert module.image.codeview.pdb_name == "trackdemo.pdb"


def test_a_target_that_never_answers_the_search_is_read_instead_and_not_asked_again(
        console, monkeypatch):
    from kdcon.protocol.errors import TargetTimeout

    asked = []

    def silent(start, length, pattern):
        asked.append(pattern)
        raise TargetTimeout("DbgKdSearchMemoryApi: no reply from the target after 3 tries")

    monkeypatch.setattr(console.session.host, "search_memory", silent)
    module, trips, _ = _identify(console)
    assert asked == [b"RSDS"]
    assert module.state.value == "private pdb symbols"
    assert trips == 3        # the header walk, as when the search is refused
    assert module.search(0, 0x1000, b"RSDS") is None
    assert asked == [b"RSDS"] and not console.session.target_searches
