"""Seeded fuzzing of the DBG and PE parsers: only SymbolFileError, fast, bounded memory.

Each format gets 100,000 mutated inputs (two worker processes, fixed seeds) built
from fixture files of every shape the parsers read.
"""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor

from kdcon.symbols.cvinline import build_nb09_publics
from kdcon.symbols.dbg import read_dbg
from kdcon.symbols.dbgwriter import CoffSymbol, DbgSpec, build_dbg, example_sections
from kdcon.symbols.debugdir import FpoData, build_fpo, build_misc, build_nb10, build_rsds
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.pe import read_image, read_image_from_memory
from kdcon.symbols.pewriter import ImageSpec, build_image

from .fuzz_support import run_chunk
from .store_fixtures import nt4_pair

PER_FORMAT = 100_000
WORKERS = 2
MAX_PEAK_KB = 400 * 1024


def _dbg_seeds() -> list[bytes]:
    fpo = [FpoData(0x1010, 0x30, 1, 2, 3, 1, False, True, 0)]
    coff = [CoffSymbol("_DriverEntry@8", 1, 0x70), CoffSymbol("_ALongerName@12", 1, 0x10),
            CoffSymbol("_Data", 3, 0, function=False)]
    return [
        nt4_pair().dbg,
        build_dbg(DbgSpec(sections=example_sections(), exported_names=["A", "B"],
                          nb10=("drv.pdb", 0x3B7D8410, 2), coff_symbols=coff, fpo=fpo,
                          omap_from_src=[(0x1000, 0x5000), (0x1050, 0)], omap_to_src=[(0x5000, 0x1000)])),
        build_dbg(DbgSpec(sections=example_sections(),
                          codeview_blob=build_nb09_publics([("_KeBugCheck@4", 1, 0x10), ("_X", 3, 4)]))),
    ]


def _pe_seeds() -> list[bytes]:
    guid = uuid.UUID("094c7fa9-a34c-fb3d-4c4c-44205044422e")
    return [
        nt4_pair().image,
        build_image(ImageSpec(exports={"DriverEntry": 0x1100, "DemoExported": 0x1000}, text_size=0x200,
                              debug=[(2, build_rsds("drv.pdb", guid, 1))],
                              runtime_functions=[(0x1000, 0x1040, 0x1180)],
                              unwind_blobs={0x180: bytes([0x09, 4, 2, 0, 4, 0x32, 1, 0x30, 0x20, 0x10, 0, 0])})),
        build_image(ImageSpec(machine=0x14C, image_base=0x400000, text_size=0x200, exports={"F": 0x1010},
                              debug=[(4, build_misc("x.dbg")), (2, build_nb10("x.pdb", 5, 1)),
                                     (3, build_fpo(FpoData(0x1000, 0x10, 0, 0, 0, 0, False, False, 0)))],
                              map_debug_data=False)),
    ]


def _consume_dbg(data: bytes) -> None:
    dbg = read_dbg(data, "fuzz.dbg")
    dbg.symbols()
    dbg.coff_symbols()
    dbg.fpo()
    dbg.omap_to_src()


def _consume_pe(data: bytes) -> None:
    image = read_image(data, "fuzz.sys")
    image.exports()
    for function in image.runtime_functions()[:4]:
        image.unwind_info(function)
    image.fpo()
    if data[:1] == b"M" and len(data) % 5 == 0:
        # Every fifth input also goes through the memory (mapped-layout) path.
        memory = read_image_from_memory(lambda rva, size: data[rva:rva + size] or None, "fuzz.sys")
        memory.exports()


def _fuzz(consume, seeds, base_seed):
    # spawn, not fork: a child forked while another thread holds a lock (logging,
    # a test's reader thread) could hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        futures = [pool.submit(run_chunk, consume, seeds, PER_FORMAT // WORKERS, base_seed + i, SymbolFileError)
                   for i in range(WORKERS)]
        return [f.result(timeout=300) for f in futures]


def _check(reports):
    assert sum(r["fed"] for r in reports) >= PER_FORMAT
    assert [u for r in reports for u in r["unexpected"]] == []
    assert max(r["slowest"] for r in reports) < 1.0
    assert max(r["peak_kb"] for r in reports) < MAX_PEAK_KB


def test_seeds_parse_cleanly():
    for data in _dbg_seeds():
        _consume_dbg(data)
    for data in _pe_seeds():
        _consume_pe(data)


def test_dbg_parser_survives_100k_mutations():
    _check(_fuzz(_consume_dbg, _dbg_seeds(), 0xD86))


def test_pe_parser_survives_100k_mutations():
    _check(_fuzz(_consume_pe, _pe_seeds(), 0x9E0))
