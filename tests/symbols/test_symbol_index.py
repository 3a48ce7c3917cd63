"""Address and name indexes: nearest symbol, past the end, exact, decorated, wildcards."""

from __future__ import annotations

from kdcon.symbols.index import RecordTable, SymbolIndex, undecorate
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


class _Source:
    """Hands out one RecordTable per 'module' when a range overlaps its records."""

    def __init__(self, modules):
        self.pending = {order: RecordTable(records, order) for order, records in modules.items()}
        self.asked = []

    @property
    def complete(self):
        return not self.pending

    def tables_for(self, low, high):
        self.asked.append((low, high))
        given = [t for order, t in sorted(self.pending.items())
                 if any(low <= t.rvas[r] <= high for r in range(len(t)))]
        for table in given:
            del self.pending[table.order]
        return given

    def rest(self):
        given = list(self.pending.values())
        self.pending.clear()
        return given

    def merge(self, tables):
        return tables


def _modules():
    return {
        2: [SymbolRecord("foo", 0x3000, SymbolKind.FUNCTION, size=0x10),
            SymbolRecord("Helper", 0x3100, SymbolKind.FUNCTION, size=0x40)],
        3: [SymbolRecord("_foo", 0x3000, SymbolKind.FUNCTION, size=0x10),
            SymbolRecord("Other", 0x5000, SymbolKind.FUNCTION, size=0x8)],
        4: [SymbolRecord("KiServiceTable", 0x7000, SymbolKind.DATA)],
    }


def _publics():
    return [SymbolRecord("_foo", 0x3000, SymbolKind.PUBLIC), SymbolRecord("Helper", 0x3100, SymbolKind.PUBLIC),
            SymbolRecord("Other", 0x5000, SymbolKind.PUBLIC), SymbolRecord("Last", 0x9000, SymbolKind.PUBLIC)]


def test_an_index_with_a_source_takes_only_the_tables_an_address_needs():
    source = _Source(_modules())
    index = SymbolIndex(tables=[RecordTable(_publics())], source=source)
    hit = index.lookup(0x5004)
    assert hit.record.kind is SymbolKind.FUNCTION and hit.record.name == "Other"
    assert hit.next.name == "KiServiceTable"        # module 4 may hold the next symbol: read
    assert set(source.pending) == {2}               # module 2 lies wholly below: not read
    assert not index.complete
    assert index.find("KiServiceTable")[0].kind is SymbolKind.DATA
    assert index.complete and not source.pending


def test_answers_from_a_source_equal_those_of_all_records_at_once():
    whole = SymbolIndex(_publics() + [r for order in sorted(_modules()) for r in _modules()[order]])
    probes = [0xFFF, 0x3000, 0x3001, 0x3010, 0x30FF, 0x3100, 0x3140, 0x5000, 0x5008, 0x7000, 0x9000, 0x9100]
    for start in probes:
        index = SymbolIndex(tables=[RecordTable(_publics())], source=_Source(_modules()))
        for rva in [start] + probes:
            assert index.lookup(rva) == whole.lookup(rva), (hex(start), hex(rva))
            assert index.at(rva) == whole.at(rva), hex(rva)
            assert index.next_after(rva) == whole.next_after(rva), hex(rva)
    index = SymbolIndex(tables=[RecordTable(_publics())], source=_Source(_modules()))
    assert index.records == whole.records and len(index) == len(whole)


def test_a_tie_between_two_tables_goes_to_the_earlier_one_whichever_was_read_first():
    # foo (module 2) and _foo (module 3) fold to one name at 0x3000 with equal rank
    # and size: the full list keeps module 2's, and so must an index that read
    # module 3 first.
    source = _Source(_modules())
    index = SymbolIndex(tables=[RecordTable(_publics())], source=source)
    index.lookup(0x5000)
    assert set(source.pending) == {2}
    assert [r.name for r in index.at(0x3000)] == ["foo"]
    assert [r.name for r in SymbolIndex(_publics() + _modules()[2] + _modules()[3]).at(0x3000)] == ["foo"]
