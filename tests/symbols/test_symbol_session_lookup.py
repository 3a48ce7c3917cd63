"""Finding and loading symbols through a path: trees, stores, matching, states, ln/x answers."""

from __future__ import annotations

import logging
import os
import struct

import pytest

from kdcon.symbols.match import guid_hex
from kdcon.symbols.module import SymbolState, candidate_names, module_name_for
from kdcon.symbols.path import SymbolPath
from kdcon.symbols.pe import read_image
from kdcon.render.symbols import render_ln, render_x
from kdcon.symbols.session import SymbolSession

from .store_fixtures import build_lld_driver, copy, nt4_pair, put

BASE32 = 0x80400000
BASE64 = 0xFFFFF80312340000


def _kernel(session, pair, image_name="ntoskrnl.exe"):
    return session.add_module(image_name, BASE32, pair.size_of_image, timestamp=pair.timestamp,
                              checksum=pair.checksum)


def test_module_names_and_candidates_cover_kernel_and_hal_aliases():
    assert module_name_for("ntkrnlmp.exe") == "nt" and module_name_for("halacpi.dll") == "hal"
    assert module_name_for(r"\SystemRoot\system32\drivers\Ntfs.sys") == "Ntfs"
    names = candidate_names("ntoskrnl.exe", None)
    assert names[:2] == ["ntoskrnl.dbg", "ntoskrnl.pdb"] and "ntkrnlmp.dbg" in names
    assert "halmps.dbg" in candidate_names("hal.dll", None)


def test_classic_tree_gives_coff_symbols_and_windbg_text(tmp_path):
    pair = nt4_pair()
    put(str(tmp_path / "symbols" / "exe" / "ntoskrnl.dbg"), pair.dbg)
    session = SymbolSession(str(tmp_path), pointer_size=4)
    module = _kernel(session, pair)
    assert module.state is SymbolState.DEFERRED
    assert session.name_for(BASE32 + 0x1110) == "nt!_KeBugCheckEx@20+0x10"
    assert module.state is SymbolState.COFF and module.letter == ""
    assert module.symbol_file.endswith(os.path.join("symbols", "exe", "ntoskrnl.dbg"))
    assert render_ln(session.near(BASE32 + 0x1100), 4) == (
        "(80401100)   nt!_KeBugCheckEx@20   |  (80401200)   nt!@KfAcquireSpinLock@4\n"
        "Exact matches:\n    nt!_KeBugCheckEx@20 (<no parameter info>)\n")
    assert "past the end of nt!_KeBugCheckEx@20" in render_ln(session.near(BASE32 + 0x1150), 4)
    assert render_x(session.match("nt!Ke*"), 4) == "80401100 nt!_KeBugCheckEx@20 (<no parameter info>)\n"
    assert session.address_of("nt!KfAcquireSpinLock") == BASE32 + 0x1200
    assert session.address_of("KiServiceTable") == BASE32 + 0x3020
    assert [m.qualified for m in session.match("*!*Spin*")] == ["nt!@KfAcquireSpinLock@4"]
    assert session.match("n?!KiServiceTable")[0].address == BASE32 + 0x3020
    assert "(coff symbols)" in module.status()


def test_checked_and_free_trees_side_by_side_pick_the_matching_flavour(tmp_path):
    free = nt4_pair(timestamp=0x11111111)
    checked = nt4_pair(timestamp=0x22222222, symbols=(("_KeBugCheckEx@20", 1, 0x180),))
    put(str(tmp_path / "free" / "symbols" / "exe" / "ntoskrnl.dbg"), free.dbg)
    put(str(tmp_path / "checked" / "symbols" / "exe" / "ntoskrnl.dbg"), checked.dbg)
    session = SymbolSession(f"{tmp_path / 'free'};{tmp_path / 'checked'}", pointer_size=4)
    module = _kernel(session, checked)
    assert session.name_for(BASE32 + 0x1180) == "nt!_KeBugCheckEx@20"
    assert "checked" in module.symbol_file
    tried = dict(module.searches)["ntoskrnl.dbg"].candidates
    assert [c.match.letter for c in tried] == ["#", ""]
    assert "timestamp 11111111 != 22222222" in tried[0].match.reasons


