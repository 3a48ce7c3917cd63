"""Benchmark: loading and querying a ~112,000-public PDB against llvm-pdbutil.

    python -m kdcon.tools.bench.symbols [--cache DIR] [--rebuild]

Builds the synthetic PDB of symbols.md §5 (8 translation units, 10,000 functions,
4,000 globals and 300 structs each; clang-cl-14 + lld-link), cached in
``$XDG_CACHE_HOME/kdcon-bench-symbols`` (or ``--cache``), then prints one JSON line
per figure, each with the baseline it is measured against in the same run:
``llvm-pdbutil dump -publics`` on the same file (wall seconds, and peak RSS of
that process alone, from ``wait4``), or the publics load measured here.

Figures: the publics loaded ready for lookup (open + publics table + index; goal:
at most llvm-pdbutil's time), address lookups per second (goal >= 200,000),
exact name lookups per second (the first query builds the name table; its
cost is reported), one wildcard query over all names (goal < 50 ms); the first
``ln`` on a deferred module backed by that PDB (search, match, publics, and
the streams that address needs; goal: at most twice the publics load), the
first exact name query after it (every stream), lookups per second on that
whole module, lazy answers compared with full ones; and peak memory of a fresh
process that does all of that (first ``ln``, exact and wildcard ``x``,
lookups), against ``llvm-pdbutil dump -publics -globals -symbols`` (goal: at
most 1.5 times), with the bare interpreter's own RSS reported beside it. Not
part of the test suite: the first build takes about a minute, a run with the
PDB built under half a minute.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import shutil
import subprocess
import sys
import time

from kdcon.symbols.index import SymbolIndex
from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pe import read_image
from kdcon.symbols.session import SymbolSession
from kdcon.tools.bench.args import BenchParser

__all__ = ["main", "build_pdb", "memory_workload"]

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


# Started from a small interpreter, so that the measured process's peak RSS is
# its own: Linux carries a process's peak over fork and exec into the child, and
# this benchmark is big by the time it measures.
_LAUNCHER = """import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(json.dumps([time.perf_counter() - started, usage.ru_maxrss,
                             os.waitstatus_to_exitcode(status)]) + "\\n")
