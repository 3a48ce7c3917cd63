"""Type tables that loop or lie: recursion is capped, cycles end, bad records are reported."""

from __future__ import annotations

import struct

import pytest

from kdcon.symbols import codeview as cv
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pdb.tpi import TypeTable
from kdcon.symbols.pdb.writer import build_pdb
from kdcon.symbols.pdb.writer_records import TypeWriter
from tests.symbols.fixtures_pdb import sample_spec


def _table(tw: TypeWriter) -> TypeTable:
    with open_pdb(build_pdb(sample_spec("pdb7", types=tw, globals=[], typedefs=[]))) as pdb:
        return pdb.types


def test_self_referencing_pointer_array_and_modifier_end():
    tw = TypeWriter("sz")
    pointer = tw.next_index
    tw.pointer(pointer)                          # a pointer to itself
    array = tw.next_index
    tw.array(array, 16)                          # an array of itself
    modifier = tw.next_index
    tw.modifier(modifier)                        # const of itself
    table = _table(tw)
    assert table.by_index(pointer).type_name.startswith("Ptr64 Ptr64 ")
    assert "<recursion>" in table.by_index(pointer).type_name
    assert table.by_index(array).kind == "array"
    assert table.by_index(modifier).kind == "modifier"


def test_field_list_continuation_cycles_end():
    tw = TypeWriter("sz")
    first = tw.next_index
    member = tw.member("Loop", 0x74, 0)
    # Two field lists that continue into each other forever.
    tw.add(cv.LF_FIELDLIST, member + struct.pack("<HxxI", cv.LF_INDEX, first + 1))
    tw.add(cv.LF_FIELDLIST, member + struct.pack("<HxxI", cv.LF_INDEX, first))
    tw.structure("_CYCLE", first, 1, 4)
    fields = _table(tw).find("_CYCLE").fields
    assert [f.name for f in fields] == ["Loop", "Loop"]


def test_forward_reference_without_definition_stays_forward():
    tw = TypeWriter("sz")
    tw.structure("_OPAQUE", 0, 0, 0, forward=True)
    pointer = tw.pointer(0x1000)
    table = _table(tw)
    assert table.find("_OPAQUE") is None
    assert table.by_index(pointer).type_name == "Ptr64 _OPAQUE"
    assert table.by_index(0x1000).forward


def test_unknown_leaves_and_indices_are_reported_not_raised():
    tw = TypeWriter("sz")
    unknown = tw.add(0x7777, b"\0" * 8)
    table = _table(tw)
    assert table.by_index(unknown).kind == "unknown"
    assert table.by_index(0x5000) is None
    assert table.by_index(0x0074).type_name == "Int4B"
    assert table.by_index(0x0603).type_name == "Ptr64 Void"


def test_truncated_member_record_raises_symbol_file_error():
    tw = TypeWriter("sz")
    list_index = tw.add(cv.LF_FIELDLIST, struct.pack("<HHI", cv.LF_MEMBER, 3, 0x74) + b"\x04")
    tw.structure("_BROKEN", list_index, 1, 4)
    table = _table(tw)
    with pytest.raises(SymbolFileError):
        table.find("_BROKEN").fields


def test_lying_tpi_header_is_refused():
    tw = TypeWriter("sz")
    tw.pointer(0x74)
    spec = sample_spec("pdb7", types=tw, globals=[], typedefs=[])
    data = bytearray(build_pdb(spec))
    with open_pdb(bytes(data)) as pdb:
        tpi = pdb.msf.stream(2)
        page = pdb.msf._stream_pages[2][0] * pdb.msf.page_size
    assert data[page:page + 8] == tpi[:8]
    struct.pack_into("<I", data, page + 16, 0xFFFFFFF0)        # record_bytes
    with open_pdb(bytes(data)) as pdb:
        with pytest.raises(SymbolFileError):
            pdb.types
