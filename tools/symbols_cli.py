"""kdcon-symbols: look inside symbol files, answer ln/x offline, file and check stores.

    kdcon-symbols dump FILE [--json]
    kdcon-symbols lookup -y PATH [--base MODULE=ADDRESS]... IMAGE... ADDRESS|SYMBOL+OFFSET|NAME|PATTERN
    kdcon-symbols add --store DIR [--layout tree|symsrv] FILE...
    kdcon-symbols check -y PATH IMAGE...

``dump`` shows what a PDB, DBG or image holds (``--json``: one object); ``lookup``
prints what ``ln`` (an address or ``[module!]symbol+offset``) or ``x`` (a name or
pattern) would print for the images loaded at their preferred bases or where
``--base`` puts them (as ``.reload module=address`` does), and warns about path
elements that do not exist and modules that got only exports; ``add`` files
images, DBGs and PDBs as ``symstore add`` does, refusing images cut short;
``check`` says per image which symbol file matches and why the others do not, as
``symchk`` does. Errors are one line; exit status 2 for usage, 1 for not found,
mismatch or unreadable input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import struct
import sys
from collections.abc import Callable, Sequence

from kdcon.symbols.errors import SymbolError
from kdcon.symbols.locate import file_kind, read_identity
from kdcon.symbols.match import format_guid, store_key, wanted_pdb
from kdcon.symbols.model import FileKind, SectionHeader, SymbolId
from kdcon.symbols.index import has_wildcard
from kdcon.symbols.module import SymbolState, candidate_names, module_name_for
from kdcon.symbols.path import DirElement, StoreChain, SymbolPath, is_remote
from kdcon.symbols.pe import IMAGE_FILE_DLL, read_image
from kdcon.render.symbols import format_address, render_ln, render_x
from kdcon.symbols.session import SymbolSession
from kdcon.symbols.store import copy_atomic, symsrv_destination, tree_destination

__all__ = ["main"]

log = logging.getLogger(__name__)

PROG = "kdcon-symbols"


class CliError(Exception):
    """A failure reported as one line with exit status 1."""


def _identity_json(identity: SymbolId) -> dict:
    return {"name": identity.name, "guid": format_guid(identity.guid) if identity.guid else None,
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


def _check_file(path: str) -> None:
    """One line for a path that is no readable file: missing, a directory, unreadable."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _image(path: str):
    """The image at ``path``, or one line saying why it cannot be read."""
    _check_file(path)
    try:
        return read_image(path)
    except SymbolError as exc:
        raise _about(path, exc) from None


def _about(path: str, exc: Exception | str) -> CliError:
    """One line naming ``path`` once, whichever form of it the message already holds."""
    text = str(exc)
    for said in (f"cannot read {path}: ", f"{path}: ", f"{os.path.basename(path)}: "):
        if text.startswith(said):
            text = ("cannot read: " if said.startswith("cannot") else "") + text[len(said):]
            break
    return CliError(f"{path}: {text}")


def cmd_dump(args: argparse.Namespace) -> int:
    _check_file(args.file)
    kind = file_kind(args.file)
    if kind is None:
        raise CliError(f"{args.file}: not an image, DBG or PDB file")
    dump = {FileKind.PE: _dump_pe, FileKind.DBG: _dump_dbg}.get(kind, _dump_pdb)
    try:
        result = dump(args.file)
    except SymbolError as exc:
        raise _about(args.file, exc) from None
    sys.stdout.write(json.dumps(result) + "\n" if args.json else _dump_text(result))
    return 0


_ADDRESS = re.compile(r"^(0x)?[0-9a-fA-F`]+$")
_OFFSET = re.compile(r"^(?P<symbol>[^+\-*?]+?)(?P<sign>[+-])(?P<offset>(0x|0n)?[0-9a-fA-F`]+)$")


def _number(text: str) -> int:
    """A WinDbg number: hexadecimal by default, ``0x`` hex, ``0n`` decimal, backticks ignored."""
    text = text.replace("`", "")
    if text[:2].lower() == "0n":
        return int(text[2:], 10)
    return int(text, 16)


