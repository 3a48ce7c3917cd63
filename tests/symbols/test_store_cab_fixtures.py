"""Cabinet builders for the CAB tests (no tests here): gcab-made ones, cabextract's view, our own writer.

The writer exists to reach what gcab does not produce: MSZIP blocks that refer
back into the previous block (the window carried over, as Microsoft's
compressor does), reserve fields, previous/next cabinet names, and deliberately
wrong fields. Its output is cross-checked with cabextract in the tests.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib

from kdcon.symbols.cab import cab_checksum
from tests.oracles import require_tool

IMAGES = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "simtarget", "images")
HAL_PDB = os.path.join(IMAGES, "hal.pdb")            # 72 KiB: three blocks
KERNEL_PDB = os.path.join(IMAGES, "ntoskrnl.pdb")    # 204 KiB: seven blocks
KERNEL_EXE = os.path.join(IMAGES, "ntoskrnl.exe")

# Offsets in a gcab cabinet without reserve or cabinet names (one folder, one file).
COFF_FILES = 0x10
FOLDER = 0x24            # CFFOLDER: coffCabStart u32, cCFData u16, typeCompress u16


def gcab(directory: str, source: str, *, compress: bool, name: str | None = None) -> str:
    """``source`` packed by gcab (MSZIP with ``compress``) as ``directory/<name>``; the path."""
    tool = require_tool("gcab")
    out = os.path.join(directory, name or os.path.basename(source)[:-1] + "_")
    os.makedirs(directory, exist_ok=True)
    args = [tool, "-c", "-n"] + (["-z"] if compress else []) + [out, source]
    subprocess.run(args, check=True, capture_output=True)
    return out


def cabextract(directory: str, cab: str) -> tuple[str, bytes]:
    """The one file cabextract (libmspack) gets out of ``cab``: name and bytes."""
    tool = require_tool("cabextract")
    os.makedirs(directory, exist_ok=True)
    subprocess.run([tool, "-q", "-d", directory, cab], check=True, capture_output=True)
    names = os.listdir(directory)
    assert len(names) == 1, names
    with open(os.path.join(directory, names[0]), "rb") as handle:
        return names[0], handle.read()


def _blocks(data: bytes, method: int, history: bool, block: int) -> list[tuple[bytes, int]]:
    chunks = [data[i:i + block] for i in range(0, len(data), block)] or [b""]
    out: list[tuple[bytes, int]] = []
    window = b""
    for chunk in chunks:
        if method == 0:
            out.append((chunk, len(chunk)))
            continue
        packer = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=window) if (history and window) \
            else zlib.compressobj(9, zlib.DEFLATED, -15)
        out.append((b"CK" + packer.compress(chunk) + packer.flush(), len(chunk)))
        window = (window + chunk)[-32768:]
    return out


def build_cab(name: str, data: bytes, *, method: int = 1, history: bool = True, block: int = 32768,
              reserve: tuple[int, int, int] | None = None, prev_next: bool = False,
              checksum: bool = True, utf8: bool = False) -> bytes:
    """A one-folder, one-file cabinet holding ``data`` as ``name``."""
    flags = 0
    extra = b""
    header_res, folder_res, data_res = reserve or (0, 0, 0)
    if reserve is not None:
        flags |= 4
        extra += struct.pack("<HBB", header_res, folder_res, data_res) + b"\xA5" * header_res
    if prev_next:
        flags |= 3
        extra += b"prev.cab\x00disk 1\x00next.cab\x00disk 3\x00"
    blocks = _blocks(data, method, history, block)
    encoded = name.encode("utf-8" if utf8 else "latin-1") + b"\x00"
    folder_at = 36 + len(extra)
    files_at = folder_at + 8 + folder_res
    data_at = files_at + 16 + len(encoded)
    body = b""
    for payload, size in blocks:
        head = struct.pack("<HH", len(payload), size) + b"\x5A" * data_res
        csum = cab_checksum(head + payload) if checksum else 0
        body += struct.pack("<I", csum) + head + payload
    total = data_at + len(body)
    header = struct.pack("<4sIIIIIBBHHHHH", b"MSCF", 0, total, 0, files_at, 0, 3, 1, 1, 1, flags, 0x1234, 0)
    folder = struct.pack("<IHH", data_at, len(blocks), method) + b"\x3C" * folder_res
    entry = struct.pack("<IIHHHH", len(data), 0, 0, 0x5A21, 0x6000, 0x20 | (0x80 if utf8 else 0)) + encoded
    cab = header + extra + folder + entry + body
    assert len(cab) == total
    return cab
