"""Benchmark: loading and querying a ~112,000-public PDB against llvm-pdbutil.

    python -m kdcon.tools.bench.symbols [--cache DIR] [--rebuild]

Builds the synthetic PDB of symbols.md §5 (8 translation units, 10,000 functions,
4,000 globals and 300 structs each; clang-cl-14 + lld-link), cached in
``$XDG_CACHE_HOME/kdcon-bench-symbols`` (or ``--cache``), then prints one JSON line
per figure. Every line carries the baseline measured in the same run:
``llvm-pdbutil dump -publics`` on the same file (wall seconds and peak RSS).

Figures: time to load the publics ready for lookup (open + publics + index) and
its ratio to llvm-pdbutil (goal <= 1), address lookups per second (goal >=
200,000), exact name lookups per second (first query builds the name map; that
cost is reported too), one wildcard query over all names (goal < 50 ms), and
peak memory; and the first ``ln`` on a deferred module backed by that PDB (search,
match, publics, procedures and globals). Not part of the test suite: the first build takes about a minute.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time

from kdcon.symbols.index import SymbolIndex
from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pe import read_image
from kdcon.symbols.session import SymbolSession
from kdcon.tools.bench.args import BenchParser

__all__ = ["main", "build_pdb"]

NFILES, NFUNC, NGLOB, NSTRUCT = 8, 10000, 4000, 300


def _tool(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(f"symbols bench: {names[0]} is not installed (.ci/run installs it)")


def _write_sources(directory: str) -> None:
    for f in range(NFILES):
        with open(os.path.join(directory, f"tu{f}.c"), "w") as out:
            for s in range(NSTRUCT):
                out.write(f"typedef struct _S{f}_{s} {{ unsigned long A; unsigned short B[{s % 7 + 1}]; "
                          f"struct _S{f}_{s} *Next; unsigned int Bits : {s % 31 + 1}; }} S{f}_{s};\n")
            for g in range(NGLOB):
                out.write(f"S{f}_{g % NSTRUCT} G{f}_{g};\n")
            for i in range(NFUNC):
                out.write(f"unsigned long Fn{f}_{i}(S{f}_{i % NSTRUCT} *p) {{ return p->A + {i}; }}\n")


def build_pdb(cache: str, rebuild: bool = False) -> str:
    """The synthetic PDB, built once and kept in ``cache``."""
    target = os.path.join(cache, "synth.pdb")
    if os.path.exists(target) and not rebuild:
        return target
    clang, lld = _tool("clang-cl-14", "clang-cl"), _tool("lld-link")
    os.makedirs(cache, exist_ok=True)
    _write_sources(cache)
    compiles = [subprocess.Popen([clang, "--target=x86_64-pc-windows-msvc", "/c", "/Z7", "/GS-", "/O1",
                                  "/Brepro", "-ffile-compilation-dir=.", f"/Fotu{f}.obj", f"tu{f}.c"],
                                 cwd=cache) for f in range(NFILES)]
    if any(p.wait() for p in compiles):
        raise SystemExit("symbols bench: clang-cl failed")
    subprocess.run([lld, "/DLL", "/NOENTRY", "/NODEFAULTLIB", "/DEBUG", "/Brepro", "/PDB:synth.tmp.pdb",
                    "/OUT:synth.dll", *[f"tu{f}.obj" for f in range(NFILES)]], cwd=cache, check=True)
    os.replace(os.path.join(cache, "synth.tmp.pdb"), target)
    return target


def _llvm_publics(pdb: str) -> tuple[float, int]:
    tool = _tool("llvm-pdbutil", "llvm-pdbutil-14")
    best = None
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([tool, "dump", "-publics", pdb], stdout=subprocess.DEVNULL, check=True)
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return best, peak_kb


def _load(pdb_path: str) -> tuple[float, SymbolIndex, int, dict]:
    best = None
    index = None
    count = 0
    parts: dict = {}
    for _ in range(3):
        started = time.perf_counter()
        pdb = open_pdb(pdb_path)
        opened = time.perf_counter()
        publics = pdb.publics()
        read = time.perf_counter()
        index = SymbolIndex(publics)
        elapsed = time.perf_counter() - started
        count = len(publics)
        pdb.close()
        if best is None or elapsed < best:
            best = elapsed
            parts = {"open_pdb_s": round(opened - started, 4), "publics_s": round(read - opened, 4),
                     "index_s": round(started + elapsed - read, 4)}
    return best, index, count, parts


def _emit(figure: str, value: float, unit: str, baseline: dict, **extra) -> None:
    line = {"bench": "symbols", "figure": figure, "value": round(value, 6), "unit": unit, **extra,
            "baseline": baseline}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.symbols")
    default_cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                 "kdcon-bench-symbols")
    parser.add_argument("--cache", default=default_cache)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    pdb_path = build_pdb(args.cache, args.rebuild)
    llvm_s, llvm_kb = _llvm_publics(pdb_path)
    baseline = {"name": "llvm-pdbutil dump -publics", "seconds": round(llvm_s, 4), "peak_rss_kb": llvm_kb}

    load_s, index, count, parts = _load(pdb_path)
    _emit("load_publics_ready_for_lookup", load_s, "s", baseline, publics=count, **parts,
          ratio_to_baseline=round(load_s / llvm_s, 3), goal="ratio <= 1")

    rng = random.Random(1)
    top = index.records[-1].rva + 0x100
    probes = [rng.randrange(0x1000, top) for _ in range(200_000)]
    lookup = index.lookup
    started = time.perf_counter()
    for rva in probes:
        lookup(rva)
    elapsed = time.perf_counter() - started
    rvas, bisect_right = index._rvas, bisect.bisect_right
    started = time.perf_counter()
    for rva in probes:
        bisect_right(rvas, rva)
    raw = len(probes) / (time.perf_counter() - started)
    _emit("address_lookups_per_second", len(probes) / elapsed, "1/s", baseline, goal=">= 200000",
          raw_bisect_per_second=round(raw), ratio_to_raw_bisect=round(len(probes) / elapsed / raw, 3))

    names = [r.name for r in index.records]
    started = time.perf_counter()
    index.find(names[0])
    first = time.perf_counter() - started
    queries = [rng.choice(names) for _ in range(200_000)]
    find = index.find
    started = time.perf_counter()
    for name in queries:
        find(name)
    elapsed = time.perf_counter() - started
    _emit("exact_name_lookups_per_second", len(queries) / elapsed, "1/s", baseline,
          first_query_builds_map_s=round(first, 4))

    started = time.perf_counter()
    index.match("Fn3_1*")
    first = time.perf_counter() - started
    best = None
    hits = 0
    for _ in range(5):
        started = time.perf_counter()
        hits = len(index.match("*n7_99*"))
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    _emit("wildcard_query_all_names", best * 1000, "ms", baseline, pattern="*n7_99*", hits=hits,
          first_query_builds_text_s=round(first, 4), goal="< 50 ms")

    started = time.perf_counter()
    session = SymbolSession(os.path.dirname(pdb_path))
    image = read_image(os.path.join(os.path.dirname(pdb_path), "synth.dll"))
    session.add_module("synth.dll", image.image_base, image.identity.size_of_image, image=image)
    name = session.name_for(image.image_base + index.records[len(index.records) // 2].rva + 1)
    first_ln = time.perf_counter() - started
    module = session.modules()[0]
    _emit("first_ln_on_deferred_module", first_ln, "s", baseline, answer=name, state=module.state.value,
          symbols=len(module.index), ratio_to_baseline=round(first_ln / llvm_s, 3),
          note="finds and matches the PDB, then publics, procedures and globals")

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _emit("peak_rss", peak_kb / 1024, "MB", baseline, ratio_to_baseline=round(peak_kb / max(llvm_kb, 1), 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
