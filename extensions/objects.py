"""!object and !handle: objects and handle tables as kd's kdexts show them, read through
the kernel's own types, so the same code reads Windows 7 x64 and the simulated kernel.

    !object Address [Flags]     the object whose body is at Address: its type, header,
                                counts and name
    !object \\Path               the named object of that name (a directory: and its
                                entries)
    !object \\                   the root directory: its object and its entries
    !handle [Handle [Flags [Process]]]
                                the handles of a process (the current one by default;
                                Process is an EPROCESS address or process ID, 0 for
                                every process), or the one Handle; Flags 1 the entry,
                                2 its object (default 3), 0x10 the kernel handle table

What it reads, by the types ``target.find_type`` gives (the kernel PDB's, else the
console's built-in Windows 7 SP1 x64 layout): ``_OBJECT_HEADER`` right before the body
(the body at its ``Body`` member); its ``TypeIndex`` picks the ``_OBJECT_TYPE`` in
``nt!ObTypeIndexTable``, whose ``Index`` must say the same, which is how an address
that is not an object is told apart; an ``_OBJECT_HEADER_NAME_INFO`` (Directory, Name)
sits in front of the header when ``InfoMask`` has bit 0x2, after the optional headers
of the lower bits (Windows 7's: creator 0x20 bytes for bit 0x1). Directories are
``_OBJECT_DIRECTORY``s of 37 hash buckets of ``_OBJECT_DIRECTORY_ENTRY`` chains, the root
``nt!ObpRootDirectoryObject``; a path is looked up whole in the root first (the
simulated kernel keeps most named objects there by full path), then one name a
directory (``\\Driver``, ``\\Device``). ``find_named`` gives that lookup to the other
extensions. A process's handle table is ``EPROCESS.ObjectTable``, a ``_HANDLE_TABLE``
(the kernel's ``nt!ObpKernelHandleTable``) whose ``TableCode`` gives the level in its
low 2 bits and the top table; a leaf holds ``_HANDLE_TABLE_ENTRY``s (Object: the
header with 3 low lock and attribute bits, GrantedAccess), handle value = index * 4.

Not done: ``!object 0 TypeName``, free handle entries (Flags 4), handles given as
thread or process IDs (Flags 0x20), Windows 8 and later handle entries (their Object
is not a plain pointer).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kdcon.api import ExtensionFailed, MemoryReadError, Target, bang, printable, require

from ._args import argument
from ._ntobjects import KernelObject, current_process, handle_count, processes, read_process

require("1.0")

_HEADER = "_OBJECT_HEADER"
_NAME_INFO = "_OBJECT_HEADER_NAME_INFO"
_TYPE = "_OBJECT_TYPE"
_ENTRY = "_HANDLE_TABLE_ENTRY"
_NAME_BIT = 0x2
# The optional headers Windows 7 x64 puts before _OBJECT_HEADER, by InfoMask bit, the
# lowest bit's nearest the header: creator, name, handle, quota and process info.
_OPTIONAL_SIZES = ((0x1, 0x20), (0x2, 0x20), (0x4, 0x10), (0x8, 0x20), (0x10, 0x10))
_ENTRY_BITS = 0x7
_KERNEL_HANDLE = 0xFFFFFFFF_80000000
_BUCKETS = 37
_TYPE_SLOTS = 64                # ObTypeIndexTable's slots read ahead together
_MAX_ENTRIES = 4096
_MAX_LEAVES = 64                # leaf tables read at most (16384 handles)
_PAGE = 0x1000


def _symbol(target: Target, name: str) -> int:
    address = target.symbol(name)
    if address is None:
        raise ExtensionFailed(f"{name} is not known: !object and !handle need the kernel's "
                              f"symbols (.reload /f nt)")
    return address


def _offset(target: Target, type_name: str, member: str) -> int:
    """Where ``member`` lies in ``nt!type_name``; one line when the type lacks it."""
    info = target.find_type(f"nt!{type_name}")
    while info is not None and info.kind in ("modifier", "typedef") and info.type is not None:
        info = info.type
    field = next((f for f in getattr(info, "fields", None) or () if f.name == member), None)
    if field is None:
        raise ExtensionFailed(f"Type nt!{type_name} (with {member}) not found: are the "
                              f"kernel's symbols loaded (.reload /f nt)?")
    return field.offset


def _signed(value: int | None, bits: int = 64) -> int:
    value = value or 0
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


@dataclass
class _Object:
    body: int
    header: int
    type_index: int
    type_object: int
    type_name: str
    pointer_count: int
    handle_count: int
    directory: int
    name: str


class _Objects:
    """Reads objects of one stop: the body offset and the type objects are read once."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.body_offset = _offset(target, _HEADER, "Body")
        self.type_table = _symbol(target, "nt!ObTypeIndexTable")
        self.types: dict[int, tuple[int, str] | None] = {}
        self.header_size = target.find_type(f"nt!{_HEADER}").size
        self.listed: dict[int, list[tuple[int, _Object]]] = {}

    def _string(self, obj: KernelObject, path: str) -> str:
        length = obj.get(f"{path}.Length") or 0
        buffer = obj.get(f"{path}.Buffer") or 0
        if not length or not buffer:
            return ""
        data = self.target.read(buffer, min(length, 0x1000))
        return printable(data.decode("utf-16-le", "replace"), newlines=False)

    def type_of(self, index: int) -> tuple[int, str] | None:
        """(address, name) of ObTypeIndexTable[index], or None when it is no type."""
        if index not in self.types:
            found = None
            try:
                if not self.types:
                    # Windows 7's few dozen types: their slots come in one request.
                    self.target.read(self.type_table, 8 * _TYPE_SLOTS)
                address = self.target.pointer(self.type_table + 8 * index)
                if index >= 2 and address >> 47 == (1 << 17) - 1:
                    self.target.read(address, self.target.find_type(f"nt!{_TYPE}").size)
                    kind = KernelObject(self.target, address, _TYPE)
                    if kind.get("Index") in (None, index):
                        found = (address, self._string(kind, "Name"))
            except (ExtensionFailed, MemoryReadError):
                found = None
            self.types[index] = found
        return self.types[index]

    def read(self, body: int) -> _Object:
        """The object whose body is at ``body``; one line when no object header is in
        front of it."""
        header = body - self.body_offset
        try:
            # The name information usually right before the header comes in the same request.
            self.target.read(header - 0x20, 0x20 + self.header_size)
            obj = KernelObject(self.target, header, _HEADER)
            index = obj.get("TypeIndex") or 0
            mask = obj.get("InfoMask") or 0
        except (ExtensionFailed, MemoryReadError):
            raise ExtensionFailed(f"{body:016x}: not an object (its header at {header:016x} "
                                  f"cannot be read)") from None
        kind = self.type_of(index)
        if kind is None:
            raise ExtensionFailed(f"{body:016x}: not an object (no object header in front "
                                  f"of it)")
        directory, name = 0, ""
        if mask & _NAME_BIT:
            back = sum(size for bit, size in _OPTIONAL_SIZES if bit <= _NAME_BIT and mask & bit)
            try:
                info = KernelObject(self.target, header - back, _NAME_INFO)
                directory, name = info.get("Directory") or 0, self._string(info, "Name")
            except (ExtensionFailed, MemoryReadError):
                name = "(name unreadable)"
        return _Object(body=body, header=header, type_index=index, type_object=kind[0],
                       type_name=kind[1], pointer_count=_signed(obj.get("PointerCount")),
                       handle_count=_signed(obj.get("HandleCount")), directory=directory,
                       name=name)

    def entries(self, directory: int) -> list[tuple[int, _Object]]:
        """(bucket, object) of each entry of the directory whose body is at ``directory``."""
        if directory in self.listed:
            return self.listed[directory]
        buckets = self.target.read_exact(directory + _offset(self.target, "_OBJECT_DIRECTORY",
                                                             "HashBuckets"), 8 * _BUCKETS)
        entry_size = self.target.find_type("nt!_OBJECT_DIRECTORY_ENTRY").size
        found: list[tuple[int, _Object]] = []
        for bucket in range(_BUCKETS):
            entry = int.from_bytes(buckets[8 * bucket:8 * bucket + 8], "little")
            seen: set[int] = set()
            while entry and entry not in seen and len(found) < _MAX_ENTRIES:
                seen.add(entry)
                self.target.read(entry, entry_size)
                item = KernelObject(self.target, entry, "_OBJECT_DIRECTORY_ENTRY")
                found.append((bucket, self.read(item.get("Object") or 0)))
                entry = item.get("ChainLink") or 0
        self.listed[directory] = found
        return found

    def named(self, directory: int, name: str) -> _Object | None:
        """The entry of ``name`` (any case) in the directory whose body is at
        ``directory``, as the object manager looks it up: only the chain of the name's
        hash bucket is walked, and only an entry whose HashValue is the name's has its
        object read (a lookup costs a few small reads, not the whole directory)."""
        if directory in self.listed:
            return next((obj for _, obj in self.listed[directory]
                         if obj.name.lower() == name.lower()), None)
        wanted = name_hash(name)
        slot = directory + _offset(self.target, "_OBJECT_DIRECTORY", "HashBuckets")
        entry = self.target.pointer(slot + 8 * (wanted % _BUCKETS))
        entry_size = self.target.find_type("nt!_OBJECT_DIRECTORY_ENTRY").size
        seen: set[int] = set()
        while entry and entry not in seen and len(seen) < _MAX_ENTRIES:
            seen.add(entry)
            self.target.read(entry, entry_size)
            item = KernelObject(self.target, entry, "_OBJECT_DIRECTORY_ENTRY")
            if item.get("HashValue") == wanted:
                obj = self.read(item.get("Object") or 0)
                if obj.name.lower() == name.lower():
                    return obj
            entry = item.get("ChainLink") or 0
        return None

    def root(self) -> _Object | None:
        """The root directory; None before the object manager has made it."""
        body = self.target.pointer(_symbol(self.target, "nt!ObpRootDirectoryObject"))
        return self.read(body) if body else None


