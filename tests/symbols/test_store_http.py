"""HTTP(S) symbol stores in srv* chains, against a symbol server the test runs on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import threading
import time

import pytest

from kdcon.symbols import http
from kdcon.symbols.http import DownloadCancelled, HttpOptions, forget_unreachable
from kdcon.symbols.match import guid_hex
from kdcon.symbols.module import SymbolState
from kdcon.symbols.path import MICROSOFT_SYMBOL_SERVER, StoreChain, SymbolPath, symfix_path
from kdcon.symbols.pe import read_image
from kdcon.symbols.session import SymbolSession
from kdcon.symbols.store import symsrv_files

from .http_fixtures import PREFIX, Route, SymbolServer, self_signed
from .lzx_encoder import ALIGNED, lzx_cab
from .store_fixtures import put
from .test_store_cab_fixtures import HAL_PDB, KERNEL_EXE, KERNEL_PDB, gcab

BASE64 = 0xFFFFF80000000000
FAST = HttpOptions(timeout=5.0)
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_network_state(monkeypatch, tmp_path):
    """No proxy from the developer's environment, a private XDG cache, no memory of dead servers."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    forget_unreachable()
    yield
    forget_unreachable()


@pytest.fixture(scope="module")
def kernel():
    image = read_image(KERNEL_EXE)
    identity = image.identity
    return image, f"{guid_hex(identity.guid)}{identity.age:x}"


@pytest.fixture
def store(tmp_path):
    return str(tmp_path / "served")


@pytest.fixture
def server(store):
    os.makedirs(store, exist_ok=True)
    with SymbolServer(store) as running:
        yield running


def _pdb_route(key: str, name: str = "ntoskrnl.pdb") -> str:
    return f"{PREFIX}/ntoskrnl.pdb/{key}/{name}"


def _serve_pdb(store: str, key: str) -> None:
    put(os.path.join(store, "ntoskrnl.pdb", key, "ntoskrnl.pdb"), open(KERNEL_PDB, "rb").read())


def _load(path: SymbolPath | str, image):
    session = SymbolSession(path)
    module = session.add_module("ntoskrnl.exe", BASE64, image.identity.size_of_image, image=image)
    return session, module.load()


def _leftovers(directory) -> list[str]:
    found = []
    for top, _, files in os.walk(directory):
        found += [os.path.join(top, f) for f in files if f.startswith(".kdcon-") or f.endswith("_")]
    return found


def test_a_pdb_lands_in_the_cache_to_the_servers_left_and_is_not_fetched_twice(tmp_path, server, store, kernel):
    image, key = kernel
    _serve_pdb(store, key)
    cache = tmp_path / "cache"
    path = SymbolPath.parse(f"srv*{cache}*{server.url}", http=FAST)
    _, module = _load(path, image)
    expected = cache / "ntoskrnl.pdb" / key / "ntoskrnl.pdb"
    assert module.state is SymbolState.PRIVATE_PDB and module.symbol_file == str(expected)
    assert expected.read_bytes() == open(KERNEL_PDB, "rb").read()
    assert server.paths() == [_pdb_route(key)]
    assert server.seen[0].headers["User-Agent"] == "Microsoft-Symbol-Server/10.0.0.0"
    assert _leftovers(cache) == []
    _, again = _load(path, image)
    assert again.symbol_file == str(expected) and server.paths() == [_pdb_route(key)]


@pytest.mark.parametrize("form", ["cache-element", "default-store"])
def test_cache_elements_and_the_default_store_receive_downloads(tmp_path, server, store, kernel, form):
    image, key = kernel
    _serve_pdb(store, key)
    if form == "cache-element":
        text, cache = f"cache*{tmp_path / 'c'};srv*{server.url}", tmp_path / "c"
    else:
        text, cache = f"srv*{server.url}", tmp_path / "xdg" / "kdcon" / "sym"
    _, module = _load(SymbolPath.parse(text, http=FAST), image)
    assert module.symbol_file == str(cache / "ntoskrnl.pdb" / key / "ntoskrnl.pdb")
    _, again = _load(SymbolPath.parse(text, http=FAST), image)
    assert again.state is SymbolState.PRIVATE_PDB and server.paths() == [_pdb_route(key)]


