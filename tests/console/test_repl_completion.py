"""Tab completion: what the completer offers where, from the registry and the live
session of the simulated target, and the real PromptSession completing a symbol."""

from __future__ import annotations

import pytest

from kdcon.completion import LOADING, KdCompleter
from kdcon.registry import Category, Command
from kdcon.symbols.module import SymbolState
from tests.console.repl_driver import CTRL_C, Loopback, ReplDriver, wait_until


@pytest.fixture(scope="module")
def loop():
    loopback = Loopback()
    yield loopback
    loopback.close()


@pytest.fixture
def completer(loop):
    return KdCompleter(loop.app.console)


def texts(result: tuple[int, list[tuple[str, str]]]) -> list[str]:
    return [text for text, _ in result[1]]


def test_command_names_and_bang_extensions_come_from_the_registry(loop):
    console = loop.app.console
    original = console.registry
    console.registry = original.copy()
    try:
        console.registry.add(Command(name="!leakcheck", handler=lambda ctx, args: None,
                                     category=Category.EXTENSIONS, usage="!leakcheck",
                                     summary="Report leaked allocations."))
        completer = KdCompleter(console)
        start, found = completer.complete("!")
        assert start == -1
        names = [text for text, _ in found]
        assert "!leakcheck" in names and all(name.startswith("!") for name in names)
        assert ("!leakcheck", "Report leaked allocations.") in found
        assert texts(completer.complete("bl")) == ["bl"]
        assert {"sxd", "sxe", "sxi", "sxn"} <= set(texts(completer.complete("sx")))
    finally:
        console.registry = original


def test_module_bang_prefix_offers_that_modules_symbols_as_x_finds_them(loop, completer):
    start, found = completer.complete("bp trackdemo!TrackDemoT")
    expected = sorted({m.qualified for m in loop.app.session.symbols.match("trackdemo!TrackDemoT*")})
    assert start == -len("trackdemo!TrackDemoT")
    assert sorted(text for text, _ in found) == expected
    assert "trackdemo!TrackDemoTick" in expected


def test_the_symbol_prefix_ignores_case(completer):
    assert "nt!KeBugCheck" in texts(completer.complete("bp nt!kebugc"))


@pytest.mark.parametrize("line, token", [
    ("r; bp trackdemo!TrackDemoTi", "trackdemo!TrackDemoTi"),
    ("? poi(trackdemo!TrackDemoTi", "trackdemo!TrackDemoTi"),
    ("?trackdemo!TrackDemoTi", "trackdemo!TrackDemoTi"),
    ('bp nt!DbgBreakPoint ".echo x"; u trackdemo!TrackDemoTi', "trackdemo!TrackDemoTi"),
])
def test_symbols_complete_inside_expressions_and_after_a_semicolon(completer, line, token):
    start, found = completer.complete(line)
    assert start == -len(token)
    assert [text for text, _ in found] == ["trackdemo!TrackDemoTick", "trackdemo!TrackDemoTickCount"]


def test_nothing_is_offered_after_a_wildcard(completer):
    assert completer.complete("x trackdemo!Track*") == (0, [])


def test_a_bare_word_offers_modules_and_loads_no_symbols(loop):
    symbols = loop.app.session.symbols
    symbols.reload()                                  # every module back to deferred
    completer = KdCompleter(loop.app.console, may_query=lambda: False)
    assert texts(completer.complete("bp ha")) == ["hal!"]
    assert texts(completer.complete("lm m track")) == ["trackdemo"]
    assert completer.complete("bp hal!")[1] == []     # loading is not allowed now
    assert all(m.state is SymbolState.DEFERRED for m in symbols.modules())
    loading = KdCompleter(loop.app.console)
    assert texts(loading.complete("bp hal!HalR"))
    assert symbols.module("hal").state is not SymbolState.DEFERRED
    assert symbols.module("nt").state is SymbolState.DEFERRED


