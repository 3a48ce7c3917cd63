"""Loading extensions: the extension path, hot reload, isolation of failures, .load and
.unload, !module.command, the entry-point group, breakpoint callbacks and event hooks.

Every extension here is written into a temporary directory by the test, as a user's
would be, and runs against the simulated target.
"""

from __future__ import annotations

import ast
import os
import textwrap
from pathlib import Path

import pytest

from .extension_session import Live
from .transcripts import run_kdcon

EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


HELLO = '''
    """Hello: says hello, for the tests."""
    from kdcon.api import bang, require

    require("1.0")


    @bang("hello")
    def hello(target, args):
        """Say hello."""
        return f"hello {args or 'world'} from version 1"
'''


@pytest.fixture
def live_factory():
    sessions: list[Live] = []

    def start(**options) -> Live:
        sessions.append(Live(**options))
        return sessions[-1]

    yield start
    for session in sessions:
        session.close()


def test_an_extension_on_the_extension_path_loads_with_its_docstring_as_help(tmp_path,
                                                                              live_factory):
    write(tmp_path / "hello.py", HELLO)
    live = live_factory(ext_path=[tmp_path])
    assert live.ok("!hello") == "0: kd> !hello\nhello world from version 1\n"
    assert live.ok("!hello.hello you").endswith("hello you from version 1\n")
    help_text = live.ok(".help !hello")
    assert "  Say hello.\n" in help_text and "Hello: says hello, for the tests." in help_text
    assert "Extensions:\n" in live.ok(".help")


def test_a_changed_extension_file_is_reloaded_before_its_next_use(tmp_path, live_factory):
    source = write(tmp_path / "hello.py", HELLO)
    live = live_factory(ext_path=[tmp_path])
    assert "version 1" in live.ok("!hello")
    write(source, textwrap.dedent(HELLO).replace("version 1", "version 22") + textwrap.dedent('''

        @bang("goodbye")
        def goodbye(target, args):
            """Say goodbye."""
            return "goodbye"
    '''))
    assert "hello world from version 22" in live.ok("!hello")
    assert live.ok("!goodbye").endswith("goodbye\n")
    # An edit that breaks the file: the command says why, once fixed it works again.
    write(source, HELLO.replace("def hello", "def hello(:"))
    failed = live.fails("!hello")
    assert f"({source}) failed to import: SyntaxError: " in failed
    assert failed.count("\n") == 2
    write(source, HELLO.replace("version 1", "version 333"))
    assert "version 333" in live.ok("!hello")
    assert "No export goodbye found" in live.fails("!goodbye")


def test_an_extension_that_raises_is_one_line_and_the_console_carries_on(tmp_path,
                                                                         live_factory):
    write(tmp_path / "boom.py", '''
        """Raises."""
        from kdcon.api import ExtensionFailed, bang


        @bang
        def boom(target, args):
            """Divide by zero."""
            return 1 / 0


        @bang
        def verdict(target, args):
            """Fail on purpose."""
            raise ExtensionFailed("the verdict is no")


        @bang
        def badread(target, args):
            """Read unmapped memory."""
            return hex(target.u64(0x10))
    ''')
    live = live_factory(ext_path=[tmp_path])
    assert live.fails("!boom") == ("0: kd> !boom\n!boom: extension boom raised "
                                   "ZeroDivisionError: division by zero\n")
    assert live.fails("!verdict") == "0: kd> !verdict\nthe verdict is no\n"
    assert live.fails("!badread").startswith("0: kd> !badread\nMemory access error at 0x10")
    assert "Evaluate expression: 1 =" in live.ok("? 1")


def test_a_traceback_is_shown_only_with_debug(tmp_path, live_factory):
    write(tmp_path / "boom.py", '''
        from kdcon.api import bang


        @bang
        def boom(target, args):
            """Divide by zero."""
            return 1 / 0
    ''')
    quiet = live_factory(ext_path=[tmp_path])
    assert "Traceback" not in quiet.fails("!boom")
    loud = live_factory(ext_path=[tmp_path], debug=True)
    text = loud.fails("!boom")
    assert "Traceback (most recent call last)" in text and "1 / 0" in text