def _packed_kernel_pdb(directory: str, how: str) -> str:
    if how == "mszip":
        return gcab(directory, KERNEL_PDB, compress=True)
    data = open(KERNEL_PDB, "rb").read()
    return put(os.path.join(directory, "ntoskrnl.pd_"), lzx_cab("ntoskrnl.pdb", data, [(ALIGNED, 1 << 20)]))


@pytest.mark.parametrize("how", ["mszip", "lzx"])
def test_a_compressed_entry_is_fetched_when_the_plain_one_is_missing(tmp_path, server, store, kernel, how):
    image, key = kernel
    _packed_kernel_pdb(os.path.join(store, "ntoskrnl.pdb", key), how)
    cache = tmp_path / "cache"
    found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(cache), http=FAST))
    expected = cache / "ntoskrnl.pdb" / key / "ntoskrnl.pdb"
    assert [(h.how, h.path) for h in found] == [("http", str(expected))]
    assert expected.read_bytes() == open(KERNEL_PDB, "rb").read()
    assert server.paths() == [_pdb_route(key), _pdb_route(key, "ntoskrnl.pd_")]
    assert _leftovers(cache) == [] and sorted(os.listdir(expected.parent)) == ["ntoskrnl.pdb"]
    _, module = _load(SymbolPath.parse(f"srv*{cache}*{server.url}", http=FAST), image)
    assert module.state is SymbolState.PRIVATE_PDB and len(server.paths()) == 2


def test_file_ptr_path_is_followed_into_the_symbol_path_only(tmp_path, server, store, kernel, caplog):
    image, key = kernel
    builds = tmp_path / "builds"
    real = shutil.copyfile(KERNEL_PDB, builds.mkdir() or builds / "ntoskrnl.pdb")
    put(os.path.join(store, "ntoskrnl.pdb", key, "file.ptr"), f"PATH:{real}".encode())
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        outside = list(symsrv_files(server.url, "ntoskrnl.pdb", key, [str(cache)], expand_into=str(cache), http=FAST))
    assert outside == [] and any("outside the symbol path" in r.getMessage() for r in caplog.records)
    assert server.paths()[-1] == _pdb_route(key, "file.ptr")
    _, module = _load(SymbolPath.parse(f"srv*{cache}*{server.url};{builds}", http=FAST), image)
    assert module.state is SymbolState.PRIVATE_PDB
    # The pointer's target is the hit, and a copy goes into the cache to the server's left.
    assert (cache / "ntoskrnl.pdb" / key / "ntoskrnl.pdb").read_bytes() == open(KERNEL_PDB, "rb").read()


def test_file_ptr_message_is_shown_and_nothing_is_found(tmp_path, server, store, kernel, caplog):
    _, key = kernel
    put(os.path.join(store, "ntoskrnl.pdb", key, "file.ptr"), b"MSG: This file was withdrawn by its vendor")
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=FAST))
    assert found == []
    assert [r.getMessage() for r in caplog.records] == \
        [f"{server.url}/ntoskrnl.pdb/{key}/file.ptr: This file was withdrawn by its vendor"]


def test_a_file_the_server_lacks_costs_three_requests_and_no_warning(tmp_path, server, kernel, caplog):
    image, key = kernel
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=FAST))
    assert found == [] and caplog.records == []
    assert server.paths() == [_pdb_route(key), _pdb_route(key, "ntoskrnl.pd_"), _pdb_route(key, "file.ptr")]
    _, module = _load(SymbolPath.parse(f"srv*{tmp_path / 'c'}*{server.url}", http=FAST), image)
    assert module.state is SymbolState.EXPORT