def name_hash(name: str) -> int:
    """The object manager's hash of a name in a directory (the entry's HashValue; the
    bucket is it modulo 37): each upcased UTF-16 unit added to the hash times 2.5, in
    32 bits (ReactOS ``ObpLookupEntryDirectory``, the simulated kernel's ObpHashName)."""
    value = 0
    for unit in struct.unpack(f"<{len(name.encode('utf-16-le')) // 2}H",
                              name.encode("utf-16-le")):
        upper = chr(unit).upper()
        unit = ord(upper) if len(upper) == 1 and ord(upper) < 0x10000 else unit
        value = (value + (value << 1) + (value >> 1) + unit) & 0xFFFFFFFF
    return value


def _object_lines(obj: _Object, indent: str = "") -> list[str]:
    lines = [f"Object: {obj.body:016x}  Type: ({obj.type_object:016x}) {obj.type_name}",
             f"    ObjectHeader: {obj.header:016x}",
             f"{indent}    HandleCount: {obj.handle_count}  PointerCount: {obj.pointer_count}"]
    if obj.name:
        directory = f"{obj.directory:016x}" if obj.directory else "00000000"
        lines.append(f"{indent}    Directory Object: {directory}  Name: {obj.name}")
    return lines


def _row(target: Target, obj: _Object, **extra: object) -> None:
    target.row(kind="object", object=obj.body, header=obj.header, type=obj.type_name,
               type_object=obj.type_object, handle_count=obj.handle_count,
               pointer_count=obj.pointer_count, name=obj.name, directory=obj.directory,
               **extra)


