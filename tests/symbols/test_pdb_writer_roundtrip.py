"""Files from the PDB writer read back exactly, in every profile and page size."""

from __future__ import annotations

import uuid

import pytest

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import FileKind, SectionHeader, SymbolKind, SymbolRecord
from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pdb.structs import TPI_VER_V50
from kdcon.symbols.pdb import writer
from kdcon.symbols.pdb.writer import build_pdb
from tests.symbols.fixtures_pdb import sample_spec

PROFILES = ["pdb7", "vc6", "vc4"]


def _open(spec):
    # The VC4 profile has no section headers of its own: the image supplies them.
    return open_pdb(build_pdb(spec), name="drv.pdb", image_sections=spec.sections)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("page_size", [512, 1024, 2048, 4096, 8192, 16384, 32768])
def test_every_profile_and_page_size_reads_back(profile, page_size):
    spec = sample_spec(profile, page_size=page_size)
    with _open(spec) as pdb:
        assert pdb.msf.page_size == page_size
        assert pdb.msf.is_small == (profile != "pdb7")
        publics = pdb.publics()
        assert [(p.name, p.rva) for p in publics] == sorted(
            ((n, spec.sections[s - 1].virtual_address + o) for n, s, o, _ in spec.publics),
            key=lambda x: x[1])
        assert [(g.name, g.rva) for g in pdb.globals()] == [
            ("Global", 0x2020), ("Counter", 0x2050), ("Either", 0x2060)]
        assert [(p.name, p.rva, p.size) for p in pdb.procedures()] == [
            ("DriverEntry", 0x1010, 0x40), ("Helper", 0x1080, 0x20)]
        assert [(x.name, x.rva, x.kind) for x in pdb.labels()] == [
            ("Retry", 0x1030, SymbolKind.LABEL)]


@pytest.mark.parametrize("profile", PROFILES)
def test_types_read_back_in_every_record_form(profile):
    spec = sample_spec(profile)
    psize = 8 if profile == "pdb7" else 4
    with _open(spec) as pdb:
        obj = pdb.types.find("_obj")
        assert (obj.kind, obj.name, obj.size) == ("struct", "_OBJ", 32 + 2 * psize)
        assert [(f.name, f.offset, f.type_name) for f in obj.fields] == [
            ("Flags", 0, "Uint4B"), ("Bits", 4, "Pos 3, 2 Bits"), ("Name", 8, "[16] UChar"),
            ("Links", 24, "_LIST_ENTRY"), ("State", 24 + 2 * psize, "_STATE")]
        assert (obj.fields[1].bit_position, obj.fields[1].bit_width) == (3, 2)
        links = obj.fields[3].type
        assert [f.type_name for f in links.fields] == [f"Ptr{psize * 8} _LIST_ENTRY"] * 2
        assert pdb.types.find("_STATE").enumerators == [
            ("StateIdle", 0), ("StateBusy", 5), ("StateBig", 70000)]
        assert pdb.types.find("POBJ").type_name == f"Ptr{psize * 8} _OBJ"
        union = pdb.types.find("_U")
        assert union.kind == "union" and union.fields[1].type.type is obj
        assert {g.name: g.type_name for g in pdb.globals()} == {
            "Global": "_OBJ", "Counter": "Uint4B", "Either": "_U"}


def test_pdb7_identity_prefers_the_dbi_age():
    guid = uuid.UUID("12345678-1234-5678-9abc-def012345678")
    with _open(sample_spec("pdb7", guid=guid, age=9, dbi_age=3)) as pdb:
        ident = pdb.identity
    assert (ident.kind, ident.guid, ident.age, ident.name) == (FileKind.PDB7, guid, 3, "drv.pdb")
    with _open(sample_spec("pdb7", guid=guid, age=9, dbi_age=0)) as pdb:
        assert pdb.identity.age == 9


@pytest.mark.parametrize("profile", ["vc6", "vc4"])
def test_pdb2_identity_is_signature_and_age(profile):
    with _open(sample_spec(profile, signature=0x37A8F40E, age=2)) as pdb:
        ident = pdb.identity
    assert (ident.kind, ident.signature, ident.age, ident.guid) == (
        FileKind.PDB2, 0x37A8F40E, 2, None)


def test_pdb2_names_decode_as_cp1252():
    with _open(sample_spec("vc6")) as pdb:
        assert "Caf\u00e9" in {p.name for p in pdb.publics()}


def test_omap_translates_addresses_to_final_image_rvas():
    original = [SectionHeader(".text", 0x1000, 0x200), SectionHeader(".data", 0x2000, 0x100)]
    final = [SectionHeader(".text", 0x4000, 0x200), SectionHeader(".data", 0x8000, 0x100)]
    # .text moved by 0x3000, .data by 0x6000; 0x1070..0x107f has no image.
    omap = [(0x1000, 0x4000), (0x1070, 0), (0x1080, 0x4080), (0x2000, 0x8000), (0x2100, 0)]
    spec = sample_spec("pdb7", sections=final, original_sections=original, omap_from_src=omap,
                       labels=[("Retry", 1, 0x30), ("Gap", 1, 0x74)])
    with _open(spec) as pdb:
        assert [s.virtual_address for s in pdb.sections] == [0x1000, 0x2000]
        assert {p.name: p.rva for p in pdb.publics()} == {
            "_DriverEntry@8": 0x4010, "?Helper@@YAXXZ": 0x4080, "_Global": 0x8020,
            "Caf\u00e9": 0x8060}
        assert [(p.name, p.rva) for p in pdb.procedures()] == [
            ("DriverEntry", 0x4010), ("Helper", 0x4080)]
        assert [(x.name, x.rva) for x in pdb.labels()] == [("Retry", 0x4030)]
        assert pdb.symbol_space_rva(0x4030) is None        # no OMAP_TO_SRC stream
    spec.omap_to_src = [(0x4000, 0x1000), (0x4070, 0), (0x4080, 0x1080), (0x8000, 0x2000)]
    with _open(spec) as pdb:
        assert pdb.symbol_space_rva(0x4030) == 0x1030
        assert pdb.symbol_space_rva(0x8020) == 0x2020
        assert pdb.symbol_space_rva(0x4074) is None
        assert pdb.symbol_space_rva(0x3FFF) is None
    with _open(sample_spec("pdb7")) as pdb:
        assert pdb.symbol_space_rva(0x1234) == 0x1234


