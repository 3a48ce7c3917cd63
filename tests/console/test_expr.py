"""The MASM evaluator gives WinDbg's values and WinDbg's error lines."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdcon.errors import CommandError
from kdcon.expr import (ExprError, evaluate, evaluate_prefix, format_evaluation,
                        wildcard_match)

MASK = (1 << 64) - 1
SIGN32 = 0xFFFFFFFF00000000


@dataclass
class FakeContext:
    """Symbols, registers and memory from dicts; remembers what it was asked."""

    symbols: dict[str, int] = field(default_factory=dict)
    registers: dict[str, int] = field(default_factory=dict)
    memory: dict[int, bytes] = field(default_factory=dict)
    physical: dict[int, bytes] = field(default_factory=dict)
    pointer_size: int = 8
    asked: list[str] = field(default_factory=list)

    def symbol(self, name):
        self.asked.append("sym:" + name)
        return self.symbols.get(name)

    def register(self, name):
        self.asked.append("reg:" + name)
        return self.registers.get(name)

    def read_virtual(self, address, size):
        return _read(self.memory, address, size)

    def read_physical(self, address, size):
        return _read(self.physical, address, size)


def _read(regions, address, size):
    for base, data in regions.items():
        if base <= address < base + len(data):
            return data[address - base:address - base + size]
    return b""


STACK = 0xFFFFF803_00010000
SYMBOLS = {
    "nt!KeBugCheckEx": 0xFFFFF803_1A2B3C40,
    "KeBugCheckEx": 0xFFFFF803_1A2B3C40,
    "trackdemo!Track_Close": 0xFFFFF803_40001230,
    "trackdemo!DriverEntry": 0xFFFFF803_40005000,
    "nt!_imp_Foo": 0x1000,
    "?Foo@@YAXXZ": 0x2000,
    "_Func@8": 0x3000,
    "foo!bar::baz": 0x4000,
    "nt!KiSystemCall64$filt$0": 0x5000,
    "nt!operator new": 0x6000,
    "abc": 0x7000,
    "dead": 0x8000,
    "nt": 0xFFFFF803_00000000,
    "cr0": 0x9000,
}
REGISTERS = {
    "rax": 0x11223344_55667788, "eax": 0x55667788, "ax": 0x7788, "al": 0x88, "ah": 0x77,
    "rcx": 0xFFFFFFFF_80000001, "ecx": 0x80000001, "cx": 0x8001,
    "rsp": STACK, "esp": STACK & 0xFFFFFFFF,
    "r8": 0x0000_0001_8000_ABCD, "r8d": 0x8000_ABCD, "r8w": 0xABCD, "r8b": 0xCD,
    "sil": 0x42, "rip": 0xFFFFF803_1A2B3C40, "$ip": 0xFFFFF803_1A2B3C40,
    "$t0": 0x80000000, "$t19": 7, "$bp3": 0xFFFFF803_40005000, "$ra": 0x1234,
    "$ptrsize": 8, "dr7": 0x400, "rsi": 0x10,
}
MEMORY = {
    STACK: bytes.fromhex("efcdab8967452301") + struct.pack("<Q", STACK + 0x100) + bytes(16),
    STACK + 0x100: bytes(range(0x80, 0x90)),
    0x7FFE0000: b"\xff" * 0x10,
}


@pytest.fixture
def ctx():
    return FakeContext(dict(SYMBOLS), dict(REGISTERS), dict(MEMORY),
                       {0x1000: bytes.fromhex("0102030405060708")})


def error_of(text, ctx, **kw):
    with pytest.raises(ExprError) as caught:
        evaluate(text, ctx, **kw)
    return str(caught.value)


# -- numbers -------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("10", 0x10), ("0x4AB3", 0x4AB3), ("0X4aB3", 0x4AB3), ("4AB3h", 0x4AB3),
    ("4ab3h", 0x4AB3), ("4aB3H", 0x4AB3), ("0n10", 10), ("0N10", 10), ("0t17", 15),
    ("0y101", 5), ("0", 0), ("0x0", 0), ("0x", 0), ("0n", 0), ("0t", 0), ("0y", 0),
    ("ah", 0xA), ("1ah", 0x1A), ("1`1", 0x11), ("1`", 1),
    ("fffff803`1a2b3c40", 0xFFFFF803_1A2B3C40), ("0x1`00000000", 1 << 32),
    ("ffffffff`ffffffff", MASK),
])
def test_number_literal_forms_in_the_default_hex_radix(text, value, ctx):
    assert evaluate(text, ctx) == value


@pytest.mark.parametrize("text, radix, value", [
    ("10", 10, 10), ("0x10", 10, 16), ("10h", 10, 16), ("0t10", 10, 8), ("99", 10, 99),
    ("17", 8, 15), ("0n17", 8, 17), ("101", 2, 5),
])
def test_radix_sets_the_base_of_unprefixed_numbers_only(text, radix, value, ctx):
    assert evaluate(text, ctx, radix=radix) == value


def test_a_letter_is_not_a_number_in_radix_10_and_is_looked_up(ctx):
    assert error_of("ff + 1", ctx, radix=10) == "Couldn't resolve error at 'ff + 1'"
    assert error_of("9", ctx, radix=8) == "Couldn't resolve error at '9'"


def test_an_unsupported_radix_is_a_programming_error(ctx):
    with pytest.raises(ValueError):
        evaluate("1", ctx, radix=7)


@pytest.mark.parametrize("text, value", [
    ("80000000", SIGN32 | 0x80000000),
    ("0x80000000", SIGN32 | 0x80000000),
    ("ffffffff", MASK),
    ("00000000EEAA1122", SIGN32 | 0xEEAA1122),
    ("0n4294967295", MASK),
    ("0`EEAA1122", 0xEEAA1122),
    ("00000000`EEAA1122", 0xEEAA1122),
    ("7fffffff", 0x7FFFFFFF),
    ("100000000", 1 << 32),
    ("-80000000", 0x80000000),
    ("(0x0`FFFFFFFF & 80000000)", 0x80000000),
    ("80000000 + 0", SIGN32 | 0x80000000),
])
def test_32_bit_constants_with_the_top_bit_are_sign_extended_unless_written_with_a_grave_accent(
        text, value, ctx):
    assert evaluate(text, ctx) == value


def test_results_of_arithmetic_are_never_sign_extended(ctx):
    assert evaluate("7fffffff + 1", ctx) == 0x80000000


def test_a_number_too_big_for_64_bits_is_an_overflow_error(ctx):
    assert error_of("1`00000000`00000000 + 1", ctx) == \
        "Overflow error at '1`00000000`00000000 + 1'"


def test_a_grave_accent_cannot_start_a_number(ctx):
    assert error_of("`1", ctx) == "Syntax error at '`1'"


# -- symbols -------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("nt!KeBugCheckEx", 0xFFFFF803_1A2B3C40),
    ("nt!KeBugCheckEx+0x10", 0xFFFFF803_1A2B3C50),
    ("nt!KeBugCheckEx + 10", 0xFFFFF803_1A2B3C50),
    ("KeBugCheckEx", 0xFFFFF803_1A2B3C40),
    ("trackdemo!Track_Close", 0xFFFFF803_40001230),
    ("nt!_imp_Foo", 0x1000),
    ("?Foo@@YAXXZ", 0x2000),
    ("_Func@8+1", 0x3001),
    ("foo!bar::baz", 0x4000),
    ("nt!KiSystemCall64$filt$0", 0x5000),
    ('@!"nt!operator new"+2', 0x6002),
    ("nt!KeBugCheckEx - nt", 0x1A2B3C40),
])
def test_symbols_evaluate_to_their_address(text, value, ctx):
    assert evaluate(text, ctx) == value


def test_a_hex_looking_name_is_a_number_and_no_symbol_is_asked(ctx):
    assert evaluate("abc", ctx) == 0xABC
    assert evaluate("dead", ctx) == 0xDEAD
    assert not [q for q in ctx.asked if q.startswith("sym:")]


def test_a_bang_or_a_module_forces_a_symbol_over_a_number(ctx):
    assert evaluate("!abc", ctx) == 0x7000
    assert evaluate("!dead+1", ctx) == 0x8001
    ctx.symbols["mod!dead"] = 0x9999
    assert evaluate("mod!dead", ctx) == 0x9999


def test_names_are_passed_to_the_context_as_typed(ctx):
    ctx.symbols["nt!MixedCase"] = 5
    assert evaluate("nt!MixedCase", ctx) == 5
    assert "sym:nt!MixedCase" in ctx.asked


@pytest.mark.parametrize("text, line", [
    ("foo", "Couldn't resolve error at 'foo'"),
    ("foo+1", "Couldn't resolve error at 'foo+1'"),
    ("1 + foo * 2", "Couldn't resolve error at 'foo * 2'"),
    ("nt!Nope + 4", "Couldn't resolve error at 'nt!Nope + 4'"),
    ("ntdll!1", "Couldn't resolve error at 'ntdll!1'"),
    ("!1", "Couldn't resolve error at '!1'"),
    ("!abcd", "Couldn't resolve error at '!abcd'"),
    ("$s7 == 1) { .echo x }", "Couldn't resolve error at '$s7 == 1) { .echo x }'"),
])
def test_an_unknown_name_cannot_be_resolved_and_the_rest_of_the_input_is_quoted(text, line, ctx):
    assert error_of(text, ctx) == line


# -- registers -----------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("rax", 0x11223344_55667788), ("@rax", 0x11223344_55667788), ("@RAX", 0x11223344_55667788),
    ("eax", 0x55667788), ("ax", 0x7788), ("al", 0x88), ("@ah", 0x77),
    ("r8", 0x1_8000_ABCD), ("@r8w", 0xABCD), ("r8b", 0xCD), ("sil", 0x42),
    ("cx", 0x8001), ("rsp+8", STACK + 8),
    ("$ip", 0xFFFFF803_1A2B3C40), ("@$ip", 0xFFFFF803_1A2B3C40), (".", 0xFFFFF803_1A2B3C40),
    (". - @rip", 0), ("@$t19", 7), ("$t19*2", 14), ("@$ra", 0x1234), ("@$ptrsize", 8),
    ("@$bp03", 0xFFFFF803_40005000), ("$bp3", 0xFFFFF803_40005000),
])
def test_registers_and_pseudo_registers(text, value, ctx):
    assert evaluate(text, ctx) == value


def test_bare_ah_is_the_hex_number_not_the_register(ctx):
    assert evaluate("ah", ctx) == 0xA
    assert "reg:ah" not in ctx.asked


@pytest.mark.parametrize("text, value", [
    ("ecx", SIGN32 | 0x80000001), ("@r8d", SIGN32 | 0x8000ABCD),
    ("@eax", 0x55667788), ("cx", 0x8001), ("@$t0", 0x80000000),
])
def test_32_bit_registers_are_sign_extended_and_pseudo_registers_are_not(text, value, ctx):
    assert evaluate(text, ctx) == value


def test_a_common_register_wins_over_a_symbol_of_the_same_name(ctx):
    ctx.symbols["rsp"] = 0x1234
    assert evaluate("rsp", ctx) == STACK


def test_an_uncommon_register_is_tried_after_symbols(ctx):
    assert evaluate("cr0", ctx) == 0x9000
    ctx.asked.clear()
    assert evaluate("dr7", ctx) == 0x400
    assert ctx.asked == ["sym:dr7", "reg:dr7"]


def test_an_at_register_never_asks_for_a_symbol(ctx):
    assert error_of("@cr0", ctx) == "Bad register error at '@cr0'"
    assert ctx.asked == ["reg:cr0"]


@pytest.mark.parametrize("text, line", [
    ("@foo", "Bad register error at '@foo'"),
    ("@$nope + 1", "Bad register error at '@$nope + 1'"),
    ("1 + @xyz", "Bad register error at '@xyz'"),
])
def test_an_unknown_at_register_is_a_bad_register(text, line, ctx):
    assert error_of(text, ctx) == line


def test_the_dot_needs_an_instruction_pointer(ctx):
    del ctx.registers["$ip"]
    assert error_of(". + 1", ctx) == "Bad register error at '. + 1'"


# -- unary operators and memory ------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("poi(rsp)", 0x01234567_89ABCDEF), ("poi rsp", 0x01234567_89ABCDEF),
    ("qwo(rsp)", 0x01234567_89ABCDEF), ("dwo(rsp)", 0x89ABCDEF), ("wo(rsp)", 0xCDEF),
    ("by(rsp)", 0xEF), ("by(rsp+1)", 0xCD), ("POI(@rsp)", 0x01234567_89ABCDEF),
    ("poi rsp+8", 0x01234567_89ABCDF7),
    ("poi(rsp+8)", STACK + 0x100), ("by(poi(rsp+8)+3)", 0x83), ("by poi(rsp+8)", 0x80),
    ("$pby(1000)", 1), ("$pwo(1000)", 0x0201), ("$pdwo(1001)", 0x05040302),
    ("$pqwo(1000)", 0x08070605_04030201), ("$ppoi(1000)", 0x08070605_04030201),
    ("hi(12345678)", 0x1234), ("low(12345678)", 0x5678), ("hi 1`12345678", 0x1234),
    ("not 0", 1), ("not 5", 0), ("NOT(0)", 1), ("not 1 + 1", 1),
    ("-1", MASK), ("--1", 1), ("+-1", MASK), ("+1", 1), ("-1*2", MASK - 1), ("- 0", 0),
])
def test_unary_operators(text, value, ctx):
    assert evaluate(text, ctx) == value


def test_poi_reads_four_bytes_and_sign_extends_on_a_32_bit_target(ctx):
    ctx.pointer_size = 4
    ctx.memory[0x80001000] = bytes.fromhex("10204080")
    assert evaluate("poi(0`80001000)", ctx) == 0xFFFFFFFF_80402010
    assert evaluate("dwo(0`80001000)", ctx) == 0x80402010


@pytest.mark.parametrize("text, line", [
    ("poi(0)", "Memory access error at ')'"),
    ("dwo(0) == 1", "Memory access error at ') == 1'"),
    ("poi 0", "Memory access error at '<EOL>'"),
    ("by 0 + 1", "Memory access error at '+ 1'"),
    ("dwo(ffffffff`fffffffe)", "Memory access error at ')'"),
    ("$pby(2000)", "Memory access error at ')'"),
])
def test_an_unreadable_operand_is_a_memory_access_error_where_the_operand_ends(text, line, ctx):
    assert error_of(text, ctx) == line


def test_a_short_read_is_a_memory_access_error(ctx):
    assert evaluate("dwo(7ffe000c)", ctx) == 0xFFFFFFFF
    assert error_of("qwo(7ffe000c)", ctx) == "Memory access error at ')'"


# -- binary operators ----------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("6 * 7", 42), ("ffffffff`ffffffff * 2", MASK - 1), ("20 / 3", 0xA), ("-2 / 2", MASK // 2),
    ("20 % 3", 2), ("20 mod 3", 2), ("20 MOD 3", 2), ("1 + 2", 3), ("0 - 1", MASK),
    ("ffffffff`ffffffff + 2", 1), ("1 << 4", 0x10), ("100 >> 4", 0x10),
    ("-8 >> 1", 0x7FFFFFFF_FFFFFFFC), ("-8 >>> 1", MASK - 3),
    ("1 << 0n64", 1), ("1 << 0n65", 2), ("80`00000000 >>> 0n68", 0x08_00000000),
    ("1 = 1", 1), ("1 == 2", 0), ("1 != 2", 1), ("1 < 2", 1), ("2 > 1", 1),
    ("2 <= 2", 1), ("3 >= 4", 0), ("-1 > 1", 1),
    ("6 & 3", 2), ("6 and 3", 2), ("6 ^ 3", 5), ("6 xor 3", 5), ("6 | 3", 7), ("6 or 3", 7),
    ("6 AND 3", 2), ("a!=b", 1),
])
def test_binary_operators(text, value, ctx):
    assert evaluate(text, ctx) == value


@pytest.mark.parametrize("text, value", [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("1 + 2 * 3 / 4", 2),
    ("1 << 2 + 1", 8), ("1 << 4 > 8", 1), ("1 < 2 + 3", 1),
    ("2 & 3 == 3", 0), ("1 = 1 & 0", 0), ("6 & 3 ^ 1", 3), ("1 | 2 ^ 3", 1),
    ("3 ^ 1 | 4", 6), ("1 or 1 and 0", 1),
    ("10 - 4 - 2", 0xA), ("100 / 10 / 2", 8), ("2 << 1 << 1", 8), ("2 * 3 % 4", 2),
    ("NOT((. = $ip) AND (@$ip = @rip) AND (@rip = .))", 0),
    ("poi(rsp) == 0x0123456789abcdef", 1),
])
def test_precedence_and_left_to_right_order(text, value, ctx):
    assert evaluate(text, ctx) == value


@pytest.mark.parametrize("text, line", [
    ("1/0", "Divide by zero error at '<EOL>'"),
    ("5 % 0 + 1", "Divide by zero error at '+ 1'"),
    ("5 mod (1-1)", "Divide by zero error at '<EOL>'"),
    ("(4 / 0) * 2", "Divide by zero error at ') * 2'"),
])
def test_division_by_zero(text, line, ctx):
    assert error_of(text, ctx) == line


def test_spaces_are_allowed_between_tokens(ctx):
    assert evaluate("  1   +\t2 ", ctx) == 3
    assert evaluate("poi ( rsp + 8 )", ctx) == STACK + 0x100


# -- syntax errors -------------------------------------------------------------

@pytest.mark.parametrize("text, line", [
    ("", "Numeric expression missing from '<EOL>'"),
    ("   ", "Numeric expression missing from '<EOL>'"),
    ("1+", "Numeric expression missing from '<EOL>'"),
    ("1*", "Numeric expression missing from '<EOL>'"),
    ("*1", "Numeric expression missing from '*1'"),
    ("1 + * 2", "Numeric expression missing from '* 2'"),
    ("1 && 2", "Numeric expression missing from '& 2'"),
    ("and 1", "Numeric expression missing from 'and 1'"),
    ("poi", "Numeric expression missing from '<EOL>'"),
    ("()", "Numeric expression missing from ')'"),
    ("(1+1", "Syntax error at '<EOL>'"),
    ("(1 2)", "Syntax error at '2)'"),
    ("1 + #", "Syntax error at '#'"),
    ('"str"', "Syntax error at '\"str\"'"),
    ("@@c++(1)", "Syntax error at '@@c++(1)'"),
    ("1+1)", "Extra character error in '1+1)'"),
    ("1 2", "Extra character error in '1 2'"),
])
def test_syntax_error_lines(text, line, ctx):
    assert error_of(text, ctx) == line


def test_an_error_knows_where_it_happened_and_is_a_command_error(ctx):
    with pytest.raises(CommandError) as caught:
        evaluate("1 + foo", ctx)
    assert isinstance(caught.value, ExprError)
    assert caught.value.position == 4
    with pytest.raises(ExprError) as caught:
        evaluate("1 2", ctx)
    assert caught.value.position == 2


@pytest.mark.parametrize("text", ["(" * 10000, "-" * 10000 + "1", "poi " * 5000 + "1"])
def test_deep_nesting_is_an_error_line_not_a_crash(text, ctx):
    assert error_of(text, ctx).startswith("Syntax error at '")


def test_the_masm_evaluator_switch_is_accepted(ctx):
    assert evaluate("@@masm(1 + 2) * 2", ctx) == 6


# -- evaluate_prefix -----------------------------------------------------------

@pytest.mark.parametrize("text, value, end", [
    ("rsp+8 L4", STACK + 8, 5),
    ("rsp + 8", STACK + 8, 7),
    ("1 2", 1, 1),
    ('trackdemo!DriverEntry 3 "kb; g"', 0xFFFFF803_40005000, 21),
    ("poi(rsp) L2", 0x01234567_89ABCDEF, 8),
    ("nt!KeBugCheckEx+10 l1", 0xFFFFF803_1A2B3C50, 18),
    ("  5  ", 5, 3),
    ("1 mod 3 x", 1, 7),
    ("@$ra; r", 0x1234, 4),
    ('1 "unterminated', 1, 1),
    ("1 [x]", 1, 1),
    ("(1) (2)", 1, 3),
    ("-1 -1", MASK - 1, 5),
])
def test_evaluate_prefix_stops_where_the_next_token_cannot_continue(text, value, end, ctx):
    assert evaluate_prefix(text, ctx) == (value, end)


def test_evaluate_prefix_still_reports_errors_inside_the_expression(ctx):
    with pytest.raises(ExprError) as caught:
        evaluate_prefix("foo L4", ctx)
    assert str(caught.value) == "Couldn't resolve error at 'foo L4'"
    with pytest.raises(ExprError):
        evaluate_prefix("L4", ctx)
    with pytest.raises(ExprError):
        evaluate_prefix("1 +", ctx)


# -- built-in functions --------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ('$scmp("a", "b")', MASK), ('$scmp("b", "a")', 1), ('$scmp("a", "a")', 0),
    ('$scmp("A", "a")', MASK), ('$sicmp("A", "a")', 0), ('$sicmp("b", "A")', 1),
    ('$spat("Program", "Prog[er-t7]am")', 1), ('$spat("Prog7am", "prog[er-t7]am")', 1),
    ('$spat("Progaam", "Prog[er-t7]am")', 0),
    ('$spat("Lp", "Lo#p")', 1), ('$spat("Looop", "Lo#p")', 1), ('$spat("Lp", "Lo+p")', 0),
    ('$spat("Loop", "Lo+p")', 1), ('$spat("maain", "m[ia]#n")', 1), ('$spat("mn", "m[ia]+n")', 0),
    ('$spat("ab", "a?+b")', 0), ('$spat("axxb", "a?+b")', 1), ('$spat("a*b", "a\\\\*b")', 1),
    ('$spat("axb", "a\\\\*b")', 0), ('$spat("TrackDemo", "*demo")', 1), ('$spat("x", "[z-a]")', 0),
    ('$spat(@"c:\\dir\\name.txt", "*name*")', 1), ('$spat("a\\"b", "a\\"b")', 1),
    ('$spat("c:\\dir\\name.txt", "*name*")', 0),
])
def test_string_built_ins(text, value, ctx):
    assert evaluate(text, ctx) == value


def test_vvalid_checks_every_page_of_the_range(ctx):
    ctx.memory = {0x10000: bytes(0x1000), 0x11000: bytes(0x1000)}
    assert evaluate("$vvalid(10000, 2000)", ctx) == 1
    assert evaluate("$vvalid(10ff0, 0x1010)", ctx) == 1
    assert evaluate("$vvalid(10000, 2001)", ctx) == 0
    assert evaluate("$vvalid(0, f)", ctx) == 0
    assert evaluate("not($vvalid(10000, 10))", ctx) == 0
    assert evaluate("$vvalid(ffffffff`ffffffff, 2)", ctx) == 0


def test_iment_reads_the_entry_point_from_the_pe_header(ctx):
    base = 0xFFFFF803_40000000
    header = bytearray(0x200)
    header[:2] = b"MZ"
    header[0x3C:0x40] = struct.pack("<I", 0x80)
    header[0x80:0x84] = b"PE\0\0"
    header[0x80 + 0x28:0x80 + 0x2C] = struct.pack("<I", 0x5010)
    ctx.memory[base] = bytes(header)
    assert evaluate("$iment(fffff803`40000000)", ctx) == base + 0x5010
    assert error_of("$iment(1234)", ctx) == "Memory access error at ')'"


@pytest.mark.parametrize("text, line", [
    ("$scmp(1, 2)", "Syntax error at '1, 2)'"),
    ('$scmp("a")', "Syntax error at ')'"),
    ("$vvalid(1)", "Syntax error at ')'"),
    ("$vvalid", "Syntax error at '<EOL>'"),
])
def test_built_in_argument_errors(text, line, ctx):
    assert error_of(text, ctx) == line


def test_wildcards_ignore_case_and_match_the_whole_text():
    assert wildcard_match("NT!KeBugCheckEx", "nt!ke*")
    assert not wildcard_match("xnt!Ke", "nt!ke*")


# -- the ? line ----------------------------------------------------------------

@pytest.mark.parametrize("value, pointer_size, line", [
    (1234, 8, "Evaluate expression: 1234 = 00000000`000004d2"),
    (0, 8, "Evaluate expression: 0 = 00000000`00000000"),
    (MASK, 8, "Evaluate expression: -1 = ffffffff`ffffffff"),
    (-520, 8, "Evaluate expression: -520 = ffffffff`fffffdf8"),
    (0x7FFFFFFF_FFFFFFFF, 8, "Evaluate expression: 9223372036854775807 = 7fffffff`ffffffff"),
    (1 << 63, 8, "Evaluate expression: -9223372036854775808 = 80000000`00000000"),
    (0xFFFF8008_35ABF040, 8, "Evaluate expression: -140702228156352 = ffff8008`35abf040"),
    (0x320, 4, "Evaluate expression: 800 = 00000320"),
    (SIGN32 | 0xFFFFFCE0, 4, "Evaluate expression: -800 = fffffce0"),
    (SIGN32 | 0xA20F4D28, 4, "Evaluate expression: -1576055512 = a20f4d28"),
    (1 << 32, 4, "Evaluate expression: 4294967296 = 00000001`00000000"),
])
def test_format_evaluation_is_windbgs_line(value, pointer_size, line):
    assert format_evaluation(value, pointer_size=pointer_size) == line


def test_format_of_an_evaluated_expression(ctx):
    assert format_evaluation(evaluate("@r10 + 0x10 + 0t10 + 0y10", FakeContext(
        registers={"r10": 0}))) == "Evaluate expression: 26 = 00000000`0000001a"


# -- properties ----------------------------------------------------------------

def _reference(op, a, b):
    if op in ("/", "%") and b == 0:
        return None
    return {
        "+": lambda: (a + b) % 2**64, "-": lambda: (a - b) % 2**64, "*": lambda: (a * b) % 2**64,
        "/": lambda: a // b, "%": lambda: a % b,
        "<<": lambda: (a << (b % 64)) % 2**64, ">>": lambda: a >> (b % 64),
        "&": lambda: a & b, "|": lambda: a | b, "^": lambda: a ^ b,
        "==": lambda: int(a == b), "!=": lambda: int(a != b), "<": lambda: int(a < b),
        ">": lambda: int(a > b), "<=": lambda: int(a <= b), ">=": lambda: int(a >= b),
    }[op]()


def _literal(value, form):
    """Text of ``value`` in one of MASM's spellings and the value MASM gives it."""
    extended = value | SIGN32 if 0x80000000 <= value <= 0xFFFFFFFF else value
    if form == "wide":
        return f"{value >> 32:x}`{value & 0xFFFFFFFF:08x}", value
    if form == "0x":
        return f"0x{value:X}", extended
    if form == "0n":
        return f"0n{value}", extended
    return f"{value:x}h" if form == "h" else f"0{value:x}", extended


