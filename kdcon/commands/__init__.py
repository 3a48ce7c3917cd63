"""The built-in commands, one module per family; importing this declares them all."""

from __future__ import annotations

from importlib import import_module

__all__ = ["FAMILIES"]

FAMILIES = ("meta", "execution", "breakpoints", "memory", "memory_edit", "registers", "stack",
            "disasm", "lookup", "types", "extensions", "scripts", "aliases", "logs", "workspace",
            "paging", "source", "processors", "formats", "crash")

for _family in FAMILIES:
    try:
        import_module(f"{__name__}.{_family}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_family}":
            raise
