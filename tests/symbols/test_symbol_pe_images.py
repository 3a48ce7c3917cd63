"""PE images through pefile and the RVA reader: identity, exports, debug data, .pdata, memory."""

from __future__ import annotations

import struct
import uuid

import pytest

from kdcon.symbols.debugdir import FpoData, build_fpo, build_misc, build_nb10, build_rsds
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import SymbolKind
from kdcon.symbols.pe import read_image, read_image_from_memory
from kdcon.symbols.pewriter import ImageSpec, build_image

from .store_fixtures import build_lld_driver

GUID = uuid.UUID("094c7fa9-a34c-fb3d-4c4c-44205044422e")
UNWIND = bytes([0x01, 0x04, 0x02, 0x00, 0x04, 0x32, 0x01, 0x30])   # v1, prolog 4, 2 codes


def _spec(**changes) -> ImageSpec:
    spec = ImageSpec(exports={"DriverEntry": 0x1100, "DemoExported": 0x1000},
                     debug=[(2, build_rsds(r"C:\src\drv.pdb", GUID, 3))],
                     runtime_functions=[(0x1000, 0x1040, 0x1800), (0x1100, 0x1180, 0x1800)],
                     unwind_blobs={0x800: UNWIND})
    for key, value in changes.items():
        setattr(spec, key, value)
    return spec


def _mapped(data: bytes) -> bytearray:
    image = read_image(data)
    memory = bytearray(image.identity.size_of_image)
    memory[:0x200] = data[:0x200]
    offset = 0x200
    for section in image.sections:
        raw = data[offset:offset + 0x1000]
        memory[section.virtual_address:section.virtual_address + len(raw)] = raw[:section.virtual_size or len(raw)]
        offset += (len(raw) + 0x1FF) // 0x200 * 0x200
    return memory


def _summary(image):
    return (image.identity, image.sections, image.exports(), image.codeview, image.runtime_functions())


def test_identity_exports_codeview_and_pdata():
    image = read_image(build_image(_spec()), "drv.sys")
    identity = image.identity
    assert (identity.timestamp, identity.size_of_image, identity.checksum) == (0x6B07E8DA, 0x3000, 0)
    assert (identity.guid, identity.age, identity.pdb_name) == (GUID, 3, r"C:\src\drv.pdb")
    assert [(r.name, r.rva, r.kind) for r in image.exports()] == \
        [("DemoExported", 0x1000, SymbolKind.EXPORT), ("DriverEntry", 0x1100, SymbolKind.EXPORT)]
    assert image.runtime_function_for(0x1120).begin == 0x1100
    assert image.runtime_function_for(0x1050) is None
    unwind = image.unwind_info(image.runtime_function_for(0x1000))
    assert (unwind.version, unwind.prolog_size) == (1, 4)
    assert [(c.offset, c.op, c.info, c.value) for c in unwind.codes] == [(4, 2, 3, 32), (1, 0, 3, 0)]
    assert image.symbol_file_names() == [r"C:\src\drv.pdb"]


def test_split_image_with_misc_nb10_and_fpo():
    fpo = FpoData(0x1000, 0x40, 1, 2, 3, 1, False, True, 0)
    data = build_image(_spec(machine=0x14C, image_base=0x400000, characteristics=0x0302, runtime_functions=(),
                             debug=[(4, build_misc("drv32.dbg")), (2, build_nb10("drv32.pdb", 0x3B7D8410, 2)),
                                    (3, build_fpo(fpo))], map_debug_data=False))
    image = read_image(data, "drv32.sys")
    assert image.stripped and image.misc_name == "drv32.dbg"
    assert (image.identity.signature, image.identity.age) == (0x3B7D8410, 2)
    assert image.symbol_file_names() == ["drv32.pdb", "drv32.dbg"]
    assert image.fpo() == [fpo]
    assert image.runtime_functions() == []


def test_whole_trailing_and_byte_by_byte_prefixes():
    data = build_image(_spec())
    whole = _summary(read_image(data, "drv.sys"))
    assert _summary(read_image(data + b"\x00junk" * 50, "drv.sys")) == whole
    for cut in range(0, len(data), 7):
        try:
            _summary(read_image(data[:cut], "drv.sys"))
        except SymbolFileError:
            pass


def test_memory_layout_gives_the_same_answers():
    data = build_image(_spec())
    memory = _mapped(data)
    reader = lambda rva, size: bytes(memory[rva:rva + size]) if rva + size <= len(memory) else None  # noqa: E731
    assert _summary(read_image_from_memory(reader, "drv.sys")) == _summary(read_image(data, "drv.sys"))


def test_memory_with_missing_pages_loses_only_what_lies_on_them():
    data = build_image(_spec())
    memory = _mapped(data)
    rdata = read_image(data).sections[1].virtual_address

    def without(pages):
        missing = {p // 0x1000 for p in pages}

        def read(rva, size):
            touched = set(range(rva // 0x1000, (rva + max(size, 1) - 1) // 0x1000 + 1))
            if rva + size > len(memory) or touched & missing:
                return None
            return bytes(memory[rva:rva + size])
        return read

    image = read_image_from_memory(without([rdata]), "drv.sys")
    assert image.exports() == [] and image.codeview is None and image.identity.timestamp == 0x6B07E8DA
    with pytest.raises(SymbolFileError):
        read_image_from_memory(without([0]), "drv.sys")


@pytest.mark.parametrize("data", [b"", b"MZ", b"MZ" + b"\x00" * 62, b"\x7fELF" + b"\x00" * 100])
def test_non_images_raise_symbol_file_error(data):
    with pytest.raises(SymbolFileError):
        read_image(data)


def test_export_counts_beyond_the_limit_are_refused():
    data = bytearray(build_image(_spec()))
    image = read_image(bytes(data))
    export_rva = image._directories[0][0]
    offset = 0x200 + 0x1000 + (export_rva - image.sections[1].virtual_address)
    struct.pack_into("<I", data, offset + 24, 0x7FFFFFFF)
    with pytest.raises(SymbolFileError):
        read_image(bytes(data)).exports()


def test_lld_built_driver_matches_pefile_facts(tmp_path):
    sys_path, _ = build_lld_driver(str(tmp_path))
    image = read_image(sys_path)
    import pefile
    pe = pefile.PE(sys_path)
    assert image.identity.timestamp == pe.FILE_HEADER.TimeDateStamp
    assert image.identity.size_of_image == pe.OPTIONAL_HEADER.SizeOfImage
    cv = pe.DIRECTORY_ENTRY_DEBUG[0].entry
    assert image.identity.pdb_name == cv.PdbFileName.rstrip(b"\x00").decode()
    assert image.identity.age == cv.Age
    assert [(r.name, r.rva) for r in image.exports()] == \
        [(e.name.decode(), e.address) for e in pe.DIRECTORY_ENTRY_EXPORT.symbols]
    assert len(image.runtime_functions()) == len(pe.DIRECTORY_ENTRY_EXCEPTION)
