"""PDB 2.0 files from the writer, read by winedump and by us, must agree.

No real PDB 2.0 ("JG") file is publicly available, so the writer makes them and
winedump (Wine's dumper, an independent reader) is the oracle. winedump reads
the VC6 layout completely (small MSF, DBI V60, _ST records, TPI V50). It cannot
read the VC4 DBI header or the V41 TPI header (it crashes on both), so the
VC4 ``_16t`` records are checked inside V50 headers it does read.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from kdcon.symbols.pdb import open_pdb
from kdcon.symbols.pdb.structs import TPI_VER_V50
from kdcon.symbols.pdb.writer import build_pdb
from tests.oracles import require_tool
from tests.symbols.fixtures_pdb import sample_spec

CASES = {
    "vc6": dict(),
    "vc4-records": dict(dbi_form="v50", tpi_version=TPI_VER_V50),
}


def _winedump(path) -> str:
    tool = require_tool("winedump")
    out = subprocess.run([tool, "dump", str(path)], capture_output=True, check=True).stdout
    return out.decode("latin-1")


def _parse(text: str) -> dict:
    found = {"publics": [], "data": [], "procs": [], "labels": [], "structs": {}, "enums": {}}
    members: dict[int, list] = {}
    enumerators: dict[int, list] = {}
    current = None
    found["page_size"] = int(re.search(r"block_size: ([0-9a-f]+)", text).group(1), 16)
    found["version"] = int(re.search(r"Version:\s+(\d+)", text).group(1))
    found["signature"] = int(re.search(r"TimeDateStamp: ([0-9a-f]+)", text).group(1), 16)
    found["age"] = int(re.search(r"Age:\s+([0-9a-f]+)", text).group(1), 16)
    for m in re.finditer(r"^\t([0-9a-f]{4}) => (.*(?:\n {16}.*)?)", text, re.M):
        index, body = int(m.group(1), 16), m.group(2)
        if body.startswith("Fieldlist"):
            current = index
            members[index], enumerators[index] = [], []
        elif s := re.match(r"(?:Struct|Union) V\d '(.*?)' .*?property:(\w+).*?fieldlist-type:"
                           r"([0-9a-f]+).*?size:(\d+)", body, re.S):
            if s.group(2) != "forward":
                found["structs"][s.group(1)] = (int(s.group(4)), int(s.group(3), 16))
        elif e := re.match(r"Enum V\d '(.*?)' .*field-type:([0-9a-f]+)", body):
            found["enums"][e.group(1)] = int(e.group(2), 16)
    for m in re.finditer(r"^\t\t(Member|Enumerate) V\d: '(.*?)' (?:type:\w+ attr:\w+\s+@(\d+)|"
                         r"value:0x([0-9a-f]+))|^\t([0-9a-f]{4}) => Fieldlist", text, re.M):
        if m.group(5):
            current = int(m.group(5), 16)
        elif m.group(1) == "Member":
            members[current].append((m.group(2), int(m.group(3))))
        else:
            enumerators[current].append((m.group(2), int(m.group(4), 16)))
    found["structs"] = {n: (size, members[fl]) for n, (size, fl) in found["structs"].items()}
    found["enums"] = {n: enumerators[fl] for n, fl in found["enums"].items()}
    for m in re.finditer(r"=> Public V\d '(.*?)' (\w{4}):(\w{8})", text):
        found["publics"].append((m.group(1), int(m.group(2), 16), int(m.group(3), 16)))
    for m in re.finditer(r"=> (?:Global|Local)-Data V\d '(.*?)' (\w{4}):(\w{8})", text):
        found["data"].append((m.group(1), int(m.group(2), 16), int(m.group(3), 16)))
    for m in re.finditer(r"=> (?:Global|Local)-Proc V\d: '(.*?)' \((\w{4}):(\w{8})#([0-9a-f]+)\)",
                         text):
        found["procs"].append((m.group(1), int(m.group(2), 16), int(m.group(3), 16),
                               int(m.group(4), 16)))
    for m in re.finditer(r"=> Label V\d '(.*?)' \((\w{4}):(\w{8})\)", text):
        found["labels"].append((m.group(1), int(m.group(2), 16), int(m.group(3), 16)))
    return found


@pytest.fixture(params=sorted(CASES), scope="module")
def written(request, tmp_path_factory):
    spec = sample_spec("vc4" if request.param == "vc4-records" else "vc6", **CASES[request.param])
    path = tmp_path_factory.mktemp("pdb2") / "drv.pdb"
    path.write_bytes(build_pdb(spec))
    return spec, path, _parse(_winedump(path))


def _rva(spec, segment, offset):
    return spec.sections[segment - 1].virtual_address + offset


def test_header_and_identity_agree_with_winedump(written):
    spec, path, dump = written
    with open_pdb(path) as pdb:
        assert dump["page_size"] == pdb.msf.page_size and pdb.msf.is_small
        assert dump["version"] == pdb.info.version
        assert (dump["signature"], dump["age"]) == (pdb.identity.signature, pdb.identity.age)


def test_publics_globals_procedures_labels_agree_with_winedump(written):
    spec, path, dump = written
    with open_pdb(path) as pdb:
        def ours(records):
            return sorted((r.name, r.rva) for r in records)
        assert ours(pdb.publics()) == sorted((n, _rva(spec, s, o)) for n, s, o in dump["publics"])
        assert len(dump["publics"]) == len(spec.publics)
        assert ours(pdb.labels()) == sorted((n, _rva(spec, s, o)) for n, s, o in dump["labels"])
        assert sorted((p.name, p.rva, p.size) for p in pdb.procedures()) == sorted(
            (n, _rva(spec, s, o), length) for n, s, o, length in dump["procs"])
        if dump["data"]:       # winedump does not decode the _16t data records
            assert ours(pdb.globals()) == sorted((n, _rva(spec, s, o)) for n, s, o in dump["data"])


def test_types_agree_with_winedump(written):
    spec, path, dump = written
    assert dump["structs"] and dump["enums"]
    with open_pdb(path) as pdb:
        for name, (size, members) in dump["structs"].items():
            info = pdb.types.find(name)
            assert (info.size, [(f.name, f.offset) for f in info.fields]) == (size, members)
        for name, values in dump["enums"].items():
            assert pdb.types.find(name).enumerators == values
