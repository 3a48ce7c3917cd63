"""What a stack walk reads: nothing of the code at a breakpoint on a function's first
byte, where no epilog can be running; the code at any other exact stop."""

from __future__ import annotations

import pytest

from kdcon.pdata import FunctionTable
from kdcon.unwind import unwind

from .unwind_image import BASE, FUNCTIONS, IMAGE_SIZE, Cpu, build_image, stub_for


@pytest.fixture(scope="module")
def image():
    return build_image()[0]


def _walk_from(image, name: str, steps_into: int):
    cpu = Cpu(image)
    stub = stub_for(name)
    cpu.start(stub)
    cpu.step()                                    # the stub's call
    for _ in range(steps_into):
        cpu.step()
    table = FunctionTable.from_image(image, BASE, mapped=True)
    reads: list[tuple[int, int]] = []

    def counting(address: int, size: int) -> bytes:
        reads.append((address, size))
        return cpu.read(address, size)

    frames = unwind(cpu.rip, cpu.rsp, cpu.registers()["rbp"], read=counting,
                    function_for=lambda a: table if BASE <= a < BASE + IMAGE_SIZE else None,
                    registers=cpu.registers(), max_frames=2)
    code_reads = [r for r in reads if BASE <= r[0] < BASE + IMAGE_SIZE]
    return cpu, stub, frames, code_reads


@pytest.mark.parametrize("name", ["push_alloc", "frame_pointer", "alloc_large"])
def test_a_stop_on_a_functions_first_byte_reads_no_code(image, name):
    cpu, stub, frames, code_reads = _walk_from(image, name, 0)
    assert cpu.rip == BASE + FUNCTIONS[name].rva
    assert frames[0].return_address == stub + 5
    assert code_reads == []


def test_a_stop_inside_a_function_reads_its_code_for_the_epilog_check(image):
    cpu, stub, frames, code_reads = _walk_from(image, "push_alloc", 1)
    assert frames[0].return_address == stub + 5
    assert code_reads == [(cpu.rip, 32)]


def test_a_chained_fragments_first_byte_is_still_checked_for_an_epilog(image):
    cold = FUNCTIONS["chained_cold"]
    cpu = Cpu(image)
    cpu.start(stub_for("chained_main"))
    while cpu.rip != BASE + cold.rva:
        cpu.step()
    table = FunctionTable.from_image(image, BASE, mapped=True)
    reads: list[tuple[int, int]] = []

    def counting(address: int, size: int) -> bytes:
        reads.append((address, size))
        return cpu.read(address, size)

    unwind(cpu.rip, cpu.rsp, 0, read=counting, registers=cpu.registers(),
           function_for=lambda a: table if BASE <= a < BASE + IMAGE_SIZE else None, max_frames=2)
    assert (cpu.rip, 32) in reads


def _memory_table(image, base=BASE):
    reads: list[tuple[int, int]] = []

    def read(address: int, size: int) -> bytes:
        reads.append((address, size))
        offset = address - base
        return image[offset:offset + size] if 0 <= offset < len(image) else b""

    return FunctionTable.from_memory(read, base), reads


def test_a_small_table_in_memory_is_read_whole_at_the_first_lookup(image):
    table, reads = _memory_table(image)
    reads.clear()
    whole = FunctionTable.from_image(image, BASE, mapped=True)
    names = list(FUNCTIONS)
    assert table.lookup(BASE + FUNCTIONS[names[0]].rva) == whole.lookup(BASE + FUNCTIONS[names[0]].rva)
    assert len(reads) == 1 and reads[0][1] == 12 * table.count
    reads.clear()
    for name in names:
        assert table.lookup(BASE + FUNCTIONS[name].rva) == whole.lookup(BASE + FUNCTIONS[name].rva)
    assert reads == []


def test_a_large_table_in_memory_is_probed(image):
    table, reads = _memory_table(image)
    table.count = 400          # as a table too large for one transfer would be
    reads.clear()
    table.lookup(BASE + FUNCTIONS["push_alloc"].rva)
    assert reads and all(size == 12 for _, size in reads)
