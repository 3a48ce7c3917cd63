"""A small PE image builder for fixtures: headers, .text, .rdata, exports, debug data.

Makes images of the shape the symbols layer reads (PE32 for i386, PE32+ for
AMD64): a ``.text`` section, an ``.rdata`` section with the export directory, the
debug directory, its MISC/CodeView/FPO blobs (mapped, or after the sections as a
split NT4 image has them) and x64 ``.pdata`` entries. It writes no code,
relocations, imports or resources. Used by tests, fuzz seeds and ``kdcon-symbols``
examples; not a linker.

Spec: IMAGE_DOS_HEADER, IMAGE_NT_HEADERS32/64, IMAGE_EXPORT_DIRECTORY,
IMAGE_DEBUG_DIRECTORY, RUNTIME_FUNCTION (winnt.h; symbols.md §1.4, §1.8).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from .debugdir import build_debug_entry

__all__ = ["ImageSpec", "build_image"]

_FILE_ALIGN = 0x200
_SECTION_ALIGN = 0x1000


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


@dataclass(slots=True)
class ImageSpec:
    """Everything ``build_image`` puts in an image."""

    name: str = "drv.sys"
    machine: int = 0x8664
    timestamp: int = 0x6B07E8DA
    checksum: int = 0
    characteristics: int = 0x0022
    image_base: int = 0x140000000
    text_size: int = 0x1000
    exports: dict[str, int] = field(default_factory=dict)        # name -> RVA in .text
    debug: Sequence[tuple[int, bytes]] = ()                       # (IMAGE_DEBUG_TYPE_*, blob)
    map_debug_data: bool = True
    runtime_functions: Sequence[tuple[int, int, int]] = ()       # x64 (begin, end, unwind rva)
    unwind_blobs: dict[int, bytes] = field(default_factory=dict)  # offset in .text -> UNWIND_INFO

    @property
    def pe32plus(self) -> bool:
        return self.machine in (0x8664, 0xAA64)


def _export_block(spec: ImageSpec, rva: int) -> bytes:
    names = sorted(spec.exports)
    count = len(names)
    head = 40
    functions_at = head
    names_at = functions_at + 4 * count
    ordinals_at = names_at + 4 * count
    strings_at = ordinals_at + 2 * count
    dll_name = spec.name.encode() + b"\x00"
    strings = bytearray(dll_name)
    name_rvas = []
    for name in names:
        name_rvas.append(rva + strings_at + len(strings))
        strings += name.encode() + b"\x00"
    block = struct.pack("<IIHHIIIIIII", 0, spec.timestamp, 0, 0, rva + strings_at, 1, count, count,
                        rva + functions_at, rva + names_at, rva + ordinals_at)
    block += struct.pack(f"<{count}I", *(spec.exports[n] for n in names))
    block += struct.pack(f"<{count}I", *name_rvas)
    block += struct.pack(f"<{count}H", *range(count))
    block += bytes(strings)
    return block


def build_image(spec: ImageSpec) -> bytes:
    """The bytes of an image described by ``spec``."""
    optional_size = 240 if spec.pe32plus else 224
    headers_size = _align(0x40 + 4 + 20 + optional_size + 2 * 40, _FILE_ALIGN)
    text_rva = _SECTION_ALIGN
    text = bytearray(spec.text_size)
    for offset, blob in spec.unwind_blobs.items():
        text[offset:offset + len(blob)] = blob
    rdata_rva = text_rva + _align(spec.text_size, _SECTION_ALIGN)
    rdata = bytearray()
    directories = [(0, 0)] * 16
    if spec.exports:
        block = _export_block(spec, rdata_rva)
        directories[0] = (rdata_rva, len(block))
        rdata += block
    rdata += b"\x00" * (-len(rdata) % 4)
    if spec.runtime_functions:
        pdata = b"".join(struct.pack("<III", *f) for f in spec.runtime_functions)
        directories[3] = (rdata_rva + len(rdata), len(pdata))
        rdata += pdata
    debug_dir_rva = rdata_rva + len(rdata)
    debug_count = len(spec.debug)
    rdata += b"\x00" * (28 * debug_count)
    rdata_file = headers_size + _align(spec.text_size, _FILE_ALIGN)
    blob_places: list[tuple[int, int]] = []
    unmapped = bytearray()
    for _, blob in spec.debug:
        if spec.map_debug_data:
            rdata += b"\x00" * (-len(rdata) % 4)
            blob_places.append((rdata_rva + len(rdata), rdata_file + len(rdata)))
            rdata += blob
        else:
            blob_places.append((0, len(unmapped)))
            unmapped += blob + b"\x00" * (-len(blob) % 4)
    rdata_raw = _align(max(len(rdata), 1), _FILE_ALIGN)
    after_sections = rdata_file + rdata_raw
    entries = b""
    for (kind, blob), (rva, pointer) in zip(spec.debug, blob_places):
        if not spec.map_debug_data:
            pointer += after_sections
        entries += build_debug_entry(kind, len(blob), pointer, rva, spec.timestamp)
    start = debug_dir_rva - rdata_rva
    rdata[start:start + len(entries)] = entries
    if debug_count:
        directories[6] = (debug_dir_rva, 28 * debug_count)
    size_of_image = rdata_rva + _align(max(len(rdata), 1), _SECTION_ALIGN)

    out = bytearray(headers_size)
    struct.pack_into("<2s58xI", out, 0, b"MZ", 0x40)
    struct.pack_into("<4sHHIIIHH", out, 0x40, b"PE\x00\x00", spec.machine, 2, spec.timestamp, 0, 0,
                     optional_size, spec.characteristics)
    opt = 0x40 + 24
    if spec.pe32plus:
        struct.pack_into("<HBBIIIIIQII", out, opt, 0x20B, 14, 0, spec.text_size, len(rdata), 0,
                         text_rva, text_rva, spec.image_base, _SECTION_ALIGN, _FILE_ALIGN)
        struct.pack_into("<HHHHHHIIIIHHQQQQII", out, opt + 40, 6, 1, 6, 1, 6, 1, 0, size_of_image,
                         headers_size, spec.checksum, 1, 0, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
        dirs_at = opt + 112
    else:
        struct.pack_into("<HBBIIIIIIIII", out, opt, 0x10B, 6, 0, spec.text_size, len(rdata), 0,
                         text_rva, text_rva, rdata_rva, spec.image_base & 0xFFFFFFFF, _SECTION_ALIGN,
                         _FILE_ALIGN)
        struct.pack_into("<HHHHHHIIIIHHIIIIII", out, opt + 40, 4, 0, 4, 0, 4, 0, 0, size_of_image,
                         headers_size, spec.checksum, 1, 0, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
        dirs_at = opt + 96
    for i, (rva, size) in enumerate(directories):
        struct.pack_into("<II", out, dirs_at + 8 * i, rva, size)
    sections_at = opt + optional_size
    struct.pack_into("<8sIIIIIIHHI", out, sections_at, b".text", spec.text_size, text_rva,
                     _align(spec.text_size, _FILE_ALIGN), headers_size, 0, 0, 0, 0, 0x60000020)
    struct.pack_into("<8sIIIIIIHHI", out, sections_at + 40, b".rdata", len(rdata), rdata_rva,
                     rdata_raw, rdata_file, 0, 0, 0, 0, 0x40000040)
    text_raw = bytes(text) + b"\x00" * (_align(spec.text_size, _FILE_ALIGN) - spec.text_size)
    return bytes(out) + text_raw + bytes(rdata) + b"\x00" * (rdata_raw - len(rdata)) + bytes(unmapped)