def test_mismatch_is_refused_unless_forced_then_marked_m(tmp_path):
    pair = nt4_pair()
    wrong = nt4_pair(checksum=0x999)
    put(str(tmp_path / "exe" / "ntoskrnl.dbg"), wrong.dbg)
    session = SymbolSession(str(tmp_path), pointer_size=4)
    module = _kernel(session, pair)
    module.load()
    assert module.state is SymbolState.NONE and session.name_for(BASE32 + 0x1100) == "nt+0x1100"
    module.load(force=True)
    assert module.state is SymbolState.COFF and module.letter == "M"
    assert module.status().startswith("M (coff symbols)")


def test_case_insensitive_tree_entries_and_aliases(tmp_path):
    pair = nt4_pair()
    put(str(tmp_path / "SYMBOLS" / "EXE" / "NTKRNLMP.DBG"), pair.dbg)
    session = SymbolSession(str(tmp_path), pointer_size=4)
    module = _kernel(session, pair)
    assert session.name_for(BASE32 + 0x1100) == "nt!_KeBugCheckEx@20"
    assert module.symbol_file.endswith("NTKRNLMP.DBG")


def test_corrupt_dbg_is_a_warning_and_no_symbols(tmp_path, caplog):
    pair = nt4_pair()
    put(str(tmp_path / "exe" / "ntoskrnl.dbg"), pair.dbg[:70])
    session = SymbolSession(str(tmp_path), pointer_size=4)
    module = _kernel(session, pair)
    with caplog.at_level(logging.WARNING):
        assert session.name_for(BASE32 + 0x1100) == "nt+0x1100"
    assert module.state is SymbolState.NONE
    assert any("ntoskrnl.dbg" in r.getMessage() for r in caplog.records)


def test_dbg_in_symsrv_store_by_timestamp_and_size(tmp_path):
    pair = nt4_pair()
    key = f"{pair.timestamp:08X}{pair.size_of_image:x}"
    put(str(tmp_path / "store" / "ntoskrnl.dbg" / key.lower() / "ntoskrnl.dbg"), pair.dbg)
    session = SymbolSession(f"srv*{tmp_path / 'store'}", pointer_size=4)
    _kernel(session, pair)
    assert session.name_for(BASE32 + 0x1200) == "nt!@KfAcquireSpinLock@4"


@pytest.fixture(scope="module")
def lld_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("lld")
    good = build_lld_driver(str(root / "good"))
    other = build_lld_driver(str(root / "other"), variant=1)
    return good, other


def _memory_reader(sys_path, age=None):
    data = bytearray(open(sys_path, "rb").read())
    image = read_image(bytes(data))
    if age is not None:
        at = data.find(b"RSDS")
        struct.pack_into("<I", data, at + 20, age)
    memory = bytearray(image.identity.size_of_image)
    memory[:0x400] = data[:0x400]
    import pefile
    for section in pefile.PE(data=bytes(data), fast_load=True).sections:
        raw = data[section.PointerToRawData:section.PointerToRawData + section.SizeOfRawData]
        memory[section.VirtualAddress:section.VirtualAddress + len(raw)] = raw
    return lambda rva, size: bytes(memory[rva:rva + size]) if 0 <= rva and rva + size <= len(memory) else None


def _pdb_key(sys_path):
    identity = read_image(sys_path).identity
    return f"{guid_hex(identity.guid)}{identity.age:x}"


def test_symsrv_pdb_by_guid_and_age_gives_private_symbols(tmp_path, lld_pair):
    (sys_path, pdb_path), _ = lld_pair
    store = tmp_path / "store"
    copy(pdb_path, str(store / "drv.pdb" / _pdb_key(sys_path) / "drv.pdb"))
    session = SymbolSession(f"srv*{store}")
    module = session.add_module("drv.sys", BASE64, 0x5000, read=_memory_reader(sys_path))
    assert session.name_for(BASE64 + 0x1005) == "drv!DemoExported+0x5"
    assert module.state is SymbolState.PRIVATE_PDB and module.letter == ""
    assert session.address_of("drv!DemoCallback") is not None      # a static: module streams only
    assert render_ln(session.near(BASE64 + 0x1000)).startswith("(fffff803`12341000)   drv!DemoExported   |  ")
    demo = session.find_type("drv!_DEMO")
    assert demo.size == 32 and [f.name for f in demo.fields] == ["A", "B", "Next", "Bits"]
    assert session.find_type("_DEMO") is not None and session.find_type("drv!_NOPE") is None
    assert session.find_type("nomodule!_DEMO") is None


