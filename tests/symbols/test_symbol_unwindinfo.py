"""UNWIND_INFO decoding: one decoder for image files, images in memory and the console's walker."""

from __future__ import annotations

import pytest

from kdcon.pdata import FunctionTable, UnwindError
from kdcon.pdata import parse_unwind_info as console_parse
from kdcon.symbols.pe import read_image
from kdcon.symbols.pewriter import ImageSpec, build_image
from kdcon.symbols.unwindinfo import (UNW_FLAG_CHAININFO, UWOP_ALLOC_LARGE, UWOP_PUSH_NONVOL,
                                      UWOP_SAVE_NONVOL, RuntimeFunction, UnwindDataError,
                                      parse_unwind_info, unwind_info_size)

# v1, EHANDLER, prolog 9: push rbx (1); sub rsp, 0x100 (ALLOC_LARGE, 2 slots); mov [rsp+0x20], rsi
# (SAVE_NONVOL, 2 slots); five slots, so one pad slot; then the handler RVA.
HANDLED = bytes([0x09, 9, 5, 0,
                 9, 0x64, 0x04, 0x00,     # SAVE_NONVOL rsi at 4 * 8
                 8, 0x01, 0x20, 0x00,     # ALLOC_LARGE 0x20 * 8
                 1, 0x30,                 # PUSH_NONVOL rbx
                 0, 0,                    # pad
                 0x78, 0x56, 0x34, 0x12])
# v1, CHAININFO, no codes: the chained entry follows at once.
CHAINED = bytes([0x21, 0, 0, 0, 0x00, 0x10, 0, 0, 0x40, 0x10, 0, 0, 0x80, 0x11, 0, 0])


def test_codes_take_their_slots_and_the_handler_follows_the_padded_array():
    info = parse_unwind_info(HANDLED)
    assert [(c.offset, c.op, c.info, c.value) for c in info.codes] == [
        (9, UWOP_SAVE_NONVOL, 6, 0x20), (8, UWOP_ALLOC_LARGE, 0, 0x100), (1, UWOP_PUSH_NONVOL, 3, 0)]
    assert (info.version, info.prolog_size, info.handler, info.chained) == (1, 9, 0x12345678, None)
    assert unwind_info_size(HANDLED) == 16 and unwind_info_size(HANDLED, handler=True) == 20


def test_trailing_bytes_change_nothing():
    assert parse_unwind_info(HANDLED + b"\xcc" * 9) == parse_unwind_info(HANDLED)
    assert parse_unwind_info(CHAINED + b"\xcc" * 9) == parse_unwind_info(CHAINED)


def test_every_prefix_cut_before_the_codes_or_the_chain_is_refused():
    for cut in range(len(CHAINED)):
        with pytest.raises(UnwindDataError, match="cut short"):
            parse_unwind_info(CHAINED[:cut])
    for cut in range(16):
        with pytest.raises(UnwindDataError, match="cut short"):
            parse_unwind_info(HANDLED[:cut])
    assert parse_unwind_info(HANDLED[:16]).handler is None     # the handler is optional to a walker


def test_a_chained_entry_is_rvas_or_addresses_by_the_base_given():
    assert parse_unwind_info(CHAINED).chained == RuntimeFunction(0x1000, 0x1040, 0x1180)
    info = parse_unwind_info(CHAINED, 0xFFFFF80000000000)
    assert info.flags == UNW_FLAG_CHAININFO
    assert 0xFFFFF80000001020 in info.chained


def test_the_console_and_the_image_reader_decode_alike():
    image_bytes = build_image(ImageSpec(text_size=0x200, runtime_functions=[(0x1000, 0x1040, 0x1180)],
                                        unwind_blobs={0x180: HANDLED}))
    image = read_image(image_bytes, "drv.sys")
    from_image = image.unwind_info(image.runtime_function_for(0x1010))
    table = FunctionTable.from_image(image_bytes, 0x10000)
    from_table = table.unwind_info(table.lookup(0x11010).unwind_info)
    assert from_image.codes == from_table.codes == parse_unwind_info(HANDLED).codes
    assert from_image.handler == 0x12345678


def test_the_console_reports_bad_data_as_its_own_error():
    with pytest.raises(UnwindError, match="version 3"):
        console_parse(bytes([0x03, 0, 0, 0]), 0)
