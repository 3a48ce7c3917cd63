"""!dbgprint: the kernel's DbgPrint buffer, oldest message first.

    !dbgprint

The kernel copies every DbgPrint that passes the component filter into a circular
buffer before it sends it to the debugger (4 KB on a free build): ``nt!KdPrintCircular
BufferPtr`` and ``nt!KdPrintBufferSize`` name the buffer in use, ``nt!KdPrintWritePointer``
is where the next message goes and ``nt!KdPrintRolloverCount`` how often writing wrapped
to the start. Once it has wrapped, the text from the write pointer to the end is the
oldest and is shown first. The buffer is read from target memory, so it shows what the
target printed while no debugger listened, or what scrolled away. Messages the filter
dropped never reach it. Where the symbols lack a variable, the debugger data block's
fields for it are used (KdPrintCircularBuffer and KdPrintCircularBufferEnd on kernels
that predate the resizable buffer).
"""

from __future__ import annotations

from kdcon.api import ExtensionFailed, MemoryReadError, Target, bang, printable, require

from ._kdata import KDBG, kernel_global

require("1.0")

_LARGEST_BUFFER = 0x1000000          # kdbgctrl -sdb's limit; anything larger is not a size


def _optional(target: Target, name: str) -> int | None:
    try:
        return kernel_global(target, name)
    except ExtensionFailed:
        return None


def _buffer(target: Target) -> tuple[int, int]:
    """(start, size) of the buffer in use."""
    pointer = _optional(target, "KdPrintCircularBufferPtr")
    size_at = _optional(target, "KdPrintBufferSize")
    if pointer is not None and size_at is not None:
        return target.pointer(pointer), target.u32(size_at)
    block = target.symbol("nt!KdDebuggerDataBlock")
    if block is None:
        raise ExtensionFailed("The DbgPrint buffer is not known: are the kernel's symbols "
                              "loaded (.reload /f nt)?")
    start = target.u64(block + KDBG["KdPrintCircularBuffer"])
    end = target.u64(block + KDBG["KdPrintCircularBuffer"] + 8)    # KdPrintCircularBufferEnd
    return start, end - start


@bang("dbgprint", usage="!dbgprint")
def dbgprint(target: Target, args: str) -> None:
    """Show the kernel's DbgPrint buffer: the messages it printed, oldest first."""
    if args.strip():
        raise ExtensionFailed("Usage: !dbgprint (it takes no arguments)")
    start, size = _buffer(target)
    if not start or not 0 < size <= _LARGEST_BUFFER:
        raise ExtensionFailed(f"The DbgPrint buffer at {start:#x} has size {size:#x}: not "
                              f"a buffer the kernel set up")
    write = target.pointer(kernel_global(target, "KdPrintWritePointer"))
    rollovers = target.u32(kernel_global(target, "KdPrintRolloverCount"))
    if not start <= write <= start + size:
        raise ExtensionFailed(f"KdPrintWritePointer {write:#x} is outside the buffer "
                              f"{start:#x} - {start + size:#x}")
    try:
        data = target.read_exact(start, size)
    except MemoryReadError as exc:
        raise ExtensionFailed(f"The DbgPrint buffer could not be read: {exc}") from None
    offset = write - start
    text = (data[offset:] + data[:offset]) if rollovers else data[:offset]
    text = text.replace(b"\0", b"")
    target.row(buffer=start, size=size, write_offset=offset, rollovers=rollovers,
               text=text.decode("latin-1"))
    if not text:
        target.out("The DbgPrint buffer is empty")
        return
    shown = printable(text)
    target.write(shown if shown.endswith("\n") else shown + "\n")
