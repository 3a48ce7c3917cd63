"""Bug check codes: names, what each means and what its four parameters hold.

What it does: ``BUG_CODES`` maps a code to a ``BugCode``: its name, a short description,
the meaning of each parameter, and which parameter holds the faulting instruction,
the memory referenced, the access kind, the IRQL or an exception code, so that
``!analyze`` can find the faulting code without knowing each code itself. Codes whose
first parameter is a subtype (BAD_POOL_CALLER, BAD_POOL_HEADER) describe the other
three per subtype. ``EXCEPTION_NAMES`` names the exception codes kd announces.
What it does not do: analyse anything.

The facts are Microsoft's public bug check reference (learn.microsoft.com,
"Bug check code reference"), said here in our own words; the names are the
constants of bugcodes.h.

Not an extension itself (the leading underscore keeps the loader away).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BugCode", "BUG_CODES", "EXCEPTION_NAMES", "describe", "subtype", "access_kind"]


@dataclass(frozen=True)
class BugCode:
    """One bug check code: what it means, and where its parameters point."""

    name: str
    about: tuple[str, ...]
    params: tuple[str, str, str, str] = ("", "", "", "")
    ip: int = 0            # parameter number (1-4) of the faulting instruction's address
    memory: int = 0        # ... of the memory address referenced
    access: int = 0        # ... of the kind of access (read/write/execute)
    irql: int = 0          # ... of the IRQL at the time
    exception: int = 0     # ... of the exception code
    write_bit: int = 0x1   # the access parameter's bit for a write
    execute_bit: int = 0x8  # ... and for an execute
    # Parameter 1 as a subtype: {value: (parameter 2, 3, 4, what happened)}.
    subtypes: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)


_IRQL_FAULT = ("Code touched memory that was pageable (or not valid at all) while the",
               "processor ran at an IRQL too high for the memory manager to bring a page",
               "in: DISPATCH_LEVEL or above. Bad pointers cause this more often than",
               "pageable memory does.")
_ACCESS = "access: bit 0 set = write, clear = read; bit 3 set = execute"

_BAD_POOL_CALLER = {
    0x00: ("0", "pool type", "pool tag", "a zero-byte allocation was requested"),
    0x01: ("address of the pool header", "first part of the header", "0",
           "a pool header is damaged"),
    0x02: ("address of the pool header", "first part of the header", "0",
           "a pool header is damaged"),
    0x04: ("address of the pool header", "first part of the header", "0",
           "a pool header is damaged"),
    0x06: ("reserved", "address of the pool header", "the header's contents",
           "a block that was already free was freed again"),
    0x07: ("reserved", "the pool header's contents", "address of the block being freed",
           "a block that was already free was freed again"),
    0x08: ("IRQL at the time", "pool type", "size asked for, in bytes",
           "pool was allocated at an IRQL where that pool type cannot be"),
    0x09: ("IRQL at the time", "pool type", "address of the block",
           "pool was freed at an IRQL where that pool type cannot be"),
    0x0A: ("address of the block", "the tag it was allocated with",
           "the tag the free used", "a block was freed with another tag than its own"),
    0x40: ("address being freed", "start of system address space", "0",
           "a user-mode address was freed to kernel pool"),
    0x41: ("address being freed", "its physical page", "highest physical page",
           "a nonpaged pool address that is not allocated was freed"),
    0x42: ("address being freed", "0", "0", "an address that was never pool was freed"),
    0x43: ("address being freed", "0", "0", "an address that was never pool was freed"),
    0x44: ("address being freed", "reserved", "0",
           "a nonpaged pool address that is not allocated was freed"),
    0x46: ("address being freed", "0", "0", "an address that is not pool was freed"),
    0x47: ("address being freed", "its physical page", "highest physical page",
           "a nonpaged pool address that is not allocated was freed"),
    0x48: ("address being freed", "reserved", "reserved",
           "a paged pool address that is not allocated was freed"),
    0x50: ("address being freed", "its page offset in paged pool", "paged pool size",
           "a paged pool address that is not allocated was freed"),
    0x60: ("address being freed", "0", "0",
           "MmFreeContiguousMemory got an address it never gave out"),
    0x99: ("address being freed", "0", "0",
           "an invalid address was freed, or the block's header is damaged"),
    0x9A: ("pool type", "bytes asked for", "pool tag",
           "an allocation asked for must-succeed pool, which no longer exists"),
    0x9B: ("pool type", "bytes asked for", "caller's address",
           "an allocation used the tag 0, which cannot be tracked"),
    0x9C: ("pool type", "bytes asked for", "caller's address",
           "an allocation used the reserved tag 'BIG'"),
    0x9D: ("the tag used", "pool type", "caller's address",
           "an allocation used a tag with no letter or digit in it"),
}

_BAD_POOL_HEADER = {
    0x2: ("the pool entry checked", "the block's size", "0",
          "the special pool fill pattern was overwritten by the block's owner"),
    0x3: ("the pool entry checked", "its free list Flink read back",
          "its free list Blink read back", "a pool free list is damaged"),
    0x5: ("one pool entry", "reserved", "the next pool entry",
          "two neighbouring pool headers contradict each other"),
    0x6: ("the entry miscomputed", "reserved", "the bad entry",
          "a pool header's previous size is too large"),
    0x7: ("0", "reserved", "the bad pool entry", "a pool header's block size is damaged"),
    0x8: ("0", "reserved", "the bad pool entry", "a pool header's block size is zero"),
    0x9: ("the entry miscomputed", "reserved", "the bad entry",
          "a pool header's block size is too large"),
    0xA: ("the entry expected", "reserved", "the page that should hold it",
          "a pool header's block size is damaged"),
    0x20: ("the entry expected", "the next pool entry", "reserved",
           "a pool header's block size is damaged"),
    0x21: ("the block being freed", "bytes allocated for it", "the damaged value after it",
           "the bytes after a block were overwritten: its user overran it"),
    0x22: ("the address being freed", "reserved", "reserved",
           "a freed address has no tracking entry: freed twice or never allocated"),
}
for _code in (0xD, 0xE, 0xF, 0x23, 0x24, 0x25):
    _BAD_POOL_HEADER[_code] = ("reserved", "reserved", "reserved",
                               "a free block's header changed after it was freed, usually "
                               "because the block before it was overrun")

BUG_CODES: dict[int, BugCode] = {
    0x01: BugCode("APC_INDEX_MISMATCH", (
        "A thread left a system call or worker routine with its APC state unbalanced:",
        "a driver disabled APCs and did not enable them again, or the reverse."),
        ("address of the system call or worker routine", "the thread's ApcStateIndex",
         "the thread's combined APC disable count", "0 = system call, 1 = worker routine")),
    0x09: BugCode("IRQL_NOT_GREATER_OR_EQUAL", (
        "The IRQL was raised to a level below the current one (checked builds).",)),
    0x0A: BugCode("IRQL_NOT_LESS_OR_EQUAL", _IRQL_FAULT,
                  ("memory referenced", "IRQL at the time", _ACCESS,
                   "address of the instruction that referenced memory"),
                  ip=4, memory=1, access=3, irql=2),
    0x0F: BugCode("SPIN_LOCK_ALREADY_OWNED", (
        "A thread tried to acquire a spin lock it already holds.",),
        ("address of the spin lock", "reserved", "reserved", "reserved")),
    0x19: BugCode("BAD_POOL_HEADER", (
        "A pool header was found damaged: the pool was corrupted before this request,",
        "often by the owner of a neighbouring block writing past its end."),
        ("type of damage (see below)", "", "", ""), subtypes=_BAD_POOL_HEADER),
    0x1A: BugCode("MEMORY_MANAGEMENT", (
        "The memory manager found its own data inconsistent.",),
        ("type of error", "depends on the type", "depends on the type",
         "depends on the type")),
    0x1E: BugCode("KMODE_EXCEPTION_NOT_HANDLED", (
        "Kernel-mode code raised an exception that no handler caught.",),
        ("the exception code", "address of the instruction where it happened",
         "first parameter of the exception", "second parameter of the exception"),
        ip=2, exception=1),
    0x35: BugCode("NO_MORE_IRP_STACK_LOCATIONS", (
        "A driver passed an IRP on (IoCallDriver) when the IRP had no stack location",
        "left for the next driver."),
        ("address of the IRP", "reserved", "reserved", "reserved")),
    0x3B: BugCode("SYSTEM_SERVICE_EXCEPTION", (
        "An exception happened while a system service ran on behalf of user mode.",),
        ("the exception code", "address of the instruction where it happened",
         "address of the context record", "0"), ip=2, exception=1),
    0x50: BugCode("PAGE_FAULT_IN_NONPAGED_AREA", (
        "Memory that must always be present was referenced and no page holds it:",
        "a bad pointer, or memory used after it was freed."),
        ("memory referenced",
         "access: 0 = read, 1 = write (Windows 10: 2 = write, 10 = execute)",
         "address of the instruction that referenced memory, if known",
         "type of page fault (Windows 10 and later)"), ip=3, memory=1, access=2,
        write_bit=0x2, execute_bit=0x10),
    0x7E: BugCode("SYSTEM_THREAD_EXCEPTION_NOT_HANDLED", (
        "A system thread raised an exception that no handler caught.",),
        ("the exception code", "address of the instruction where it happened",
         "address of the exception record", "address of the context record"),
        ip=2, exception=1),
    0x7F: BugCode("UNEXPECTED_KERNEL_MODE_TRAP", (
        "The processor raised a trap the kernel does not allow in kernel mode, or a",
        "double fault (8), usually a kernel stack overflow."),
        ("the trap number", "reserved", "reserved", "reserved")),
    0x8E: BugCode("KERNEL_MODE_EXCEPTION_NOT_HANDLED", (
        "Kernel-mode code raised an exception that no handler caught.",),
        ("the exception code", "address of the instruction where it happened",
         "address of the trap frame", "reserved"), ip=2, exception=1),
    0x9F: BugCode("DRIVER_POWER_STATE_FAILURE", (
        "A driver did not complete a power request in time, or handled it wrongly.",),
        ("type of failure", "depends on the type (3: the physical device object)",
         "depends on the type (3: the functional device object)",
         "depends on the type (3: the blocked IRP)")),
    0xBE: BugCode("ATTEMPTED_WRITE_TO_READONLY_MEMORY", (
        "A driver wrote to read-only memory.",),
        ("address written", "the page table entry", "reserved", "reserved"), memory=1),
    0xC2: BugCode("BAD_POOL_CALLER", (
        "The current thread made a bad pool request: a double free, a free or",
        "allocation at the wrong IRQL, a bad address or tag."),
        ("type of violation (see below)", "", "", ""), subtypes=_BAD_POOL_CALLER),
    0xC4: BugCode("DRIVER_VERIFIER_DETECTED_VIOLATION", (
        "Driver Verifier caught a driver breaking one of its rules.",),
        ("type of violation", "depends on the type", "depends on the type",
         "depends on the type")),
    0xC5: BugCode("DRIVER_CORRUPTED_EXPOOL", (
        "The kernel touched invalid memory at DISPATCH_LEVEL or above while walking",
        "the pool: a driver has corrupted the pool."),
        ("memory referenced", "IRQL at the time", _ACCESS,
         "address of the instruction that referenced memory"),
        ip=4, memory=1, access=3, irql=2),
    0xCE: BugCode("DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS", (
        "A driver unloaded before cancelling its timers, DPCs, worker threads, notify",
        "routines or callbacks, and one of them reached the memory it occupied."),
        ("memory referenced", _ACCESS, "address of the instruction that referenced memory",
         "reserved"),
        ip=3, memory=1, access=2),
    0xD1: BugCode("DRIVER_IRQL_NOT_LESS_OR_EQUAL", _IRQL_FAULT,
                  ("memory referenced", "IRQL at the time", _ACCESS,
                   "address of the instruction that referenced memory"),
                  ip=4, memory=1, access=3, irql=2),
    0xE2: BugCode("MANUALLY_INITIATED_CRASH", (
        "Someone crashed the machine on purpose: the kernel debugger's .crash, or a",
        "keyboard or NMI crash-dump request. No code is at fault.")),
    0xEF: BugCode("CRITICAL_PROCESS_DIED", (
        "A process the system cannot run without ended.",),
        ("the process object", "reserved", "reserved", "reserved")),
    0xFC: BugCode("ATTEMPTED_EXECUTE_OF_NOEXECUTE_MEMORY", (
        "Code jumped into memory that is not executable.",),
        ("address executed", "the page table entry", "reserved", "reserved"), memory=1),
    0x101: BugCode("CLOCK_WATCHDOG_TIMEOUT", (
        "A processor stopped taking clock interrupts for too long.",),
        ("the time-out, in clock ticks", "0", "address of the hung processor's PRCB",
         "0")),
    0x124: BugCode("WHEA_UNCORRECTABLE_ERROR", (
        "The hardware reported an error it could not correct.",),
        ("type of error source", "address of the WHEA error record", "reserved",
         "reserved")),
    0x133: BugCode("DPC_WATCHDOG_VIOLATION", (
        "Code ran at DISPATCH_LEVEL or above for too long.",),
        ("0 = one DPC ran too long, 1 = the processor stayed too long at that level",
         "depends on parameter 1", "depends on parameter 1", "depends on parameter 1")),
    0x139: BugCode("KERNEL_SECURITY_CHECK_FAILURE", (
        "The kernel found one of its critical data structures damaged (a LIST_ENTRY",
        "whose neighbours do not point back, a stack cookie, ...)."),
        ("type of damage (3 = a LIST_ENTRY)", "address of the trap frame",
         "address of the exception record", "reserved")),
}
# The _M forms (bit 28 set) mean the same as the codes they mark.
for _code in (0x7E, 0x8E):
    _base = BUG_CODES[_code]
    BUG_CODES[0x10000000 | _code] = BugCode(f"{_base.name}_M", _base.about, _base.params,
                                            ip=_base.ip, exception=_base.exception)

# The exception codes kd names (ntstatus.h), for 0x1E/0x7E and for stops that are not
# bug checks.
EXCEPTION_NAMES = {
    0x80000002: "Data misaligned", 0x80000003: "Break instruction exception",
    0x80000004: "Single step exception", 0xC0000005: "Access violation",
    0xC0000006: "In-page I/O error", 0xC000001D: "Illegal instruction",
    0xC0000025: "Cannot continue", 0xC000008E: "Floating-point division-by-zero",
    0xC0000090: "Floating-point invalid operation", 0xC0000094: "Integer divide-by-zero",
    0xC0000095: "Integer overflow", 0xC0000096: "Privileged instruction",
    0xC00000FD: "Stack overflow", 0xC0000409: "Security check failure or stack buffer overrun",
    0xC0000420: "Assertion failure", 0xC0000026: "Invalid disposition",
}


def describe(code: int) -> BugCode:
    """The entry for ``code``, or one that says it is not known here."""
    found = BUG_CODES.get(code)
    if found is not None:
        return found
    return BugCode(f"Unknown bugcheck code ({code:x})",
                   ("kdcon does not describe this code; Microsoft's bug check reference",
                    "does."))


def subtype(code: BugCode, p1: int) -> tuple[str, str, str, str] | None:
    """(parameter 2, 3, 4, what happened) for a code whose parameter 1 is a subtype."""
    return code.subtypes.get(p1) if code.subtypes else None


def access_kind(code: BugCode, params: tuple[int, ...]) -> str:
    """READ, WRITE or EXECUTE: what the access parameter of ``code`` says."""
    value = params[code.access - 1] if code.access else 0
    if value & code.execute_bit:
        return "EXECUTE"
    # Before Windows 10, PAGE_FAULT_IN_NONPAGED_AREA said a write with the value 1.
    if value & code.write_bit or (code.write_bit != 0x1 and value == 1):
        return "WRITE"
    return "READ"
