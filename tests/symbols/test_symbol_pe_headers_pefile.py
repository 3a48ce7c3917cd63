"""The PE header fields the symbols layer reads with struct agree with pefile's.

pefile is the oracle: for built images (x64 and x86, with and without debug data), the
NT 4 fixture and the simulated target's prebuilt images, every identity field, section
and data directory read_image gives must be what pefile reads from the same bytes.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pefile
import pytest

from kdcon.symbols.debugdir import FpoData, build_fpo, build_misc, build_nb10, build_rsds
from kdcon.symbols.pe import read_image, read_image_from_memory
from kdcon.symbols.pewriter import ImageSpec, build_image

from .store_fixtures import nt4_pair

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"


def _built_images() -> list[tuple[str, bytes]]:
    guid = uuid.UUID("094c7fa9-a34c-fb3d-4c4c-44205044422e")
    return [
        ("x64-rsds", build_image(ImageSpec(exports={"DriverEntry": 0x1100}, text_size=0x200,
                                           debug=[(2, build_rsds("drv.pdb", guid, 1))]))),
        ("x86-misc-nb10-fpo", build_image(ImageSpec(
            machine=0x14C, image_base=0x400000, text_size=0x200, exports={"F": 0x1010},
            debug=[(4, build_misc("x.dbg")), (2, build_nb10("x.pdb", 5, 1)),
                   (3, build_fpo(FpoData(0x1000, 0x10, 0, 0, 0, 0, False, False, 0)))],
            map_debug_data=False))),
        ("nt4", nt4_pair().image),
    ]


def _prebuilt_images() -> list[tuple[str, bytes]]:
    found = sorted(p for p in IMAGES.rglob("*") if p.suffix.lower() in (".exe", ".dll", ".sys"))
    assert found, f"no prebuilt images under {IMAGES}"
    return [(str(p.relative_to(IMAGES)), p.read_bytes()) for p in found]


def _facts_from_pefile(data: bytes) -> dict:
    pe = pefile.PE(data=data, fast_load=True)
    directories = [(d.VirtualAddress, d.Size) for d in pe.OPTIONAL_HEADER.DATA_DIRECTORY]
    return {
        "machine": pe.FILE_HEADER.Machine, "characteristics": pe.FILE_HEADER.Characteristics,
        "timestamp": pe.FILE_HEADER.TimeDateStamp, "image_base": pe.OPTIONAL_HEADER.ImageBase,
        "size_of_image": pe.OPTIONAL_HEADER.SizeOfImage, "checksum": pe.OPTIONAL_HEADER.CheckSum,
        "directories": directories + [(0, 0)] * (16 - len(directories)),
        "sections": [(s.Name.rstrip(b"\0").decode(), s.VirtualAddress, s.Misc_VirtualSize,
                      s.Characteristics) for s in pe.sections],
    }


def _facts(image) -> dict:
    return {
        "machine": image.machine, "characteristics": image.characteristics,
        "timestamp": image.identity.timestamp, "image_base": image.image_base,
        "size_of_image": image.identity.size_of_image, "checksum": image.identity.checksum,
        "directories": image._directories,
        "sections": [(s.name, s.virtual_address, s.virtual_size, s.characteristics)
                     for s in image.sections],
    }


@pytest.mark.parametrize("name, data", _built_images() + _prebuilt_images(),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_header_fields_match_pefile(name, data):
    expected = _facts_from_pefile(data)
    assert _facts(read_image(data, name)) == expected
    # The mapped-layout path reads the same headers from the first page.
    mapped = read_image_from_memory(lambda rva, size: data[rva:rva + size] or None, name)
    assert _facts(mapped)["sections"] == expected["sections"]