def test_registers_and_pseudo_registers(completer):
    assert texts(completer.complete("r ra")) == ["rax"]
    assert texts(completer.complete("? @rs")) == ["@rsi", "@rsp"]
    assert "$t1" in texts(completer.complete("? $t1")) and "$t19" in texts(completer.complete("? $t1"))
    assert texts(completer.complete("dd $i")) == ["$ip"]


def test_breakpoint_ids_for_bc_bd_be(loop, completer):
    console = loop.app.console
    console.execute("bc *")
    console.execute("bp trackdemo!TrackDemoTick")
    console.execute("bu nt!DbgBreakPoint")
    try:
        ids = sorted(str(bp.id) for bp in loop.app.session.breakpoints)
        for command in ("bc", "bd", "be"):
            assert texts(completer.complete(f"{command} ")) == ["*", *ids]
        assert texts(completer.complete("bd 1")) == ["1"]
        assert "$bp0" in texts(completer.complete("? $bp"))
    finally:
        console.execute("bc *")


def test_dt_offers_types_then_fields(loop, completer):
    found = texts(completer.complete("dt trackdemo!_TRACK_ST"))
    assert found == ["trackdemo!_TRACK_STATS"]
    info = loop.app.session.symbols.find_type("trackdemo!_TRACK_STATS")
    names = [field.name for field in info.fields]
    assert texts(completer.complete("dt trackdemo!_TRACK_STATS ")) == names
    assert texts(completer.complete("dt trackdemo!_TRACK_STATS Cur")) == \
        [name for name in names if name.startswith("Cur")]
    assert "_TRACK_STATS" in texts(completer.complete("dt _TRACK_S"))


@pytest.mark.parametrize("prefix", ["$<", "$$<", "$$>a<", ".logopen ", ".logopen /t ",
                                    ".writemem ", ".readmem ", ".kdtrace on "])
def test_file_names_for_scripts_logs_and_memory_files(tmp_path, completer, prefix):
    (tmp_path / "script.txt").write_text("r\n")
    (tmp_path / "sub").mkdir()
    start, found = completer.complete(f"{prefix}{tmp_path}/s")
    assert start == -len(f"{tmp_path}/s")
    assert found == [(f"{tmp_path}/script.txt", "file"), (f"{tmp_path}/sub/", "directory")]


def test_kdtrace_offers_on_and_off(completer):
    assert texts(completer.complete(".kdtrace ")) == ["on", "off"]
    assert texts(completer.complete(".kdtrace o")) == ["on", "off"]
    assert texts(completer.complete(".kdtrace of")) == ["off"]


def test_the_real_prompt_completes_a_symbol_with_tab(loop):
    driver = ReplDriver(loop)
    seen: dict[str, object] = {}

    def script(d: ReplDriver) -> None:
        d.wait_prompt()
        d.type("bp trackdemo!TrackDemoT")
        wait_until(lambda: d.buffer.complete_state is not None and
                   len(d.buffer.complete_state.completions) == 2, "the menu as the name is typed")
        seen["menu"] = [c.text for c in d.buffer.complete_state.completions]
        d.type("ickC\t")
        wait_until(lambda: d.buffer.text == "bp trackdemo!TrackDemoTickCount", "Tab to complete")
        d.type(CTRL_C)
        wait_until(lambda: d.buffer.text == "", "a clear line")

    driver.run(script)
    assert seen["menu"] == ["trackdemo!TrackDemoTick", "trackdemo!TrackDemoTickCount"]


class Jobs:
    """A ``schedule`` that keeps the jobs until the test runs them."""

    def __init__(self) -> None:
        self.queued: list = []
        self.ready = 0

    def __call__(self, job) -> None:
        self.queued.append(job)

    def run(self) -> None:
        while self.queued:
            self.queued.pop(0)()


