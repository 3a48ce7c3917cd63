"""!object and !handle: objects and handle tables as kd's kdexts show them, read from
the object manager of the simulated kernel.

    !object Address [Flags]     the object whose body is at Address: its type, header,
                                counts and name
    !object \\Path               the named object of that name
    !object \\                   the named objects (the root of the namespace)
    !handle [Handle [Flags [Process]]]
                                the handles of a process (the current one by default;
                                Process is an EPROCESS address or process ID, 0 for
                                every process), or the one Handle; Flags 1 the entry,
                                2 its object (default 3), 0x10 the kernel handle table

What it reads: every object has a ``_KSIM_OBJECT_HEADER`` (PointerCount, HandleCount,
Type, pool Tag, Name, NextNamed; 0x30 bytes) right before its body; the header's type
number is the kernel's OB_TYPE (1 Event, 2 File, 3 Key, 4 Section, 5 Directory,
6 Thread, 7 Process, 8 a device's File) and its Tag must be ``nt!ObpTypeTags`` of that
type, which is how an address that is not an object is told apart. Handle tables are
arrays of ``_OBP_HANDLE`` (header pointer, GrantedAccess, Attributes): the System
process's is ``nt!ObpKernelTable`` (kernel handles, which carry bit 31 elsewhere), the
user process's (``nt!PspUserProcess``) ``nt!ObpUserTable``; handle value = (index + 1)
* 4. Named objects are one list, ``nt!ObpNamedObjects``, each named by its full path:
there are no directory objects, so ``!object \\`` lists that list.

Not done: Windows' own ``_OBJECT_HEADER``, ``_HANDLE_TABLE`` and object directories
(a kernel without ``nt!_KSIM_OBJECT_HEADER`` gets one line saying so), ``!object 0
TypeName``, free handle entries (Flags 4), and handles given as thread or process IDs
(Flags 0x20).
"""

from __future__ import annotations

from dataclasses import dataclass

from kdcon.api import ExtensionFailed, MemoryReadError, Target, bang, printable, require

from ._ntobjects import KernelObject, current_process, processes, read_process

require("1.0")

_HEADER = "_KSIM_OBJECT_HEADER"
_ENTRY = "_OBP_HANDLE"
_TYPE_NAMES = {1: "Event", 2: "File", 3: "Key", 4: "Section", 5: "Directory", 6: "Thread",
               7: "Process", 8: "File"}
# The types the kernel has a type object for (what ExEventObjectType and friends point at).
_TYPE_OBJECTS = {1: "nt!ObpEventType", 6: "nt!ObpThreadType", 7: "nt!ObpProcessType"}
_KERNEL_HANDLE = 0xFFFFFFFF_80000000
_MAX_NAMED = 4096
_TABLE_ENTRIES = 256            # ob.c's HANDLE_TABLE_SIZE: both tables are this long


def _value(target: Target, text: str, what: str) -> int:
    try:
        return target.evaluate(text) & ((1 << 64) - 1)
    except Exception as exc:  # noqa: BLE001 - the evaluator's message is the line to give
        raise ExtensionFailed(f"Bad {what} '{text}': {exc}") from None


def _symbol(target: Target, name: str) -> int:
    address = target.symbol(name)
    if address is None:
        raise ExtensionFailed(f"{name} is not known: !object and !handle read the simulated "
                              f"kernel's object manager (are its symbols loaded?)")
    return address


def _header_size(target: Target) -> int:
    info = target.find_type(f"nt!{_HEADER}")
    if info is None or not getattr(info, "size", 0):
        raise ExtensionFailed(f"Type nt!{_HEADER} not found: !object and !handle read the "
                              f"simulated kernel's object headers; this kernel's "
                              f"nt!_OBJECT_HEADER is not read by this kdcon")
    return info.size


@dataclass
class _Object:
    body: int
    header: int
    type: int
    pointer_count: int
    handle_count: int
    name: str
    next_named: int


