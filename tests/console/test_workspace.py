"""Workspaces: saved by one session and restored in the next; files that cannot be used.

The sessions are the real command line (cli.main) over the in-process simulated
target. A run without ``--batch`` reads its commands from standard input (the plain
prompt) and saves its workspace when it ends, as an interactive session does.
"""

from __future__ import annotations

import contextlib
import io
import os
import tomllib

import pytest

from kdcon.workspace import WorkspaceError, default_path, read, write

from .transcripts import run_kdcon

CORRUPT = b"version = 1\n[[breakpoints]\nexpression = 'trackdemo!TrackDemoTick'\n\xff\xfe"


def _interactive(args: list[str], typed: str) -> tuple[str, int]:
    """kdcon without --batch, its prompt reading ``typed`` from a pipe."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_stdin(typed))
        return run_kdcon(args)


@contextlib.contextmanager
def _stdin(text: str):
    import sys

    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def test_a_saved_workspace_restores_breakpoints_sx_and_aliases_in_a_new_session(tmp_path):
    workspace = tmp_path / "ws.toml"
    text, status = run_kdcon([
        "--loopback", "--batch", "--workspace", str(workspace),
        "-c", 'bu trackdemo!TrackDemoTick 2 ".echo tick seen; g"',
        "-c", "bu /1 trackdemo!TrackDemoDispatch", "-c", "bd 1",
        "-c", "ba w4 trackdemo!TrackDemoTickCount", "-c", "bd 2",
        "-c", "sxe ld:trackdemo", "-c", "sxi av",
        "-c", "as Ticks dd trackdemo!TrackDemoTickCount L1",
        "-c", "n 10", "-c", "bp nt!KeBugCheck", "-c", ".wsave"])
    assert status == 0, text
    assert "Workspace saved to " in text
    saved = tomllib.loads(workspace.read_text(encoding="utf-8"))
    assert [(bp["expression"], bp["one_shot"]) for bp in saved["breakpoints"]] == [
        ("trackdemo!TrackDemoTick", False), ("trackdemo!TrackDemoDispatch", True),
        ("trackdemo!TrackDemoTickCount", False), ("nt!KeBugCheck", False)]
    bugcheck = int(saved["breakpoints"][3]["address"], 16)     # the bp's address, kept

    text, status = run_kdcon(["--batch", "--timeout", "60", "--workspace", str(workspace),
                              "-c", "bl", "-c", "al", "-c", "sxe", "-c", "n", "-c", "g", "-c", "g"])
    assert status == 0, text
    assert f"Workspace {workspace} opened: 4 breakpoints, 1 alias" in text
    listing = text.split("kd> bl\n", 1)[1].split("0: kd> al", 1)[0].splitlines()
    assert listing == [
        ' 0 e  fffff800`01084520     0002 (0002) trackdemo!TrackDemoTick ".echo tick seen; g"',
        " 1 d  fffff800`010840b0     0001 (0001) trackdemo!TrackDemoDispatch",
        " 2 d  fffff800`01087048 w 4 0001 (0001) trackdemo!TrackDemoTickCount",
        f" 3 e  {bugcheck >> 32:08x}`{bugcheck & 0xFFFFFFFF:08x}     0001 (0001) nt!KeBugCheck",
    ]
    assert " Ticks            dd trackdemo!TrackDemoTickCount L1" in text
    assert "      av - ignore" in text and "      ld - break" in text
    assert "base is 10" in text
    assert "tick seen" in text


def test_a_corrupt_workspace_is_left_untouched_and_the_session_is_usable(tmp_path):
    workspace = tmp_path / "ws.toml"
    workspace.write_bytes(CORRUPT)
    before = os.stat(workspace)
    text, status = _interactive(["--loopback", "--workspace", str(workspace)],
                                "bu trackdemo!TrackDemoTick\n.wsave\n? 1+1\nq\n")
    # The plain prompt (0: kd> ) stays at the start of the line a command's answer is on.
    lines = [line[line.index("Workspace "):] for line in text.splitlines()
             if f"Workspace {workspace}" in line]
    assert len(lines) == 2, text
    assert lines[0].startswith(f"Workspace {workspace} is not UTF-8 text") or \
        lines[0].startswith(f"Workspace {workspace} is not valid TOML")
    assert lines[0].endswith("starting with defaults, and the file is left as it is "
                             "(.wsave /f replaces it)")
    assert lines[1] == lines[0].split("; starting with defaults")[0] + \
        "; it was not saved (.wsave /f replaces it)"
    assert "Evaluate expression: 2 = 00000000`00000002" in text
    assert "Traceback" not in text
    assert workspace.read_bytes() == CORRUPT
    assert os.stat(workspace).st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws.toml"]


def test_an_interactive_session_saves_its_workspace_when_it_ends(tmp_path):
    workspace = tmp_path / "ws.toml"
    workspace.write_text('version = 1\nmine = "kept"\n[output]\nradix = 16\nfont = "kept too"\n',
                         encoding="utf-8")
    text, status = _interactive(["--loopback", "--workspace", str(workspace)],
                                "bu trackdemo!TrackDemoTick\nq\n")
    assert f"Workspace saved to {workspace}" in text
    saved = tomllib.loads(workspace.read_text(encoding="utf-8"))
    assert saved["mine"] == "kept" and saved["output"]["font"] == "kept too"
    assert saved["breakpoints"][0]["expression"] == "trackdemo!TrackDemoTick"
    assert saved["connection"] == {"loopback": True}


def test_a_workspace_gives_the_connection_when_the_command_line_has_none(tmp_path):
    workspace = tmp_path / "ws.toml"
    workspace.write_text("version = 1\n[connection]\nloopback = true\n", encoding="utf-8")
    text, status = run_kdcon(["--batch", "--workspace", str(workspace), "-c", "? 2"])
    assert status == 0, text
    assert "Opened kdsim (simulated target, child process)" in text


def test_entries_that_cannot_be_used_are_one_line_each_and_breakpoints_are_written_back(tmp_path):
    workspace = tmp_path / "ws.toml"
    workspace.write_text(
        "version = 1\n[output]\nradix = 7\n[events]\nav = \"sxq\"\n"
        "[[breakpoints]]\nkind = \"bu\"\nexpression = \"trackdemo!TrackDemoTick\"\npasses = 0\n"
        "[[breakpoints]]\nkind = \"ba\"\nexpression = \"nosuch!Global\"\naccess = \"w\"\nsize = 4\n"
        "[[breakpoints]]\nkind = \"bu\"\nexpression = \"trackdemo!DriverEntry\"\n",
        encoding="utf-8")
    text, status = run_kdcon(["--loopback", "--batch", "--workspace", str(workspace),
                              "-c", "bl", "-c", ".wsave", "-c", ".wsave /f"])
    opening = text.split("kd> bl\n", 1)[0]
    problems = [line for line in opening.splitlines()
                if line.startswith(f"Workspace {workspace}: ")]
    assert problems == [
        f"Workspace {workspace}: output.radix = 7: use 8, 10 or 16",
        f"Workspace {workspace}: events.av = 'sxq': use an sx event name and one of "
        "sxe, sxd, sxn, sxi",
        f"Workspace {workspace}: breakpoint 'trackdemo!TrackDemoTick': passes must be a "
        "number from 1",
        f"Workspace {workspace}: breakpoint 'nosuch!Global': its address is not known now; "
        "kept in the workspace file",
    ]
    assert " 0 e  fffff800`01083900     0001 (0001) trackdemo!DriverEntry" in text
    assert f"Workspace {workspace}: some of its settings could not be used; it was not saved " \
        "(.wsave /f replaces it)" in text
    saved = tomllib.loads(workspace.read_text(encoding="utf-8"))
    kept = [(bp["expression"], bp.get("passes")) for bp in saved["breakpoints"]]
    assert kept == [("trackdemo!DriverEntry", 1), ("trackdemo!TrackDemoTick", 0),
                    ("nosuch!Global", None)]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    workspace = tmp_path / "ws.toml"
    write(workspace, {"aliases": {"a": "1"}})
    old = workspace.read_bytes()

    def refuse(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(WorkspaceError, match="No space left on device"):
        write(workspace, {"aliases": {"a": "2"}})
    assert workspace.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws.toml"]
    assert read(workspace)["aliases"] == {"a": "1"}


def test_each_link_has_its_own_default_workspace_under_the_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    first = default_path("unix:///tmp/vm1.sock")
    second = default_path("unix:///tmp/vm2.sock")
    assert first != second
    assert first.parent == second.parent
    assert str(first).startswith(str(tmp_path)) and first.suffix == ".toml"
    assert first.name.startswith("unix_tmp_vm1.sock-")


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_workspace_that_is_no_file_is_one_line_and_never_holds_the_connection(tmp_path, kind):
    workspace = tmp_path / "ws.toml"
    if kind == "fifo":
        os.mkfifo(workspace)          # nobody writes it: opening it to read would wait
    else:
        workspace.mkdir()
    text, status = run_kdcon(["--loopback", "--batch", "--workspace", str(workspace),
                              "-c", "? 1+1"])
    assert status == 0, text
    expected = "is not a regular file" if kind == "fifo" else "is a directory, not a file"
    assert f"Workspace {workspace} {expected}; starting with defaults" in text
    assert "Evaluate expression: 2 = 00000000`00000002" in text


def test_one_breakpoint_and_one_alias_are_counted_in_the_singular(tmp_path):
    workspace = tmp_path / "one.toml"
    text, status = run_kdcon(["--loopback", "--batch", "--workspace", str(workspace),
                              "-c", "bu trackdemo!TrackDemoTick", "-c", "as One .echo 1",
                              "-c", ".wsave", "-c", f".wopen {workspace}"])
    assert status == 0, text
    assert f"Workspace saved to {workspace}: 1 breakpoint, 1 alias\n" in text
    assert f"Workspace {workspace} opened: 1 breakpoint, 1 alias\n" in text