def test_an_extension_that_fails_to_import_is_one_line_at_startup_and_at_load(tmp_path,
                                                                              live_factory):
    write(tmp_path / "broken.py", "import kdcon_no_such_module\n")
    write(tmp_path / "hello.py", HELLO)
    write(tmp_path / "future.py", 'from kdcon.api import require\nrequire("1.9")\n')
    live = live_factory(ext_path=[tmp_path])
    lines = live.startup.splitlines()
    assert f"Extension broken ({tmp_path / 'broken.py'}) failed to import: " \
           f"ModuleNotFoundError: No module named 'kdcon_no_such_module'" in lines
    assert f"Extension future ({tmp_path / 'future.py'}) failed to import: ApiVersionError: " \
           f"this extension needs the kdcon extension API 1.9; this kdcon provides 1.0" in lines
    assert "Traceback" not in live.startup
    assert "hello world" in live.ok("!hello")
    chain = live.ok(".chain")
    assert "  broken: " in chain and "      failed to import: ModuleNotFoundError" in chain
    again = live.fails(f".load {tmp_path / 'broken.py'}")
    assert again.count("\n") == 2 and "failed to import: ModuleNotFoundError" in again


def test_load_unload_and_load_again(tmp_path, live_factory):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    file = write(elsewhere / "hello.py", HELLO)
    live = live_factory()
    assert "No export hello found" in live.fails("!hello")
    live.ok(f".load {file}")
    assert "hello world" in live.ok("!hello")
    from kdcon.registry import REGISTRY
    assert REGISTRY.get("!hello") is None          # this console's registry only
    assert f"  hello: {file}\n      !hello\n" in live.ok(".chain")
    live.ok(".unload hello")
    assert "No export hello found" in live.fails("!hello")
    assert "No extension hello is loaded" in live.fails(".unload hello")
    assert "Extension file" in live.fails(f".load {elsewhere / 'nope.py'}")
    live.ok(".extpath " + str(elsewhere))
    assert "hello world" in live.ok("!hello")
    live.ok(".unload hello")
    live.ok(".load hello")          # a name on the extension path
    assert "hello world" in live.ok("!hello")


def test_module_dot_command_reaches_each_of_two_extensions_with_one_name(tmp_path,
                                                                         live_factory):
    first = tmp_path / "first"
    first.mkdir()
    write(first / "alpha.py", HELLO.replace("version 1", "alpha"))
    second = tmp_path / "second"
    second.mkdir()
    write(second / "beta.py", HELLO.replace("version 1", "beta"))
    live = live_factory(ext_path=[first])
    live.ok(f".load {second / 'beta.py'}")
    # The last loaded is searched first, as WinDbg's chain.
    assert "from beta" in live.ok("!hello")
    assert "from alpha" in live.ok("!alpha.hello")
    assert "from beta" in live.ok("!beta.hello")
    assert live.ok(".extmatch hel*").splitlines()[1:] == ["!beta.hello", "!alpha.hello"]
    assert live.ok(".extmatch /e alpha *").splitlines()[1:] == ["!alpha.hello"]
    live.ok(".unload beta")
    assert "from alpha" in live.ok("!hello")


def test_the_entry_point_group_loads_an_installed_package(tmp_path, monkeypatch, live_factory):
    site = tmp_path / "site"
    (site / "demo_kdext").mkdir(parents=True)
    write(site / "demo_kdext" / "__init__.py", "")
    write(site / "demo_kdext" / "commands.py", HELLO.replace("version 1", "a package"))
    info = site / "demo_kdext-1.0.dist-info"
    info.mkdir()
    write(info / "METADATA", "Metadata-Version: 2.1\nName: demo-kdext\nVersion: 1.0\n")
    write(info / "entry_points.txt", "[kdcon.extensions]\ndemo = demo_kdext.commands\n")
    monkeypatch.syspath_prepend(str(site))
    live = live_factory()
    assert "hello world from a package" in live.ok("!hello")
    assert "hello world from a package" in live.ok("!demo.hello")
    assert "  demo: entry point of demo-kdext (demo_kdext.commands)\n" in live.ok(".chain")


