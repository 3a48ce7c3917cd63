"""The narrow ``Target``: all that commands and extensions may do to the target.

What it does: memory (virtual and physical, raw and typed: ``u8``..``u64``,
pointers of the target's size, ANSI/Unicode/UNICODE_STRING strings), registers,
MASM evaluation, symbols both ways, types and field offsets from the PDBs (for a
kernel without its PDB, from the built-in layout of its Windows build), the module
list, output, cancellation, and running another command. Reads go through the
session's per-stop cache, so a page is never fetched twice while halted;
breakpoint bytes never show (the target hides them, and a debugger's own table is
the truth).
What it does not do: reach the link, the connection or the session's internals:
extensions get this object and nothing else.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import KdconError
from .typed import TypedView, containing_record, typed, walk_list

if TYPE_CHECKING:
    from .console import Console

__all__ = ["Target", "MemoryReadError", "Cancelled", "CANCELLED", "CommandOutput"]


# The one line that ends a command Ctrl+C stopped while the target was halted.
CANCELLED = "The command was cancelled (Ctrl+C)."


class Cancelled(KdconError):
    """The user cancelled a long command (Ctrl+C)."""


class MemoryReadError(MemoryError):
    """Target memory that could not be read."""

    def __init__(self, address: int, size: int, got: int = 0) -> None:
        self.address = address
        self.size = size
        super().__init__(f"Memory access error at {address:#x} ({got} of {size} bytes readable)")


class Target:
    """What a command or an extension sees of the debugged machine."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._session = console.session
        self.cancel_event = threading.Event()

    # -- facts ----------------------------------------------------------------------------

    @property
    def pointer_size(self) -> int:
        return self._session.pointer_size

    @property
    def halted(self) -> bool:
        return self._session.halted

    # -- memory -----------------------------------------------------------------------------

    def read(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes (fewer where the memory stops being readable)."""
        return self._session.read_virtual(address, size)

    def read_exact(self, address: int, size: int) -> bytes:
        data = self.read(address, size)
        if len(data) < size:
            raise MemoryReadError(address, size, len(data))
        return data

    def write(self, address: int, data: bytes) -> int:
        return self._session.write_virtual(address, data)

    def read_physical(self, address: int, size: int) -> bytes:
        return self._session.read_physical(address, size)

    def write_physical(self, address: int, data: bytes) -> int:
        return self._session.write_physical(address, data)

    def search(self, start: int, length: int, pattern: bytes) -> int | None:
        """The first address in [start, start+length) where ``pattern`` begins, found by
        the target itself (DbgKdSearchMemoryApi): only the answer crosses the wire, so
        a search of megabytes costs one round trip, not the megabytes."""
        session = self._session
        session.require_halted()
        if not pattern or length <= 0:
            return None
        return session.host.search_memory(start, length, pattern)

    def u8(self, address: int) -> int:
        return self.read_exact(address, 1)[0]

    def u16(self, address: int) -> int:
        return struct.unpack("<H", self.read_exact(address, 2))[0]

    def u32(self, address: int) -> int:
        return struct.unpack("<I", self.read_exact(address, 4))[0]

    def u64(self, address: int) -> int:
        return struct.unpack("<Q", self.read_exact(address, 8))[0]

    def pointer(self, address: int) -> int:
        return self.u64(address) if self.pointer_size == 8 else self.u32(address)

    def ansi_string(self, address: int, limit: int = 0x1000) -> str:
        data = self.read(address, limit)
        return data.split(b"\0", 1)[0].decode("latin-1")

    def unicode_string(self, address: int, limit: int = 0x1000) -> str:
        data = self.read(address, limit * 2)
        for index in range(0, len(data) - 1, 2):
            if data[index: index + 2] == b"\0\0":
                data = data[:index]
                break
        return data[: len(data) // 2 * 2].decode("utf-16-le", "replace")

    def counted_unicode_string(self, address: int) -> str:
        """A UNICODE_STRING at ``address`` (Length, MaximumLength, Buffer)."""
        raw = self.read_exact(address, 16 if self.pointer_size == 8 else 8)
        length = struct.unpack_from("<H", raw)[0]
        buffer = struct.unpack_from("<Q", raw, 8)[0] if self.pointer_size == 8 else \
            struct.unpack_from("<I", raw, 4)[0]
        if not buffer or not length:
            return ""
        return self.read_exact(buffer, min(length, 0xFFFE)).decode("utf-16-le", "replace")

    # -- registers and expressions ---------------------------------------------------------

    def register(self, name: str) -> int:
        return self._session.registers.get(name)

    def set_register(self, name: str, value: int) -> None:
        self._session.registers.set(name, value)

    def evaluate(self, expression: str) -> int:
        from .expr import evaluate

        return evaluate(expression, self._console.eval_context,
                        radix=self._console.settings.radix)

    # -- symbols and types --------------------------------------------------------------------

    def symbol(self, name: str) -> int | None:
        """The address of ``module!name`` (or a bare name), None if unknown."""
        return self._console.eval_context.symbol(name)

    def name_for(self, address: int) -> str | None:
        """``module!name+0xoff`` for ``address``."""
        return self._console.symbolizer(address)

    def format_address(self, address: int) -> str:
        return self._console.format_address(address)

    def find_type(self, name: str) -> Any:
        """``mod!Type`` from the PDBs; a kernel type they do not give comes from the
        built-in layout of the kernel's build (``type_layout`` names it)."""
        return self._session.find_type(name)

    def type_layout(self, name: str) -> str | None:
        """The built-in layout ``find_type`` reads ``name`` from ("Windows 7 SP1 x64
        (7601)"), None when a PDB gives the type or nothing does."""
        return self._session.type_layout(name)

    @property
    def builtin_layout(self) -> str | None:
        """The built-in layout standing in for the kernel's PDB ("Windows 7 SP1 x64"),
        None while the kernel has its PDB types or no layout fits its build."""
        table = self._session.builtin_types()
        return table.name if table is not None else None

    def missing_type_message(self, name: str) -> str:
        """The one line that says why ``name`` has no type and what to do."""
        return self._session.missing_type_message(name)

    def field_offset(self, type_name: str, field_path: str) -> int | None:
        return self._session.field_offset(type_name, field_path)

    def modules(self) -> list[Any]:
        return self._session.symbols.modules()

    def typed(self, address: int, type_name: str) -> TypedView:
        """A view of the ``module!Type`` structure at ``address``: ``.Field`` reads it."""
        return typed(self, address, type_name)

    def containing_record(self, address: int, type_name: str, field: str) -> TypedView:
        return containing_record(self, address, type_name, field)

    def walk_list(self, head: int, type_name: str, field: str, *,
                  limit: int = 100000) -> Iterator[TypedView]:
        """The ``type_name`` structures chained through their LIST_ENTRY ``field``."""
        return walk_list(self, head, type_name, field, limit=limit)

    def list_entries(self, head: int, *, limit: int = 100000) -> Iterator[int]:
        """The addresses of the LIST_ENTRYs chained from ``head`` (excluding it), each
        once: a list that loops back to an entry other than ``head`` (a corrupt or
        hostile target's) ends where it would go round again."""
        entry = self.pointer(head)
        seen: set[int] = set()
        while entry != head and entry and entry not in seen and len(seen) < limit:
            yield entry
            seen.add(entry)
            entry = self.pointer(entry)

    # -- output and control ---------------------------------------------------------------------

    def out(self, text: str = "") -> None:
        self._console.output.line(text)

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled(CANCELLED)

    def run(self, command: str) -> CommandOutput:
        """Run a console command: what it printed, with ``.ok`` and its ``.rows``."""
        console = self._console
        output = console.output
        first = len(console.results)
        outer_rows = output.rows
        if outer_rows is None:
            output.rows = []          # the nested commands keep their rows
        output.begin_capture()
        console.inner_runs += 1
        try:
            ok = console.execute(command, nested=True)
        finally:
            console.inner_runs -= 1
            text = output.end_capture()
            output.rows = outer_rows
        rows = [row for result in console.results[first:] for row in (result.rows or ())]
        return CommandOutput(text, ok=ok, rows=rows)


class CommandOutput(str):
    """What ``Target.run`` returns: the command's text, whether it succeeded, its rows."""

    ok: bool
    rows: list[dict[str, Any]]

    def __new__(cls, text: str, *, ok: bool = True,
                rows: list[dict[str, Any]] | None = None) -> CommandOutput:
        self = super().__new__(cls, text)
        self.ok = ok
        self.rows = list(rows or ())
        return self
