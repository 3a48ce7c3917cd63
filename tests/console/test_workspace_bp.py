"""Workspaces keep ``bp`` breakpoints and ``.srcpath`` as WinDbg's do: a ``bp`` comes
back at its symbol (wherever its module is now), else at its saved address with a line
when its module moved; one that cannot be set now is written back as it was."""

from __future__ import annotations

import tomllib

from .transcripts import run_kdcon

TICK = 0xFFFFF80001084520          # trackdemo!TrackDemoTick in the simulated kernel
TRACKDEMO = 0xFFFFF80001080000


def _entry(**fields: object) -> str:
    lines = ["[[breakpoints]]", 'kind = "bp"']
    for key, value in fields.items():
        lines.append(f"{key} = {value!r}".replace("'", '"') if isinstance(value, str)
                     else f"{key} = {str(value).lower()}")
    return "\n".join(lines) + "\n"


def _listing(text: str) -> list[str]:
    return text.split("kd> bl\n", 1)[1].split("0: kd> ", 1)[0].splitlines()


def test_bp_by_symbol_by_address_and_at_the_current_line_come_back_by_symbol(tmp_path):
    workspace = tmp_path / "ws.toml"
    text, status = run_kdcon([
        "--loopback", "--batch", "--workspace", str(workspace),
        "-c", 'bp trackdemo!TrackDemoTick 2 ".echo tick"', "-c", "bp fffff800`01083900",
        "-c", "bp /1 trackdemo!TrackDemoTick+0x19", "-c", "bd 1", "-c", "bl", "-c", ".wsave"])
    assert status == 0, text
    before = _listing(text)
    saved = tomllib.loads(workspace.read_text(encoding="utf-8"))["breakpoints"]
    assert [(bp["kind"], bp["symbol"], int(bp["address"], 16)) for bp in saved] == [
        ("bp", "trackdemo!TrackDemoTick", TICK),
        ("bp", "trackdemo!DriverEntry", 0xFFFFF80001083900),
        ("bp", "trackdemo!TrackDemoTick+0x19", TICK + 0x19)]

    text, status = run_kdcon(["--batch", "--timeout", "60", "--workspace", str(workspace),
                              "-c", "bl", "-c", ".bpcmds"])
    assert status == 0, text
    assert f"Workspace {workspace} opened: 3 breakpoints, 0 aliases" in text
    assert _listing(text) == before
    assert "bp2 /1 trackdemo!TrackDemoTick+0x19;" in text


def test_a_bp_follows_its_symbol_when_its_module_moved(tmp_path):
    workspace = tmp_path / "ws.toml"
    workspace.write_text("version = 1\n[connection]\nloopback = true\n" + _entry(
        id=4, expression="fffff800`01074520", address="0xfffff80001074520",
        module="trackdemo", module_base="0xfffff80001070000",
        symbol="trackdemo!TrackDemoTick"), encoding="utf-8")
    text, status = run_kdcon(["--batch", "--timeout", "60", "--workspace", str(workspace),
                              "-c", "bl"])
    assert status == 0, text
    assert _listing(text) == [" 4 e  fffff800`01084520     0001 (0001) trackdemo!TrackDemoTick"]
    assert "moved" not in text


def test_a_bp_without_a_symbol_comes_back_at_its_address_with_a_line_if_its_module_moved(
        tmp_path):
    workspace = tmp_path / "ws.toml"
    workspace.write_text("version = 1\n[connection]\nloopback = true\n" + _entry(
        id=0, expression="fffff800`01084520", address="0xfffff80001084520",
        module="trackdemo", module_base="0xfffff80001070000") + _entry(
        id=1, expression="fffff800`010840b0", address="0xfffff800010840b0",
        module="trackdemo", module_base=f"{TRACKDEMO:#x}"), encoding="utf-8")
    text, status = run_kdcon(["--batch", "--timeout", "60", "--workspace", str(workspace),
                              "-c", "bl", "-c", ".wsave"])
    assert status == 0, text
    moved = [line for line in text.splitlines() if "moved" in line]
    assert moved == [f"Workspace {workspace}: breakpoint at fffff800`01084520: module "
                     "trackdemo moved from fffff800`01070000 to fffff800`01080000; set at "
                     "its saved address"]
    assert _listing(text) == [
        " 0 e  fffff800`01084520     0001 (0001) trackdemo!TrackDemoTick",
        " 1 e  fffff800`010840b0     0001 (0001) trackdemo!TrackDemoDispatch"]
    # Saved again from the session: now with the symbol and the module where it is.
    saved = tomllib.loads(workspace.read_text(encoding="utf-8"))["breakpoints"]
    assert [(bp["symbol"], bp["module_base"]) for bp in saved] == [
        ("trackdemo!TrackDemoTick", f"{TRACKDEMO:#x}"),
        ("trackdemo!TrackDemoDispatch", f"{TRACKDEMO:#x}")]


def test_a_bp_that_cannot_be_set_now_is_one_line_and_written_back_as_it_was(tmp_path):
    workspace = tmp_path / "ws.toml"
    unresolved = _entry(id=2, expression="nosuch!Function", symbol="nosuch!Function",
                        address="0xfffff80002000000")
    broken = _entry(id=3, expression="trackdemo!TrackDemoTick")
    workspace.write_text("version = 1\n[connection]\nloopback = true\n" + unresolved + broken,
                         encoding="utf-8")
    text, status = run_kdcon(["--batch", "--timeout", "60", "--workspace", str(workspace),
                              "-c", "bl", "-c", ".wsave /f"])
    assert status == 0, text
    lines = [line for line in text.splitlines() if line.startswith(f"Workspace {workspace}: ")]
    assert lines == [
        f"Workspace {workspace}: breakpoint 'nosuch!Function': its symbol nosuch!Function "
        "does not resolve now; kept in the workspace file",
        f"Workspace {workspace}: breakpoint 'trackdemo!TrackDemoTick': a bp needs its address "
        "(a number as a string) or its symbol; kept in the workspace file"]
    assert _listing(text) == []
    saved = tomllib.loads(workspace.read_text(encoding="utf-8"))["breakpoints"]
    assert [bp["expression"] for bp in saved] == ["nosuch!Function", "trackdemo!TrackDemoTick"]
    assert saved[0]["address"] == "0xfffff80002000000"


def test_the_source_path_is_kept(tmp_path):
    workspace = tmp_path / "ws.toml"
    text, status = run_kdcon(["--loopback", "--batch", "--workspace", str(workspace),
                              "-c", f".srcpath {tmp_path}", "-c", ".srcpath+ /src/other",
                              "-c", ".wsave"])
    assert status == 0, text
    saved = tomllib.loads(workspace.read_text(encoding="utf-8"))
    assert saved["source"] == {"path": f"{tmp_path};/src/other"}
    text, status = run_kdcon(["--batch", "--timeout", "60", "--workspace", str(workspace),
                              "-c", ".srcpath"])
    assert status == 0, text
    assert f"kd> .srcpath\nSource search path is: {tmp_path};/src/other\n" in text


def test_opening_the_workspace_again_replaces_its_bp_instead_of_adding_one(tmp_path):
    workspace = tmp_path / "ws.toml"
    text, status = run_kdcon(["--loopback", "--batch", "--workspace", str(workspace),
                              "-c", "bp fffff800`01084520", "-c", ".wsave",
                              "-c", f".wopen {workspace}", "-c", "bl"])
    assert status == 0, text
    assert _listing(text) == [" 0 e  fffff800`01084520     0001 (0001) trackdemo!TrackDemoTick"]
