"""A PDB's symbols read by address: the first lookup reads the publics and the
module stream that holds the address, and every answer equals a full load.

The drivers here have several translation units (clang-cl + lld-link, x64 and
x86 stdcall, one C++ unit), so that the module streams, section contributions
and decorated names are real; the MSVC PDBs of the debugpy wheel add an
assembler module whose data labels lie in code.
"""

from __future__ import annotations

import atexit
import functools
import logging
import random
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from kdcon.symbols.model import SymbolKind
from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pdb.writer import build_pdb
from kdcon.symbols.pe import read_image
from kdcon.symbols.session import SymbolSession
from tests.oracles import require_tool
from tests.symbols.fixtures_pdb import sample_spec

BASE = 0xFFFFF80312340000
UNITS = 3


def _unit_source(unit: int) -> str:
    lines = [f"typedef struct _S{unit} {{ unsigned long A; struct _S{unit} *Next; }} S{unit};",
             f"S{unit} Global{unit}[4];", f"static unsigned long Static{unit} = {unit};",
             f"unsigned long Counter{unit} = 7;"]
    for i in range(40):
        lines.append(f"__declspec(noinline) unsigned long __stdcall Fn{unit}_{i}(S{unit} *p) "
                     f"{{ Static{unit} += {i}; return p->A + Static{unit} + Counter{unit}; }}")
        lines.append(f"static __declspec(noinline) int Local{unit}_{i}(int x) {{ return x * {i + 3}; }}")
    lines.append(f"int Use{unit}(int x) {{ return " + " + ".join(f"Local{unit}_{i}(x)" for i in range(40)) + "; }")
    return "\n".join(lines) + "\n"


CPP_UNIT = """
struct Shape { virtual int Area() const; int Side; };
int Shape::Area() const { return Side * Side; }
namespace demo { int Twice(int x) { return 2 * x; } int Twice(long x) { return (int)(2 * x); } }
extern "C" int CppEntry(int x) { Shape s; s.Side = x; return s.Area() + demo::Twice(x) + demo::Twice(3L); }
"""

DRIVER_MAIN = """
int Use0(int); int Use1(int); int Use2(int); int CppEntry(int);
int DriverEntry(void *a, void *b) { return Use0(1) + Use1(2) + Use2(3) + CppEntry(4); }
"""

TARGETS = {"x64": ("x86_64-pc-windows-msvc", "X64"), "x86": ("i686-pc-windows-msvc", "X86")}