def test_field_lists_continue_through_lf_index():
    from kdcon.symbols.pdb.writer_records import TypeWriter
    for form, profile in (("sz", "pdb7"), ("st", "vc6"), ("16t", "vc4")):
        tw = TypeWriter(form)
        members = [(f"Field{i:03d}", 0x74, 4 * i) for i in range(300)]
        big = tw.complete("_BIG", members, 1200, max_list_bytes=256)
        spec = sample_spec(profile, types=tw, globals=[("Big", 2, 0, big, False)], typedefs=[])
        with _open(spec) as pdb:
            info = pdb.types.find("_BIG")
            assert [(f.name, f.offset) for f in info.fields] == [(n, o) for n, _, o in members]


def test_lines_map_rvas_to_files_and_lines():
    with _open(sample_spec("pdb7")) as pdb:
        assert pdb.line_for(0x1010) == ("c:\\src\\drv.c", 10)
        assert pdb.line_for(0x101F) == ("c:\\src\\drv.c", 11)
        assert pdb.line_for(0x1030) == ("c:\\src\\drv.c", 14)
        assert pdb.line_for(0x1090) == ("c:\\src\\helper.c", 4)
        assert pdb.line_for(0x1000) is None
        assert pdb.line_for(0x1031) is None
        assert len(pdb.lines()) == 5


def test_type_only_pdb_has_identity_types_and_no_symbols():
    spec = sample_spec("pdb7")
    streams = [b"", writer._info_stream(spec, {}), writer._tpi_stream(spec), b""]
    with open_pdb(writer.build_msf(streams, small=False, page_size=1024)) as pdb:
        assert pdb.identity.guid == spec.guid and pdb.identity.age == spec.age
        assert pdb.sections == [] and pdb.publics() == [] and pdb.globals() == []
        assert pdb.procedures() == [] and not pdb.has_private_symbols
        assert pdb.line_for(0x1000) is None
        assert pdb.types.find("_OBJ").size == 48


def test_vc4_profile_needs_image_sections_for_addresses():
    spec = sample_spec("vc4", dbi_form="old")
    data = build_pdb(spec)
    with open_pdb(data) as pdb:
        assert pdb.sections == [] and pdb.publics() == []
    with open_pdb(data, image_sections=spec.sections) as pdb:
        assert len(pdb.publics()) == 4
        assert [p.name for p in pdb.procedures()] == ["DriverEntry", "Helper"]


def test_vc4_records_inside_v50_headers_read_back():
    spec = sample_spec("vc4", dbi_form="v50", tpi_version=TPI_VER_V50)
    with _open(spec) as pdb:
        assert len(pdb.publics()) == 4
        assert pdb.types.find("_OBJ").fields[1].type_name == "Pos 3, 2 Bits"


def test_corrupt_record_stream_raises_symbol_file_error():
    data = bytearray(build_pdb(sample_spec("pdb7", page_size=512)))
    with open_pdb(bytes(data)) as pdb:
        symrec = pdb.dbi.symrec_stream
        pages = pdb.msf._stream_pages[symrec]
    at = pages[0] * 512
    data[at:at + 2] = b"\xff\xff"          # first record's length now overruns the stream
    with open_pdb(bytes(data)) as pdb:
        with pytest.raises(SymbolFileError):
            pdb.globals()


def test_section_contributions_decode_on_demand():
    with _open(sample_spec("pdb7")) as pdb:
        contributions = pdb.dbi.contributions()
    assert [(c.section, c.offset, c.size, c.module) for c in contributions] == [
        (1, 0, 0x200, 0), (2, 0, 0x100, 0)]
    with _open(sample_spec("vc4", dbi_form="v50")) as pdb:
        assert [c.size for c in pdb.dbi.contributions()] == [0x200, 0x100]


def test_fast_records_equal_constructed_ones():
    from kdcon.symbols.pdb.pdbfile import make_records
    names, rvas = ["_a@4", "Caf\u00e9", ""], [0x1000, 0x2000, 0]
    made = make_records(names, rvas, SymbolKind.PUBLIC)
    built = [SymbolRecord(n, r, SymbolKind.PUBLIC) for n, r in zip(names, rvas)]
    assert made == built and [hash(m) for m in made] == [hash(b) for b in built]
    with pytest.raises(AttributeError):
        made[0].name = "changed"


def test_length_prefixed_names_with_nul_bytes_decode_one_by_one():
    spec = sample_spec("vc6", publics=[("a\0b", 1, 0x10, 0), ("plain", 1, 0x20, 0)])
    with _open(spec) as pdb:
        assert [p.name for p in pdb.publics()] == ["a\0b", "plain"]