@bang("object", usage="!object Address [Flags] | !object \\Path")
def object_(target: Target, args: str) -> None:
    """Show an object: its type, header, handle and pointer counts and name."""
    if args.strip().startswith("\\"):
        _show_path(target, _Objects(target), args.strip())
        return
    words = args.split()
    if not words or len(words) > 2:
        raise ExtensionFailed("Usage: !object Address [Flags] | !object \\Path")
    address = argument(target, words[0], "address")
    if address == 0:
        raise ExtensionFailed("!object 0 TypeName (every object of a type) is not done; "
                              "give an object's address or \\Path")
    flags = argument(target, words[1], "flags") if len(words) > 1 else 9
    obj = _Objects(target).read(address)
    _row(target, obj)
    lines = _object_lines(obj)
    # Flags bit 0 adds the header, counts and name to the type line (kd's default 9).
    target.write("\n".join(lines if flags & 1 else lines[:1]) + "\n")


def _resolve(objects: _Objects, root: _Object, path: str) -> _Object | None:
    """The object named ``path``: the root's entry of that whole name, else the walk down
    its directories one name at a time."""
    if path == "\\":
        return root
    match = objects.named(root.body, path)
    if match is None:
        match = root
        for part in [p for p in path.split("\\") if p]:
            found = objects.named(match.body, part) if match.type_name == "Directory" else None
            if found is None:
                return None
            match = found
    return match