_OPERATORS = ["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^",
              "==", "!=", "<", ">", "<=", ">="]
_literals = st.builds(_literal, st.integers(0, MASK) | st.integers(0, 64),
                      st.sampled_from(["wide", "0x", "0n", "h", "plain"]))


def _combine(children):
    return st.tuples(children, st.sampled_from(_OPERATORS), children)


_trees = st.recursive(_literals, _combine, max_leaves=12)


def _render(tree):
    """(text, expected value or None for a division by zero)."""
    if isinstance(tree[1], int):
        return tree
    left, op, right = tree
    left_text, a = _render(left)
    right_text, b = _render(right)
    value = None if a is None or b is None else _reference(op, a, b)
    return f"({left_text} {op} {right_text})", value


@settings(max_examples=300, deadline=None)
@given(_trees)
def test_arithmetic_matches_python_modulo_2_to_the_64(tree):
    text, expected = _render(tree)
    if expected is None:
        with pytest.raises(ExprError, match="^Divide by zero error at '"):
            evaluate(text, FakeContext())
    else:
        assert evaluate(text, FakeContext()) == expected


_PRECEDENCE = {"*": 7, "/": 7, "%": 7, "+": 6, "-": 6, "<<": 5, ">>": 5,
               "==": 4, "!=": 4, "<": 4, ">": 4, "<=": 4, ">=": 4, "&": 3, "^": 2, "|": 1}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 0x7FFFFFFF), min_size=3, max_size=3),
       st.sampled_from(_OPERATORS), st.sampled_from(_OPERATORS))
def test_two_operators_group_by_precedence_then_left_to_right(numbers, op1, op2):
    a, b, c = (f"0n{n}" for n in numbers)
    if _PRECEDENCE[op2] > _PRECEDENCE[op1]:
        grouped = f"{a} {op1} ({b} {op2} {c})"
    else:
        grouped = f"({a} {op1} {b}) {op2} {c}"
    assert _outcome(f"{a} {op1} {b} {op2} {c}") == _outcome(grouped)


def _outcome(text):
    try:
        return evaluate(text, FakeContext())
    except ExprError as error:
        return str(error).split(" error at ")[0]


@settings(max_examples=200, deadline=None)
@given(_trees, st.sampled_from([" L4", " 3 \"kb; g\"", " l0n10", ""]))
def test_evaluate_prefix_takes_a_whole_expression_and_leaves_the_arguments(tree, suffix):
    text, expected = _render(tree)
    if expected is not None:
        assert evaluate_prefix(text + suffix, FakeContext()) == (expected, len(text))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0x7FFFFFFF))
def test_radix_10_reads_decimal_and_hex_suffix_numbers(n):
    assert evaluate(f"{n} + {n:x}h", FakeContext(), radix=10) == 2 * n