def test_redirects_are_followed_within_the_limit(tmp_path, server, store, kernel, caplog):
    _, key = kernel
    _serve_pdb(store, key)
    elsewhere = f"{PREFIX}/blobs/0/1"
    server.routes[elsewhere] = Route(302, headers={"Location": _pdb_route(key)})
    server.routes[_pdb_route(key)] = Route(302, headers={"Location": server.base + elsewhere})
    # A redirect chain of two: allowed by the default limit, refused by a limit of one.
    limited = dataclasses.replace(FAST, max_redirects=1)
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        assert list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "a"),
                                 http=limited)) == []
    assert any("HTTP 302" in r.getMessage() for r in caplog.records)
    del server.routes[_pdb_route(key)]
    server.routes[_pdb_route(key)] = Route(302, headers={"Location": server.base + elsewhere})
    server.routes[elsewhere] = Route(200, open(KERNEL_PDB, "rb").read())
    found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "b"), http=limited))
    assert [h.how for h in found] == ["http"]


def test_a_redirect_loop_ends_after_the_limit(tmp_path, server, kernel, caplog):
    _, key = kernel
    server.routes[_pdb_route(key)] = Route(302, headers={"Location": f"{server.base}{PREFIX}/loop/a"})
    server.routes[f"{PREFIX}/loop/a"] = Route(302, headers={"Location": f"{server.base}{PREFIX}/loop/b"})
    server.routes[f"{PREFIX}/loop/b"] = Route(302, headers={"Location": f"{server.base}{PREFIX}/loop/a"})
    options = dataclasses.replace(FAST, max_redirects=3)
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=options))
    assert found == []
    first = [p for p in server.paths() if p == _pdb_route(key) or p.startswith(f"{PREFIX}/loop/")]
    assert len(first) == 1 + 3
    assert any("HTTP 302 more than 3 redirects" in r.getMessage() for r in caplog.records)


def test_a_redirect_to_another_scheme_is_refused(tmp_path, server, kernel, caplog):
    _, key = kernel
    server.routes[_pdb_route(key)] = Route(302, headers={"Location": "ftp://127.0.0.1/ntoskrnl.pdb"})
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        assert list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=FAST)) == []
    assert any("redirect to a ftp URL refused" in r.getMessage() for r in caplog.records)


def test_a_silent_server_times_out_and_is_left_alone_afterwards(tmp_path, server, kernel, caplog):
    image, key = kernel
    server.routes[_pdb_route(key)] = Route(stall=True)
    options = HttpOptions(timeout=0.5)
    path = SymbolPath.parse(f"srv*{tmp_path / 'c'}*{server.url}", http=options)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=options))
    elapsed = time.monotonic() - started
    # The request reaches the server even when the machine is slow to let it in.
    assert found == [] and server.stalled.wait(10)
    assert elapsed < 10, elapsed          # the server would have held it for 60 s
    assert path.unreachable() == [server.url]
    assert any("unreachable (no answer within 0.5 s)" in r.getMessage() for r in caplog.records)
    asked = len(server.paths())
    _, module = _load(path, image)
    assert module.state is SymbolState.EXPORT and len(server.paths()) == asked
    forget_unreachable(server.url)
    assert path.unreachable() == []


def test_a_body_cut_short_leaves_nothing_in_the_cache(tmp_path, server, kernel, caplog):
    _, key = kernel
    data = open(KERNEL_PDB, "rb").read()
    server.routes[_pdb_route(key)] = Route(200, data, cut_after=len(data) // 2)
    cache = tmp_path / "c"
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(cache), http=FAST))
    assert found == [] and not (cache / "ntoskrnl.pdb").exists()
    assert _leftovers(cache) == []
    assert any(f"connection closed after {len(data) // 2} of {len(data)} bytes" in r.getMessage()
               for r in caplog.records)
    # A broken transfer is not a dead server: the next lookup asks again, and succeeds.
    server.routes[_pdb_route(key)] = Route(200, data)
    found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(cache), http=FAST))
    assert [h.how for h in found] == ["http"]