def find_named(target: Target, path: str) -> tuple[int, str] | None:
    """(body address, type name) of the object named ``path`` (``\\Dir\\Name``, any
    case); None when no object has that name or the object manager has not made the root
    yet. ExtensionFailed when the kernel's symbols lack the object manager's."""
    objects = _Objects(target)
    root = objects.root()
    found = _resolve(objects, root, path) if root is not None else None
    return (found.body, found.type_name) if found is not None else None


def _show_path(target: Target, objects: _Objects, path: str) -> None:
    root = objects.root()
    if root is None:
        if path == "\\":
            raise ExtensionFailed("nt!ObpRootDirectoryObject is NULL: the object manager "
                                  "has not started yet")
        match = None
    else:
        match = _resolve(objects, root, path)
    if match is None:
        raise ExtensionFailed(f"{printable(path, newlines=False)}: no named object has this "
                              f"name (!object \\ lists them)")
    _row(target, match)
    lines = _object_lines(match)
    if match.type_name == "Directory":
        lines += ["", f"    {'Hash':<4} {'Address':<16} {'Type':<25} Name",
                  f"    {'----':<4} {'-------':<16} {'----':<25} ----"]
        last = None
        for bucket, obj in objects.entries(match.body):
            target.check_cancelled()
            _row(target, obj, bucket=bucket)
            hash_text = f"{bucket:02d}" if bucket != last else ""
            lines.append(f"     {hash_text:<2}  {obj.body:016x} {obj.type_name:<25} {obj.name}")
            last = bucket
    target.write("\n".join(lines) + "\n")


# -- handles -----------------------------------------------------------------------------


def _table_of(target: Target, process: int, kernel: bool) -> int:
    """The _HANDLE_TABLE of ``process`` (the kernel's when ``kernel``)."""
    if kernel:
        return target.pointer(_symbol(target, "nt!ObpKernelHandleTable"))
    try:
        table = read_process(target, process).object_table
    except (ExtensionFailed, MemoryReadError):
        table = 0
    if not table:
        raise ExtensionFailed(f"Process {process:x} has no handle table (its "
                              f"EPROCESS.ObjectTable is not readable or NULL)")
    return table


