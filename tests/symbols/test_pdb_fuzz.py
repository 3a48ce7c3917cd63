"""Seeded mutation fuzzing of the PDB reader: 100,000 inputs per format.

Seeds are writer-built PDB 7.0 and PDB 2.0 files (VC6 and VC4 layouts, the
2.0 ones with C11 line tables whose fields are mutation targets too). Each
input is a seed with one to three mutations (bit flips, truncation, spliced or
inserted garbage, absurd counts and sizes at header and stream fields, page
numbers redirected into cycles) and is exercised: identity, sections,
publics, globals and type layouts on every input, procedures, labels, lines
and the staged lookups a module does (address, exact name, wildcard) on every
fourth. Only SymbolFileError
may come out; every input must finish within a second; memory is bounded by
RLIMIT_AS in the worker process. The two formats run in two worker processes
at once.
"""

from __future__ import annotations

import json
import logging
import os
import random
import resource
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path

from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.index import SymbolIndex
from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pdb.msf import MsfFile
from kdcon.symbols.pdb.staged import PdbSymbols
from kdcon.symbols.pdb.structs import TPI_VER_V50
from kdcon.symbols.pdb.writer import build_pdb
from tests.symbols.fixtures_pdb import sample_spec

INPUTS_PER_FORMAT = 100_000
PER_INPUT_LIMIT = 1.0
MEMORY_LIMIT = 1 << 30
ABSURD = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, 0x10000, 0x1000, 0, 1)
C11_SEED_LINES = [("c:\\src\\drv.c", 1, 0x10, [(0, 10), (8, 11), (0x20, 14)]),
                  ("c:\\src\\helper.c", 1, 0x80, [(0, 3), (0x10, 4)]),
                  ("c:\\src\\drv.c", 2, 0x10, [(0, 30), (4, 31)])]


def _seeds(fmt: str) -> list[tuple[bytes, list]]:
    if fmt == "pdb7":
        specs = [sample_spec("pdb7", page_size=512), sample_spec("pdb7", page_size=1024)]
    else:
        specs = [sample_spec("vc6", page_size=512, lines=C11_SEED_LINES),
                 sample_spec("vc4", page_size=512, lines=C11_SEED_LINES),
                 sample_spec("vc4", page_size=1024, dbi_form="v50", tpi_version=TPI_VER_V50,
                             lines=C11_SEED_LINES)]
    return [(build_pdb(spec), spec.sections) for spec in specs]