def test_pdb_with_another_guid_under_the_right_key_is_refused(tmp_path, lld_pair):
    (sys_path, _), (_, other_pdb) = lld_pair
    store = tmp_path / "store"
    copy(other_pdb, str(store / "drv.pdb" / _pdb_key(sys_path) / "drv.pdb"))
    session = SymbolSession(f"srv*{store}")
    module = session.add_module("drv.sys", BASE64, 0x5000, read=_memory_reader(sys_path))
    module.load()
    assert module.state is SymbolState.EXPORT
    assert session.name_for(BASE64 + 0x1005) == "drv!DemoExported+0x5"
    refused = [c for _, found in module.searches for c in found.candidates]
    assert refused and refused[0].match.letter == "#" and "GUID" in refused[0].match.reasons[0]


def test_pdb_with_another_age_is_refused_and_forced_load_marks_m(tmp_path, lld_pair):
    (sys_path, pdb_path), _ = lld_pair
    copy(pdb_path, str(tmp_path / "sym" / "drv.pdb"))
    session = SymbolSession(str(tmp_path / "sym"))
    module = session.add_module("drv.sys", BASE64, 0x5000, read=_memory_reader(sys_path, age=2))
    module.load()
    assert module.state is SymbolState.EXPORT
    reasons = [r for _, f in module.searches for c in f.candidates for r in c.match.reasons]
    assert any(r.startswith("age 1 != 2") for r in reasons)
    module.load(force=True)
    assert module.state is SymbolState.PRIVATE_PDB and module.letter == "M"


def test_two_tier_store_cache_copy_and_unreachable_http(tmp_path, lld_pair):
    (sys_path, pdb_path), _ = lld_pair
    store, cache = tmp_path / "store", tmp_path / "cache"
    put(str(store / "index2.txt"), b"")
    copy(pdb_path, str(store / "dr" / "drv.pdb" / _pdb_key(sys_path).lower() / "drv.pdb"))
    session = SymbolSession(SymbolPath.parse(f"srv*{cache}*{store}*https://msdl.example.invalid/download/symbols",
                                             http_enabled=False))
    assert session.path.unreachable() == ["https://msdl.example.invalid/download/symbols"]
    module = session.add_module("drv.sys", BASE64, 0x5000, read=_memory_reader(sys_path))
    module.load()
    assert module.state is SymbolState.PRIVATE_PDB
    assert (cache / "drv.pdb" / _pdb_key(sys_path) / "drv.pdb").read_bytes() == open(pdb_path, "rb").read()


def test_file_ptr_inside_the_path_is_followed_and_outside_is_not(tmp_path, lld_pair):
    (sys_path, pdb_path), _ = lld_pair
    builds = tmp_path / "builds"
    real = copy(pdb_path, str(builds / "drv.pdb"))
    store = tmp_path / "store"
    put(str(store / "drv.pdb" / _pdb_key(sys_path) / "file.ptr"), real.encode())
    outside = SymbolSession(f"srv*{store}")
    module = outside.add_module("drv.sys", BASE64, 0x5000, read=_memory_reader(sys_path))
    assert module.load().state is SymbolState.EXPORT
    inside = SymbolSession(f"{builds}/nowhere;srv*{store};{tmp_path / 'builds'}")
    module = inside.add_module("drv.sys", BASE64, 0x5000, read=_memory_reader(sys_path))
    assert module.load().state is SymbolState.PRIVATE_PDB