def test_a_breakpoint_callback_continues_for_n_hits_then_breaks(tmp_path, live_factory):
    write(tmp_path / "counting.py", '''
        """Counts TICK requests with a Python breakpoint callback."""
        from kdcon.api import BREAK, CONTINUE, bang

        seen = []


        @bang
        def countticks(target, args):
            """Let N hits go by, then break."""
            wanted = int(args)

            def on_hit(target, breakpoint):
                seen.append(target.u32(target.symbol("trackdemo!TrackDemoTickCount")))
                return BREAK if breakpoint.hits > wanted else CONTINUE

            handle = target.breakpoint("trackdemo!TrackDemoTick", on_hit)
            target.out(f"breakpoint {handle.id} at {target.name_for(handle.address)}")


        @bang
        def counted(target, args):
            """Show the tick counts the callback saw."""
            return " ".join(str(count) for count in seen)
    ''')
    live = live_factory(ext_path=[tmp_path])
    live.ok("g")                      # DriverEntry's break-in: trackdemo is running next
    assert live.ok("!countticks 3").endswith("breakpoint 0 at trackdemo!TrackDemoTick\n")
    stop = live.ok("g")
    assert "Breakpoint 0 hit\ntrackdemo!TrackDemoTick:\n" in stop
    counts = [int(word) for word in live.ok("!counted").splitlines()[1].split()]
    # Four hits, one TICK each: three let go, the fourth broke.
    assert len(counts) == 4 and counts == list(range(counts[0], counts[0] + 4))
    assert " 0 e " in live.ok("bl")
    live.ok(".unload counting")
    assert live.ok("bl") == "0: kd> bl\n"


def test_hooks_see_stops_module_loads_and_dbgprint_and_a_failing_one_is_one_line(
        tmp_path, live_factory):
    write(tmp_path / "watch.py", '''
        """Watches events."""
        from kdcon.api import bang, hook

        seen = []


        @hook("stop")
        def on_stop(target, event):
            seen.append(f"stop:{event.symbol}")


        @hook("dbgprint")
        def on_print(target, event):
            seen.append(f"print:{event.text.strip()}")


        @hook("module_load")
        def on_load(target, event):
            seen.append(f"load:{event.name}")


        @hook("stop")
        def broken(target, event):
            raise RuntimeError("hook trouble")


        @bang
        def watched(target, args):
            """Show what the hooks saw."""
            return "\\n".join(seen)
    ''')
    live = live_factory(ext_path=[tmp_path])
    out = live.ok("g")
    assert "The stop hook of extension watch failed: RuntimeError: hook trouble\n" in out
    live.ok("bp trackdemo!TrackDemoTick")
    live.ok("g")
    seen = live.ok("!watched").splitlines()[1:]
    stops = [item for item in seen if item.startswith("stop:")]
    assert stops[:3] == ["stop:nt!DbgBreakPointWithStatus", "stop:nt!DbgBreakPoint",
                         "stop:trackdemo!TrackDemoTick"]
    assert "print:TrackDemo: DriverEntry" in seen and "print:TrackDemo: ready" in seen
    # trackdemo loads after the connect break-in, before DriverEntry's.
    assert seen.index("stop:nt!DbgBreakPointWithStatus") < seen.index("load:trackdemo.sys") \
        < seen.index("stop:nt!DbgBreakPoint")
    live.ok(".unload watch")
    assert "hook trouble" not in live.ok("g")


def test_argument_parsers_errors_are_one_line_and_dash_h_prints_help(tmp_path, live_factory):
    write(tmp_path / "parsed.py", '''
        import argparse

        from kdcon.api import bang

        parser = argparse.ArgumentParser(prog="!parsed", description="Add two numbers.")
        parser.add_argument("a", type=int)
        parser.add_argument("b", type=int)


        @bang(parser=parser)
        def parsed(target, args):
            """Add two numbers."""
            return str(args.a + args.b)
    ''')
    live = live_factory(ext_path=[tmp_path])
    assert live.ok("!parsed 2 3").endswith("\n5\n")
    assert live.fails("!parsed 2").count("\n") == 2
    assert "Add two numbers." in live.ok("!parsed -h")


def test_tables_are_columns_in_text_and_rows_in_json(tmp_path):
    import json

    write(tmp_path / "tabular.py", '''
        from kdcon.api import Column, Table, bang


        @bang
        def modules(target, args):
            """The module list as a table."""
            table = Table(Column("name"), Column("base", "Base", format="address"),
                          Column("size", "Size", format="x"))
            for module in target.modules():
                table.add(name=module.name, base=module.base, size=module.size)
            return table
    ''')
    text, status = run_kdcon(["--loopback", "--batch", "--ext-path", str(tmp_path),
                              "-c", "!modules"])
    assert status == 0
    lines = text.split("kd> !modules\n", 1)[1].splitlines()
    assert lines[0] == "name       Base                Size"
    assert lines[1] == f"nt         fffff800`01000000  {_kernel_size():x}"
    text, status = run_kdcon(["--loopback", "--batch", "--json", "--ext-path", str(tmp_path),
                              "-c", "!modules"])
    result = next(json.loads(line) for line in text.splitlines() if '"!modules"' in line)
    assert result["rows"][0] == {"name": "nt", "base": 0xFFFFF80001000000, "size": _kernel_size()}


