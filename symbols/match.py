"""Store keys and the rules that decide whether a symbol file belongs to an image.

Every image, DBG and PDB reduces to a ``SymbolId`` (model.py). From it come the
symsrv keys (symbols.md §3.2, §6.4) and the verdict of matching (§1.6, §6.5):

* DBG or image copy: TimeDateStamp must be equal, SizeOfImage and CheckSum are
  compared when both sides know them. A zero timestamp on the image gives ``T``,
  a zero checksum on either side ``C`` (unknown, not a mismatch); a difference ``#``.
* PDB 2.0 (NB10): signature and age equal. PDB 7.0 (RSDS): GUID and age equal.
* A forced load (``.reload /i``) accepts a mismatch and marks it ``M``.

The name is never enough: a file whose identity cannot be compared is refused.
This module reads no files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from .model import FileKind, SymbolId

__all__ = ["Match", "image_key", "pdb_key", "store_key", "guid_hex", "format_guid", "match_identity",
           "wanted_pdb"]


def guid_hex(guid: uuid.UUID) -> str:
    """GUID as symsrv writes it: Data1 %08X, Data2 %04X, Data3 %04X, Data4 bytes."""
    return f"{guid.fields[0]:08X}{guid.fields[1]:04X}{guid.fields[2]:04X}{guid.bytes[8:].hex().upper()}"


def format_guid(guid: uuid.UUID) -> str:
    """GUID as WinDbg shows it (``lm v``, ``!lmi``): ``{684DA42A-30CC-450F-81C5-35B4D18944B1}``."""
    return "{" + str(guid).upper() + "}"


def image_key(timestamp: int, size_of_image: int) -> str:
    """Key of a PE image or DBG file: ``%08X`` timestamp + ``%x`` SizeOfImage."""
    return f"{timestamp:08X}{size_of_image:x}"


def pdb_key(identity: SymbolId) -> str | None:
    """Key of a PDB (or of the PDB a CodeView record names), None when unknown."""
    if identity.guid is not None:
        return f"{guid_hex(identity.guid)}{identity.age:x}"
    if identity.signature is not None:
        return f"{identity.signature:08X}{identity.age:x}"
    return None


def store_key(identity: SymbolId) -> str | None:
    """The symsrv key under which ``identity``'s file is filed."""
    if identity.kind in (FileKind.PDB2, FileKind.PDB7):
        return pdb_key(identity)
    if identity.timestamp == 0 and identity.size_of_image == 0:
        return None
    return image_key(identity.timestamp, identity.size_of_image)


def wanted_pdb(image: SymbolId) -> SymbolId | None:
    """The PDB identity an image's (or DBG's) NB10/RSDS record asks for."""
    if image.pdb_name is None or (image.guid is None and image.signature is None):
        return None
    kind = FileKind.PDB7 if image.guid is not None else FileKind.PDB2
    return SymbolId(kind=kind, name=image.pdb_name, guid=image.guid,
                    signature=image.signature if image.guid is None else None, age=image.age)


@dataclass(frozen=True, slots=True)
class Match:
    """Verdict on one candidate file.

    ``letter`` is WinDbg's status letter: "" full match, "#" mismatch, "T"/"C"
    timestamp/checksum missing, "M" mismatched but loaded because forced.
    """

    usable: bool
    letter: str = ""
    reasons: tuple[str, ...] = field(default=())

    @property
    def exact(self) -> bool:
        return self.usable and self.letter in ("", "C")


def _image_rules(want: SymbolId, got: SymbolId) -> tuple[str, list[str]]:
    reasons: list[str] = []
    letter = ""
    if want.timestamp == 0 or got.timestamp == 0:
        letter = "T"
        reasons.append("timestamp missing")
        if not (want.size_of_image and got.size_of_image):
            reasons.append("nothing but the name to compare")
            return "#", reasons
    elif want.timestamp != got.timestamp:
        reasons.append(f"timestamp {got.timestamp:08X} != {want.timestamp:08X}")
        letter = "#"
    if want.size_of_image and got.size_of_image and want.size_of_image != got.size_of_image:
        reasons.append(f"size {got.size_of_image:x} != {want.size_of_image:x}")
        letter = "#"
    if want.checksum and got.checksum:
        if want.checksum != got.checksum:
            reasons.append(f"checksum {got.checksum:08X} != {want.checksum:08X}")
            letter = "#"
    elif letter == "":
        letter = "C"
        reasons.append("checksum missing")
    return letter, reasons


def _pdb_rules(want: SymbolId, got: SymbolId) -> tuple[str, list[str]]:
    reasons: list[str] = []
    if want.guid is not None:
        if got.guid != want.guid:
            reasons.append(f"GUID {format_guid(got.guid)} != {format_guid(want.guid)}"
                           if got.guid else "PDB has no GUID")
    elif want.signature is not None:
        if got.signature != want.signature:
            shown = f"{got.signature:08X}" if got.signature is not None else "none"
            reasons.append(f"signature {shown} != {want.signature:08X}")
    else:
        return "#", ["the image names no PDB signature or GUID"]
    if got.age != want.age:
        reasons.append(f"age {got.age:x} != {want.age:x}")
    return ("#" if reasons else ""), reasons


def match_identity(want: SymbolId, got: SymbolId, *, force: bool = False) -> Match:
    """Does the file ``got`` belong to ``want`` (an image, or a CodeView-named PDB)?"""
    if got.kind in (FileKind.PDB2, FileKind.PDB7):
        target = want if want.kind in (FileKind.PDB2, FileKind.PDB7) else wanted_pdb(want)
        if target is None:
            letter, reasons = "#", ["the image names no PDB signature or GUID"]
        else:
            letter, reasons = _pdb_rules(target, got)
    else:
        letter, reasons = _image_rules(want, got)
    if letter == "#":
        if force:
            return Match(True, "M", tuple(reasons))
        return Match(False, "#", tuple(reasons))
    return Match(True, letter, tuple(reasons))
