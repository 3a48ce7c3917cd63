"""kdcon-symbols: look inside symbol files, answer ln/x offline, file and check stores.

    kdcon-symbols dump FILE [--json]
    kdcon-symbols lookup -y PATH IMAGE ADDRESS|NAME|PATTERN
    kdcon-symbols add --store DIR [--layout tree|symsrv] FILE...
    kdcon-symbols check -y PATH IMAGE...

``dump`` shows what a PDB, DBG or image holds (``--json``: one object); ``lookup``
prints what ``ln`` (an address) or ``x`` (a name or pattern) would print for the
image loaded at its preferred base; ``add`` files images, DBGs and PDBs as
``symstore add`` does; ``check`` says per image which symbol file matches and why
the others do not, as ``symchk`` does. Errors are one line; exit status 2 for
usage, 1 for not found, mismatch or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence

from kdcon.symbols.errors import SymbolError
from kdcon.symbols.locate import file_kind, read_identity
from kdcon.symbols.match import guid_hex, store_key, wanted_pdb
from kdcon.symbols.model import FileKind, SectionHeader, SymbolId
from kdcon.symbols.module import candidate_names
from kdcon.symbols.pe import IMAGE_FILE_DLL, read_image
from kdcon.symbols.session import SymbolSession
from kdcon.symbols.store import copy_atomic, symsrv_destination, tree_destination

__all__ = ["main"]

log = logging.getLogger(__name__)

PROG = "kdcon-symbols"


class CliError(Exception):
    """A failure reported as one line with exit status 1."""


def _identity_json(identity: SymbolId) -> dict:
    return {"name": identity.name, "guid": str(identity.guid).upper() if identity.guid else None,
            "signature": identity.signature, "age": identity.age, "timestamp": identity.timestamp,
            "size_of_image": identity.size_of_image, "checksum": identity.checksum,
            "pdb_name": identity.pdb_name, "key": store_key(identity)}


def _section_offset(sections: Sequence[SectionHeader], rva: int) -> tuple[int, int]:
    for number, section in enumerate(sections, 1):
        if section.virtual_address <= rva < section.virtual_address + max(section.virtual_size, 1):
            return number, rva - section.virtual_address
    return 0, rva


def _type_json(info) -> dict:
    fields = []
    for field in info.fields:
        entry = {"name": field.name, "offset": field.offset, "type": field.type_name}
        if field.bit_width is not None:
            entry.update(bit_position=field.bit_position, bit_width=field.bit_width)
        fields.append(entry)
    return {"name": info.name, "kind": info.kind, "size": info.size, "fields": fields}


def _dump_pdb(path: str) -> dict:
    from kdcon.symbols.pdb import open_pdb
    with open_pdb(path) as pdb:
        sections = pdb.sections
        publics = []
        for record in pdb.publics():
            number, offset = _section_offset(sections, record.rva)
            publics.append({"name": record.name, "section": number, "offset": offset, "rva": record.rva})
        globals_ = [{"name": r.name, "rva": r.rva, "type": r.type_name} for r in pdb.globals()]
        procedures = [{"name": r.name, "rva": r.rva, "length": r.size} for r in pdb.procedures()]
        types = []
        table = pdb.types
        for name in table.names("*"):
            info = table.find(name)
            if info is not None:
                types.append(_type_json(info))
        kind = pdb.identity.kind.value
        return {"kind": kind, "identity": _identity_json(pdb.identity), "publics": publics,
                "globals": globals_, "procedures": procedures, "types": types}


def _dump_dbg(path: str) -> dict:
    from kdcon.symbols.dbg import read_dbg
    dbg = read_dbg(path)
    symbols = dbg.symbols()
    return {"kind": "dbg", "identity": _identity_json(dbg.identity), "machine": dbg.machine,
            "sections": [_section_json(s) for s in dbg.sections], "exported_names": dbg.exported_names,
            "misc_name": dbg.misc_name, "codeview": dbg.codeview.format if dbg.codeview else None,
            "publics": [{"name": r.name, "section": _section_offset(dbg.sections, r.rva)[0],
                         "offset": _section_offset(dbg.sections, r.rva)[1], "rva": r.rva, "length": r.size}
                        for r in symbols],
            "fpo": len(dbg.fpo())}


def _section_json(section: SectionHeader) -> dict:
    return {"name": section.name, "rva": section.virtual_address, "size": section.virtual_size}


def _dump_pe(path: str) -> dict:
    image = read_image(path)
    return {"kind": "pe", "identity": _identity_json(image.identity), "machine": image.machine,
            "image_base": image.image_base, "stripped": image.stripped, "misc_name": image.misc_name,
            "sections": [_section_json(s) for s in image.sections],
            "exports": [{"name": r.name, "rva": r.rva} for r in image.exports()],
            "runtime_functions": len(image.runtime_functions()), "fpo": len(image.fpo())}


def _dump_text(result: dict) -> str:
    lines = [f"kind: {result['kind']}"]
    lines += [f"  {key}: {_hex(value)}" for key, value in result["identity"].items() if value not in (None, 0)]
    for section in result.get("sections", []):
        lines.append(f"section {section['name']:<8} rva {section['rva']:08x} size {section['size']:08x}")
    for key in ("exports", "publics"):
        for record in result.get(key, []):
            lines.append(f"{key[:-1]:<9} {record['rva']:08x} {record['name']}")
    for record in result.get("procedures", []):
        lines.append(f"procedure {record['rva']:08x} {record['name']} (length {record['length']:#x})")
    for record in result.get("globals", []):
        lines.append(f"global    {record['rva']:08x} {record['name']} : {record['type']}")
    for info in result.get("types", []):
        lines.append(f"type {info['kind']} {info['name']} (size {info['size']:#x})")
        for field in info["fields"]:
            lines.append(f"   +{field['offset']:#05x} {field['name']:<24} : {field['type']}")
    return "\n".join(lines) + "\n"


def _hex(value):
    return f"{value:#x}" if isinstance(value, int) else value


def _about(path: str, exc: Exception) -> CliError:
    """One line naming ``path`` once, whichever form of it the message already holds."""
    text = str(exc)
    for said in (f"cannot read {path}: ", f"{path}: ", f"{os.path.basename(path)}: "):
        if text.startswith(said):
            text = ("cannot read: " if said.startswith("cannot") else "") + text[len(said):]
            break
    return CliError(f"{path}: {text}")


def cmd_dump(args: argparse.Namespace) -> int:
    kind = file_kind(args.file)
    if kind is None:
        raise CliError(f"{args.file}: not an image, DBG or PDB file (or unreadable)")
    dump = {FileKind.PE: _dump_pe, FileKind.DBG: _dump_dbg}.get(kind, _dump_pdb)
    try:
        result = dump(args.file)
    except SymbolError as exc:
        raise _about(args.file, exc) from None
    sys.stdout.write(json.dumps(result) + "\n" if args.json else _dump_text(result))
    return 0


_ADDRESS = re.compile(r"^(0x)?[0-9a-fA-F`]+$")


def _open_session(path: str, image_path: str) -> SymbolSession:
    image = read_image(image_path)
    session = SymbolSession(path, pointer_size=8 if image.is_64bit else 4)
    session.add_module(os.path.basename(image_path), image.image_base, image.identity.size_of_image,
                       timestamp=image.identity.timestamp, checksum=image.identity.checksum, image=image)
    return session


def cmd_lookup(args: argparse.Namespace) -> int:
    session = _open_session(args.sympath, args.image)
    query = args.query
    if "!" not in query and "*" not in query and "?" not in query and _ADDRESS.match(query):
        text = session.ln_text(int(query.replace("`", ""), 16))
    else:
        module = session.modules()[0]
        text = session.x_text(query if "!" in query else f"{module.name}!{query}")
    if not text:
        raise CliError(f"{query}: no symbol found")
    sys.stdout.write(text)
    return 0


def _tree_ext(path: str, identity: SymbolId, images: dict[str, str]) -> str:
    kind = identity.kind
    if kind is FileKind.PE:
        return os.path.splitext(path)[1].lstrip(".") or "exe"
    if kind is FileKind.DBG:
        from kdcon.symbols.dbg import read_dbg
        dbg = read_dbg(path)
        if dbg.misc_name and "." in dbg.misc_name:
            return dbg.misc_name.rsplit(".", 1)[1]
        return "dll" if dbg.characteristics & IMAGE_FILE_DLL else "exe"
    return images.get(identity.name.lower(), "pdb")


def cmd_add(args: argparse.Namespace) -> int:
    entries = []
    for path in args.files:
        try:
            entries.append((path, read_identity(path)))
        except SymbolError as exc:
            raise _about(path, exc) from None
    images = {}
    for path, identity in entries:
        if identity.pdb_name:
            pdb = identity.pdb_name.replace("\\", "/").rsplit("/", 1)[-1].lower()
            images[pdb] = os.path.splitext(path)[1].lstrip(".").lower() or "exe"
    for path, identity in entries:
        name = os.path.basename(path)
        if args.layout == "tree":
            destination = tree_destination(args.store, _tree_ext(path, identity, images), name)
        else:
            key = store_key(identity)
            if key is None:
                raise CliError(f"{path}: no timestamp/size or GUID/age to file it under")
            destination = symsrv_destination(args.store, name, key)
        copy_atomic(path, destination)
        sys.stdout.write(f"{path} -> {destination}\n")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    session = SymbolSession(args.sympath)
    failures = 0
    for image_path in args.images:
        image = read_image(image_path)
        want = image.identity
        matched = None
        lines = []
        for name in candidate_names(os.path.basename(image_path), image):
            if matched is not None:
                break
            target = wanted_pdb(want) if name.lower().endswith(".pdb") else want
            if target is None:
                continue
            found = session.locator.find(name, target, image_ext=os.path.splitext(image_path)[1].lstrip("."),
                                         survey=True)
            if not found.candidates:
                lines.append(f"  {name}: not on the symbol path")
            for candidate in found.candidates:
                if candidate.error:
                    lines.append(f"  {candidate.path}: unreadable: {candidate.error}")
                elif candidate.match.exact and matched is None:
                    matched = candidate.path
                    lines.append(f"  {candidate.path}: matches ({_why(target)})")
                elif candidate.match.exact:
                    lines.append(f"  {candidate.path}: matches too")
                else:
                    lines.append(f"  {candidate.path}: {candidate.match.letter} {'; '.join(candidate.match.reasons)}")
        for store in session.path.unreachable():
            lines.append(f"  {store}: unreachable (no network access)")
        verdict = f"{image_path}: {'PASSED ' + matched if matched else 'FAILED no matching symbol file'}"
        sys.stdout.write(verdict + "\n" + "".join(line + "\n" for line in lines))
        failures += matched is None
    return 1 if failures else 0


def _why(target: SymbolId) -> str:
    if target.guid is not None:
        return f"GUID {guid_hex(target.guid)} age {target.age:x}"
    if target.signature is not None:
        return f"signature {target.signature:08X} age {target.age:x}"
    return f"timestamp {target.timestamp:08X} size {target.size_of_image:x}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Symbol files and stores, offline.")
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump", help="show what a PDB, DBG or image holds")
    dump.add_argument("file")
    dump.add_argument("--json", action="store_true", help="one JSON object")
    dump.set_defaults(run=cmd_dump)
    lookup = sub.add_parser("lookup", help="what ln (address) or x (name, pattern) would print")
    lookup.add_argument("-y", dest="sympath", required=True, help="symbol path")
    lookup.add_argument("image")
    lookup.add_argument("query")
    lookup.set_defaults(run=cmd_lookup)
    add = sub.add_parser("add", help="file images, DBGs and PDBs into a store")
    add.add_argument("--store", required=True)
    add.add_argument("--layout", choices=("tree", "symsrv"), default="symsrv")
    add.add_argument("files", nargs="+")
    add.set_defaults(run=cmd_add)
    check = sub.add_parser("check", help="which symbol file matches each image, and why others do not")
    check.add_argument("-y", dest="sympath", required=True, help="symbol path")
    check.add_argument("images", nargs="+")
    check.set_defaults(run=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR, format=f"{PROG}: %(message)s")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        return args.run(args)
    except CliError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    except SymbolError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"{PROG}: {exc.filename or ''}: {exc.strerror}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