def test_built_in_extensions_import_nothing_from_kdcon_but_the_api():
    for path in sorted(EXTENSIONS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                if name == "kdcon" or name.startswith("kdcon."):
                    assert name == "kdcon.api", f"{path.name} imports {name}"


def test_extension_path_from_the_environment(tmp_path, monkeypatch):
    write(tmp_path / "hello.py", HELLO)
    monkeypatch.setenv("KDCON_EXT_PATH", str(tmp_path))
    text, status = run_kdcon(["--loopback", "--batch", "-c", "!hello", "-c", ".extpath"])
    assert status == 0
    assert "hello world from version 1" in text
    assert f"Extension search path is: {tmp_path}" in text
    assert os.environ["KDCON_EXT_PATH"] == str(tmp_path)


def test_progress_is_an_event_and_a_cancelled_job_ends_in_one_line(tmp_path, live_factory):
    write(tmp_path / "slow.py", '''
        """A long job."""
        from kdcon.api import bang, hook

        reports = []


        @hook("progress")
        def on_progress(target, event):
            reports.append((event.done, event.total))


        @bang
        def scan(target, args):
            """Scan ten pages; the user presses Ctrl+C during the fourth."""
            for page in range(10):
                if page == 3:
                    target.cancel_event.set()
                target.progress(page, 10, "pages")
            return "finished"


        @bang
        def interrupted(target, args):
            """Ctrl+C arriving as KeyboardInterrupt."""
            raise KeyboardInterrupt


        @bang
        def reports_seen(target, args):
            """The progress the hook saw."""
            return repr(reports)
    ''')
    live = live_factory(ext_path=[tmp_path])
    assert live.fails("!scan") == "0: kd> !scan\nThe command was cancelled (Ctrl+C).\n"
    assert live.ok("!reports_seen").endswith("[(0, 10), (1, 10), (2, 10), (3, 10)]\n")
    assert live.fails("!interrupted") == "0: kd> !interrupted\n!interrupted: cancelled\n"
    assert "Evaluate expression: 2 =" in live.ok("? 2")


def test_a_prompt_hook_sees_the_assertion_question(tmp_path, live_factory):
    write(tmp_path / "asked.py", '''
        from kdcon.api import bang, hook

        asked = []


        @hook("prompt")
        def on_prompt(target, event):
            asked.append(event.text)


        @bang
        def questions(target, args):
            """The prompts seen."""
            return "|".join(asked)
    ''')
    live = live_factory(ext_path=[tmp_path])
    live.console.settings.prompt_answers = ["i"]
    live.ok("bp trackdemo!TrackDemoDispatch")
    for line in ("g", "g", "ed nt!KiSimRequest 2", "g", "g"):
        live.ok(line)
    assert live.ok("!questions").endswith(
        "Break, Ignore, Terminate Process or Terminate Thread (bipt)? \n")


def test_golden_loading_session(tmp_path):
    from .transcripts import check_golden

    write(tmp_path / "hello.py", HELLO)
    write(tmp_path / "broken.py", "raise RuntimeError('not today')\n")
    write(tmp_path / "boom.py", '''
        """Raises."""
        from kdcon.api import bang


        @bang
        def boom(target, args):
            """Look up a missing key."""
            return {}["missing"]
    ''')
    text, status = run_kdcon(["--loopback", "--batch", "--ext-path", str(tmp_path),
                              "-c", ".chain", "-c", "!hello", "-c", "!boom", "-c", ".extmatch *",
                              "-c", ".unload hello", "-c", "!hello",
                              "-c", f".load {tmp_path / 'hello.py'}", "-c", "!hello.hello again",
                              "-c", ".help !boom", "-c", "!reload.reload /f trackdemo"])
    assert status == 1
    check_golden("extension_loading", text.replace(str(tmp_path), "<ext>"))


def _kernel_size() -> int:
    """SizeOfImage of the simulated kernel, which grows as the kernel does."""
    import pefile

    from kdcon.tools.simtarget.kernel import IMAGES_DIR

    return pefile.PE(str(IMAGES_DIR / "ntoskrnl.exe"), fast_load=True).OPTIONAL_HEADER.SizeOfImage
