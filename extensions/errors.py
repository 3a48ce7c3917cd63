"""!error: what an error code means.

    !error Value [Flags]

Value is a Win32 error, an HRESULT or an NTSTATUS; Flags 1 reads it as an NTSTATUS
whatever it looks like. Without flags a value below 0x10000 is a Win32 error, an
HRESULT of facility Win32 (0x8007xxxx) is read as its Win32 error, and anything else
is an NTSTATUS:

    Error code: (Win32) 0x2 (2) - The system cannot find the file specified.
    Error code: (NTSTATUS) 0xc0000005 (3221225477) - The instruction at 0x%p referenced memory at 0x%p. The memory could not be %s.
    Error code: (NTSTATUS) 0x2 - STATUS_WAIT_2

An NTSTATUS whose message has no text shows its name. Placeholders such as ``%p``
stay as Windows' message table has them, as kd prints them. The table is a modest
one: the codes crash analysis meets most; any other reads ``<Unable to get error
code text>``. Texts follow Microsoft's published message texts ([MS-ERREF] sections
2.2 and 2.3.1, winerror.h and ntstatus.h as documented on learn.microsoft.com).
"""

from __future__ import annotations

from kdcon.api import ExtensionFailed, Target, bang, require

require("1.0")

__all__ = ["describe", "NTSTATUS_TEXT", "WIN32_TEXT"]

_UNKNOWN = "<Unable to get error code text>"

