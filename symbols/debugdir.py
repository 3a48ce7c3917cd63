"""Records shared by PE images and DBG files: debug directory, MISC, CodeView refs, FPO.

Declared once in construct and used both to parse (with bounds checks) and to
build fixtures (symbols.md §1.3-§1.5, §6.1):

    IMAGE_DEBUG_DIRECTORY (28 bytes)   Characteristics, TimeDateStamp, Major/MinorVersion,
                                       Type, SizeOfData, AddressOfRawData, PointerToRawData
    IMAGE_DEBUG_MISC                   DataType=1 (EXENAME), Length, Unicode, Reserved[3], Data
    CV_INFO_PDB20  'NB10'              Offset, Signature, Age, PdbFileName (ANSI, NUL)
    CV_INFO_PDB70  'RSDS'              GUID (16), Age, PdbFileName (UTF-8, NUL)
    FPO_DATA (16 bytes)                ulOffStart, cbProcSize, cdwLocals, cdwParams, bit field
    IMAGE_SECTION_HEADER (40 bytes)

Fixed headers are parsed with these declarations; the arrays (debug directory,
section headers, FPO) with ``struct`` rows in the same field order. Decoding never trusts a size or offset: anything out of
range raises ``SymbolFileError``. Inline CodeView NB09/NB11 symbol tables are not read here.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from construct import (Bytes, Const, ConstructError, GreedyBytes, Int8ul, Int16ul, Int32ul, Padding, Struct,
                       this)

from .errors import SymbolFileError
from .model import SectionHeader

__all__ = [
    "IMAGE_DEBUG_TYPE_COFF", "IMAGE_DEBUG_TYPE_CODEVIEW", "IMAGE_DEBUG_TYPE_FPO",
    "IMAGE_DEBUG_TYPE_MISC", "IMAGE_DEBUG_TYPE_OMAP_TO_SRC", "IMAGE_DEBUG_TYPE_OMAP_FROM_SRC",
    "IMAGE_DEBUG_DIRECTORY", "IMAGE_DEBUG_MISC", "CV_INFO_PDB20", "CV_INFO_PDB70", "FPO_DATA",
    "IMAGE_SECTION_HEADER", "DebugEntry", "CodeViewRef", "FpoData",
    "parse_debug_directory", "parse_misc_name", "parse_codeview_ref", "parse_fpo",
    "parse_section_headers", "build_misc", "build_nb10", "build_rsds", "build_section_header",
    "build_fpo", "build_debug_entry", "decode_name", "read_source", "parse_struct",
]

IMAGE_DEBUG_TYPE_COFF = 1
IMAGE_DEBUG_TYPE_CODEVIEW = 2
IMAGE_DEBUG_TYPE_FPO = 3
IMAGE_DEBUG_TYPE_MISC = 4
IMAGE_DEBUG_TYPE_OMAP_TO_SRC = 7
IMAGE_DEBUG_TYPE_OMAP_FROM_SRC = 8
IMAGE_DEBUG_MISC_EXENAME = 1

IMAGE_DEBUG_DIRECTORY = Struct(
    "Characteristics" / Int32ul, "TimeDateStamp" / Int32ul, "MajorVersion" / Int16ul,
    "MinorVersion" / Int16ul, "Type" / Int32ul, "SizeOfData" / Int32ul,
    "AddressOfRawData" / Int32ul, "PointerToRawData" / Int32ul,
)
IMAGE_DEBUG_MISC = Struct(
    "DataType" / Int32ul, "Length" / Int32ul, "Unicode" / Int8ul, Padding(3), "Data" / Bytes(this.Length - 12),
)
CV_INFO_PDB20 = Struct(
    "CvSignature" / Const(b"NB10"), "Offset" / Int32ul, "Signature" / Int32ul, "Age" / Int32ul,
    "PdbFileName" / GreedyBytes,
)
CV_INFO_PDB70 = Struct(
    "CvSignature" / Const(b"RSDS"), "Guid" / Bytes(16), "Age" / Int32ul,
    "PdbFileName" / GreedyBytes,
)
FPO_DATA = Struct(
    "ulOffStart" / Int32ul, "cbProcSize" / Int32ul, "cdwLocals" / Int32ul, "cdwParams" / Int16ul,
    "Flags" / Int16ul,
)
IMAGE_SECTION_HEADER = Struct(
    "Name" / Bytes(8), "VirtualSize" / Int32ul, "VirtualAddress" / Int32ul, "SizeOfRawData" / Int32ul,
    "PointerToRawData" / Int32ul, "PointerToRelocations" / Int32ul, "PointerToLinenumbers" / Int32ul,
    "NumberOfRelocations" / Int16ul, "NumberOfLinenumbers" / Int16ul, "Characteristics" / Int32ul,
)

# Arrays are read with struct rows in the field order of the declarations above: a
# construct parse per entry costs ten times more (every image and DBG has several).
_DIR_ROW = struct.Struct("<IIHHIIII")
_SECTION_ROW = struct.Struct("<8sIIIIIIHHI")
_FPO = struct.Struct("<IIIHH")       # FPO arrays are long: a plain struct loop (§6.1)
_DIR_SIZE = _DIR_ROW.size
_SECTION_SIZE = _SECTION_ROW.size
MAX_DEBUG_ENTRIES = 64
MAX_SECTIONS = 96        # the PE loader's own limit
MAX_FPO = 1 << 20


_COMPILED: dict[int, object] = {}


def parse_struct(declaration: Struct, data: bytes, what: str):
    """Parse one fixed header with its construct declaration; bad bytes -> ``SymbolFileError``.

    The declaration is compiled on first use (construct's compiler: about 6x faster,
    which matters when fuzzing and for files with many small headers).
    """
    compiled = _COMPILED.get(id(declaration))
    if compiled is None:
        try:
            compiled = declaration.compile()
        except Exception:  # construct cannot compile every declaration: parse uncompiled
            compiled = declaration
        _COMPILED[id(declaration)] = compiled
    try:
        return compiled.parse(data)
    except (ConstructError, struct.error, ValueError) as exc:  # compiled parsers raise struct.error
        raise SymbolFileError(f"{what} is corrupt: {type(exc).__name__}") from None


def read_source(source: str | bytes | bytearray | memoryview, name: str | None,
                default: str) -> tuple[bytes, str]:
    """The bytes of a file given by path or as bytes, and the name to record for it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or default
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise SymbolFileError(f"cannot read {source}: {exc.strerror}") from None
    return data, name or source.replace("\\", "/").rsplit("/", 1)[-1]


