"""Type layouts of clang/lld-built drivers against llvm-pdbutil -types."""

from __future__ import annotations

from kdcon.symbols.pdb import open_pdb
from tests.symbols.fixtures_pdb import built_driver, driver, resolve_forward


def test_every_aggregate_layout_matches_pdbutil(driver):
    path, dump = driver
    aggregates = [t for t in dump.types.values()
                  if t.leaf in ("LF_STRUCTURE", "LF_UNION", "LF_CLASS") and not t.forward]
    assert len(aggregates) >= 6
    with open_pdb(path) as pdb:
        for record in aggregates:
            info = pdb.types.by_index(record.index)
            assert (info.name, info.size) == (record.name, record.size)
            members = dump.types[record.field_list].members
            got = [(f.name, f.offset, f.type.index) for f in info.fields]
            assert got == [(n, off, resolve_forward(dump, ti)) for n, ti, off in members]
            for f, (_, ti, _) in zip(info.fields, members):
                oracle = dump.types.get(ti)
                if oracle is not None and oracle.leaf == "LF_BITFIELD":
                    assert (f.bit_position, f.bit_width) == (oracle.bit_offset, oracle.bit_count)
                else:
                    assert f.bit_position is None and f.bit_width is None


def test_every_enum_matches_pdbutil_enumerators(driver):
    path, dump = driver
    enums = [t for t in dump.types.values() if t.leaf == "LF_ENUM" and not t.forward]
    assert enums
    with open_pdb(path) as pdb:
        for record in enums:
            info = pdb.types.by_index(record.index)
            assert info.kind == "enum" and info.name == record.name
            assert info.enumerators == dump.types[record.field_list].enumerators


def test_forward_references_resolve_to_the_definition(driver):
    path, dump = driver
    forwards = [t for t in dump.types.values() if t.forward]
    assert forwards
    with open_pdb(path) as pdb:
        for record in forwards:
            assert pdb.types.by_index(record.index).index == record.forward_to


def test_dt_style_type_names_of_the_demo_object():
    with open_pdb(built_driver("x64")) as pdb:
        obj = pdb.types.find("_DEMO_OBJECT")
        fields = {f.name: f.type_name for f in obj.fields}
    assert fields["Flags"] == "Uint4B"
    assert fields["Kind"] == "Pos 1, 4 Bits"
    assert fields["Busy"] == "Pos 0, 1 Bit"
    assert fields["Tag"] == "Ptr64 Char"
    assert fields["Self"] == "Ptr64 _DEMO_OBJECT"
    assert fields["Links"] == "_LIST_ENTRY"
    assert fields["Table"] == "[16] Int4B"
    assert fields["Matrix"] == "[2] [3] UChar"
    assert fields["Value"] == "_DEMO_UNION"
    assert fields["Callback"] == "Ptr64     long "


def test_find_is_case_insensitive_and_knows_typedefs():
    with open_pdb(built_driver("x86")) as pdb:
        types = pdb.types
        assert types.find("_unicode_string").name == "_UNICODE_STRING"
        assert types.find("UNICODE_STRING").name == "_UNICODE_STRING"
        assert types.find("PDEMO_OBJECT").type_name == "Ptr32 _DEMO_OBJECT"
        assert types.find("NoSuchType") is None
        assert types.names("_demo_*") == ["_DEMO_OBJECT", "_DEMO_OBJECT::<unnamed-tag>",
                                          "_DEMO_STATE", "_DEMO_UNION",
                                          "_DEMO_UNION::<unnamed-tag>"]
        assert types.find("_LIST_ENTRY").size == 8
