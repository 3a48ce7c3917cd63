"""Matching by identity: keys, status letters, forced loads."""

from __future__ import annotations

import uuid

from kdcon.symbols.match import image_key, match_identity, pdb_key, store_key, wanted_pdb
from kdcon.symbols.model import FileKind, SymbolId

GUID = uuid.UUID("8994979d-169b-b90b-3d71-598837151c2d")


def _image(**fields):
    base = dict(kind=FileKind.PE, name="ntoskrnl.exe", timestamp=0x37CDB039, size_of_image=0x62040,
                checksum=0x1234)
    base.update(fields)
    return SymbolId(**base)


def _dbg(**fields):
    return _image(kind=FileKind.DBG, name="ntoskrnl.dbg", **fields)


def test_keys_follow_symsrv_formats():
    assert image_key(0x37CDB039, 0x62040) == "37CDB03962040"
    raw = uuid.UUID(bytes_le=bytes.fromhex("9d979489 9b16 0bb9 3d71598837151c2d".replace(" ", "")))
    assert pdb_key(SymbolId(kind=FileKind.PDB7, name="n.pdb", guid=raw, age=1)) == "8994979D169BB90B3D71598837151C2D1"
    assert store_key(SymbolId(kind=FileKind.PDB2, name="msvcrt.pdb", signature=0x37A8F40E, age=2)) == "37A8F40E2"
    assert store_key(SymbolId(kind=FileKind.PE, name="x.sys")) is None


def test_equal_dbg_matches_and_zero_checksum_is_letter_c():
    assert match_identity(_image(), _dbg()).letter == ""
    verdict = match_identity(_image(checksum=0), _dbg())
    assert verdict.usable and verdict.letter == "C" and verdict.exact


def test_timestamp_size_or_checksum_difference_is_refused_with_hash():
    for changed in ({"timestamp": 0x37CDB03A}, {"size_of_image": 0x63000}, {"checksum": 0x9999}):
        verdict = match_identity(_image(), _dbg(**changed))
        assert not verdict.usable and verdict.letter == "#", changed
        assert verdict.reasons


def test_forced_mismatch_is_loaded_as_m():
    verdict = match_identity(_image(), _dbg(timestamp=1), force=True)
    assert verdict.usable and verdict.letter == "M"


def test_missing_timestamp_is_t_and_needs_a_size():
    assert match_identity(_image(timestamp=0), _dbg()).letter == "T"
    assert not match_identity(_image(timestamp=0, size_of_image=0), _dbg()).usable


def test_pdb_needs_guid_and_age_or_signature_and_age():
    image = _image(guid=GUID, age=3, pdb_name="ntkrnlmp.pdb")
    good = SymbolId(kind=FileKind.PDB7, name="ntkrnlmp.pdb", guid=GUID, age=3)
    assert match_identity(image, good).letter == ""
    assert not match_identity(image, SymbolId(kind=FileKind.PDB7, name="ntkrnlmp.pdb", guid=GUID, age=4)).usable
    other = uuid.UUID(int=GUID.int ^ 1)
    assert not match_identity(image, SymbolId(kind=FileKind.PDB7, name="ntkrnlmp.pdb", guid=other, age=3)).usable
    nb10 = _dbg(signature=0x3B7D8410, age=2, pdb_name="drv.pdb")
    pdb2 = SymbolId(kind=FileKind.PDB2, name="drv.pdb", signature=0x3B7D8410, age=2)
    assert match_identity(nb10, pdb2).usable
    assert not match_identity(nb10, SymbolId(kind=FileKind.PDB2, name="drv.pdb", signature=0x3B7D8411, age=2)).usable


def test_pdb_is_never_matched_by_name_alone():
    verdict = match_identity(_image(), SymbolId(kind=FileKind.PDB7, name="ntoskrnl.pdb", guid=GUID, age=1))
    assert not verdict.usable
    assert wanted_pdb(_image()) is None
