"""A function's argument types from its LF_PROCEDURE and LF_ARGLIST: the simulated
target's PDBs against their own S_LOCAL parameter records, C's ``...`` and ``(void)``,
addresses that are no procedure, and a damaged argument list."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kdcon.render.symbols import describe
from kdcon.symbols.errors import SymbolFileError
from kdcon.symbols.model import SymbolKind, SymbolRecord
from kdcon.symbols.pdb.locals import procedure_locals
from kdcon.symbols.pdb.pdbfile import open_pdb
from kdcon.symbols.pdb.prototypes import Prototypes
from kdcon.symbols.pdb.tpi import TypeTable
from kdcon.symbols.session import SymbolMatch

IMAGES = Path(__file__).resolve().parents[2] / "tools" / "simtarget" / "images"
KERNEL = IMAGES / "ntoskrnl.pdb"
CHECKED = IMAGES / "checked" / "trackdemo.pdb"


@pytest.fixture(scope="module")
def kernel():
    with open_pdb(str(KERNEL)) as pdb:
        yield pdb


def _rva(pdb, name: str) -> int:
    return next(r.rva for r in pdb.procedures() if r.name == name)


def _shown(pdb, name: str) -> str:
    arguments = Prototypes(pdb).arguments(_rva(pdb, name))
    record = SymbolRecord(name, 0, SymbolKind.FUNCTION)
    match = SymbolMatch(None, record, 0, None, tuple(arguments) if arguments is not None else None)
    return describe(match)


def test_every_argument_type_is_the_type_of_the_parameter_the_unoptimised_build_records():
    # /Od keeps an S_LOCAL for every parameter: the same types, in the same order.
    with open_pdb(str(CHECKED)) as pdb:
        prototypes = Prototypes(pdb)
        compared = 0
        for record in pdb.procedures():
            arguments = prototypes.arguments(record.rva)
            parameters = [v.type_index for v in procedure_locals(pdb, record.rva).variables
                          if v.is_param]
            assert arguments is not None, record.name
            assert [a.index for a in arguments] == parameters, record.name
            compared += bool(parameters)
        assert compared > 20


def test_a_kernel_routine_shows_its_argument_types_as_c():
    with open_pdb(str(KERNEL)) as pdb:
        assert _shown(pdb, "KeSetEvent") == "(struct _KEVENT *, long, unsigned char)"
        assert _shown(pdb, "IoDeleteDevice") == "(struct _DEVICE_OBJECT *)"


def test_no_arguments_is_void_and_a_variable_list_ends_in_an_ellipsis(kernel):
    assert _shown(kernel, "KeGetCurrentIrql") == "(void)"
    assert _shown(kernel, "DbgPrint") == "(char *, ...)"


def test_an_address_inside_a_procedure_or_outside_every_one_has_no_prototype(kernel):
    prototypes = Prototypes(kernel)
    start = _rva(kernel, "KeSetEvent")
    assert prototypes.arguments(start) is not None
    assert prototypes.arguments(start + 1) is None
    assert prototypes.arguments(0x7FFFFFF0) is None


def test_a_type_that_is_no_procedure_has_no_argument_list(kernel):
    structure = kernel.types.find("_KEVENT")
    assert kernel.types.arguments(structure.index) is None
    assert kernel.types.arguments(0x22) is None
    assert kernel.types.arguments(kernel.types.ti_end) is None


def test_an_argument_list_longer_than_its_record_is_a_damaged_file(kernel):
    ti = Prototypes(kernel).type_index(_rva(kernel, "KeSetEvent"))
    tpi = bytearray(kernel.msf.stream(2))
    table = TypeTable(bytes(tpi), small=False)
    leaf, at, _ = table._record(ti)
    arglist = struct.unpack_from("<I", tpi, at + 8)[0]
    _, list_at, _ = table._record(arglist)
    struct.pack_into("<I", tpi, list_at, 0x100)
    with pytest.raises(SymbolFileError):
        TypeTable(bytes(tpi), small=False).arguments(ti)


def test_the_session_gives_x_and_ln_the_arguments_and_plain_lookups_none():
    from kdcon.symbols.pe import read_image
    from kdcon.symbols.session import SymbolSession

    image = read_image(str(IMAGES / "ntoskrnl.exe"), "ntoskrnl.exe")
    session = SymbolSession(str(IMAGES))
    session.add_module("ntoskrnl.exe", 0xFFFFF80001000000, image.identity.size_of_image, image=image)
    found = session.match("nt!KeSetEvent")
    assert [a.index for a in found[0].arguments] == \
        [a.index for a in Prototypes(session.module("nt").pdb).arguments(found[0].record.rva)]
    assert len(found[0].arguments) == 3
    address = found[0].address
    assert session.near(address).exact[0].arguments == found[0].arguments
    assert session.near(address, typed=False).exact[0].arguments is None
    assert session.match("nt!KeSetEvent", typed=False)[0].arguments is None
    assert session.address_of("nt!KeSetEvent") == address
    assert session.name_for(address + 1) == "nt!KeSetEvent+0x1"
