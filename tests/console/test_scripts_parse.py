"""Reading command programs: statements, groups, aliases and script arguments."""

from __future__ import annotations

import pytest

from kdcon.errors import CommandError
from kdcon.scripting import (Aliases, group_end, replace_variable, script_arguments,
                             split_program, split_top, take_group)


@pytest.mark.parametrize("line, statements", [
    ("r rax; r rbx", ["r rax", "r rbx"]),
    ('.echo "a;b"; .echo c', ['.echo "a;b"', ".echo c"]),
    (r'bp f "r; .echo \"x;y\"; g"', [r'bp f "r; .echo \"x;y\"; g"']),
    (".for (r $t0=0; @$t0<3; r $t0=@$t0+1) { r $t0; .echo x }; .echo after",
     [".for (r $t0=0; @$t0<3; r $t0=@$t0+1) { r $t0; .echo x }", ".echo after"]),
    (".while (1) {.break} .echo next", [".while (1) {.break}", ".echo next"]),
    (".do { r $t1 = 1 } (0); r $t1", [".do { r $t1 = 1 } (0)", "r $t1"]),
    (".foreach /pS 2 /ps 1 (v {dd x; dd y}) { .echo v; .echo w }; .echo z",
     [".foreach /pS 2 /ps 1 (v {dd x; dd y}) { .echo v; .echo w }", ".echo z"]),
    (".block{.echo x}", [".block {.echo x}"]),
    ("  ;; r rax ;; ", ["r rax"]),
])
def test_a_line_is_cut_into_statements_outside_quotes_groups_and_blocks(line, statements):
    assert split_program(line) == statements


def test_elsif_and_else_join_their_if_even_after_a_folded_line_break():
    folded = ".if (@$t0 == 1);{;  .echo one;};.elsif (@$t0);{;  .echo more;};.else;{; .echo none;};.echo end"
    statements = split_program(folded)
    assert len(statements) == 2
    assert statements[0].startswith(".if (@$t0 == 1)") and statements[0].endswith(".echo none;}")
    assert statements[1] == ".echo end"


def test_a_second_else_starts_a_statement_of_its_own():
    assert split_program(".if (1) {a} .else {b} .else {c}") == [".if (1) {a} .else {b}", ".else {c}"]


@pytest.mark.parametrize("line", ["$<my;script.txt", "$><a;b.txt", "as name a; b; c",
                                  "* a comment; with .echo in it"])
def test_dollar_less_than_as_and_star_take_the_rest_of_the_line(line):
    assert split_program(line) == [line]
    assert split_program(f".echo first; {line}") == [".echo first", line]


def test_as_with_a_capital_s_stops_at_the_semicolon():
    assert split_program("aS name text; .echo name") == ["aS name text", ".echo name"]


def test_a_control_token_without_its_parts_is_a_plain_statement_for_its_command_to_refuse():
    assert split_program(".if (1 {x}; .echo y") == [".if (1 {x}", ".echo y"]
    assert split_program(".block; .echo y") == [".block", ".echo y"]


def test_group_end_counts_only_its_own_brackets_and_skips_quotes():
    text = '{ .echo "}" ; .echo :) ; { nested } } tail'
    assert text[:group_end(text, 0)] == '{ .echo "}" ; .echo :) ; { nested } }'
    assert group_end("(1 + (2)", 0) == -1


def test_take_group_names_what_is_missing():
    assert take_group(" ; (a (b)) {c}", 0, "(", "a condition") == ("a (b)", 10)
    with pytest.raises(CommandError, match="a condition expected at 'x > 1'"):
        take_group("x > 1", 0, "(", "a condition")
    with pytest.raises(CommandError, match="no closing"):
        take_group("{ .echo a", 0, "{", "a block")


def test_split_top_keeps_groups_and_quotes_whole():
    assert split_top('r $t0 = 0; poi(a;b) < 3; .echo "x;y"; r $t1', ";") == [
        "r $t0 = 0", " poi(a;b) < 3", ' .echo "x;y"', " r $t1"]


# -- aliases -------------------------------------------------------------------------------


@pytest.fixture
def aliases() -> Aliases:
    table = Aliases()
    table.set("foo", "bar baz")
    table.set("Add", "+")
    return table


def test_an_alias_standing_as_a_word_is_replaced_and_one_touching_text_is_not(aliases):
    assert aliases.expand(".echo foo;foo {foo} (foo) xfoo foo.") == \
        ".echo bar baz;bar baz {bar baz} (foo) xfoo foo."


def test_alias_names_are_case_sensitive(aliases):
    assert aliases.expand("? 1 Add 2 add 3") == "? 1 + 2 add 3"


def test_the_alias_interpreter_forms(aliases):
    assert aliases.expand("${foo}x ${/d:foo} ${/d:nope} [${/f:nope}] ${/n:foo} ${/n:nope} "
                          "${/v:foo} ${nope}") == \
        "bar bazx 1 0 [] foo ${/n:nope} ${/v:foo} ${nope}"


@pytest.mark.parametrize("line", ["as foo foo", "aS foo foo", "ad foo", "al"])
def test_a_line_starting_with_an_alias_command_is_left_as_written(aliases, line):
    assert aliases.expand(line) == line


def test_a_leading_blank_before_the_alias_command_lets_the_line_be_expanded(aliases):
    assert aliases.expand(" aS other foo") == " aS other bar baz"


@pytest.mark.parametrize("name", ["", "two words", "alpha", "asdf", "aSx", "adder"])
def test_bad_alias_names_are_refused_in_one_line(name):
    with pytest.raises(CommandError, match="Invalid alias name"):
        Aliases().set(name, "x")


def test_v_form_as_an_alias_name_stands_for_the_name():
    table = Aliases()
    table.set("${/v:name}", "value")
    assert table.values == {"name": "value"}


def test_a_foreach_variable_is_replaced_as_a_word_and_in_braces():
    assert replace_variable(".echo place;dds place ${place}x (place) places", "place", "10") == \
        ".echo 10;dds 10 10x (place) places"


def test_script_arguments_and_their_count_replace_and_missing_ones_stay():
    text = ".echo ${$arg1} ${$arg2} ${$arg3} ${$n} ${$arg0} ${$arg10}"
    assert script_arguments(text, ["a", "b c"]) == ".echo a b c ${$arg3} 2 ${$arg0} ${$arg10}"
