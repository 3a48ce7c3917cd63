"""The Windows 2000 chain: image -> DBG (NB10) -> PDB 2.0, and hostile names from images."""

from __future__ import annotations

import os

from kdcon.symbols.dbgwriter import DbgSpec, build_dbg, example_sections
from kdcon.symbols.debugdir import build_misc, build_nb10, build_rsds
from kdcon.symbols.module import SymbolState
from kdcon.symbols.pdb.writer import PdbSpec, build_pdb
from kdcon.symbols.pe import read_image
from kdcon.symbols.pewriter import ImageSpec, build_image
from kdcon.symbols.session import SymbolSession

from .store_fixtures import nt4_pair, put

BASE = 0x80400000
SIGNATURE, AGE = 0x3B7D8410, 2


def _pdb2(profile: str, signature: int = SIGNATURE, age: int = AGE) -> bytes:
    return build_pdb(PdbSpec(profile=profile, signature=signature, age=age, machine=0x14C,
                             sections=example_sections(),
                             publics=[("_KeBugCheckEx@20", 1, 0x100, 2), ("_KiServiceTable", 3, 0x20, 0)],
                             procedures=[("KeBugCheckEx", 1, 0x100, 0x40, 0, False)]))


def _chain(tmp_path, profile="vc6", pdb_signature=SIGNATURE, pdb_age=AGE, pdb_dir=None):
    pair = nt4_pair(nb10=("ntoskrnl.pdb", SIGNATURE, AGE))
    tree = tmp_path / "symbols"
    put(str(tree / "exe" / "ntoskrnl.dbg"), pair.dbg)
    put(str((pdb_dir or tree / "exe") / "ntoskrnl.pdb"), _pdb2(profile, pdb_signature, pdb_age))
    session = SymbolSession(str(tmp_path), pointer_size=4)
    module = session.add_module("ntoskrnl.exe", BASE, pair.size_of_image, timestamp=pair.timestamp,
                                checksum=pair.checksum)
    return session, module


def test_dbg_nb10_leads_to_the_pdb_next_to_it(tmp_path):
    for profile in ("vc6", "vc4"):
        session, module = _chain(tmp_path / profile, profile)
        assert session.name_for(BASE + 0x1110) == "nt!KeBugCheckEx+0x10", profile
        assert module.state is SymbolState.PRIVATE_PDB
        assert module.symbol_file.endswith(os.path.join("exe", "ntoskrnl.pdb"))


def test_pdb_with_another_signature_or_age_leaves_the_dbg_coff_symbols(tmp_path):
    session, module = _chain(tmp_path / "sig", pdb_signature=SIGNATURE + 1)
    assert session.name_for(BASE + 0x1110) == "nt!_KeBugCheckEx@20+0x10"
    assert module.state is SymbolState.COFF and module.symbol_file.endswith("ntoskrnl.dbg")
    session, module = _chain(tmp_path / "age", pdb_age=AGE + 1)
    module.load()
    assert module.state is SymbolState.COFF
    reasons = [r for name, found in module.searches if name == "ntoskrnl.pdb"
               for c in found.candidates for r in c.match.reasons]
    assert reasons == [f"age {AGE + 1:x} != {AGE:x}"]


def test_pdb_found_elsewhere_on_the_path(tmp_path):
    pair = nt4_pair(nb10=("ntoskrnl.pdb", SIGNATURE, AGE))
    put(str(tmp_path / "dbgs" / "exe" / "ntoskrnl.dbg"), pair.dbg)
    put(str(tmp_path / "pdbs" / "ntoskrnl.pdb"), _pdb2("vc6"))
    session = SymbolSession(f"{tmp_path / 'dbgs'};{tmp_path / 'pdbs'}", pointer_size=4)
    module = session.add_module("ntoskrnl.exe", BASE, pair.size_of_image, timestamp=pair.timestamp,
                                checksum=pair.checksum)
    assert module.load().state is SymbolState.PRIVATE_PDB


def test_absolute_or_climbing_pdb_names_in_images_stay_inside_the_roots(tmp_path):
    # The matching PDB sits outside the symbol path; the image names it by absolute
    # path and by a climbing relative path. Neither may be opened.
    outside = tmp_path / "outside"
    pdb_bytes = _pdb2("pdb7")
    from kdcon.symbols.pdb import open_pdb
    identity = open_pdb(pdb_bytes).identity
    secret = put(str(outside / "secret.pdb"), pdb_bytes)
    root = tmp_path / "root"
    root.mkdir()
    for name in (secret, "../outside/secret.pdb", "..\\outside\\secret.pdb", "C:secret.pdb\x00"):
        image = build_image(ImageSpec(name="evil.sys", debug=[(2, build_rsds(name, identity.guid, identity.age))]))
        session = SymbolSession(str(root))
        module = session.add_module("evil.sys", 0x10000, 0x3000, image=read_image(image, "evil.sys"))
        assert module.load().state in (SymbolState.EXPORT, SymbolState.NONE), name
        assert all(not c.path.startswith(str(outside)) for _, f in module.searches for c in f.candidates)


def test_hostile_module_names_from_the_target_open_nothing_outside(tmp_path):
    put(str(tmp_path / "outside" / "passwd.dbg"), nt4_pair().dbg)
    root = tmp_path / "root"
    (root / "exe").mkdir(parents=True)
    for name in ("../outside/passwd.exe", "..\\..\\outside\\passwd.exe", "/etc/passwd", "\\\\host\\share\\x.sys",
                 "a\x01b.sys", "..", ""):
        session = SymbolSession(str(root))
        module = session.add_module(name or "x", 0x10000, 0x1000, timestamp=0x37CDB039, image=None)
        module.image_name = name
        module.load()
        assert module.state is SymbolState.NONE
        assert all(str(tmp_path / "outside") not in c.path for _, f in module.searches for c in f.candidates)


def test_misc_name_of_a_split_image_finds_a_renamed_dbg(tmp_path):
    pair = nt4_pair(image_name="ntkrnlmp.exe")
    image = build_image(ImageSpec(name="ntoskrnl.exe", machine=0x14C, timestamp=pair.timestamp,
                                  checksum=pair.checksum, characteristics=0x0302, image_base=BASE,
                                  text_size=0x3000, debug=[(4, build_misc("ntkrnlmp.exe"))],
                                  map_debug_data=False))
    put(str(tmp_path / "symbols" / "exe" / "ntkrnlmp.dbg"), pair.dbg)
    session = SymbolSession(str(tmp_path), pointer_size=4)
    module = session.add_module("ntoskrnl.exe", BASE, pair.size_of_image, image=read_image(image, "ntoskrnl.exe"))
    assert module.load().state is SymbolState.COFF
    assert dict(module.searches).keys() >= {"ntkrnlmp.dbg"}
    assert module.symbol_file.endswith("ntkrnlmp.dbg")


def test_image_with_its_own_nb10_record_finds_a_pdb_20(tmp_path):
    image = build_image(ImageSpec(name="drv6.sys", machine=0x14C, image_base=0x10000,
                                  debug=[(2, build_nb10(r"e:\build\drv6.pdb", SIGNATURE, AGE))]))
    put(str(tmp_path / "sys" / "drv6.pdb"), _pdb2("vc6"))
    session = SymbolSession(str(tmp_path), pointer_size=4)
    module = session.add_module("drv6.sys", 0x10000, 0x3000, image=read_image(image, "drv6.sys"))
    assert module.load().state is SymbolState.PRIVATE_PDB
    assert session.name_for(0x10000 + 0x1100) == "drv6!KeBugCheckEx"