def decode_name(raw: bytes) -> str:
    """Bytes up to the first NUL, UTF-8 when valid, else Windows-1252 (never fails)."""
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


@dataclass(frozen=True, slots=True)
class DebugEntry:
    type: int
    timestamp: int
    size: int
    rva: int
    pointer: int


@dataclass(frozen=True, slots=True)
class CodeViewRef:
    """What a CODEVIEW debug entry says: a PDB reference, or inline NB09/NB11 data."""

    format: str                      # "NB10", "RSDS", "NB09", "NB11"
    pdb_name: str | None = None
    signature: int | None = None
    guid: uuid.UUID | None = None
    age: int = 0


@dataclass(frozen=True, slots=True)
class FpoData:
    start: int
    proc_size: int
    locals: int
    params: int
    prolog: int
    regs: int
    has_seh: bool
    use_bp: bool
    frame: int


def parse_debug_directory(data: bytes) -> list[DebugEntry]:
    count = len(data) // _DIR_SIZE
    if count > MAX_DEBUG_ENTRIES:
        raise SymbolFileError(f"debug directory of {count} entries")
    entries = []
    for i in range(count):
        _, timestamp, _, _, kind, size, rva, pointer = _DIR_ROW.unpack_from(data, i * _DIR_SIZE)
        entries.append(DebugEntry(kind, timestamp, size, rva, pointer))
    return entries


def parse_misc_name(blob: bytes) -> str | None:
    """The EXENAME of an IMAGE_DEBUG_MISC record, or None for another kind."""
    if len(blob) < 12:
        raise SymbolFileError("MISC record shorter than its header")
    (length,) = struct.unpack_from("<I", blob, 4)
    if length < 12 or length > len(blob):
        raise SymbolFileError(f"MISC length {length} outside its {len(blob)} bytes")
    misc = parse_struct(IMAGE_DEBUG_MISC, blob[:length], "MISC record")
    if misc.DataType != IMAGE_DEBUG_MISC_EXENAME:
        return None
    if misc.Unicode:
        return misc.Data.decode("utf-16-le", "replace").split("\x00", 1)[0]
    return decode_name(misc.Data)


