"""Damaged symbol files opened by path: only the layer's documented outcomes come out.

The byte fuzzers (``test_pdb_fuzz``, ``test_symbol_parser_fuzz``) feed bytes; a
file opened by path takes other code (the PDB reader maps it, and the mapping
must be let go on every error path). Here seeded mutated and truncated PDB 7.0,
PDB 2.0, DBG and image files are written to disk and opened through the public
entry points: ``open_pdb``, ``read_dbg``, ``read_image``, ``read_identity`` may
raise ``SymbolFileError`` and nothing else, and a ``SymbolSession`` whose module
finds such a file answers with what it could load (exports, or no symbols) and
a logged warning, never an exception.
"""

from __future__ import annotations

import logging
import uuid

import pytest

from kdcon.symbols.dbg import read_dbg
from kdcon.symbols.debugdir import build_nb10, build_rsds
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.locate import read_identity
from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pdb.writer import build_pdb
from kdcon.symbols.pe import read_image
from kdcon.symbols.pewriter import ImageSpec, build_image
from kdcon.symbols.session import SymbolSession

from .fixtures_pdb import sample_spec
from .fuzz_support import mutations
from .store_fixtures import nt4_pair, put
from .test_symbol_parser_fuzz import _dbg_seeds, _pe_seeds

DIRECT_PER_FORMAT = 300
SESSION_PER_FORMAT = 60
GUID = uuid.UUID("094c7fa9-a34c-fb3d-4c4c-44205044422e")   # the writer's default
SIGNATURE = 0x3B7D8410
FORMATS = ("pdb7", "pdb2", "dbg", "pe")


def _seeds(fmt: str) -> list[bytes]:
    if fmt == "pdb7":
        return [build_pdb(sample_spec("pdb7", page_size=512)), build_pdb(sample_spec("pdb7", page_size=1024))]
    if fmt == "pdb2":
        return [build_pdb(sample_spec("vc6", page_size=512)), build_pdb(sample_spec("vc4", page_size=1024))]
    return _dbg_seeds() if fmt == "dbg" else _pe_seeds()


def _damaged(fmt: str, count: int, seed: int) -> list[bytes]:
    """Truncations at every eighth of each seed, then seeded mutations."""
    seeds = _seeds(fmt)
    cut = [data[:len(data) * i // 8] for data in seeds for i in range(8)]
    return cut + list(mutations(seeds, count - len(cut), seed))


def _exercise(fmt: str, path: str) -> None:
    if fmt in ("pdb7", "pdb2"):
        with open_pdb(path) as pdb:
            pdb.identity
            pdb.sections
            pdb.publics()
            pdb.globals()
            pdb.procedures()
            pdb.lines()
            info = pdb.types.find("_OBJ")
            if info is not None:
                [f.type_name for f in info.fields]
    elif fmt == "dbg":
        dbg = read_dbg(path)
        dbg.symbols()
        dbg.fpo()
    else:
        image = read_image(path)
        image.exports()
        image.runtime_functions()
        image.fpo()
    read_identity(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_file_opened_by_path_raises_only_symbol_file_error(fmt, tmp_path):
    unexpected = []
    rejected = 0
    for number, data in enumerate(_damaged(fmt, DIRECT_PER_FORMAT, seed=len(fmt) * 101)):
        path = put(str(tmp_path / f"{number}.bin"), data)
        try:
            _exercise(fmt, path)
        except SymbolFileError:
            rejected += 1
        except Exception as exc:  # the point of the test: anything else is a finding
            unexpected.append(f"input {number} ({len(data)} bytes): {type(exc).__name__}: {exc}")
    assert unexpected == []
    assert rejected > DIRECT_PER_FORMAT // 10, "the mutations do not reach the decoders"


def _session_case(fmt: str, tmp_path):
    """(image to register, file name the session will look for, the good file) per format."""
    if fmt == "pdb7":
        image = build_image(ImageSpec(name="drv.sys", text_size=0x200, exports={"DriverEntry": 0x1010},
                                      debug=[(2, build_rsds("drv.pdb", GUID, 1))]))
        return image, "drv.sys", "drv.pdb"
    if fmt == "pdb2":
        image = build_image(ImageSpec(name="drv.sys", machine=0x14C, image_base=0x10000, text_size=0x200,
                                      exports={"DriverEntry": 0x1010},
                                      debug=[(2, build_nb10("drv.pdb", SIGNATURE, 1))], map_debug_data=False))
        return image, "drv.sys", "drv.pdb"
    pair = nt4_pair()
    return pair.image, "ntoskrnl.exe", "ntoskrnl.dbg" if fmt == "dbg" else "ntoskrnl.exe"


@pytest.mark.parametrize("fmt", FORMATS)
def test_session_finding_a_damaged_file_gives_what_it_can_and_a_warning(fmt, tmp_path, caplog):
    image_bytes, image_name, wanted = _session_case(fmt, tmp_path)
    image = read_image(image_bytes, image_name)
    identity = image.identity
    for number, data in enumerate(_damaged(fmt, SESSION_PER_FORMAT, seed=len(fmt) * 7)):
        sym = tmp_path / str(number)
        path = put(str(sym / wanted), data)
        try:
            read_identity(path)
            readable = True
        except SymbolFileError:
            readable = False
        session = SymbolSession(str(sym), pointer_size=8 if image.is_64bit else 4)
        if fmt == "pe":
            # The image itself comes from the store, found by timestamp and size.
            module = session.add_module(image_name, image.image_base, identity.size_of_image,
                                        timestamp=identity.timestamp, checksum=identity.checksum)
        else:
            module = session.add_module(image_name, image.image_base, identity.size_of_image,
                                        timestamp=identity.timestamp, checksum=identity.checksum,
                                        image=image)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kdcon.symbols"):
            session.near(image.image_base + 0x1014)
            session.match("*")
            status = module.status()
        if not readable:
            assert any(path in r.getMessage() for r in caplog.records), (number, status)
            assert "(pdb symbols)" not in status and "(coff symbols)" not in status, (number, status)
