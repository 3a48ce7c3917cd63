"""Symbol path strings: plain directories, srv/symsrv chains, cache*, HTTP stores."""

from __future__ import annotations

import pytest

from kdcon.symbols.errors import SymbolPathError
from kdcon.symbols.path import CacheElement, DirElement, StoreChain, SymbolPath


def test_plain_directories_are_split_on_semicolons_and_blanks_dropped():
    path = SymbolPath.parse("/sym/a; ;/sym/b;")
    assert path.elements == (DirElement("/sym/a"), DirElement("/sym/b"))


def test_srv_chain_keeps_stores_in_order_with_http_unreachable_only_when_offline():
    path = SymbolPath.parse("srv*/cache*https://msdl.example/download/symbols")
    assert path.elements == (StoreChain(("/cache", "https://msdl.example/download/symbols")),)
    assert path.unreachable() == [] and path.problems == ()
    offline = SymbolPath.parse("srv*/cache*https://msdl.example/download/symbols", http_enabled=False)
    assert offline.unreachable() == ["https://msdl.example/download/symbols"]
    assert any("not contacted" in p for p in offline.problems)
    assert path.local_roots() == ["/cache"]


def test_symsrv_dll_form_is_the_same_chain():
    path = SymbolPath.parse("symsrv*symsrv.dll*/down*/store")
    assert path.elements[0].stores == ("/down", "/store")


def test_empty_store_token_means_default_cache():
    path = SymbolPath.parse("srv**/store", default_cache="/home/u/sym")
    assert path.elements[0].stores == ("/home/u/sym", "/store")
    no_default = SymbolPath.parse("srv**/store")
    assert no_default.elements[0].stores == ("/store",)
    assert no_default.problems


def test_cache_element_with_and_without_directory():
    path = SymbolPath.parse("cache*/c;/plain;cache*", default_cache="/d")
    assert path.elements == (CacheElement("/c"), DirElement("/plain"), CacheElement("/d"))


def test_windows_separators_in_directories_become_posix():
    path = SymbolPath.parse(r"sym\tree;srv*sym\cache*sym\store")
    assert path.elements[0] == DirElement("sym/tree")
    assert path.elements[1].stores == ("sym/cache", "sym/store")


def test_alt_path_comes_before_the_main_path():
    path = SymbolPath.from_environment({"_NT_SYMBOL_PATH": "/main", "_NT_ALT_SYMBOL_PATH": "/alt"})
    assert [str(e) for e in path.elements] == ["/alt", "/main"]


def test_unknown_star_element_and_empty_srv_are_errors():
    with pytest.raises(SymbolPathError):
        SymbolPath.parse("foo*bar")
    with pytest.raises(SymbolPathError):
        SymbolPath.parse("srv*")
    with pytest.raises(SymbolPathError):
        SymbolPath.parse("symsrv*symsrv.dll")


def test_round_trip_and_concatenation():
    path = SymbolPath.parse("/a;srv*/b*/c") + SymbolPath.parse("cache*/d")
    assert str(path) == "/a;srv*/b*/c;cache*/d"