def test_in_the_background_a_module_answers_loading_until_its_names_are_sorted(loop):
    symbols = loop.app.session.symbols
    symbols.reload()
    jobs = Jobs()
    completer = KdCompleter(loop.app.console, may_query=lambda: False, schedule=jobs,
                            on_ready=lambda: setattr(jobs, "ready", jobs.ready + 1))
    assert completer.complete("bp trackdemo!TrackDemoT") == (
        -len("trackdemo!TrackDemoT"), [("trackdemo!TrackDemoT", LOADING)])
    assert completer.complete("bp trackdemo!") == (-len("trackdemo!"), [("trackdemo!", LOADING)])
    assert len(jobs.queued) == 1                       # asked twice, sorted once
    assert symbols.module("trackdemo").state is SymbolState.DEFERRED
    jobs.run()
    assert jobs.ready == 1
    assert texts(completer.complete("bp trackdemo!TrackDemoT")) == [
        "trackdemo!TrackDemoTick", "trackdemo!TrackDemoTickCount"]
    first_page = texts(completer.complete("bp trackdemo!"))
    expected = sorted({m.qualified for m in symbols.match("trackdemo!*")},
                      key=lambda name: (name.startswith("trackdemo!?"), name.casefold()))
    assert first_page == expected[:len(first_page)] and first_page
    assert jobs.queued == []


def test_the_first_page_of_an_empty_prefix_is_bounded(loop):
    jobs = Jobs()
    completer = KdCompleter(loop.app.console, schedule=jobs, limit=5)
    completer.complete("bp nt!")
    jobs.run()
    page = texts(completer.complete("bp nt!"))
    assert len(page) == 5
    assert page == sorted(page, key=str.casefold)


def test_a_module_that_may_not_load_offers_nothing_until_the_prompt_is_idle_again(loop):
    symbols = loop.app.session.symbols
    symbols.reload()
    jobs = Jobs()
    allowed = [False]
    completer = KdCompleter(loop.app.console, schedule=jobs, can_load=lambda: allowed[0])
    assert completer.complete("bp hal!HalR")[1] == [("hal!HalR", LOADING)]
    jobs.run()
    assert completer.complete("bp hal!HalR")[1] == []
    assert symbols.module("hal").state is SymbolState.DEFERRED
    allowed[0] = True
    completer.prepare()                                # the prompt went idle
    assert completer.complete("bp hal!HalR")[1] == [("hal!HalR", LOADING)]
    jobs.run()
    assert texts(completer.complete("bp hal!HalR"))


def test_prepare_sorts_the_names_of_modules_whose_symbols_are_loaded(loop):
    symbols = loop.app.session.symbols
    symbols.reload()
    symbols.match("trackdemo!TrackDemoTick")           # a command loaded trackdemo
    jobs = Jobs()
    completer = KdCompleter(loop.app.console, schedule=jobs)
    completer.prepare()
    assert len(jobs.queued) == 1
    jobs.run()
    assert completer.names_ready(symbols.module("trackdemo"))
    assert not completer.names_ready(symbols.module("hal"))


def test_the_real_prompt_shows_loading_then_the_names(loop):
    loop.app.session.symbols.reload()
    driver = ReplDriver(loop)
    seen: dict[str, object] = {}

    def script(d: ReplDriver) -> None:
        d.wait_prompt()
        d.type("bp trackdemo!TrackDemoT\t")
        wait_until(lambda: d.buffer.complete_state is not None and
                   len(d.buffer.complete_state.completions) == 2, "the names after loading")
        seen["menu"] = [c.text for c in d.buffer.complete_state.completions]
        seen["text"] = d.buffer.text
        d.type(CTRL_C)
        wait_until(lambda: d.buffer.text == "", "a clear line")

    driver.run(script)
    assert seen["menu"] == ["trackdemo!TrackDemoTick", "trackdemo!TrackDemoTickCount"]
    assert seen["text"] == "bp trackdemo!TrackDemoT"


def test_module_bang_lists_plain_names_before_decorated_string_literals(completer):
    page = texts(completer.complete("bp trackdemo!"))
    assert page and not page[0].startswith("trackdemo!?")
    assert "trackdemo!DriverEntry" in page
    decorated = texts(completer.complete("bp trackdemo!?"))
    assert decorated and all(name.startswith("trackdemo!??_C@") for name in decorated)
