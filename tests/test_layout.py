"""The distribution maps the fixed top-level folders into one ``kdcon`` namespace."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", [
    "kdcon", "kdcon.protocol", "kdcon.protocol.transports", "kdcon.symbols",
    "kdcon.symbols.pdb", "kdcon.extensions", "kdcon.tools", "kdcon.tools.bench",
    "kdcon.tools.simtarget",
])
def test_every_layer_imports_under_the_kdcon_namespace(name):
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no docstring"


def test_protocol_and_symbols_do_not_import_the_console():
    import subprocess
    import sys
    code = ("import sys, kdcon.protocol, kdcon.symbols, kdcon.symbols.model, "
            "kdcon.protocol.errors, kdcon.symbols.errors; "
            "bad = [m for m in sys.modules if m in ('prompt_toolkit', 'kdcon.cli', 'kdcon.session')]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
