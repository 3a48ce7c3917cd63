"""`.symfix` and `.reload /f` fetch the kernel's PDB from a symbol server (on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kdcon.symbols.http import forget_unreachable
from kdcon.symbols.pe import read_image
from kdcon.symbols.match import guid_hex
from tests.symbols.http_fixtures import SymbolServer

from .transcripts import batch

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"


def test_symfix_then_reload_downloads_the_kernel_pdb(tmp_path, monkeypatch):
    served = tmp_path / "served"
    identity = read_image(str(IMAGES / "ntoskrnl.exe")).identity
    key = f"{guid_hex(identity.guid)}{identity.age:x}"
    (served / "ntoskrnl.pdb" / key).mkdir(parents=True)
    shutil.copy(IMAGES / "ntoskrnl.pdb", served / "ntoskrnl.pdb" / key / "ntoskrnl.pdb")
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    forget_unreachable()
    with SymbolServer(str(served)) as server:
        monkeypatch.setenv("KDCON_SYMBOL_SERVER", server.url)
        text, status = batch(f".symfix {cache}", ".reload", ".reload /f nt", "lm m nt",
                             "ln nt!KeBugCheckEx")
        requests = server.paths()
    assert status == 0, text
    downloaded = cache / "ntoskrnl.pdb" / key / "ntoskrnl.pdb"
    assert downloaded.read_bytes() == (IMAGES / "ntoskrnl.pdb").read_bytes()
    assert f"Symbol search path is: srv*{cache}*{server.url}" in text
    assert f"(private pdb symbols)  {downloaded}" in text
    assert "nt!KeBugCheckEx" in text.split("ln nt!KeBugCheckEx", 1)[1]
    assert f"/download/symbols/ntoskrnl.pdb/{key}/ntoskrnl.pdb" in requests
    assert not [p for p in os.listdir(cache) if p.startswith(".")]