def parse_codeview_ref(blob: bytes) -> CodeViewRef:
    if len(blob) < 4:
        raise SymbolFileError("CodeView record shorter than its signature")
    magic = bytes(blob[:4])
    if magic == b"RSDS":
        record = parse_struct(CV_INFO_PDB70, bytes(blob), "RSDS record")
        return CodeViewRef("RSDS", decode_name(record.PdbFileName), None,
                           uuid.UUID(bytes_le=record.Guid), record.Age)
    if magic == b"NB10":
        record = parse_struct(CV_INFO_PDB20, bytes(blob), "NB10 record")
        return CodeViewRef("NB10", decode_name(record.PdbFileName), record.Signature, None, record.Age)
    if magic in (b"NB09", b"NB11"):
        return CodeViewRef(magic.decode())
    raise SymbolFileError(f"unknown CodeView signature {magic!r}")


def parse_fpo(blob: bytes) -> list[FpoData]:
    count = len(blob) // _FPO.size
    if count > MAX_FPO:
        raise SymbolFileError(f"{count} FPO records")
    records = []
    for i in range(count):
        start, size, locals_, params, bits = _FPO.unpack_from(blob, i * _FPO.size)
        records.append(FpoData(start, size, locals_, params, bits & 0xFF, (bits >> 8) & 7,
                               bool(bits & 0x800), bool(bits & 0x1000), (bits >> 14) & 3))
    return records


def parse_section_headers(data: bytes, count: int | None = None,
                          limit: int | None = MAX_SECTIONS) -> list[SectionHeader]:
    """``count`` IMAGE_SECTION_HEADERs (None: every whole one in ``data``); more than
    ``limit`` (None: no limit) or fewer bytes than ``count`` needs is ``SymbolFileError``."""
    if count is None:
        count = len(data) // _SECTION_SIZE
    if limit is not None and count > limit:
        raise SymbolFileError(f"{count} section headers")
    if count * _SECTION_SIZE > len(data):
        raise SymbolFileError("section headers truncated")
    sections = []
    for i in range(count):
        name, virtual_size, virtual_address, *_, characteristics = _SECTION_ROW.unpack_from(
            data, i * _SECTION_SIZE)
        sections.append(SectionHeader(decode_name(name), virtual_address, virtual_size,
                                      characteristics))
    return sections


# Builders: fixtures for tests and the DBG writer ---------------------------------

def build_misc(name: str) -> bytes:
    data = name.encode("cp1252") + b"\x00"
    data += b"\x00" * (-(12 + len(data)) % 4)
    return IMAGE_DEBUG_MISC.build({"DataType": IMAGE_DEBUG_MISC_EXENAME, "Length": 12 + len(data),
                                   "Unicode": 0, "Data": data})


def build_nb10(pdb_name: str, signature: int, age: int) -> bytes:
    return CV_INFO_PDB20.build({"Offset": 0, "Signature": signature, "Age": age,
                                "PdbFileName": pdb_name.encode("cp1252") + b"\x00"})


def build_rsds(pdb_name: str, guid: uuid.UUID, age: int) -> bytes:
    return CV_INFO_PDB70.build({"Guid": guid.bytes_le, "Age": age,
                                "PdbFileName": pdb_name.encode("utf-8") + b"\x00"})


def build_section_header(section: SectionHeader, raw_size: int = 0, raw_pointer: int = 0) -> bytes:
    return IMAGE_SECTION_HEADER.build({
        "Name": section.name.encode("ascii", "replace")[:8].ljust(8, b"\x00"),
        "VirtualSize": section.virtual_size, "VirtualAddress": section.virtual_address,
        "SizeOfRawData": raw_size, "PointerToRawData": raw_pointer, "PointerToRelocations": 0,
        "PointerToLinenumbers": 0, "NumberOfRelocations": 0, "NumberOfLinenumbers": 0,
        "Characteristics": section.characteristics,
    })


def build_fpo(record: FpoData) -> bytes:
    bits = (record.prolog & 0xFF) | (record.regs & 7) << 8 | int(record.has_seh) << 11 \
        | int(record.use_bp) << 12 | (record.frame & 3) << 14
    return FPO_DATA.build({"ulOffStart": record.start, "cbProcSize": record.proc_size,
                           "cdwLocals": record.locals, "cdwParams": record.params, "Flags": bits})


def build_debug_entry(kind: int, size: int, pointer: int, rva: int = 0, timestamp: int = 0) -> bytes:
    return IMAGE_DEBUG_DIRECTORY.build({
        "Characteristics": 0, "TimeDateStamp": timestamp, "MajorVersion": 0, "MinorVersion": 0,
        "Type": kind, "SizeOfData": size, "AddressOfRawData": rva, "PointerToRawData": pointer,
    })
