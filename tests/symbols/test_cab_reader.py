"""The CAB reader against gcab and cabextract: round trips, hand-built cabinets, bad input, fuzz."""

from __future__ import annotations

import io
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdcon.symbols.cab import (MAX_BLOCK, cab_checksum, expand_single, extract_single, method_name,
                               read_cabinet)
from kdcon.symbols.errors import SymbolFileError

from .test_store_cab_fixtures import COFF_FILES, FOLDER, HAL_PDB, KERNEL_PDB, build_cab, cabextract, gcab
from .store_fixtures import nt4_pair, put


class OneByteAtATime(io.RawIOBase):
    """A seekable stream whose every read returns at most one byte."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._at = offset if whence == 0 else (self._at + offset if whence == 1 else len(self._data) + offset)
        return self._at

    def readinto(self, buffer) -> int:
        chunk = self._data[self._at:self._at + 1]
        buffer[:len(chunk)] = chunk
        self._at += len(chunk)
        return len(chunk)


def _expand(stream) -> tuple[str, bytes]:
    out = io.BytesIO()
    entry = expand_single(stream, out.write)
    return entry.name, out.getvalue()


def _three_ways(cab: bytes) -> list[tuple[str, bytes]]:
    """Whole, one byte at a time, and with trailing bytes after cbCabinet."""
    return [_expand(io.BytesIO(cab)), _expand(OneByteAtATime(cab)),
            _expand(io.BytesIO(cab + b"MSCF trailing garbage" * 3))]


def _sources(tmp_path) -> dict[str, str]:
    dbg = put(str(tmp_path / "src" / "ntoskrnl.dbg"), nt4_pair().dbg)
    return {"dbg": dbg, "hal": HAL_PDB, "kernel": KERNEL_PDB}


@pytest.mark.parametrize("compress", [True, False], ids=["mszip", "stored"])
@pytest.mark.parametrize("which", ["dbg", "hal", "kernel"])
def test_gcab_cabinets_expand_to_the_original_and_to_cabextracts_output(tmp_path, which, compress):
    source = _sources(tmp_path)[which]
    original = open(source, "rb").read()
    cab = gcab(str(tmp_path / "cab"), source, compress=compress)
    name, data = extract_single(cab)
    assert name == os.path.basename(source) and data == original
    assert cabextract(str(tmp_path / "out"), cab) == (name, data)
    cabinet = read_cabinet(open(cab, "rb"))
    assert cabinet.folders[0].method == (1 if compress else 0)
    assert cabinet.folders[0].block_count == max(1, -(-len(original) // MAX_BLOCK))
    for way in _three_ways(open(cab, "rb").read()):
        assert way == (name, original)


@pytest.mark.parametrize("options", [dict(), dict(reserve=(20, 4, 8)), dict(prev_next=True),
                                     dict(checksum=False), dict(utf8=True), dict(method=0),
                                     dict(block=1000, history=False)],
                         ids=["history", "reserve", "cabinet-names", "no-checksum", "utf8", "stored", "small-blocks"])
def test_hand_built_cabinets_agree_with_cabextract(tmp_path, options):
    original = open(KERNEL_PDB, "rb").read()
    name = "ntkrnlmp.pdb" if not options.get("utf8") else "ntkrnlmp\u00e9.pdb"
    cab = build_cab(name, original, **options)
    path = put(str(tmp_path / "k.pd_"), cab)
    extracted = cabextract(str(tmp_path / "out"), path)
    assert extracted[1] == original
    for way in _three_ways(cab):
        assert way == (name, original)


def test_mszip_history_crosses_block_boundaries():
    # Blocks that repeat the previous block only inflate with its history.
    data = os.urandom(20000) * 4
    with_history, without = build_cab("r.bin", data), build_cab("r.bin", data, history=False)
    assert len(with_history) < len(without) // 2
    assert _expand(io.BytesIO(with_history)) == ("r.bin", data)


def test_checksum_folds_words_and_packs_the_tail_high_first():
    assert cab_checksum(b"") == 0
    assert cab_checksum(b"\x01\x02\x03\x04\x10\x20\x30\x40") == 0x04030201 ^ 0x40302010
    assert cab_checksum(b"\x01\x02\x03") == 0x010203
    assert cab_checksum(b"\x00\x00\x00\x00\x01\x02", seed=0xFF000000) == 0xFF000102
    assert method_name(0x1503) == "LZX" and method_name(2) == "Quantum" and method_name(9) == "unknown method 9"


def _patched(cab: bytes, offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(cab)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.fixture(scope="module")
def small_cab() -> bytes:
    return build_cab("hal.pdb", open(HAL_PDB, "rb").read())


@pytest.mark.parametrize("offset,fmt,value,words", [
    (0, "<I", 0x4643534E, "signature"),
    (8, "<I", 20, "smaller than its header"),
    (COFF_FILES, "<I", 0x7FFFFFF0, "file table"),
    (0x19, "<B", 2, "version"),
    (0x1A, "<H", 0, "0 folders"),
    (0x1C, "<H", 2, "holds 2 files"),
    (0x1E, "<H", 0x40, "unknown flags"),
    (FOLDER, "<I", 0x7FFFFFF0, "outside the cabinet"),
    (FOLDER + 4, "<H", 9, "beyond the end"),
    (FOLDER + 4, "<H", 1, "beyond its folder"),
    (FOLDER + 6, "<H", 3, "LZX-compressed store entry: window of 2\\^0 bytes is outside"),
    (FOLDER + 6, "<H", 2, "Quantum-compressed store entry: not supported"),
    (FOLDER + 6, "<H", 7, "unknown method 7"),
], ids=lambda v: str(v))
def test_corrupt_header_fields_raise_symbol_file_error(small_cab, offset, fmt, value, words):
    with pytest.raises(SymbolFileError, match=words):
        _expand(io.BytesIO(_patched(small_cab, offset, fmt, value)))


def test_file_entry_fields_are_checked(small_cab):
    entry = struct.unpack_from("<I", small_cab, COFF_FILES)[0]
    cases = [(entry, "<I", 0x50000000, "limit|beyond its folder"),
             (entry + 4, "<I", 0x20000, "beyond its folder"),
             (entry + 8, "<H", 1, "folder 1 does not exist"),
             (entry + 8, "<H", 0xFFFD, "spans several cabinets")]
    for offset, fmt, value, words in cases:
        with pytest.raises(SymbolFileError, match=words):
            _expand(io.BytesIO(_patched(small_cab, offset, fmt, value)))
    unterminated = small_cab[:entry + 16] + b"A" * 300
    with pytest.raises(SymbolFileError, match="not terminated|beyond the end"):
        _expand(io.BytesIO(unterminated))


def test_data_block_problems_are_detected(small_cab):
    data_at = struct.unpack_from("<I", small_cab, FOLDER)[0]
    with pytest.raises(SymbolFileError, match="bad checksum"):
        _expand(io.BytesIO(_patched(small_cab, data_at, "<I", 0x12345678)))
    with pytest.raises(SymbolFileError, match="limit 32768"):
        _expand(io.BytesIO(_patched(small_cab, data_at + 6, "<H", 40000)))
    unsummed = build_cab("hal.pdb", open(HAL_PDB, "rb").read(), checksum=False)
    with pytest.raises(SymbolFileError, match="CK"):
        _expand(io.BytesIO(_patched(unsummed, data_at + 8, "<H", 0x4242)))
    with pytest.raises(SymbolFileError, match="inflate"):
        _expand(io.BytesIO(_patched(unsummed, data_at + 6, "<H", 1000)))
    stored = build_cab("x.bin", b"abc" * 100, method=0, checksum=False)
    stored_at = struct.unpack_from("<I", stored, FOLDER)[0]
    with pytest.raises(SymbolFileError, match="holds"):
        _expand(io.BytesIO(_patched(stored, stored_at + 6, "<H", 299)))


def test_truncated_cabinets_raise_symbol_file_error(small_cab):
    for cut in (0, 3, 35, 0x30, 0x40, len(small_cab) // 2, len(small_cab) - 1):
        with pytest.raises(SymbolFileError):
            _expand(io.BytesIO(small_cab[:cut]))


def test_expected_name_is_compared_ignoring_case(small_cab):
    out = io.BytesIO()
    assert expand_single(io.BytesIO(small_cab), out.write, expect="HAL.PDB").name == "hal.pdb"
    with pytest.raises(SymbolFileError, match="not 'halmps.pdb'"):
        expand_single(io.BytesIO(small_cab), io.BytesIO().write, expect="halmps.pdb")


def test_output_cap_is_enforced_before_inflating(small_cab):
    with pytest.raises(SymbolFileError, match="limit"):
        expand_single(io.BytesIO(small_cab), io.BytesIO().write, cap=1000)


def test_unreadable_path_is_a_symbol_file_error(tmp_path):
    with pytest.raises(SymbolFileError, match="cannot read"):
        extract_single(str(tmp_path / "missing.pd_"))


@pytest.fixture(scope="module")
def fuzz_seeds(tmp_path_factory) -> list[bytes]:
    root = tmp_path_factory.mktemp("cabfuzz")
    tiny = put(str(root / "tiny.bin"), open(HAL_PDB, "rb").read()[:40000])
    return [open(gcab(str(root / "z"), tiny, compress=True), "rb").read(),
            open(gcab(str(root / "n"), tiny, compress=False), "rb").read()[:2000]]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_gcab_output_raises_only_symbol_file_error(fuzz_seeds, data):
    seed = bytearray(data.draw(st.sampled_from(fuzz_seeds)))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, min(len(seed), 200) - 1)) if data.draw(st.booleans()) \
            else data.draw(st.integers(0, len(seed) - 1))
        seed[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del seed[data.draw(st.integers(0, len(seed))):]
    try:
        _expand(io.BytesIO(bytes(seed)))
    except SymbolFileError:
        pass