def _c11_offsets(data: bytes, sections) -> list[int]:
    """File offsets of the C11 line block's u16 fields in a 2.0 seed (its module stream)."""
    with open_pdb(data, image_sections=sections) as pdb:
        module = pdb.dbi.modules[0]
        pages = pdb.msf._stream_pages[module.stream]
        ps = pdb.msf.page_size
        return [pages[at // ps] * ps + at % ps
                for at in range(module.sym_bytes, module.sym_bytes + module.c11_bytes, 2)]


def _hot_offsets(data: bytes) -> tuple[list[int], list[int]]:
    """File offsets worth hitting (header, directory, stream heads) and directory page slots."""
    msf = MsfFile(data)
    ps = msf.page_size
    hot = list(range(0, 0x40, 2))
    slots = []
    for pages in msf._stream_pages:
        if pages is None:
            continue
        for page in pages[:1]:
            hot.extend(range(page * ps, page * ps + 96, 2))
    directory_pages = {p for p in range(msf.page_count)
                       if data[p * ps:p * ps + 16] == msf._directory[:16]}
    for page in directory_pages:
        width = 2 if msf.is_small else 4
        slots.extend(range(page * ps, page * ps + min(ps, len(msf._directory)), width))
        hot.extend(range(page * ps, page * ps + 64, 2))
    return hot, slots


def _mutate(rnd: random.Random, data: bytes, hot: list[int], slots: list[int],
            small: bool) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 3)):
        choice = rnd.randrange(6)
        if choice == 0:
            for _ in range(rnd.randint(1, 8)):
                pos = rnd.randrange(len(buf))
                buf[pos] ^= 1 << rnd.randrange(8)
        elif choice == 1:
            del buf[rnd.randrange(len(buf)):]
            if not buf:
                break
        elif choice == 2:
            pos = rnd.randrange(len(buf))
            buf[pos:pos + rnd.randint(1, 64)] = rnd.randbytes(rnd.randint(1, 64))
        elif choice == 3:
            pos = rnd.choice(hot)
            if pos + 4 <= len(buf):
                struct.pack_into("<I", buf, pos, rnd.choice(ABSURD))
        elif choice == 4 and slots:
            # Redirect a directory page slot to another page: cycles and overlaps.
            pos = rnd.choice(slots)
            fmt = "<H" if small else "<I"
            if pos + 4 <= len(buf):
                target = rnd.choice((0, 1, struct.unpack_from(fmt, buf, pos)[0] + 1,
                                     rnd.randrange(len(buf) // 512 + 1)))
                struct.pack_into(fmt, buf, pos, target & (0xFFFF if small else 0xFFFFFFFF))
        else:
            pos = rnd.choice(hot)
            if pos + 2 <= len(buf):
                struct.pack_into("<H", buf, pos, rnd.choice((0xFFFF, 0x8000, 0x1000, 0, 3)))
    return bytes(buf)


def _exercise(data: bytes, sections, modules: bool) -> bool:
    """Every stage on one input; module streams (procedures, labels, lines) when ``modules``."""
    with open_pdb(data, image_sections=sections) as pdb:
        pdb.identity
        pdb.sections
        pdb.publics()
        pdb.globals()
        if modules:
            pdb.procedures()
            pdb.labels()
            pdb.lines()
            _lookups(pdb)
        for name in ("_OBJ", "_U", "POBJ"):
            info = pdb.types.find(name)
            if info is not None:
                [f.type_name for f in info.fields]
                info.type_name
        state = pdb.types.find("_STATE")
        if state is not None:
            state.enumerators
    return True


def _lookups(pdb) -> None:
    """The staged path a module takes: publics first, then streams by address, then names."""
    source = PdbSymbols(pdb)
    index = SymbolIndex(tables=[source.publics], source=source)
    for rva in (0x1010, 0x1031, 0x2020, 0x2100, 0xFFFFFFFF):
        index.lookup(rva)
        index.at(rva)
    index.find("DriverEntry")
    index.match("*Glob*")


def worker(fmt: str, count: int, seed: int) -> dict:
    """Run ``count`` inputs of ``fmt``; the summary is printed as JSON by ``__main__``."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    logging.disable(logging.CRITICAL)
    rnd = random.Random(seed)
    seeds = [(data, sections, *_hot_offsets(data)) for data, sections in _seeds(fmt)]
    if fmt != "pdb7":
        for data, sections, hot, _ in seeds:
            hot.extend(_c11_offsets(data, sections))
    small = fmt != "pdb7"
    accepted = rejected = 0
    slowest = 0.0
    failures = []
    for i in range(count):
        data, sections, hot, slots = seeds[i % len(seeds)]
        mutated = _mutate(rnd, data, hot, slots, small)
        start = time.perf_counter()
        try:
            # Module streams on every fourth input: they are a quarter of the
            # file and the costliest stage, so this keeps the run in budget.
            _exercise(mutated, sections, modules=i % 4 == 0)
            accepted += 1
        except SymbolFileError:
            rejected += 1
        except BaseException:
            failures.append({"input": i, "error": traceback.format_exc(limit=4)})
            if len(failures) >= 5:
                break
        elapsed = time.perf_counter() - start
        slowest = max(slowest, elapsed)
        if elapsed > PER_INPUT_LIMIT:
            failures.append({"input": i, "error": f"took {elapsed:.2f} s"})
    return {"format": fmt, "inputs": accepted + rejected + len(failures), "accepted": accepted,
            "rejected": rejected, "slowest": slowest, "failures": failures,
            "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def test_fuzz_pdb7_and_pdb2_raise_only_symbol_file_error():
    root = Path(__file__).resolve().parents[2]
    procs = {}
    for fmt, seed in (("pdb7", 7), ("pdb2", 2)):
        code = (f"import json, tests.symbols.test_pdb_fuzz as f; "
                f"print(json.dumps(f.worker({fmt!r}, {INPUTS_PER_FORMAT}, {seed})))")
        procs[fmt] = subprocess.Popen([sys.executable, "-c", code], cwd=root, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env={**os.environ, "PYTHONHASHSEED": "0"})
    results = {}
    for fmt, proc in procs.items():
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-3000:]
        results[fmt] = json.loads(out.strip().splitlines()[-1])
    for fmt, result in results.items():
        assert result["failures"] == [], (fmt, result["failures"])
        assert result["inputs"] >= INPUTS_PER_FORMAT
        assert result["slowest"] < PER_INPUT_LIMIT
        # Both outcomes must be common, or the mutations are not reaching the decoders.
        assert result["accepted"] > INPUTS_PER_FORMAT // 20, result
        assert result["rejected"] > INPUTS_PER_FORMAT // 20, result
        assert result["max_rss_kb"] < 400 * 1024, result


def test_fuzz_worker_reports_an_escaping_exception(monkeypatch):
    # The harness itself must be able to fail: an exception other than
    # SymbolFileError is recorded as a failure.
    import tests.symbols.test_pdb_fuzz as module

    def broken(data, sections, modules):
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(module, "_exercise", broken)
    monkeypatch.setattr(module.resource, "setrlimit", lambda *a: None)
    result = module.worker("pdb7", 3, 1)
    assert len(result["failures"]) == 3 and "decoder bug" in result["failures"][0]["error"]
