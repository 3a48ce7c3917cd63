"""Address and name indexes: nearest symbol, past the end, exact, decorated, wildcards."""

from __future__ import annotations

from kdcon.symbols.index import SymbolIndex, undecorate
from kdcon.symbols.model import SymbolKind, SymbolRecord


def _records():
    return [
        SymbolRecord("_KeBugCheck@4", 0x2000, SymbolKind.PUBLIC),
        SymbolRecord("KeBugCheckEx", 0x1000, SymbolKind.FUNCTION, size=0x40),
        SymbolRecord("KeBugCheckEx", 0x1000, SymbolKind.PUBLIC),
        SymbolRecord("@KfAcquireSpinLock@4", 0x3000, SymbolKind.PUBLIC),
        SymbolRecord("KiServiceTable", 0x5000, SymbolKind.DATA, size=0x10),
        SymbolRecord("?Method@Class@@QEAAXXZ", 0x6000, SymbolKind.PUBLIC),
        SymbolRecord("ExAllocatePool", 0x4000, SymbolKind.EXPORT),
    ]


def test_undecorate_strips_x86_c_decoration_only():
    assert undecorate("_KeBugCheck@4") == "KeBugCheck"
    assert undecorate("@KfAcquireSpinLock@4") == "KfAcquireSpinLock"
    assert undecorate("?Method@Class@@QEAAXXZ") == "?Method@Class@@QEAAXXZ"
    assert undecorate("Plain") == "Plain"


def test_duplicate_public_of_a_function_is_folded_into_the_function():
    index = SymbolIndex(_records())
    assert len(index) == 6
    assert index.at(0x1000)[0].kind is SymbolKind.FUNCTION


def test_lookup_gives_nearest_symbol_displacement_and_next():
    index = SymbolIndex(_records())
    hit = index.lookup(0x1010)
    assert hit.record.name == "KeBugCheckEx" and hit.displacement == 0x10 and not hit.past_end
    assert hit.next.name == "_KeBugCheck@4"
    assert index.lookup(0xFFF) is None
    last = index.lookup(0x7000)
    assert last.record.name.startswith("?Method") and last.next is None


def test_lookup_beyond_a_known_length_is_past_the_end():
    index = SymbolIndex(_records())
    assert index.lookup(0x1040).past_end
    assert index.lookup(0x103F).past_end is False
    assert index.lookup(0x2100).past_end is False  # public: length unknown


def test_exact_names_are_case_insensitive_and_accept_undecorated_forms():
    index = SymbolIndex(_records())
    assert [r.rva for r in index.find("kebugcheckex")] == [0x1000]
    assert [r.rva for r in index.find("KeBugCheck")] == [0x2000]
    assert [r.rva for r in index.find("_KeBugCheck@4")] == [0x2000]
    assert [r.rva for r in index.find("KfAcquireSpinLock")] == [0x3000]
    assert index.find("Nope") == []


def test_wildcards_match_raw_and_undecorated_names_in_address_order():
    index = SymbolIndex(_records())
    assert [r.rva for r in index.match("Ke*")] == [0x1000, 0x2000]
    assert [r.rva for r in index.match("*spin*")] == [0x3000]
    assert [r.rva for r in index.match("K?BugCheck")] == [0x2000]
    assert [r.rva for r in index.match("?Method@*")] == [0x6000]
    assert len(index.match("*")) == 6
    assert index.match("Z*") == []


def test_regex_characters_in_patterns_are_literal():
    index = SymbolIndex([SymbolRecord("a.b", 1, SymbolKind.PUBLIC), SymbolRecord("axb", 2, SymbolKind.PUBLIC)])
    assert [r.name for r in index.match("a.*")] == ["a.b"]