"""


def _measured(argv: list[str], keep_output: bool = False) -> tuple[float, int, bytes]:
    """Run ``argv``; (wall seconds, peak RSS of that process in KB, its stdout if kept)."""
    done = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *argv], stderr=subprocess.PIPE,
                          stdout=subprocess.PIPE if keep_output else subprocess.DEVNULL, check=True)
    elapsed, peak_kb, status = json.loads(done.stderr.decode().strip().splitlines()[-1])
    if status:
        raise SystemExit(f"symbols bench: {argv[0]} failed with status {status}")
    return elapsed, peak_kb, done.stdout


def _llvm(pdb: str, *what: str, runs: int = 3) -> tuple[float, int]:
    """Best wall time and peak RSS (KB) of ``llvm-pdbutil dump <what> pdb``."""
    tool = _tool("llvm-pdbutil", "llvm-pdbutil-14")
    results = [_measured([tool, "dump", *what, pdb])[:2] for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results)


def _load(pdb_path: str) -> tuple[float, float, SymbolIndex, object, dict]:
    """Best of three: open, publics table, index (what a publics-only module costs);
    (wall s, CPU s, index, open PdbFile, parts)."""
    best = best_cpu = None
    kept = None
    parts: dict = {}
    for _ in range(3):
        started, cpu = time.perf_counter(), time.process_time()
        pdb = open_pdb(pdb_path)
        opened = time.perf_counter()
        table = pdb.public_table()
        read = time.perf_counter()
        index = SymbolIndex(tables=[table])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        if best is None or elapsed < best:
            best = elapsed
            parts = {"open_pdb_s": round(opened - started, 4), "publics_s": round(read - opened, 4),
                     "index_s": round(started + elapsed - read, 4)}
        if kept is not None:
            kept[1].close()
        kept = (index, pdb)
    assert kept is not None and best is not None and best_cpu is not None
    return best, best_cpu, kept[0], kept[1], parts


def _list_api(pdb_path: str) -> float:
    """The list API: every public made a ``SymbolRecord`` at once, then indexed."""
    best = None
    for _ in range(3):
        started = time.perf_counter()
        with open_pdb(pdb_path) as pdb:
            SymbolIndex(pdb.publics())
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return best


def _timed(call, arguments: list) -> tuple[float, float]:
    """(wall, CPU) seconds of ``call`` over ``arguments``; CPU time shows what a
    machine shared with other work hides in the wall time."""
    started, cpu = time.perf_counter(), time.process_time()
    for argument in arguments:
        call(argument)
    return time.perf_counter() - started, time.process_time() - cpu


def _emit(figure: str, value: float, unit: str, baseline: dict, **extra) -> None:
    line = {"bench": "symbols", "figure": figure, "value": round(value, 6), "unit": unit, **extra,
            "baseline": baseline}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _session(directory: str) -> tuple[SymbolSession, int]:
    session = SymbolSession(directory)
    image = read_image(os.path.join(directory, "synth.dll"))
    session.add_module("synth.dll", image.image_base, image.identity.size_of_image, image=image)
    return session, image.image_base


def memory_workload(directory: str, address_rva: int) -> None:
    """What the peak-memory figure measures, run in a fresh process: the first
    ``ln``, an exact and a wildcard ``x`` (every stream, both name tables) and
    10,000 lookups. Prints one JSON line with the RSS after the first ``ln``."""
    import resource

    session, base = _session(directory)
    session.name_for(base + address_rva)
    after_ln = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found = session.address_of("synth!Fn3_77") is not None
    hits = len(session.match("synth!*n7_99*"))
    rng = random.Random(2)
    module = session.modules()[0]
    for _ in range(10_000):
        session.name_for(base + rng.randrange(0x1000, module.size))
    sys.stdout.write(json.dumps({"after_first_ln_kb": after_ln, "found": found, "hits": hits}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.symbols")
    default_cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                 "kdcon-bench-symbols")
    parser.add_argument("--cache", default=default_cache)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    pdb_path = build_pdb(args.cache, args.rebuild)
    directory = os.path.dirname(pdb_path)
    llvm_s, llvm_kb = _llvm(pdb_path, "-publics")
    baseline = {"name": "llvm-pdbutil dump -publics", "seconds": round(llvm_s, 4), "peak_rss_kb": llvm_kb}

    load_s, load_cpu, index, pdb, parts = _load(pdb_path)
    _emit("load_publics_ready_for_lookup", load_s, "s", baseline, publics=len(index.records), **parts,
          cpu_s=round(load_cpu, 4),
          list_api_s=round(_list_api(pdb_path), 4), ratio_to_baseline=round(load_s / llvm_s, 3),
          goal="ratio <= 1")

    rng = random.Random(1)
    records = index.records
    top = records[-1].rva + 0x100
    probes = [rng.randrange(0x1000, top) for _ in range(200_000)]
    elapsed, cpu = _timed(index.lookup, probes)
    rvas = index._tables[0].rvas
    raw = len(probes) / _timed(lambda rva: bisect.bisect_right(rvas, rva), probes)[0]
    _emit("address_lookups_per_second", len(probes) / elapsed, "1/s", baseline, goal=">= 200000",
          cpu_per_second=round(len(probes) / cpu), raw_bisect_per_second=round(raw),
          ratio_to_raw_bisect=round(len(probes) / elapsed / raw, 3))

    names = [r.name for r in records]
    del records
    started = time.perf_counter()
    index.find(names[0])
    first = time.perf_counter() - started
    queries = [rng.choice(names) for _ in range(200_000)]
    elapsed, cpu = _timed(index.find, queries)
    _emit("exact_name_lookups_per_second", len(queries) / elapsed, "1/s", baseline,
          cpu_per_second=round(len(queries) / cpu), first_query_builds_map_s=round(first, 4))

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

    middle = names[len(names) // 2]
    target = index.find(middle)[0].rva + 1
    del index, names, queries
    pdb.close()
    publics_load = {"name": "load_publics_ready_for_lookup (this run)", "seconds": round(load_s, 4),
                    "cpu_s": round(load_cpu, 4)}
    first_ln = first_cpu = None
    for attempt in range(3):
        started, cpu = time.perf_counter(), time.process_time()
        session, base = _session(directory)
        answer = session.name_for(base + target)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        first_ln = elapsed if first_ln is None else min(first_ln, elapsed)
        first_cpu = cpu if first_cpu is None else min(first_cpu, cpu)
        module = session.modules()[0]
        if attempt < 2:
            session.remove_module(base)
    _emit("first_ln_on_deferred_module", first_ln, "s", publics_load, answer=answer, cpu_s=round(first_cpu, 4),
          state=module.state.value, whole_module_loaded=module.index.complete,
          ratio_to_baseline=round(first_ln / load_s, 3), cpu_ratio_to_baseline=round(first_cpu / load_cpu, 3),
          ratio_to_llvm_publics=round(first_ln / llvm_s, 3),
          goal="ratio <= 2", note="best of 3 fresh sessions: finds and matches the PDB, reads the "
                                  "publics and the streams that address needs (section contributions)")

    started, cpu = time.perf_counter(), time.process_time()
    session.address_of("synth!Fn3_77")
    first_x, cpu = time.perf_counter() - started, time.process_time() - cpu
    _emit("first_exact_x_after_ln", first_x, "s", publics_load, cpu_s=round(cpu, 4),
          ratio_to_baseline=round(first_x / load_s, 3),
          note="reads every remaining stream (globals, 7 modules), merges them, builds the name table")

    full = module.index
    probes = [rng.randrange(0x1000, module.size) for _ in range(100_000)]
    elapsed, cpu = _timed(full.lookup, probes)
    _emit("address_lookups_per_second_whole_module", len(probes) / elapsed, "1/s", baseline,
          cpu_per_second=round(len(probes) / cpu), raw_bisect_per_second=round(raw),
          ratio_to_raw_bisect=round(len(probes) / elapsed / raw, 3),
          note="publics, procedures and globals in one table, after the first x")

    checks = probes[:3000]
    lazy_session, _ = _session(directory)
    lazy = lazy_session.modules()[0]
    mismatches = sum(lazy.lookup(base + rva) != full.lookup(rva) for rva in checks)
    _emit("lazy_answers_differing_from_full", mismatches, "addresses", baseline, compared=len(checks),
          whole_module_loaded_after=lazy.index.complete, goal="0")
    session.remove_module(base)
    lazy_session.remove_module(base)

    full_kb = _llvm(pdb_path, "-publics", "-globals", "-symbols", runs=1)[1]
    code = "import sys; from kdcon.tools.bench.symbols import memory_workload as w; w(sys.argv[1], int(sys.argv[2]))"
    _, peak_kb, out = _measured([sys.executable, "-c", code, directory, str(target)], keep_output=True)
    workload = json.loads(out.decode().strip().splitlines()[-1])
    bare_kb = _measured([sys.executable, "-c", "import kdcon.symbols.session, kdcon.symbols.pdb"])[1]
    _emit("peak_rss", peak_kb / 1024, "MB",
          {"name": "llvm-pdbutil dump -publics -globals -symbols", "peak_rss_kb": full_kb},
          ratio_to_baseline=round(peak_kb / full_kb, 3), ratio_to_llvm_publics=round(peak_kb / llvm_kb, 3),
          after_first_ln_mb=round(workload["after_first_ln_kb"] / 1024, 1),
          python_with_imports_mb=round(bare_kb / 1024, 1), goal="ratio <= 1.5",
          note="fresh process: first ln, exact and wildcard x, 10,000 lookups")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