def module_base(text: str) -> tuple[str, int, int | None]:
    """``--base module=address[,size]`` as ``.reload module=address,size`` takes it."""
    name, sep, where = text.partition("=")
    address, _, size = where.partition(",")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), _number(address.strip()), _number(size.strip()) if size else None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected MODULE=ADDRESS[,SIZE], e.g. nt=fffff803`1a200000") from None


def _warn_missing_path_elements(path: SymbolPath) -> None:
    """One warning per element of the symbol path that cannot give anything here."""
    for problem in path.problems:
        log.warning("%s", problem)
    for element in path.elements:
        if isinstance(element, StoreChain):
            # The leftmost store of a chain with several is a downstream cache that a
            # hit further right creates; the others must be there to be read.
            readable = element.stores[1:] if len(element.stores) > 1 else element.stores
            for store in readable:
                if not is_remote(store) and not os.path.isdir(store):
                    log.warning("%s: no such store directory (in %s on the symbol path)", store, element)
        elif isinstance(element, DirElement) and not os.path.isdir(element.path):
            log.warning("%s: no such directory on the symbol path", element.path)


def _open_session(path: str, image_paths: Sequence[str], bases: Sequence[tuple[str, int, int | None]]
                  ) -> SymbolSession:
    images = [(image_path, _image(image_path)) for image_path in image_paths]
    session = SymbolSession(path, pointer_size=8 if any(i.is_64bit for _, i in images) else 4)
    _warn_missing_path_elements(session.path)
    wanted = {name.casefold(): (address, size) for name, address, size in bases}
    for image_path, image in images:
        image_name = os.path.basename(image_path)
        given = wanted.pop(module_name_for(image_name).casefold(), None) or \
            wanted.pop(image_name.casefold(), None)
        base, size = given if given else (image.image_base, None)
        size = size or image.identity.size_of_image
        for other in session.modules():
            if base < other.end and other.base < base + size:
                raise CliError(f"{image_path} at {format_address(base, session.pointer_size)} overlaps "
                               f"{other.image_name}: give each a --base MODULE=ADDRESS")
        session.add_module(image_name, base, size, timestamp=image.identity.timestamp,
                           checksum=image.identity.checksum, image=image)
    if wanted:
        names = ", ".join(name for name, _, _ in bases if name.casefold() in wanted)
        raise CliError(f"--base {names}: no such module among the images given")
    return session


def _address_of(session: SymbolSession, query: str) -> int | None:
    """The address an ``ln`` argument names: a number, or ``[module!]symbol[+-offset]``."""
    if "!" not in query and _ADDRESS.match(query):
        return _number(query.removeprefix("0x").removeprefix("0X"))
    found = _OFFSET.match(query)
    symbol, offset = (found["symbol"], _number(found["offset"]) * (1 if found["sign"] == "+" else -1)) \
        if found else (query, 0)
    address = session.address_of(symbol.lstrip("!"))
    if address is None:
        if found is None:
            return None
        raise CliError(f"{symbol}: no such symbol")
    return address + offset


def _say_what_was_loaded(session: SymbolSession) -> None:
    """A module that ended with exports or nothing says so: its answers are thin."""
    for module in session.modules():
        if module.state is SymbolState.EXPORT:
            log.warning("%s: no matching symbol file on the symbol path; only exports were found"
                        " (kdcon-symbols check says why)", module.name)
        elif module.state is SymbolState.NONE:
            log.warning("%s: no symbols: no matching symbol file and no exports", module.name)


def _sections(data: bytes) -> list[tuple[int, int, int, int]]:
    """(rva, virtual size, file offset, raw size) of each section of a complete image."""
    (pe_at,) = struct.unpack_from("<I", data, 0x3C)
    count, = struct.unpack_from("<H", data, pe_at + 6)
    optional_size, = struct.unpack_from("<H", data, pe_at + 20)
    rows = []
    for i in range(count):
        row = pe_at + 24 + optional_size + 40 * i
        vsize, rva, raw_size, raw_at = struct.unpack_from("<IIII", data, row + 8)
        rows.append((rva, max(vsize, raw_size), raw_at, raw_size))
    return rows


def _memory(session: SymbolSession, image_paths: Sequence[str]) -> Callable[[int, int], bytes | None]:
    """The images' contents at their load addresses, as a debugger opening an image
    as a dump reads them: initialised data from the file, zeros past it."""
    files = {}
    for path in image_paths:
        with open(path, "rb") as handle:
            data = handle.read()
        files[os.path.basename(path).casefold()] = (data, _sections(data))

    def read(address: int, size: int) -> bytes | None:
        module = session.module_for(address)
        if module is None or module.image_name.casefold() not in files:
            return None
        data, sections = files[module.image_name.casefold()]
        rva = address - module.base
        for start, length, raw_at, raw_size in sections:
            if start <= rva and rva + size <= start + length:
                at = rva - start
                chunk = data[raw_at + at:raw_at + min(at + size, raw_size)] if at < raw_size else b""
                return chunk.ljust(size, b"\0")
        return None
    return read


def cmd_lookup(args: argparse.Namespace) -> int:
    session = _open_session(args.sympath, args.images, args.base)
    query = args.query
    size, read = session.pointer_size, _memory(session, args.images)
    if has_wildcard(query) or ("+" not in query and "-" not in query and not _ADDRESS.match(query)):
        module = session.modules()[0]
        text = render_x(session.match(query if "!" in query else f"{module.name}!{query}"), size, read)
    else:
        address = _address_of(session, query)
        if session.module_for(address) is None:
            _say_what_was_loaded(session)
            ranges = ", ".join(f"{m.name} {format_address(m.base, session.pointer_size)}-"
                               f"{format_address(m.end, session.pointer_size)}" for m in session.modules())
            raise CliError(f"{query}: not inside any module ({ranges})")
        text = render_ln(session.near(address), size, read)
    _say_what_was_loaded(session)
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


def incomplete_image(data: bytes) -> str | None:
    """What is missing from an image file cut short, or None when every part is there.

    The headers give the timestamp and size an image is filed under, so a
    truncated copy has the intact image's key: its section table, headers,
    section raw data and certificate table must all lie inside the file.
    """
    size = len(data)
    if size < 0x40:
        return f"the DOS header is cut short at {size:#x} bytes"
    (pe_at,) = struct.unpack_from("<I", data, 0x3C)
    if pe_at + 24 > size:
        return f"the PE header at {pe_at:#x} lies past the end of the file ({size:#x} bytes)"
    count, = struct.unpack_from("<H", data, pe_at + 6)
    optional_size, = struct.unpack_from("<H", data, pe_at + 20)
    optional = pe_at + 24
    table_end = optional + optional_size + 40 * count
    if table_end > size:
        return f"the section table ends at {table_end:#x}, the file at {size:#x}"
    headers_size, = struct.unpack_from("<I", data, optional + 60)
    if headers_size > size:
        return f"the headers take {headers_size:#x} bytes, the file {size:#x}"
    for i in range(count):
        row = optional + optional_size + 40 * i
        name = data[row:row + 8].split(b"\0", 1)[0].decode("latin-1")
        raw_size, raw_pointer = struct.unpack_from("<II", data, row + 16)
        if raw_size and raw_pointer + raw_size > size:
            return f"section {name} ends at {raw_pointer + raw_size:#x}, the file at {size:#x}"
    # IMAGE_DIRECTORY_ENTRY_SECURITY (4) is the one directory given as a file offset.
    magic, = struct.unpack_from("<H", data, optional)
    security_at = optional + (112 if magic == 0x20B else 96) + 8 * 4
    if security_at + 8 <= optional + optional_size:
        offset, length = struct.unpack_from("<II", data, security_at)
        if length and offset + length > size:
            return f"the certificate table ends at {offset + length:#x}, the file at {size:#x}"
    return None


def cmd_add(args: argparse.Namespace) -> int:
    entries = []
    for path in args.files:
        _check_file(path)
        try:
            identity = read_identity(path)
        except SymbolError as exc:
            raise _about(path, exc) from None
        if identity.kind is FileKind.PE:
            with open(path, "rb") as handle:
                problem = incomplete_image(handle.read())
            if problem is not None:
                raise CliError(f"{path}: incomplete image, not filed: {problem}")
        entries.append((path, identity))
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
        image = _image(image_path)
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
                    lines.append(f"  {_about(candidate.path, candidate.error)}".replace(
                        f"{candidate.path}: ", f"{candidate.path}: unreadable: ", 1))
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
        return f"GUID {format_guid(target.guid)} age {target.age:x}"
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
    lookup = sub.add_parser("lookup", help="what ln (address, symbol+offset) or x (name, pattern) would print")
    lookup.add_argument("-y", dest="sympath", required=True, help="symbol path")
    lookup.add_argument("--base", type=module_base, action="append", default=[], metavar="MODULE=ADDRESS",
                        help="where a module is loaded (default: its preferred base); repeatable")
    lookup.add_argument("images", nargs="+", metavar="image")
    lookup.add_argument("query", help="address, [module!]symbol[+offset], or a pattern")
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


class _Once(logging.Filter):
    """Lets each distinct message through once: a file looked at twice warns once."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text in self._seen:
            return False
        self._seen.add(text)
        return True


@contextlib.contextmanager
def _warnings_to_stderr(level: int):
    """The symbols layer's warnings as ``kdcon-symbols: warning: ...`` lines while a command runs."""
    logger = logging.getLogger("kdcon")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: warning: %(message)s"))
    handler.addFilter(_Once())
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    # check lists every unreadable candidate in its report; the others warn.
    level = logging.ERROR if args.command == "check" else logging.WARNING
    try:
        with _warnings_to_stderr(level):
            return args.run(args)
    except (CliError, SymbolError) as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"{PROG}: {exc.filename or ''}: {exc.strerror}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