def test_image_in_store_supplies_identity_when_memory_is_unreadable(tmp_path, lld_pair):
    (sys_path, pdb_path), _ = lld_pair
    identity = read_image(sys_path).identity
    key = f"{identity.timestamp:08X}{identity.size_of_image:x}"
    store = tmp_path / "store"
    copy(sys_path, str(store / "drv.sys" / key / "drv.sys"))
    copy(pdb_path, str(store / "drv.pdb" / _pdb_key(sys_path) / "drv.pdb"))
    session = SymbolSession(f"srv*{store}")
    module = session.add_module("drv.sys", BASE64, identity.size_of_image, timestamp=identity.timestamp,
                                read=lambda rva, size: None)
    assert module.load().state is SymbolState.PRIVATE_PDB


def test_exports_fallback_and_path_change_defers_again(tmp_path, lld_pair):
    (sys_path, pdb_path), _ = lld_pair
    session = SymbolSession(str(tmp_path / "empty"))
    module = session.add_module("drv.sys", BASE64, 0x5000, read=_memory_reader(sys_path))
    assert session.name_for(BASE64 + 0x1000) == "drv!DemoExported"
    assert module.state is SymbolState.EXPORT and "(export symbols)" in module.status()
    copy(pdb_path, str(tmp_path / "now" / "drv.pdb"))
    session.set_path(str(tmp_path / "now"))
    assert module.state is SymbolState.DEFERRED
    assert session.name_for(BASE64 + 0x1000) == "drv!DemoExported"
    assert module.state is SymbolState.PRIVATE_PDB


def test_module_lookup_by_address_and_patterns(tmp_path):
    session = SymbolSession(str(tmp_path))
    session.add_module("ntoskrnl.exe", 0x1000, 0x1000)
    session.add_module("hal.dll", 0x5000, 0x1000)
    session.add_module("ntfs.sys", 0x3000, 0x1000)
    assert [m.name for m in session.modules()] == ["nt", "ntfs", "hal"]
    assert session.module_for(0x3FFF).name == "ntfs" and session.module_for(0x4000) is None
    assert [m.name for m in session.modules("n*")] == ["nt", "ntfs"]
    assert session.module("HAL.DLL").name == "hal"
    session.remove_module(0x3000)
    assert session.module("ntfs") is None


def test_cache_element_copies_what_later_elements_find(tmp_path):
    pair = nt4_pair()
    key = f"{pair.timestamp:08X}{pair.size_of_image:x}"
    put(str(tmp_path / "tree" / "exe" / "ntoskrnl.dbg"), pair.dbg)
    session = SymbolSession(f"cache*{tmp_path / 'cache'};{tmp_path / 'tree'}", pointer_size=4)
    _kernel(session, pair).load()
    assert (tmp_path / "cache" / "ntoskrnl.dbg" / key / "ntoskrnl.dbg").read_bytes() == pair.dbg
    cached_only = SymbolSession(f"srv*{tmp_path / 'cache'}", pointer_size=4)
    assert _kernel(cached_only, pair).load().state is SymbolState.COFF


def test_unknown_timestamp_loads_a_size_match_marked_t(tmp_path):
    pair = nt4_pair()
    put(str(tmp_path / "exe" / "ntoskrnl.dbg"), pair.dbg)
    session = SymbolSession(str(tmp_path), pointer_size=4)
    module = session.add_module("ntoskrnl.exe", BASE32, pair.size_of_image, read=lambda rva, size: None)
    assert module.load().state is SymbolState.COFF and module.letter == "T"
    assert module.status().startswith("T (coff symbols)")
    other_size = session.add_module("ntoskrnl.exe", BASE32, pair.size_of_image + 0x1000)
    assert other_size.load().state is SymbolState.NONE


def test_a_reader_that_raises_counts_as_missing_pages(tmp_path, lld_pair):
    (sys_path, pdb_path), _ = lld_pair
    copy(pdb_path, str(tmp_path / "drv.pdb"))
    good = _memory_reader(sys_path)

    def flaky(rva, size):
        if rva >= 0x2000:
            raise TimeoutError("target did not answer")
        return good(rva, size)

    session = SymbolSession(str(tmp_path))
    module = session.add_module("drv.sys", BASE64, 0x5000, read=flaky)
    assert module.load().state is SymbolState.NONE       # the debug directory is unreadable
    broken = session.add_module("drv2.sys", BASE64 + 0x10000, 0x5000, read=lambda rva, size: 1 / 0)
    assert broken.load().state is SymbolState.NONE