@pytest.mark.parametrize("served,words", [("other-pdb", "own key is"), ("garbage", "not an image, DBG or PDB")])
def test_a_download_that_is_not_the_file_its_key_names_is_not_kept(tmp_path, server, store, kernel, caplog,
                                                                   served, words):
    _, key = kernel
    body = open(HAL_PDB, "rb").read() if served == "other-pdb" else b"<html>Service unavailable</html>" * 99
    server.routes[_pdb_route(key)] = Route(200, body)
    cache = tmp_path / "c"
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        found = list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(cache), http=FAST))
    assert found == [] and not (cache / "ntoskrnl.pdb").exists()
    assert any(words in r.getMessage() for r in caplog.records)


def test_a_damaged_copy_in_the_cache_is_fetched_again(tmp_path, server, store, kernel):
    image, key = kernel
    _serve_pdb(store, key)
    cache = tmp_path / "c"
    put(str(cache / "ntoskrnl.pdb" / key / "ntoskrnl.pdb"), b"Microsoft C/C++ MSF 7.00\r\n\x1aDS" + bytes(100))
    _, module = _load(SymbolPath.parse(f"cache*{cache};srv*{server.url}", http=FAST), image)
    assert module.state is SymbolState.PRIVATE_PDB and server.paths() == [_pdb_route(key)]
    assert (cache / "ntoskrnl.pdb" / key / "ntoskrnl.pdb").read_bytes() == open(KERNEL_PDB, "rb").read()


def test_progress_is_reported_after_every_chunk_up_to_the_total(tmp_path, server, store, kernel):
    _, key = kernel
    _serve_pdb(store, key)
    seen: list[tuple[int, int | None]] = []
    options = HttpOptions(timeout=5.0, chunk_size=16384, progress=lambda done, total: seen.append((done, total)))
    assert list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=options))
    size = os.path.getsize(KERNEL_PDB)
    assert seen[0] == (0, size) and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 1 + size // 16384


def test_a_body_without_length_is_bounded_by_the_size_limit(tmp_path, server, kernel, caplog):
    _, key = kernel
    server.routes[_pdb_route(key)] = Route(200, open(KERNEL_PDB, "rb").read(), no_length=True)
    options = HttpOptions(timeout=5.0, max_bytes=50000)
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        assert list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=options)) == []
    assert any("more than the 50000-byte limit" in r.getMessage() for r in caplog.records)
    assert _leftovers(tmp_path / "c") == []


def test_a_declared_length_over_the_limit_is_refused_before_reading(tmp_path, server, store, kernel, caplog):
    _, key = kernel
    _serve_pdb(store, key)
    options = HttpOptions(timeout=5.0, max_bytes=1000, progress=lambda *a: pytest.fail("read a body"))
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        assert list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=options)) == []
    assert any(f"{os.path.getsize(KERNEL_PDB)} bytes exceed the 1000-byte limit" in r.getMessage()
               for r in caplog.records)


def test_cancelling_mid_body_raises_out_of_reload_and_keeps_nothing(tmp_path, server, store, kernel):
    image, key = kernel
    _serve_pdb(store, key)
    chunks = []
    options = HttpOptions(timeout=5.0, chunk_size=8192, progress=lambda done, total: chunks.append(done),
                          cancelled=lambda: len(chunks) > 2)
    cache = tmp_path / "c"
    session = SymbolSession(SymbolPath.parse(f"srv*{cache}*{server.url}", http=options))
    module = session.add_module("ntoskrnl.exe", BASE64, image.identity.size_of_image, image=image)
    with pytest.raises(DownloadCancelled):
        session.reload(load=True)
    assert module.state is SymbolState.DEFERRED
    assert not (cache / "ntoskrnl.pdb").exists() and _leftovers(cache) == []


def test_cancelling_while_the_server_is_silent_returns_promptly(tmp_path, server, kernel):
    _, key = kernel
    server.routes[_pdb_route(key)] = Route(stall=True)
    options = HttpOptions(timeout=60.0, cancelled=server.stalled.is_set)
    started = time.monotonic()
    with pytest.raises(DownloadCancelled):
        list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=options))
    assert time.monotonic() - started < 10


def test_cancelled_before_asking_makes_no_request(tmp_path, server, kernel):
    _, key = kernel
    options = HttpOptions(cancelled=lambda: True)
    with pytest.raises(DownloadCancelled):
        list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=options))
    assert server.paths() == []


