"""The file system behind the simulated kernel's ZwCreateFile/ZwOpenFile, ZwReadFile,
ZwWriteFile and ZwQueryInformationFile: a host directory that plays drive C:.

    files = HostFiles(root=Path("logs"))     # None: no drive, every open fails
    files.service(memory, request_address)   # the kernel's request (src/ntoskrnl/file.c)

The kernel (``file.c``) validates its caller's arguments, keeps the handles and asks
through the control port (``KSIM_CONTROL_FILE``, the request's address in r9); this
module names the file, opens it and moves the bytes, reading and writing the request
block and the caller's buffer in guest memory on the CPU's thread.

Names.  ``\\??\\C:\\dir\\file``, ``\\DosDevices\\C:\\...`` and ``\\GLOBAL??\\C:\\...`` name
``root/dir/file``; ``\\SystemRoot\\x`` names ``C:\\Windows\\x``.  Components are matched
case-insensitively against what is there, as NTFS does.  What can never leave the
directory: ``.`` and ``..`` and characters NTFS refuses in a name (``/``, ``:``, ``*``,
``?``, ``"``, ``<``, ``>``, ``|``, controls) are STATUS_OBJECT_NAME_INVALID, as the
native API reports them; a host symbolic link that leads out of the directory is
STATUS_ACCESS_DENIED (the resolved path is checked, and the final open does not follow
links).  Another drive letter, or no directory given, is STATUS_OBJECT_PATH_NOT_FOUND.

Semantics (ZwCreateFile, ZwReadFile, ZwWriteFile, ZwQueryInformationFile reference
pages): the six create dispositions and their Information values; FILE_DIRECTORY_FILE
and FILE_NON_DIRECTORY_FILE; share access between opens of one file
(STATUS_SHARING_VIOLATION); a handle with FILE_APPEND_DATA but not FILE_WRITE_DATA writes
only at the end; a synchronous handle keeps the current position and takes no
ByteOffset, FILE_WRITE_TO_END_OF_FILE and FILE_USE_FILE_POINTER_POSITION as offsets;
reads at or past the end are STATUS_END_OF_FILE; FileStandardInformation and
FilePositionInformation to query; FilePositionInformation and FileEndOfFileInformation
(truncating or extending, FILE_WRITE_DATA needed) to set.

Not done: attributes, EAs, security, time stamps, deleting or renaming files, directory
listing, byte-range locks.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

from kdcon.protocol.constants import NtStatus

__all__ = ["HostFiles", "REQUEST_FORMAT", "resolve_name"]

log = logging.getLogger(__name__)

# KSIM_FILE_REQUEST (file.c): Operation, Status, HostFile, Disposition (open) or the
# information class (query), Options, Access, Information, Offset, Buffer, Length,
# ShareAccess, Flags (FLAG_*; bit 8 comes back set for a directory), NameLength, Name.
REQUEST_FORMAT = "<IIIIIIQQQQQIIQ"
REQUEST_SIZE = struct.calcsize(REQUEST_FORMAT)
OPEN, READ, WRITE, QUERY, CLOSE, SET = 1, 2, 3, 4, 5, 6
FLAG_OFFSET_GIVEN = 1          # the caller passed a ByteOffset
FLAG_SYNCHRONOUS = 2           # the handle is FILE_SYNCHRONOUS_IO_(NON)ALERT

FILE_SUPERSEDE, FILE_OPEN, FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE, FILE_OVERWRITE_IF = range(6)
FILE_SUPERSEDED, FILE_OPENED, FILE_CREATED, FILE_OVERWRITTEN = range(4)
FILE_DIRECTORY_FILE = 0x1
FILE_NON_DIRECTORY_FILE = 0x40
FILE_READ_DATA, FILE_WRITE_DATA, FILE_APPEND_DATA, FILE_EXECUTE = 0x1, 0x2, 0x4, 0x20
DELETE = 0x10000
FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_SHARE_DELETE = 1, 2, 4
FILE_STANDARD_INFORMATION, FILE_POSITION_INFORMATION, FILE_END_OF_FILE_INFORMATION = 5, 14, 20
WRITE_TO_END_OF_FILE = 0xFFFFFFFF_FFFFFFFF
USE_FILE_POINTER_POSITION = 0xFFFFFFFF_FFFFFFFE
MAX_TRANSFER = 0x100_0000
CLUSTER = 4096
_INVALID_CHARACTERS = set('"*/:<>?|\\') | {chr(c) for c in range(32)}


class _Refused(Exception):
    def __init__(self, status: NtStatus) -> None:
        super().__init__(status.name)
        self.status = status


def _split_drive_path(name: str) -> list[str]:
    """The components below C:\\ that an NT name gives (_Refused when it names none)."""
    lower = name.lower()
    for prefix in ("\\??\\", "\\dosdevices\\", "\\global??\\"):
        if lower.startswith(prefix):
            rest = name[len(prefix):]
            if len(rest) < 2 or rest[1] != ":" or (len(rest) > 2 and rest[2] != "\\"):
                raise _Refused(NtStatus.STATUS_OBJECT_PATH_NOT_FOUND)
            if rest[0].upper() != "C":
                raise _Refused(NtStatus.STATUS_OBJECT_PATH_NOT_FOUND)
            return _components(rest[3:])
    if lower == "\\systemroot" or lower.startswith("\\systemroot\\"):
        return ["Windows"] + _components(name[len("\\systemroot\\"):])
    raise _Refused(NtStatus.STATUS_OBJECT_PATH_NOT_FOUND)


def _components(rest: str) -> list[str]:
    if rest.endswith("\\"):
        rest = rest[:-1]
    if not rest:
        return []
    parts = rest.split("\\")
    for part in parts:
        if part in ("", ".", "..") or len(part) > 255 or set(part) & _INVALID_CHARACTERS:
            raise _Refused(NtStatus.STATUS_OBJECT_NAME_INVALID)
    return parts


def _match(directory: Path, component: str) -> str:
    """The name already in ``directory`` that equals ``component`` ignoring case."""
    if (directory / component).exists():
        return component
    try:
        folded = component.casefold()
        for entry in os.listdir(directory):
            if entry.casefold() == folded:
                return entry
    except OSError:
        pass
    return component


def resolve_name(root: Path | None, name: str) -> Path:
    """The host path an NT name stands for inside ``root``; raises _Refused otherwise."""
    if root is None:
        raise _Refused(NtStatus.STATUS_OBJECT_PATH_NOT_FOUND)
    top = Path(os.path.realpath(root))
    path = top
    for component in _split_drive_path(name):
        path = path / _match(path, component)
    real = Path(os.path.realpath(path))
    if real != top and top not in real.parents:
        raise _Refused(NtStatus.STATUS_ACCESS_DENIED)
    return real


@dataclass
class _Open:
    path: Path
    fd: int | None               # None: a directory
    access: int
    share: int
    synchronous: bool
    position: int = 0


def _conflicts(a_access: int, a_share: int, b_access: int, b_share: int) -> bool:
    def one_way(access: int, share: int) -> bool:
        return bool((access & (FILE_READ_DATA | FILE_EXECUTE) and not share & FILE_SHARE_READ)
                    or (access & (FILE_WRITE_DATA | FILE_APPEND_DATA) and not share & FILE_SHARE_WRITE)
                    or (access & DELETE and not share & FILE_SHARE_DELETE))
    return one_way(a_access, b_share) or one_way(b_access, a_share)


@dataclass
class HostFiles:
    """The C: drive of one machine; ``reset`` closes everything (a new boot)."""

    root: Path | None = None
    _opens: dict[int, _Open] = field(default_factory=dict)
    _next: int = 1

    def reset(self) -> None:
        for entry in self._opens.values():
            if entry.fd is not None:
                os.close(entry.fd)
        self._opens.clear()
        self._next = 1

    @property
    def open_count(self) -> int:
        return len(self._opens)

    def service(self, memory, address: int) -> None:
        """Carry out the request at ``address`` and write its results back."""
        data = memory.read_virtual(address, REQUEST_SIZE)
        if len(data) != REQUEST_SIZE:
            log.warning("file request at %#x cannot be read", address)
            return
        fields = list(struct.unpack(REQUEST_FORMAT, data))
        operation = fields[0]
        fields[1] = NtStatus.STATUS_SUCCESS
        try:
            if operation == OPEN:
                self._open(memory, fields)
            elif operation == CLOSE:
                self._close(fields)
            else:
                entry = self._opens.get(fields[2])
                if entry is None:
                    raise _Refused(NtStatus.STATUS_INVALID_HANDLE)
                if operation == QUERY:
                    self._query(memory, entry, fields)
                elif operation == SET:
                    self._set(entry, fields)
                elif operation in (READ, WRITE):
                    self._transfer(memory, entry, fields, operation == WRITE)
                else:
                    raise _Refused(NtStatus.STATUS_INVALID_PARAMETER)
        except _Refused as refused:
            fields[1] = refused.status
        except OSError as exc:
            log.debug("host file operation %d: %s", operation, exc)
            fields[1] = NtStatus.STATUS_DISK_FULL if exc.errno == errno.ENOSPC else NtStatus.STATUS_IO_DEVICE_ERROR
        memory.write_virtual(address, struct.pack(REQUEST_FORMAT, *fields))

    # ------------------------------------------------------------ operations

    def _name(self, memory, fields: list[int]) -> str:
        length = min(fields[12], 2 * 1024)
        return memory.read_virtual(fields[13], length).decode("utf-16-le", "replace")

    def _open(self, memory, fields: list[int]) -> None:
        disposition, options, access = fields[3], fields[4], fields[5]
        share, synchronous = fields[10] & 7, bool(fields[11] & FLAG_SYNCHRONOUS)
        path = resolve_name(self.root, self._name(memory, fields))
        if not path.parent.is_dir():
            raise _Refused(NtStatus.STATUS_OBJECT_PATH_NOT_FOUND)
        exists = os.path.lexists(path)
        is_dir = path.is_dir()
        # Sharing is checked before anything is created or truncated.
        for other in self._opens.values():
            if other.path == path and _conflicts(access, share, other.access, other.share):
                raise _Refused(NtStatus.STATUS_SHARING_VIOLATION)
        if options & FILE_DIRECTORY_FILE or (exists and is_dir):
            information = self._open_directory(path, exists, is_dir, disposition, options)
            fd = None
        else:
            information, fd = self._open_file(path, exists, disposition, access)
        handle = self._next
        self._next += 1
        self._opens[handle] = _Open(path, fd, access, share, synchronous)
        fields[2], fields[6] = handle, information
        fields[11] = int(fd is None) << 8 | (fields[11] & 0xFF)
        log.debug("opened %s as %d (information %d)", path, handle, information)

    @staticmethod
    def _open_directory(path: Path, exists: bool, is_dir: bool, disposition: int, options: int) -> int:
        if options & FILE_NON_DIRECTORY_FILE:
            raise _Refused(NtStatus.STATUS_FILE_IS_A_DIRECTORY)
        if exists and not is_dir:
            raise _Refused(NtStatus.STATUS_NOT_A_DIRECTORY)
        if disposition not in (FILE_CREATE, FILE_OPEN, FILE_OPEN_IF):
            raise _Refused(NtStatus.STATUS_INVALID_PARAMETER if options & FILE_DIRECTORY_FILE
                           else NtStatus.STATUS_FILE_IS_A_DIRECTORY)
        if exists:
            if disposition == FILE_CREATE:
                raise _Refused(NtStatus.STATUS_OBJECT_NAME_COLLISION)
            return FILE_OPENED
        if disposition == FILE_OPEN:
            raise _Refused(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND)
        os.mkdir(path)
        return FILE_CREATED

    @staticmethod
    def _open_file(path: Path, exists: bool, disposition: int, access: int) -> tuple[int, int]:
        if disposition > FILE_OVERWRITE_IF:
            raise _Refused(NtStatus.STATUS_INVALID_PARAMETER)
        if exists and disposition == FILE_CREATE:
            raise _Refused(NtStatus.STATUS_OBJECT_NAME_COLLISION)
        if not exists and disposition in (FILE_OPEN, FILE_OVERWRITE):
            raise _Refused(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND)
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
        if not exists:
            flags |= os.O_CREAT | os.O_EXCL
            information = FILE_CREATED
        elif disposition in (FILE_SUPERSEDE, FILE_OVERWRITE, FILE_OVERWRITE_IF):
            flags |= os.O_TRUNC
            information = FILE_SUPERSEDED if disposition == FILE_SUPERSEDE else FILE_OVERWRITTEN
        else:
            information = FILE_OPENED
        if not access & (FILE_WRITE_DATA | FILE_APPEND_DATA) and not flags & (os.O_CREAT | os.O_TRUNC):
            flags = (flags & ~os.O_RDWR) | os.O_RDONLY
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EACCES, errno.EPERM):
                raise _Refused(NtStatus.STATUS_ACCESS_DENIED) from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _Refused(NtStatus.STATUS_ACCESS_DENIED)
        return information, fd

    def _close(self, fields: list[int]) -> None:
        entry = self._opens.pop(fields[2], None)
        if entry is None:
            raise _Refused(NtStatus.STATUS_INVALID_HANDLE)
        if entry.fd is not None:
            os.close(entry.fd)

    def _query(self, memory, entry: _Open, fields: list[int]) -> None:
        info_class, buffer = fields[3], fields[8]
        if info_class == FILE_STANDARD_INFORMATION:
            st = os.stat(entry.path)
            size = 0 if entry.fd is None else os.fstat(entry.fd).st_size
            allocation = (size + CLUSTER - 1) // CLUSTER * CLUSTER
            data = struct.pack("<qqIBB2x", allocation, size, st.st_nlink, 0, int(entry.fd is None))
        elif info_class == FILE_POSITION_INFORMATION:
            data = struct.pack("<q", entry.position)
        else:
            raise _Refused(NtStatus.STATUS_INVALID_PARAMETER)
        memory.write_virtual(buffer, data)
        fields[6] = len(data)

    @staticmethod
    def _set(entry: _Open, fields: list[int]) -> None:
        info_class, value = fields[3], fields[7]
        if value >= 1 << 63:
            raise _Refused(NtStatus.STATUS_INVALID_PARAMETER)
        if info_class == FILE_POSITION_INFORMATION:
            entry.position = value
        elif info_class == FILE_END_OF_FILE_INFORMATION:
            if entry.fd is None:
                raise _Refused(NtStatus.STATUS_INVALID_PARAMETER)
            if not entry.access & FILE_WRITE_DATA:
                raise _Refused(NtStatus.STATUS_ACCESS_DENIED)
            os.ftruncate(entry.fd, value)
        else:
            raise _Refused(NtStatus.STATUS_INVALID_PARAMETER)

    def _transfer(self, memory, entry: _Open, fields: list[int], write: bool) -> None:
        offset, buffer, length, flags = fields[7], fields[8], min(fields[9], MAX_TRANSFER), fields[11]
        if entry.fd is None:
            raise _Refused(NtStatus.STATUS_INVALID_DEVICE_REQUEST)
        needed = (FILE_WRITE_DATA | FILE_APPEND_DATA) if write else FILE_READ_DATA
        if not entry.access & needed:
            raise _Refused(NtStatus.STATUS_ACCESS_DENIED)
        end = os.fstat(entry.fd).st_size
        given = bool(flags & FLAG_OFFSET_GIVEN)
        if write and entry.access & FILE_APPEND_DATA and not entry.access & FILE_WRITE_DATA:
            offset = end
        elif given and write and offset == WRITE_TO_END_OF_FILE:
            offset = end
        elif (given and offset == USE_FILE_POINTER_POSITION and entry.synchronous) or (not given and entry.synchronous):
            offset = entry.position
        elif not given or offset >= 1 << 63:
            raise _Refused(NtStatus.STATUS_INVALID_PARAMETER)
        if write:
            data = memory.read_virtual(buffer, length)
            if len(data) != length:
                raise _Refused(NtStatus.STATUS_INVALID_PARAMETER)
            done = os.pwrite(entry.fd, data, offset) if data else 0
        else:
            if length and offset >= end:
                raise _Refused(NtStatus.STATUS_END_OF_FILE)
            data = os.pread(entry.fd, length, offset)
            memory.write_virtual(buffer, data)
            done = len(data)
        if entry.synchronous:
            entry.position = offset + done
        fields[6] = done