class _Objects:
    """Reads objects of one stop: the header size and type tags are read once."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.header_size = _header_size(target)
        tags = target.read(_symbol(target, "nt!ObpTypeTags"), 4 * (max(_TYPE_NAMES) + 1))
        self.tags = [int.from_bytes(tags[i:i + 4], "little") for i in range(0, len(tags), 4)]

    def read(self, body: int) -> _Object:
        """The object whose body is at ``body``; one line when no object header is in
        front of it."""
        target = self.target
        header = body - self.header_size
        try:
            obj = KernelObject(target, header, _HEADER)
            kind = obj.get("Type") or 0
            tag = obj.get("Tag")
        except (ExtensionFailed, MemoryReadError):
            raise ExtensionFailed(f"{body:016x}: not an object (its header at {header:016x} "
                                  f"cannot be read)") from None
        if kind not in _TYPE_NAMES or kind >= len(self.tags) or tag != self.tags[kind]:
            raise ExtensionFailed(f"{body:016x}: not an object (no object header in front "
                                  f"of it)")
        return _Object(body=body, header=header, type=kind,
                       pointer_count=_signed(obj.get("PointerCount")),
                       handle_count=_signed(obj.get("HandleCount")),
                       name=self._name(obj), next_named=obj.get("NextNamed") or 0)

    def _name(self, obj: KernelObject) -> str:
        length = obj.get("Name.Length") or 0
        buffer = obj.get("Name.Buffer") or 0
        if not length or not buffer:
            return ""
        data = self.target.read(buffer, length)
        return printable(data.decode("utf-16-le", "replace"), newlines=False)

    def named(self) -> list[_Object]:
        """Every object on nt!ObpNamedObjects, in list order."""
        found: list[_Object] = []
        header = self.target.pointer(_symbol(self.target, "nt!ObpNamedObjects"))
        seen: set[int] = set()
        while header and header not in seen and len(found) < _MAX_NAMED:
            seen.add(header)
            obj = self.read(header + self.header_size)
            found.append(obj)
            header = obj.next_named
        return found

    def type_address(self, kind: int) -> int:
        name = _TYPE_OBJECTS.get(kind)
        return (self.target.symbol(name) or 0) if name else 0


def _signed(value: int | None) -> int:
    value = value or 0
    return value - (1 << 32) if value & 0x8000_0000 else value


def _object_lines(objects: _Objects, obj: _Object, indent: str = "") -> list[str]:
    lines = [f"Object: {obj.body:016x}  Type: ({objects.type_address(obj.type):016x}) "
             f"{_TYPE_NAMES[obj.type]}",
             f"    ObjectHeader: {obj.header:016x}",
             f"{indent}    HandleCount: {obj.handle_count}  PointerCount: {obj.pointer_count}"]
    if obj.name:
        lines.append(f"{indent}    Directory Object: 00000000  Name: {obj.name}")
    return lines


def _row(target: Target, objects: _Objects, obj: _Object, **extra: object) -> None:
    target.row(kind="object", object=obj.body, header=obj.header, type=_TYPE_NAMES[obj.type],
               type_object=objects.type_address(obj.type), handle_count=obj.handle_count,
               pointer_count=obj.pointer_count, name=obj.name, **extra)


@bang("object", usage="!object Address [Flags] | !object \\Path")
def object_(target: Target, args: str) -> None:
    """Show an object: its type, header, handle and pointer counts and name."""
    if args.strip().startswith("\\"):
        _show_path(target, _Objects(target), args.strip())
        return
    words = args.split()
    if not words or len(words) > 2:
        raise ExtensionFailed("Usage: !object Address [Flags] | !object \\Path")
    address = _value(target, words[0], "address")
    if address == 0:
        raise ExtensionFailed("!object 0 TypeName (every object of a type) is not done; "
                              "give an object's address or \\Path")
    flags = _value(target, words[1], "flags") if len(words) > 1 else 9
    objects = _Objects(target)
    obj = objects.read(address)
    _row(target, objects, obj)
    lines = _object_lines(objects, obj)
    # Flags bit 0 adds the header, counts and name to the type line (kd's default 9).
    target.write("\n".join(lines if flags & 1 else lines[:1]) + "\n")


def _show_path(target: Target, objects: _Objects, path: str) -> None:
    named = objects.named()
    if path == "\\":
        target.write("The simulated kernel keeps no directory objects: its named objects "
                     "(nt!ObpNamedObjects), each by its full path:\n\n")
        lines = [f"    {'Object':<16} {'Type':<25} Name", f"    {'------':<16} {'----':<25} ----"]
        for obj in named:
            _row(target, objects, obj)
            lines.append(f"    {obj.body:016x} {_TYPE_NAMES[obj.type]:<25} {obj.name}")
        if not named:
            lines.append("    (none)")
        target.write("\n".join(lines) + "\n")
        return
    wanted = path.lower()
    match = next((obj for obj in named if obj.name.lower() == wanted), None)
    if match is None:
        raise ExtensionFailed(f"{printable(path, newlines=False)}: no named object has this "
                              f"name (!object \\ lists them)")
    _row(target, objects, match)
    target.write("\n".join(_object_lines(objects, match)) + "\n")


# -- handles -----------------------------------------------------------------------------


def _table_of(target: Target, process: int, kernel: bool) -> int:
    """The address of ``process``'s handle array (the kernel's when ``kernel``)."""
    if kernel or process == target.pointer(_symbol(target, "nt!PsInitialSystemProcess")):
        return _symbol(target, "nt!ObpKernelTable")
    user = target.symbol("nt!PspUserProcess")
    if user is not None and process == target.pointer(user):
        return _symbol(target, "nt!ObpUserTable")
    raise ExtensionFailed(f"Process {process:x} has no handle table the simulated kernel "
                          f"keeps (only System's and the user process's)")


def _entry_size(target: Target) -> int:
    info = target.find_type(f"nt!{_ENTRY}")
    if info is None or not getattr(info, "size", 0):
        raise ExtensionFailed(f"Type nt!{_ENTRY} not found: !handle reads the simulated "
                              f"kernel's handle tables")
    return info.size


def _entries(target: Target, table: int, size: int) -> list[tuple[int, int, int, int]]:
    """(index, header, granted access, attributes) of each entry in use; one read."""
    count = _TABLE_ENTRIES
    try:
        data = target.read_exact(table, count * size)
    except MemoryReadError:
        raise ExtensionFailed(f"Cannot read the handle table at {table:016x}") from None
    found = []
    for index in range(count):
        at = index * size
        header = int.from_bytes(data[at:at + 8], "little")
        if header:
            found.append((index, header, int.from_bytes(data[at + 8:at + 12], "little"),
                          int.from_bytes(data[at + 12:at + 16], "little")))
    return found


def _process_header(target: Target, address: int) -> list[str]:
    process = read_process(target, address)
    return [f"PROCESS {process.address:x}",
            f"    SessionId: none  Cid: {process.pid:04x}    Peb: {process.peb:08x}  "
            f"ParentCid: {process.parent_pid:04x}",
            f"    DirBase: {process.dirbase:08x}  ObjectTable: {process.object_table:08x}",
            f"    Image: {printable(process.image, newlines=False)}", ""]


def _show_handles(target: Target, objects: _Objects, process: int, handle: int | None,
                  flags: int) -> None:
    table = _table_of(target, process, bool(flags & 0x10))
    size = _entry_size(target)
    entries = _entries(target, table, size)
    header_size = objects.header_size
    lines = [] if flags & 0x10 else _process_header(target, process)
    lines += [f"{'Kernel h' if flags & 0x10 else 'H'}andle table at {table:016x} "
              f"with {len(entries)} entries in use", ""]
    if handle is not None:
        index = ((handle & ~_KERNEL_HANDLE) >> 2) - 1
        entries = [e for e in entries if e[0] == index]
        if not entries:
            target.write("\n".join(lines) + "\n")
            raise ExtensionFailed(f"Handle {handle:x} is not in use in this handle table")
    for index, header, granted, attributes in entries:
        target.check_cancelled()
        value = (index + 1) << 2
        body = header + header_size
        if flags & 1:
            lines.append(f"{value:04x}: Object: {body:016x}  GrantedAccess: {granted:08x} "
                         f"Entry: {table + index * size:016x}")
        obj = None
        if flags & 2:
            try:
                obj = objects.read(body)
            except ExtensionFailed as exc:
                lines.append(f"    {exc}")
            else:
                lines += _object_lines(objects, obj, indent="    ")
        target.row(kind="handle", process=process, handle=value, object=body,
                   granted_access=granted, attributes=attributes,
                   entry=table + index * size,
                   type=_TYPE_NAMES.get(obj.type) if obj else None,
                   name=obj.name if obj else None)
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
    which = _value(target, words[0], "handle") if words else 0
    flags = _value(target, words[1], "flags") if len(words) > 1 else 3
    if flags & 0x20:
        raise ExtensionFailed("!handle Flags 0x20 (a thread or process ID as the handle) is "
                              "not done")
    handle_value = None if which in (0, (1 << 64) - 1) else which
    objects = _Objects(target)
    process_arg = _value(target, words[2], "process") if len(words) > 2 else (1 << 64) - 1
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