def test_a_server_error_is_one_warning_and_not_a_dead_server(tmp_path, server, kernel, caplog):
    _, key = kernel
    server.routes[_pdb_route(key)] = Route(503, b"busy")
    with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
        assert list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=FAST)) == []
    assert [r.getMessage() for r in caplog.records] == \
        [f"{server.url}/ntoskrnl.pdb/{key}/ntoskrnl.pdb: HTTP 503 Service Unavailable"]
    assert SymbolPath.parse(f"srv*{server.url}").unreachable() == []


def test_the_proxy_from_the_environment_is_used(tmp_path, server, store, kernel, monkeypatch):
    _, key = kernel
    _serve_pdb(store, key)
    monkeypatch.setenv("http_proxy", server.base)
    remote = f"http://symbols.example.invalid{PREFIX}"
    found = list(symsrv_files(remote, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "c"), http=FAST))
    assert [h.how for h in found] == ["http"] and server.seen[0].proxied
    # An explicit empty proxy table overrides the environment: the made-up host is then unknown.
    options = HttpOptions(timeout=5.0, proxies={})
    assert list(symsrv_files(remote, "hal.pdb", key, expand_into=str(tmp_path / "c"), http=options)) == []
    assert len(server.seen) == 1


def test_network_stores_can_be_turned_off(tmp_path, server, store, kernel):
    image, key = kernel
    _serve_pdb(store, key)
    path = SymbolPath.parse(f"srv*{tmp_path / 'c'}*{server.url}", http_enabled=False)
    assert path.unreachable() == [server.url] and any("not contacted" in p for p in path.problems)
    _, module = _load(path, image)
    assert module.state is SymbolState.EXPORT and server.paths() == []
    online = dataclasses.replace(path, http_enabled=True, http=FAST)
    assert _load(online, image)[1].state is SymbolState.PRIVATE_PDB


def test_https_store_with_a_trusted_certificate_and_one_without(tmp_path, kernel, caplog):
    image, key = kernel
    server_tls, client_tls = self_signed(str(tmp_path / "tls"))
    store = tmp_path / "served"
    _serve_pdb(str(store), key)
    with SymbolServer(str(store), tls=server_tls) as secure:
        assert secure.url.startswith("https://127.0.0.1:")
        with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
            untrusted = list(symsrv_files(secure.url, "ntoskrnl.pdb", key, expand_into=str(tmp_path / "a"),
                                          http=FAST))
        assert untrusted == [] and any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)
        forget_unreachable()
        options = HttpOptions(timeout=5.0, ssl_context=client_tls)
        _, module = _load(SymbolPath.parse(f"srv*{tmp_path / 'b'}*{secure.url}", http=options), image)
        assert module.state is SymbolState.PRIVATE_PDB
        assert secure.paths()[-1] == _pdb_route(key)


def test_symfix_path_names_the_microsoft_server_behind_a_cache(tmp_path):
    assert symfix_path("/sym/cache") == "srv*/sym/cache*https://msdl.microsoft.com/download/symbols"
    default = tmp_path / "xdg" / "kdcon" / "sym"
    assert symfix_path() == f"srv*{default}*{MICROSOFT_SYMBOL_SERVER}"
    assert http.symfix_path is symfix_path            # what the console's .symfix calls
    path = SymbolPath.parse(symfix_path(r"C:\symbols"))
    assert path.elements == (StoreChain(("C:/symbols", MICROSOFT_SYMBOL_SERVER)),) and path.problems == ()


def test_downloads_from_several_threads_do_not_collide(tmp_path, server, store, kernel):
    _, key = kernel
    _serve_pdb(store, key)
    cache = tmp_path / "c"
    results: list[list] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(list(symsrv_files(server.url, "ntoskrnl.pdb", key, expand_into=str(cache), http=FAST)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(results) == 3 and all(len(r) == 1 for r in results)
    assert (cache / "ntoskrnl.pdb" / key / "ntoskrnl.pdb").read_bytes() == open(KERNEL_PDB, "rb").read()
    assert _leftovers(cache) == []
