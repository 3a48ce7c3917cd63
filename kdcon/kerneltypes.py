"""Kernel types for the session: the loaded symbol files first, and for a kernel type
they do not give (``nt`` has no PDB, or its PDB leaves the type out) the built-in layout
of the kernel's build (``layouts/``), one type at a time.

A mixin of ``Session``: it reads the session's ``symbols``, ``version``,
``pointer_size`` and ``debugger_data``. What it does not do: read target memory.
"""

from __future__ import annotations

from typing import Any

from .layouts import missing_message, table_for

__all__ = ["KernelTypes"]


class KernelTypes:
    """``find_type``, ``field_offset`` and the built-in layout fallback of a session."""

    def find_type(self, name: str) -> Any:
        """``mod!Type`` from the loaded symbol files; a kernel type they do not give (``nt``
        has no PDB, or its PDB leaves the type out) comes from the built-in layout of the
        kernel's build (layouts/)."""
        info = self.symbols.find_type(name)
        if info is None:
            table = self._kernel_layout(name)
            if table is not None:
                info = table.find(name.rpartition("!")[2])
        return info

    def type_layout(self, name: str) -> str | None:
        """The built-in layout ``find_type`` reads ``name`` from ("Windows 7 SP1 x64
        (7601)"), None when a symbol file gives the type or nothing does."""
        if self.symbols.find_type(name) is not None:
            return None
        table = self._kernel_layout(name)
        if table is None or table.find(name.rpartition("!")[2]) is None:
            return None
        return f"{table.name} ({self.version.MinorVersion})"

    def _kernel_layout(self, name: str) -> Any:
        if self.version is None or not self._kernel_type_name(name):
            return None
        return self._build_layout()

    def _build_layout(self) -> Any:
        """The built-in layout table of the kernel's build (None when there is none)."""
        return table_for(self.version.MinorVersion, self.pointer_size, self.debugger_data)

    def builtin_types(self) -> Any:
        """The built-in layout table standing in for the kernel's PDB, None while the
        kernel has PDB types (they always win) or its build has no table."""
        if self.version is None or self._kernel_has_types():
            return None
        return self._build_layout()

    def missing_type_message(self, name: str) -> str:
        """The one line for a type no symbol file and no built-in layout gives."""
        if self.version is None or not self._kernel_type_name(name) \
                or self._kernel_has_types():
            return f"Type {name} not found: are the module's symbols loaded?"
        return missing_message(name, self.version.MinorVersion, self.pointer_size)

    def _kernel_has_types(self) -> bool:
        kernel = self.symbols.module("nt")
        return kernel is not None and kernel.types is not None

    @staticmethod
    def _kernel_type_name(name: str) -> bool:
        return name.rpartition("!")[0].casefold() in ("", "nt")

    def field_offset(self, type_name: str, path: str) -> int | None:
        """Offset of ``path`` (``ApcState.Process``) in ``type_name`` from the PDBs, or
        from the built-in layout where the kernel has none (``find_type``)."""
        info = self.find_type(type_name)
        offset = 0
        for part in path.split("."):
            if info is None:
                return None
            while info.kind in ("modifier", "typedef") and info.type is not None:
                info = info.type
            field = next((f for f in info.fields if f.name == part), None)
            if field is None:
                return None
            offset += field.offset
            info = field.type
        return offset