@functools.lru_cache(maxsize=None)
def _built(flavour: str) -> tuple[Path, Path]:
    clang = require_tool("clang-cl-14", "clang-cl")
    lld = require_tool("lld-link")
    root = Path(tempfile.mkdtemp(prefix=f"kdcon-lazy-{flavour}-"))
    atexit.register(shutil.rmtree, root, True)
    triple, machine = TARGETS[flavour]
    sources = {f"tu{u}.c": _unit_source(u) for u in range(UNITS)}
    sources["shape.cpp"] = CPP_UNIT
    sources["main.c"] = DRIVER_MAIN
    for name, text in sources.items():
        (root / name).write_text(text)
    compiles = [subprocess.Popen([clang, f"--target={triple}", "/c", "/Z7", "/GS-", "/O1", "/GR-",
                                  "/Brepro", "-ffile-compilation-dir=.", f"/Fo{Path(name).stem}.obj", name],
                                 cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for name in sources]
    for proc in compiles:
        assert proc.wait() == 0, proc.stderr.read()
    subprocess.run([lld, "/Brepro", "/DRIVER", "/SUBSYSTEM:NATIVE", "/NODEFAULTLIB", "/ENTRY:DriverEntry",
                    f"/MACHINE:{machine}", "/DEBUG", "/PDB:drv.pdb", "/PDBALTPATH:drv.pdb", "/OUT:drv.sys",
                    *[f"{Path(name).stem}.obj" for name in sources]],
                   cwd=root, check=True, capture_output=True)
    return root / "drv.sys", root / "drv.pdb"


def _session(image_path: Path, directory: Path | None = None):
    image = read_image(str(image_path))
    session = SymbolSession(str(directory or image_path.parent))
    module = session.add_module(image_path.name, BASE, image.identity.size_of_image, image=image)
    return session, module


def _full(image_path: Path, directory: Path | None = None):
    session, module = _session(image_path, directory)
    module.index.load_all()
    assert module.index.complete
    return session, module


def _contribution_rvas(pdb_path: Path) -> set[int]:
    with open_pdb(pdb_path) as pdb:
        raw = bytes(pdb.dbi.contribution_bytes)
        at, step = (4, 28) if struct.unpack_from("<I", raw)[0] == 0xEFFE0000 + 19970605 else (4, 32)
        found = set()
        for pos in range(at, len(raw) - step + 1, step):
            section, offset, size = struct.unpack_from("<Hxxii", raw, pos)
            rva = pdb.rva(section, offset)
            if rva is not None:
                found |= {rva - 1, rva, rva + 1, rva + size - 1, rva + size, rva + size + 1}
        for section in pdb.sections:
            found |= {section.virtual_address, section.virtual_address + section.virtual_size}
    return found


def _probes(module, pdb_path: Path, rng: random.Random, limit: int | None = None) -> list[int]:
    """Addresses where lazy and full loads could differ: every symbol's edges,
    every contribution's edges, section edges, and random ones."""
    found = _contribution_rvas(pdb_path)
    for record in module.index.records:
        found |= {record.rva - 1, record.rva, record.rva + 1, record.rva + record.size - 1,
                  record.rva + record.size}
    found |= {rng.randrange(module.size) for _ in range(300)}
    probes = sorted(rva for rva in found if 0 <= rva < module.size)
    return rng.sample(probes, limit) if limit is not None and len(probes) > limit else probes


def _assert_lazy_equals_full(image_path: Path, pdb_path: Path, *, orders: int, firsts: int,
                             limit: int | None = None, directory: Path | None = None) -> int:
    _, full = _full(image_path, directory)
    rng = random.Random(7)
    probes = _probes(full, pdb_path, rng, limit)
    for _ in range(orders):
        _, lazy = _session(image_path, directory)
        order = probes[:]
        rng.shuffle(order)
        for rva in order:
            assert lazy.index.lookup(rva) == full.index.lookup(rva), hex(rva)
            assert lazy.index.at(rva) == full.index.at(rva), hex(rva)
            assert lazy.index.next_after(rva) == full.index.next_after(rva), hex(rva)
        lazy.unload()
    for rva in rng.sample(probes, min(firsts, len(probes))):
        _, lazy = _session(image_path, directory)
        assert lazy.index.lookup(rva) == full.index.lookup(rva), hex(rva)
        lazy.unload()
    full.unload()
    return len(probes)


@pytest.mark.parametrize("flavour", list(TARGETS))
def test_lazy_answers_equal_full_answers_at_every_edge(flavour):
    image_path, pdb_path = _built(flavour)
    assert _assert_lazy_equals_full(image_path, pdb_path, orders=2, firsts=60) > 500


def test_first_lookup_reads_the_publics_and_only_the_module_holding_the_address():
    image_path, _ = _built("x64")
    _, full = _full(image_path)
    target = full.index.find("Fn1_17")[0]
    session, lazy = _session(image_path)
    assert session.name_for(BASE + target.rva + 3) == "drv!Fn1_17+0x3"
    pdb = lazy._pdb
    # Module streams whose symbols were read (the private-symbols probe reads
    # only up to the first procedure of the first module), and no globals.
    read = {pdb.dbi.modules[int(key.split(":")[1])].name.rsplit("/", 1)[-1]
            for key in pdb._cache if key.startswith("module:")}
    assert read == {"tu1.obj"}
    assert "global_table" not in pdb._cache and "public_table" in pdb._cache
    assert not lazy.index.complete
    hit = lazy.lookup(BASE + target.rva + 3)
    assert hit.record.kind is SymbolKind.FUNCTION and hit.record.size == target.size
    assert hit == full.lookup(BASE + target.rva + 3)


def test_a_static_function_and_a_static_global_are_found_by_the_first_lookup():
    image_path, _ = _built("x64")
    _, full = _full(image_path)
    for name in ("Local2_5", "Static2"):
        record = full.index.find(name)[0]
        _, lazy = _session(image_path)
        assert lazy.index.lookup(record.rva) == full.index.lookup(record.rva)
        assert lazy.index.at(record.rva) == full.index.at(record.rva)
    assert full.index.find("Static2")[0].kind is SymbolKind.DATA
    assert full.index.find("Static2")[0].type_name == "Uint4B"


@pytest.mark.parametrize("flavour", list(TARGETS))
def test_name_queries_read_everything_and_answer_as_the_full_index(flavour):
    image_path, _ = _built(flavour)
    _, full = _full(image_path)
    session, lazy = _session(image_path)
    any_function = full.index.find("Fn0_1")[0]
    session.name_for(BASE + any_function.rva)
    assert not lazy.index.complete
    names = {r.name for r in full.index.records}
    assert len(names) > 250
    for name in sorted(names):
        assert lazy.index.find(name) == full.index.find(name), name
    assert lazy.index.complete
    for pattern in ("Fn1_*", "*local2_1?", "?Area@Shape@@*", "*Counter*", "*twice*", "Z*"):
        assert lazy.index.match(pattern) == full.index.match(pattern), pattern
    assert len(lazy.index) == len(full.index) == len(full.index.records)


def test_stdcall_names_answer_as_the_full_index_after_a_lookup():
    image_path, _ = _built("x86")
    _, full = _full(image_path)
    _, lazy = _session(image_path)
    lazy.index.lookup(0x1000)
    found = lazy.index.find("Fn2_3")
    assert [r.kind for r in found] == [SymbolKind.FUNCTION]
    # The public _Fn2_3@4 is folded into the procedure Fn2_3 at the same address.
    for name in ("_Fn2_3@4", "fn2_3", "_DriverEntry", "DriverEntry", "_Global1", "Global1"):
        assert lazy.index.find(name) == full.index.find(name), name
    for pattern in ("_Fn2_3@*", "_*@4", "*Entry*"):
        assert lazy.index.match(pattern) == full.index.match(pattern), pattern


def _debugpy():
    from tests.symbols.test_pdb_debugpy import PAIRS, _files
    return _files(), PAIRS


def test_msvc_pdbs_give_the_same_answers_lazily_as_fully():
    root, pairs = _debugpy()
    for stem, ext in pairs:
        image_path = root / (stem + ext)
        _assert_lazy_equals_full(image_path, root / (stem + ".pdb"), orders=1, firsts=10, limit=1500,
                                 directory=root)


def test_a_global_in_assembler_code_is_found_by_the_first_lookup():
    root, _ = _debugpy()
    image_path = root / "attach_amd64.dll"
    with open_pdb(root / "attach_amd64.pdb") as pdb:
        table = pdb.global_table()
        found = [table.record(r) for r in range(len(table))
                 if table.record(r).name == "_guard_dispatch_icall_nop"]
        assert [r.kind for r in found] == [SymbolKind.DATA]
        modules, data = pdb.contribution_map().between(found[0].rva, found[0].rva)
        assert not data                                             # a data label in code ...
        assert {pdb.module_language(m) for m in modules} == {3}     # ... of an assembler module
    _, full = _full(image_path, root)
    for rva in (found[0].rva, found[0].rva + 1):
        _, lazy = _session(image_path, root)
        assert lazy.index.at(rva) == full.index.at(rva)
        assert lazy.index.lookup(rva) == full.index.lookup(rva)
        assert "global_table" in lazy._pdb._cache


def test_contributions_cover_their_end_and_tell_code_from_data():
    spec = sample_spec("pdb7")
    with open_pdb(build_pdb(spec), image_sections=spec.sections) as pdb:
        contributions = pdb.contribution_map()
        assert len(contributions) == 2
        assert contributions.between(0x1000, 0x1000) == ({0}, False)
        assert contributions.between(0x1200, 0x1200) == ({0}, False)      # a label may sit at the end
        assert contributions.between(0x1201, 0x1FFF) == (set(), False)
        assert contributions.between(0x1F00, 0x2000) == ({0}, True)
        assert contributions.between(0x3000, 0x4000) == (set(), False)


@pytest.mark.parametrize("profile", ["pdb7", "vc6", "vc4"])
def test_tables_make_the_records_the_list_api_gives(profile):
    spec = sample_spec(profile)
    for blob in (build_pdb(spec), build_pdb(spec) + bytes(range(256)) * 3):
        with open_pdb(blob, image_sections=spec.sections) as pdb:
            publics = pdb.public_table()
            assert [publics.record(r) for r in range(len(publics))] == pdb.publics()
            assert publics.names(0, len(publics)) == [p.name for p in pdb.publics()]
            data = pdb.global_table()
            assert [data.record(r) for r in range(len(data))] == pdb.globals()
            module = pdb.module_table(0)
            made = [module.record(r) for r in range(len(module))]
            assert [r for r in made if r.kind is SymbolKind.FUNCTION] == pdb.procedures()
            assert [r for r in made if r.kind is SymbolKind.LABEL] == pdb.labels()
            assert len(pdb.procedures()) == 2 and len(pdb.labels()) == 1


@pytest.mark.parametrize("profile", ["pdb7", "vc6", "vc4"])
def test_a_writer_pdb_answers_lazily_as_fully(profile):
    spec = sample_spec(profile)
    data = build_pdb(spec)
    with open_pdb(data, image_sections=spec.sections) as pdb:
        full = [pdb.publics(), pdb.globals(), pdb.procedures(), pdb.labels()]
    from kdcon.symbols.index import SymbolIndex
    from kdcon.symbols.pdb.staged import PdbSymbols
    whole = SymbolIndex([r for part in full for r in part])
    edges = {0xFFF, 0x1000, 0x1200, 0x1201, 0x1FFF, 0x2000, 0x2100, 0x2101}
    for record in whole.records:
        edges |= {record.rva - 1, record.rva, record.rva + 1, record.rva + record.size}
    for rva in sorted(edges):
        pdb = open_pdb(data, image_sections=spec.sections)
        source = PdbSymbols(pdb)
        lazy = SymbolIndex(tables=[source.publics], source=source)
        assert lazy.lookup(rva) == whole.lookup(rva), hex(rva)
        assert lazy.at(rva) == whole.at(rva), hex(rva)
        pdb.close()


def test_a_corrupt_module_stream_is_left_out_with_a_warning(caplog):
    spec = sample_spec("pdb7", page_size=512)
    data = bytearray(build_pdb(spec))
    with open_pdb(bytes(data)) as pdb:
        module = pdb.dbi.modules[0]
        page = pdb.msf._stream_pages[module.stream][0]
    struct.pack_into("<H", data, page * 512 + 4, 0xFFFF)      # the first record now overruns
    from kdcon.symbols.index import SymbolIndex
    from kdcon.symbols.pdb.staged import PdbSymbols
    with open_pdb(bytes(data)) as pdb, caplog.at_level(logging.WARNING):
        source = PdbSymbols(pdb)
        index = SymbolIndex(tables=[source.publics], source=source)
        hit = index.lookup(0x1011)
        assert hit.record.name == "_DriverEntry@8" and hit.record.kind is SymbolKind.PUBLIC
        assert any("unreadable" in r.getMessage() for r in caplog.records)
        assert [(r.name, r.kind) for r in index.match("*Global*")] == [("Global", SymbolKind.DATA)]
        assert index.find("DriverEntry")[0].kind is SymbolKind.PUBLIC     # its procedure is lost


def test_stream_span_is_the_file_itself_when_pages_follow_each_other(tmp_path):
    spec = sample_spec("pdb7", page_size=512)
    data = build_pdb(spec)
    path = tmp_path / "drv.pdb"
    path.write_bytes(data)
    for source in (data, data + b"\0" * 700, str(path)):
        with open_pdb(source) as pdb:
            for index in range(pdb.msf.stream_count):
                buf, start, stop = pdb.msf.stream_span(index)
                assert bytes(buf[start:stop]) == pdb.msf.stream(index)
                pages = pdb.msf._stream_pages[index]
                follows = pages is not None and len(pages) > 0 and list(pages) == list(
                    range(pages[0], pages[0] + len(pages)))
                assert (start != 0) == follows
    padded = b"\0" * 16 + data
    with open_pdb(memoryview(padded)[16:]) as pdb:           # a view of part of a buffer: copied
        buf, start, stop = pdb.msf.stream_span(pdb.dbi.symrec_stream)
        assert start == 0 and bytes(buf) == pdb.msf.stream(pdb.dbi.symrec_stream)
        assert pdb.msf.stream_span(0xFFFF) == (b"", 0, 0)
