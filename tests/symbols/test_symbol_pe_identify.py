"""An image in target memory known by the CodeView record the target found for it:
one search and one read, the header walk when the record found is not plausible."""

from __future__ import annotations

import uuid

import pytest

from kdcon.symbols.debugdir import build_rsds
from kdcon.symbols.pe import identify_from_memory, read_image
from kdcon.symbols.pewriter import ImageSpec, build_image

GUID = uuid.UUID("094c7fa9-a34c-fb3d-4c4c-44205044422e")
TIMESTAMP = 0x6B07E8DA


def _memory(pdb_name: str = r"C:\src\drv.pdb") -> bytearray:
    data = build_image(ImageSpec(exports={"DriverEntry": 0x1100}, text_size=0x200,
                                 debug=[(2, build_rsds(pdb_name, GUID, 3))]))
    image = read_image(data)
    memory = bytearray(image.identity.size_of_image)
    memory[:0x200] = data[:0x200]
    for section in image.sections:
        # The file reader maps RVAs to file offsets: copying through it lays the image out as loaded.
        raw = image._read(section.virtual_address, section.virtual_size) or b""
        memory[section.virtual_address:section.virtual_address + len(raw)] = raw
    return memory


class _Target:
    """Reads and searches over ``memory``, counting the requests."""

    def __init__(self, memory: bytearray, *, searches: bool = True) -> None:
        self.memory = memory
        self.searches = searches
        self.requests: list[str] = []

    def read(self, rva: int, size: int) -> bytes | None:
        self.requests.append("read")
        return bytes(self.memory[rva:rva + size]) or None

    def search(self, rva: int, length: int, pattern: bytes) -> int | None:
        self.requests.append("search")
        if not self.searches:
            return None
        found = bytes(self.memory[rva:rva + length]).find(pattern)
        return rva + found if found >= 0 else None

    def identify(self):
        return identify_from_memory(self.read, self.search, "drv.sys", size_of_image=len(self.memory),
                                    timestamp=TIMESTAMP)


def test_the_record_found_by_the_target_identifies_the_image_in_two_requests():
    target = _Target(_memory())
    image = target.identify()
    assert target.requests == ["search", "read"]
    assert (image.identity.guid, image.identity.age, image.identity.pdb_name) == (GUID, 3, r"C:\src\drv.pdb")
    assert (image.identity.timestamp, image.identity.size_of_image) == (TIMESTAMP, len(target.memory))


def test_exports_and_sections_read_the_headers_once_when_asked():
    target = _Target(_memory())
    image = target.identify()
    assert [r.name for r in image.exports()] == ["DriverEntry"]
    walked = len(target.requests)
    assert [s.name for s in image.sections][:1] == [".text"]
    assert image.is_64bit and image.machine == 0x8664
    assert len(target.requests) == walked + 1          # the section table alone


def test_a_long_pdb_path_costs_one_more_read():
    name = "C:\\" + "build\\" * 30 + "drv.pdb"
    target = _Target(_memory(name))
    assert target.identify().identity.pdb_name == name
    assert target.requests == ["search", "read", "read"]


@pytest.mark.parametrize("decoy", [
    b"RSDS" + bytes(20) + b"zero.pdb\x00",                             # a GUID of zeros
    b"RSDS" + bytes(range(1, 17)) + bytes(4) + b"age.pdb\x00",          # age 0
    b"RSDS" + bytes(range(1, 17)) + b"\x01\x00\x00\x00" + b"drv.sys\x00",   # not a .pdb
    b"RSDS" + bytes(range(1, 17)) + b"\x01\x00\x00\x00" + b"a\x01b.pdb\x00",  # control character
    b"RSDS" + bytes(range(1, 17)) + b"\x01\x00\x00\x00" + b"x" * 700,       # no NUL in 640 bytes
])
def test_an_implausible_record_falls_back_to_the_header_walk(decoy):
    memory = _memory()
    memory[0x1000:0x1000 + len(decoy)] = decoy
    target = _Target(memory)
    image = target.identify()
    assert target.requests[0] == "search" and len(target.requests) >= 4
    assert (image.identity.guid, image.identity.age) == (GUID, 3)


def test_a_refused_search_falls_back_to_the_header_walk():
    target = _Target(_memory(), searches=False)
    image = target.identify()
    assert target.requests[0] == "search" and target.requests.count("search") == 1
    assert (image.identity.guid, image.exports()[0].name) == (GUID, "DriverEntry")