# NTSTATUS: (name, message text or "" where the message table has none).
NTSTATUS_TEXT: dict[int, tuple[str, str]] = {
    0x00000000: ("STATUS_SUCCESS", "The operation completed successfully."),
    0x00000001: ("STATUS_WAIT_1", ""),
    0x00000002: ("STATUS_WAIT_2", ""),
    0x00000003: ("STATUS_WAIT_3", ""),
    0x0000003F: ("STATUS_WAIT_63", ""),
    0x00000080: ("STATUS_ABANDONED_WAIT_0", ""),
    0x000000C0: ("STATUS_USER_APC", ""),
    0x00000101: ("STATUS_ALERTED", ""),
    0x00000102: ("STATUS_TIMEOUT", ""),
    0x00000103: ("STATUS_PENDING", ""),
    0x80000002: ("STATUS_DATATYPE_MISALIGNMENT",
                 "{EXCEPTION} Alignment Fault A datatype misalignment was detected in a load "
                 "or store instruction."),
    0x80000003: ("STATUS_BREAKPOINT", "{EXCEPTION} Breakpoint A breakpoint has been reached."),
    0x80000004: ("STATUS_SINGLE_STEP",
                 "{EXCEPTION} Single Step A single step or trace operation has just been completed."),
    0x80000005: ("STATUS_BUFFER_OVERFLOW",
                 "{Buffer Overflow} The data was too large to fit into the specified buffer."),
    0x80000006: ("STATUS_NO_MORE_FILES",
                 "{No More Files} No more files were found which match the file specification."),
    0x8000001A: ("STATUS_NO_MORE_ENTRIES",
                 "{No More Entries} No more entries are available from an enumeration operation."),
    0xC0000001: ("STATUS_UNSUCCESSFUL", "{Operation Failed} The requested operation was unsuccessful."),
    0xC0000002: ("STATUS_NOT_IMPLEMENTED", "{Not Implemented} The requested operation is not implemented."),
    0xC0000004: ("STATUS_INFO_LENGTH_MISMATCH",
                 "The specified information record length does not match the length that is "
                 "required for the specified information class."),
    0xC0000005: ("STATUS_ACCESS_VIOLATION",
                 "The instruction at 0x%p referenced memory at 0x%p. The memory could not be %s."),
    0xC0000006: ("STATUS_IN_PAGE_ERROR",
                 "The instruction at 0x%p referenced memory at 0x%p. The required data was not "
                 "placed into memory because of an I/O error status of 0x%x."),
    0xC0000008: ("STATUS_INVALID_HANDLE", "An invalid HANDLE was specified."),
    0xC000000D: ("STATUS_INVALID_PARAMETER", "An invalid parameter was passed to a service or function."),
    0xC000000E: ("STATUS_NO_SUCH_DEVICE", "A device that does not exist was specified."),
    0xC000000F: ("STATUS_NO_SUCH_FILE", "{File Not Found} The file %hs does not exist."),
    0xC0000010: ("STATUS_INVALID_DEVICE_REQUEST",
                 "The specified request is not a valid operation for the target device."),
    0xC0000011: ("STATUS_END_OF_FILE",
                 "The end-of-file marker has been reached. There is no valid data in the file "
                 "beyond this marker."),
    0xC0000017: ("STATUS_NO_MEMORY",
                 "{Not Enough Quota} Not enough virtual memory or paging file quota is available "
                 "to complete the specified operation."),
    0xC000001D: ("STATUS_ILLEGAL_INSTRUCTION",
                 "{EXCEPTION} Illegal Instruction An attempt was made to execute an illegal "
                 "instruction."),
    0xC0000022: ("STATUS_ACCESS_DENIED",
                 "{Access Denied} A process has requested access to an object but has not been "
                 "granted those access rights."),
    0xC0000023: ("STATUS_BUFFER_TOO_SMALL",
                 "{Buffer Too Small} The buffer is too small to contain the entry. No "
                 "information has been written to the buffer."),
    0xC0000024: ("STATUS_OBJECT_TYPE_MISMATCH",
                 "{Wrong Type} There is a mismatch between the type of object that is required "
                 "by the requested operation and the type of object that is specified in the "
                 "request."),
    0xC0000025: ("STATUS_NONCONTINUABLE_EXCEPTION",
                 "{EXCEPTION} Cannot Continue Windows cannot continue from this exception."),
    0xC0000033: ("STATUS_OBJECT_NAME_INVALID", "Object Name invalid."),
    0xC0000034: ("STATUS_OBJECT_NAME_NOT_FOUND", "Object Name not found."),
    0xC0000035: ("STATUS_OBJECT_NAME_COLLISION", "Object Name already exists."),
    0xC000003A: ("STATUS_OBJECT_PATH_NOT_FOUND", "{Path Not Found} The path %hs does not exist."),
    0xC0000043: ("STATUS_SHARING_VIOLATION",
                 "A file cannot be opened because the share access flags are incompatible."),
    0xC000007F: ("STATUS_DISK_FULL", "{Disk Full} There is not enough space on the disk."),
    0xC000008E: ("STATUS_FLOAT_DIVIDE_BY_ZERO", "{EXCEPTION} Floating-point division by zero."),
    0xC0000090: ("STATUS_FLOAT_INVALID_OPERATION", "{EXCEPTION} Floating-point invalid operation."),
    0xC0000094: ("STATUS_INTEGER_DIVIDE_BY_ZERO", "{EXCEPTION} Integer division by zero."),
    0xC0000095: ("STATUS_INTEGER_OVERFLOW", "{EXCEPTION} Integer overflow."),
    0xC0000096: ("STATUS_PRIVILEGED_INSTRUCTION", "{EXCEPTION} Privileged instruction."),
    0xC000009A: ("STATUS_INSUFFICIENT_RESOURCES",
                 "Insufficient system resources exist to complete the API."),
    0xC00000BA: ("STATUS_FILE_IS_A_DIRECTORY",
                 "The file that was specified as a target is a directory, and the caller "
                 "specified that it could be anything but a directory."),
    0xC00000BB: ("STATUS_NOT_SUPPORTED", "The request is not supported."),
    0xC00000E5: ("STATUS_INTERNAL_ERROR", "An internal error occurred."),
    0xC00000FD: ("STATUS_STACK_OVERFLOW", "A new guard page for the stack cannot be created."),
    0xC0000103: ("STATUS_NOT_A_DIRECTORY", "A requested opened file is not a directory."),
    0xC0000120: ("STATUS_CANCELLED", "The I/O request was canceled."),
    0xC0000135: ("STATUS_DLL_NOT_FOUND",
                 "{Unable To Locate Component} This application has failed to start because "
                 "%hs was not found. Reinstalling the application might fix this problem."),
    0xC0000185: ("STATUS_IO_DEVICE_ERROR", "The I/O device reported an I/O error."),
    0xC0000225: ("STATUS_NOT_FOUND", "The object was not found."),
    0xC0000374: ("STATUS_HEAP_CORRUPTION", "A heap has been corrupted."),
    0xC0000409: ("STATUS_STACK_BUFFER_OVERRUN",
                 "The system detected an overrun of a stack-based buffer in this application. "
                 "This overrun could potentially allow a malicious user to gain control of "
                 "this application."),
    0xC0000420: ("STATUS_ASSERTION_FAILURE", "An assertion failure has occurred."),
}