def _leaves(target: Target, code: int) -> list[tuple[int, int]]:
    """(first handle index, address) of each leaf table under ``TableCode``."""
    level, top = code & 3, code & ~3
    per_leaf = _PAGE // target.find_type(f"nt!{_ENTRY}").size
    tables = [(0, top)]
    for _ in range(level):
        below: list[tuple[int, int]] = []
        for first, address in tables:
            data = target.read_exact(address, _PAGE)
            for slot in range(_PAGE // 8):
                child = int.from_bytes(data[8 * slot:8 * slot + 8], "little")
                if child and len(below) < _MAX_LEAVES:
                    below.append((first * (_PAGE // 8) + slot, child))
        tables = below
    return [(first * per_leaf, address) for first, address in tables]


def _entries(target: Target, table: int) -> tuple[int, list[tuple[int, int, int, int]]]:
    """The top table's address and (index, entry address, header, granted access) of
    each entry in use."""
    size = target.find_type(f"nt!{_ENTRY}").size
    access = _offset(target, _ENTRY, "GrantedAccess")
    try:
        code = KernelObject(target, table, "_HANDLE_TABLE").get("TableCode") or 0
        leaves = _leaves(target, code)
        found = []
        for first, leaf in leaves:
            data = target.read_exact(leaf, _PAGE)
            for slot in range(_PAGE // size):
                at = slot * size
                header = int.from_bytes(data[at:at + 8], "little") & ~_ENTRY_BITS
                if header:
                    found.append((first + slot, leaf + at, header,
                                  int.from_bytes(data[at + access:at + access + 4], "little")))
    except MemoryReadError:
        raise ExtensionFailed(f"Cannot read the handle table at {table:016x}") from None
    return code & ~3, found


def _process_header(target: Target, address: int) -> list[str]:
    process = read_process(target, address)
    count = handle_count(target, process.object_table)
    counted = "<Data Not Accessible>" if count is None else f"{count:3d}."
    return [f"PROCESS {process.address:x}",
            f"    SessionId: none  Cid: {process.pid:04x}    Peb: {process.peb:08x}  "
            f"ParentCid: {process.parent_pid:04x}",
            f"    DirBase: {process.dirbase:08x}  ObjectTable: {process.object_table:016x}  "
            f"HandleCount: {counted}",
            f"    Image: {printable(process.image, newlines=False)}", ""]


def _show_handles(target: Target, objects: _Objects, process: int, handle: int | None,
                  flags: int) -> None:
    table = _table_of(target, process, bool(flags & 0x10))
    top, entries = _entries(target, table)
    lines = [] if flags & 0x10 else _process_header(target, process)
    lines += [f"{'Kernel h' if flags & 0x10 else 'H'}andle table at {top:016x} "
              f"with {len(entries)} entries in use", ""]
    if handle is not None:
        entries = [e for e in entries if e[0] == (handle & ~_KERNEL_HANDLE) >> 2]
        if not entries:
            target.write("\n".join(lines) + "\n")
            raise ExtensionFailed(f"Handle {handle:x} is not in use in this handle table")
    for index, entry, header, granted in entries:
        target.check_cancelled()
        value = index << 2
        body = header + objects.body_offset
        if flags & 1:
            lines.append(f"{value:04x}: Object: {body:016x}  GrantedAccess: {granted:08x} "
                         f"Entry: {entry:016x}")
        obj = None
        if flags & 2:
            try:
                obj = objects.read(body)
            except ExtensionFailed as exc:
                lines.append(f"    {exc}")
            else:
                lines += _object_lines(obj, indent="    ")
        target.row(kind="handle", process=process, handle=value, object=body,
                   granted_access=granted, entry=entry,
                   type=obj.type_name if obj else None, name=obj.name if obj else None)
        lines.append("")
    while len(lines) > 1 and lines[-1] == lines[-2] == "":
        lines.pop()
    target.write("\n".join(lines) + "\n")


@bang("handle", usage="!handle [Handle [Flags [Process]]]")
def handle(target: Target, args: str) -> None:
    """Show a process's handle table entries and the objects they refer to."""
    words = args.split()
    if len(words) > 3:
        raise ExtensionFailed("Usage: !handle [Handle [Flags [Process]]]")
    which = argument(target, words[0], "handle") if words else 0
    flags = argument(target, words[1], "flags") if len(words) > 1 else 3
    if flags & 0x20:
        raise ExtensionFailed("!handle Flags 0x20 (a thread or process ID as the handle) is "
                              "not done")
    handle_value = None if which in (0, (1 << 64) - 1) else which
    objects = _Objects(target)
    process_arg = argument(target, words[2], "process") if len(words) > 2 else (1 << 64) - 1
    if process_arg == 0 and not flags & 0x10:
        for process in processes(target):
            try:
                _show_handles(target, objects, process.address, handle_value, flags)
            except ExtensionFailed as exc:
                if handle_value is None:
                    target.out(str(exc))
        return
    if process_arg in ((1 << 64) - 1, 0xFFFFFFFF, 0):
        process = current_process(target)
    else:
        process = next((p.address for p in processes(target)
                        if process_arg in (p.address, p.pid)), process_arg)
    _show_handles(target, objects, process, handle_value, flags)
