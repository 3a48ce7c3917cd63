"""Compressed symsrv entries (name.pd_, name.db_, name.ex_): found, expanded once, cached, refused when bad."""

from __future__ import annotations

import logging
import os
import shutil
import struct

import pytest

from kdcon.symbols.match import guid_hex, wanted_pdb
from kdcon.symbols.module import SymbolState
from kdcon.symbols.pe import read_image
from kdcon.symbols.session import SymbolSession
from kdcon.symbols.store import default_expansion_root, symsrv_files
from kdcon.tools.symbols_cli import main as symbols_main

from .test_store_cab_fixtures import FOLDER, KERNEL_EXE, KERNEL_PDB, build_cab, gcab
from .store_fixtures import nt4_pair, put

BASE64 = 0xFFFFF80000000000
BASE32 = 0x80400000


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """Expansions go to a per-test XDG cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "kdcon" / "sym"


@pytest.fixture(scope="module")
def kernel():
    image = read_image(KERNEL_EXE)
    identity = image.identity
    return image, f"{guid_hex(identity.guid)}{identity.age:x}"


def _kernel_module(session, image):
    return session.add_module("ntoskrnl.exe", BASE64, image.identity.size_of_image, image=image)


def _store_with_packed_pdb(tmp_path, key, *, compress=True):
    store = tmp_path / "store"
    packed = gcab(str(store / "ntoskrnl.pdb" / key), KERNEL_PDB, compress=compress)
    return store, packed


@pytest.mark.parametrize("compress", [True, False], ids=["mszip", "stored"])
def test_packed_pdb_is_found_matched_and_loaded(tmp_path, cache_home, kernel, compress):
    image, key = kernel
    store, _ = _store_with_packed_pdb(tmp_path, key, compress=compress)
    session = SymbolSession(f"srv*{store}")
    module = _kernel_module(session, image)
    assert module.load().state is SymbolState.PRIVATE_PDB and module.letter == ""
    expanded = cache_home / "ntoskrnl.pdb" / key / "ntoskrnl.pdb"
    assert module.symbol_file == str(expanded)
    assert expanded.read_bytes() == open(KERNEL_PDB, "rb").read()
    assert session.address_of("nt!KeBugCheckEx") is not None
    found = session.locator.find("ntoskrnl.pdb", wanted_pdb(image.identity))
    assert [(c.how, c.match.exact) for c in found.candidates] == [("cab", True)]


def test_second_lookup_reuses_the_expansion_without_rewriting_it(tmp_path, cache_home, kernel):
    image, key = kernel
    store, packed = _store_with_packed_pdb(tmp_path, key)
    first = _kernel_module(SymbolSession(f"srv*{store}"), image).load()
    expanded = cache_home / "ntoskrnl.pdb" / key / "ntoskrnl.pdb"
    before = os.stat(expanded)
    second = _kernel_module(SymbolSession(f"srv*{store}"), image).load()
    after = os.stat(expanded)
    assert first.symbol_file == second.symbol_file == str(expanded)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # A newer entry (store updated in place) is expanded again.
    os.utime(packed, ns=(before.st_mtime_ns + 10**9, before.st_mtime_ns + 10**9))
    assert [h.how for h in symsrv_files(str(store), "ntoskrnl.pdb", key)] == ["cab"]
    assert os.stat(expanded).st_ino != before.st_ino


def test_a_damaged_expansion_is_replaced(tmp_path, cache_home, kernel):
    image, key = kernel
    store, _ = _store_with_packed_pdb(tmp_path, key)
    expanded = put(str(cache_home / "ntoskrnl.pdb" / key / "ntoskrnl.pdb"), b"half a file")
    assert _kernel_module(SymbolSession(f"srv*{store}"), image).load().state is SymbolState.PRIVATE_PDB
    assert open(expanded, "rb").read() == open(KERNEL_PDB, "rb").read()


def test_forced_load_and_check_see_packed_entries_under_other_keys(tmp_path, cache_home, kernel, capsys):
    image, key = kernel
    other = key[:-1] + "7"                       # filed under the wrong age: found only by a survey
    store, _ = _store_with_packed_pdb(tmp_path, other)
    module = _kernel_module(SymbolSession(f"srv*{store}"), image)
    assert module.load().state is SymbolState.EXPORT
    expanded = cache_home / "ntoskrnl.pdb" / other / "ntoskrnl.pdb"
    assert not expanded.exists()
    module.load(force=True)
    assert module.state is SymbolState.PRIVATE_PDB and module.symbol_file == str(expanded)
    assert symbols_main(["check", "-y", f"srv*{store}", KERNEL_EXE]) == 0
    assert f"{expanded}: matches" in capsys.readouterr().out


def test_downstream_store_receives_the_expanded_file(tmp_path, cache_home, kernel):
    image, key = kernel
    store, _ = _store_with_packed_pdb(tmp_path, key)
    downstream = tmp_path / "downstream"
    module = _kernel_module(SymbolSession(f"srv*{downstream}*{store}"), image).load()
    assert module.state is SymbolState.PRIVATE_PDB
    assert (downstream / "ntoskrnl.pdb" / key / "ntoskrnl.pdb").read_bytes() == open(KERNEL_PDB, "rb").read()
    assert not cache_home.exists()  # expanded straight into the downstream store, once
    again = _kernel_module(SymbolSession(f"srv*{downstream}*{store}"), image).load()
    assert again.symbol_file == str(downstream / "ntoskrnl.pdb" / key / "ntoskrnl.pdb")


def test_explicit_expansion_root_and_two_tier_layout(tmp_path, kernel):
    _, key = kernel
    store, _ = _store_with_packed_pdb(tmp_path, key)
    cache = tmp_path / "cache"
    put(str(cache / "index2.txt"), b"")
    hits = list(symsrv_files(str(store), "NTOSKRNL.PDB", key.lower(), expand_into=str(cache)))
    assert [(h.how, h.root) for h in hits] == [("cab", str(store))]
    assert hits[0].path == str(cache / "NT" / "NTOSKRNL.PDB" / key.lower() / "NTOSKRNL.PDB")
    assert not [p for p in cache.rglob(".kdcon-*")]


def test_packed_dbg_and_image_are_found_in_a_symsrv_store(tmp_path, cache_home):
    pair = nt4_pair()
    key = f"{pair.timestamp:08X}{pair.size_of_image:x}"
    source = put(str(tmp_path / "src" / "ntoskrnl.dbg"), pair.dbg)
    gcab(str(tmp_path / "store" / "ntoskrnl.dbg" / key), source, compress=True)
    session = SymbolSession(f"srv*{tmp_path / 'store'}", pointer_size=4)
    session.add_module("ntoskrnl.exe", BASE32, pair.size_of_image, timestamp=pair.timestamp,
                       checksum=pair.checksum)
    assert session.name_for(BASE32 + 0x1200) == "nt!@KfAcquireSpinLock@4"
    image_source = put(str(tmp_path / "src" / "ntoskrnl.exe"), pair.image)
    gcab(str(tmp_path / "store" / "ntoskrnl.exe" / key), image_source, compress=True)
    hits = list(symsrv_files(str(tmp_path / "store"), "ntoskrnl.exe", key))
    assert [h.how for h in hits] == ["cab"] and open(hits[0].path, "rb").read() == pair.image


def test_kdcon_symbols_check_passes_on_a_packed_pdb(tmp_path, cache_home, kernel, capsys):
    _, key = kernel
    store, _ = _store_with_packed_pdb(tmp_path, key)
    assert symbols_main(["check", "-y", f"srv*{store}", KERNEL_EXE]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and str(cache_home / "ntoskrnl.pdb" / key / "ntoskrnl.pdb") in out


def _damage(packed: str, how: str) -> None:
    data = bytearray(open(packed, "rb").read())
    data_at = struct.unpack_from("<I", data, FOLDER)[0]
    if how == "truncated":
        del data[len(data) // 2:]
    elif how == "header":
        struct.pack_into("<I", data, 0x10, 0x7FFFFFF0)           # coffFiles
    elif how == "checksum":
        struct.pack_into("<I", data, data_at, struct.unpack_from("<I", data, data_at)[0] ^ 0x1)
    elif how == "lzx":
        struct.pack_into("<H", data, FOLDER + 6, 0x1503)
    elif how == "wrong-name":
        data = bytearray(build_cab("hal.pdb", open(KERNEL_PDB, "rb").read()))
    with open(packed, "wb") as handle:
        handle.write(data)


@pytest.mark.parametrize("how,words", [("truncated", "truncated"), ("header", "file table"),
                                       ("checksum", "bad checksum"), ("lzx", "LZX-compressed store entry"),
                                       ("wrong-name", "holds 'hal.pdb', not 'ntoskrnl.pdb'")])
def test_bad_entry_is_one_warning_no_hit_and_the_search_goes_on(tmp_path, cache_home, kernel, caplog, how, words):
    image, key = kernel
    store, packed = _store_with_packed_pdb(tmp_path, key)
    _damage(packed, how)
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        assert list(symsrv_files(str(store), "ntoskrnl.pdb", key)) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(packed) and words in warnings[0]
    assert not (cache_home / "ntoskrnl.pdb" / key / "ntoskrnl.pdb").exists()
    assert not [p for p in cache_home.rglob(".kdcon-*")]
    # file.ptr in the same key folder is still followed.
    real = shutil.copyfile(KERNEL_PDB, tmp_path / "store" / "real.pdb")
    put(str(store / "ntoskrnl.pdb" / key / "file.ptr"), str(real).encode())
    assert [h.how for h in symsrv_files(str(store), "ntoskrnl.pdb", key)] == ["file.ptr"]
    module = _kernel_module(SymbolSession(f"srv*{store}"), image).load()
    assert module.state is SymbolState.PRIVATE_PDB and module.symbol_file == str(real)


def test_a_file_ptr_to_a_compressed_file_is_expanded_too(tmp_path, cache_home, kernel):
    image, key = kernel
    # symstore /p stores pointers; the file pointed at may be a compressed one.
    shares = tmp_path / "store" / "builds"
    packed = gcab(str(shares), KERNEL_PDB, compress=True)
    store = tmp_path / "store"
    put(str(store / "ntoskrnl.pdb" / key / "file.ptr"), str(packed).encode())
    hits = list(symsrv_files(str(store), "ntoskrnl.pdb", key))
    expanded = cache_home / "ntoskrnl.pdb" / key / "ntoskrnl.pdb"
    assert [(h.how, h.path) for h in hits] == [("cab", str(expanded))]
    module = _kernel_module(SymbolSession(f"srv*{store}"), image).load()
    assert module.state is SymbolState.PRIVATE_PDB and module.symbol_file == str(expanded)


def test_expansion_never_writes_outside_the_cache_root(tmp_path, kernel, caplog):
    _, key = kernel
    store, _ = _store_with_packed_pdb(tmp_path, key)
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    cache.mkdir()
    outside.mkdir()
    os.symlink(outside, cache / "ntoskrnl.pdb")
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        assert list(symsrv_files(str(store), "ntoskrnl.pdb", key, expand_into=str(cache))) == []
    assert list(outside.iterdir()) == []
    assert "leads outside" in caplog.text


def test_default_expansion_root_follows_xdg_then_home(tmp_path):
    assert default_expansion_root({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == os.path.join("/c", "kdcon", "sym")
    under_home = os.path.join("/h", ".cache", "kdcon", "sym")
    assert default_expansion_root({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == under_home
    assert default_expansion_root({"HOME": "/h"}) == under_home
