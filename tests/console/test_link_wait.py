"""The first open waits for a link that is not there yet (kd's ``reconnect``), and only for one
that may still appear: kdcon started before kdcon-sim, Ctrl+C, --timeout, paths that never work.

Waits are on output lines and process exits with deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading

import pytest

from kdcon.cli import main
from kdcon.linkwait import may_appear, open_waiting
from kdcon.protocol.transports.errors import LinkError
from kdcon.reconnect import Backoff, Reopen

from .test_reconnect import SimProcess

DEADLINE = 60.0


def _failure(error: int, text: str = "failed") -> LinkError:
    try:
        raise LinkError(text) from OSError(error, os.strerror(error))
    except LinkError as exc:
        return exc


def _kdcon(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kdcon.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stderr_line(proc: subprocess.Popen[str]) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        assert selector.select(timeout=DEADLINE), "kdcon said nothing"
    return proc.stderr.readline()


def test_a_missing_socket_in_an_existing_directory_may_appear(tmp_path):
    assert may_appear(f"unix://{tmp_path}/kd.sock", _failure(errno.ENOENT))
    assert may_appear("tcp://127.0.0.1:9", _failure(errno.ECONNREFUSED))


def test_a_stale_socket_nobody_listens_on_may_appear(tmp_path):
    path = tmp_path / "kd.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    assert may_appear(f"unix://{path}", _failure(errno.ECONNREFUSED))


@pytest.mark.parametrize("case", ["regular file", "directory", "no directory"])
def test_a_path_of_the_wrong_kind_never_appears(tmp_path, case):
    path = tmp_path / "kd.sock"
    if case == "regular file":
        path.write_text("", encoding="utf-8")
    elif case == "directory":
        path.mkdir()
    else:
        path = tmp_path / "missing" / "kd.sock"
    assert not may_appear(f"unix://{path}", _failure(errno.ECONNREFUSED))
    assert not may_appear(f"unix://{path}", _failure(errno.ENOENT))


def test_permission_denied_an_unknown_host_and_a_bad_url_never_appear(tmp_path):
    assert not may_appear(f"unix://{tmp_path}/kd.sock", _failure(errno.EACCES))
    try:
        raise LinkError("unknown host name") from socket.gaierror(socket.EAI_NONAME, "no")
    except LinkError as exc:
        assert not may_appear("tcp://nohost.invalid:5", exc)
    assert not may_appear("unix://", LinkError("no socket path in 'unix://'"))


def test_the_first_open_says_one_line_and_retries_until_the_link_opens(tmp_path):
    spec = f"unix://{tmp_path}/kd.sock"
    tries: list[int] = []
    lines: list[str] = []
    port = object()

    def reopen():
        tries.append(1)
        if len(tries) < 4:
            raise _failure(errno.ENOENT, "no such socket")
        return port

    reopen.spec = spec  # type: ignore[attr-defined]
    opened = open_waiting(reopen, say=lines.append, backoff=Backoff(first=0.001, cap=0.001))
    assert opened is port
    assert len(tries) == 4
    assert lines == ["Waiting to reconnect... (no such socket); Ctrl+C gives up"]


def test_a_path_that_can_never_work_fails_at_once_without_waiting(tmp_path):
    (tmp_path / "file").write_text("", encoding="utf-8")
    lines: list[str] = []
    with pytest.raises(LinkError, match="it is a regular file, not a unix socket"):
        open_waiting(Reopen(f"unix://{tmp_path}/file"), say=lines.append)
    with pytest.raises(LinkError, match="no such socket"):
        open_waiting(Reopen(f"unix://{tmp_path}/none/kd.sock"), say=lines.append)
    assert lines == []


def test_cancelling_the_wait_ends_it(tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(KeyboardInterrupt):
        open_waiting(Reopen(f"unix://{tmp_path}/kd.sock"), say=lambda line: None,
                     cancel=cancel)


def test_the_wait_for_a_missing_socket_ends_at_the_timeout_with_status_3(tmp_path, capsys):
    status = main(["--port", f"unix://{tmp_path}/kd.sock", "--batch", "--timeout", "0.3"])
    err = capsys.readouterr().err.splitlines()
    assert status == 3
    assert err[0].startswith("kdcon: Waiting to reconnect... (cannot connect to ")
    assert err[1].startswith(f"kdcon: --timeout expired: unix://{tmp_path}/kd.sock did not appear")
    assert len(err) == 2


@pytest.mark.slow
def test_kdcon_started_before_the_simulator_waits_and_then_runs_the_script(tmp_path):
    sim = SimProcess(tmp_path / "kd.sock")
    proc = _kdcon("--port", sim.url, "--batch", "--timeout", "60", "-c", "r rip")
    try:
        assert _stderr_line(proc).startswith("kdcon: Waiting to reconnect... (cannot connect to")
        sim.start()
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sim.stop()
    assert proc.returncode == 0, out + err
    assert "kd> r rip\nrip=fffff800" in out
    assert err == ""


def test_ctrl_c_while_waiting_for_the_link_is_one_line_and_status_2(tmp_path):
    proc = _kdcon("--port", f"unix://{tmp_path}/kd.sock", "--batch")
    try:
        assert _stderr_line(proc).startswith("kdcon: Waiting to reconnect...")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    assert err.splitlines() == ["kdcon: stopped waiting for the link (Ctrl+C)"]
    assert out == ""


@pytest.mark.parametrize("link", [["--port", "unix://{dir}/kd.sock", "--no-reconnect"],
                                  ["-k", "com:pipe,port={dir}/kd.sock"]])
def test_a_link_that_does_not_heal_is_not_waited_for(tmp_path, capsys, link):
    args = [part.format(dir=tmp_path) for part in link]
    status = main(args + ["--batch", "--timeout", "30"])
    err = capsys.readouterr().err.splitlines()
    assert status == 2
    assert err == [f"kdcon: cannot open the link: cannot connect to {tmp_path}/kd.sock: "
                   "no such socket: is the VM or simulator running and listening on that path?"]