WIN32_TEXT: dict[int, str] = {
    0: "The operation completed successfully.",
    1: "Incorrect function.",
    2: "The system cannot find the file specified.",
    3: "The system cannot find the path specified.",
    4: "The system cannot open the file.",
    5: "Access is denied.",
    6: "The handle is invalid.",
    8: "Not enough memory resources are available to process this command.",
    13: "The data is invalid.",
    14: "Not enough memory resources are available to complete this operation.",
    21: "The device is not ready.",
    31: "A device attached to the system is not functioning.",
    32: "The process cannot access the file because it is being used by another process.",
    50: "The request is not supported.",
    87: "The parameter is incorrect.",
    109: "The pipe has been ended.",
    112: "There is not enough space on the disk.",
    120: "This function is not supported on this system.",
    122: "The data area passed to a system call is too small.",
    123: "The filename, directory name, or volume label syntax is incorrect.",
    126: "The specified module could not be found.",
    127: "The specified procedure could not be found.",
    183: "Cannot create a file when that file already exists.",
    234: "More data is available.",
    258: "The wait operation timed out.",
    259: "No more data is available.",
    487: "Attempt to access invalid address.",
    995: "The I/O operation has been aborted because of either a thread exit or an "
         "application request.",
    997: "Overlapped I/O operation is in progress.",
    998: "Invalid access to memory location.",
    1168: "Element not found.",
    1314: "A required privilege is not held by the client.",
    1460: "This operation returned because the timeout period expired.",
}

_FACILITY_WIN32 = 0x80070000


def describe(value: int, flags: int = 0) -> str:
    """kd's ``Error code:`` line for ``value``."""
    value &= 0xFFFFFFFF
    if not flags & 1:
        if value < 0x10000:
            return f"Error code: (Win32) {value:#x} ({value}) - {WIN32_TEXT.get(value, _UNKNOWN)}"
        if value & 0xFFFF0000 == _FACILITY_WIN32:
            text = WIN32_TEXT.get(value & 0xFFFF, _UNKNOWN)
            return f"Error code: (HRESULT) {value:#x} ({value}) - {text}"
    name, text = NTSTATUS_TEXT.get(value, ("", ""))
    if text:
        return f"Error code: (NTSTATUS) {value:#x} ({value}) - {text}"
    if name:
        return f"Error code: (NTSTATUS) {value:#x} - {name}"
    return f"Error code: (NTSTATUS) {value:#x} ({value}) - {_UNKNOWN}"


@bang("error", usage="!error Value [Flags]", needs_halt=False)
def error(target: Target, args: str) -> None:
    """Show the message for a Win32 error, HRESULT or NTSTATUS (Flags 1: NTSTATUS)."""
    words = args.split()
    if not words or len(words) > 2:
        raise ExtensionFailed("Usage: !error Value [Flags]")
    value = target.evaluate(words[0])
    flags = target.evaluate(words[1]) if len(words) > 1 else 0
    line = describe(value, flags)
    target.out(line)
    target.row(value=value & 0xFFFFFFFF, text=line.split(" - ", 1)[1])
