"""kdcon-sim as users run it: a subprocess listening on unix://, a pty, and a noisy line.

The host side is the protocol layer's KdLink over open_link; the "listening on" line
is waited for on the child's stdout with a selector and a deadline.
"""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys

import pefile
import pytest

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.events import DebugPrint
from kdcon.protocol.transports import open_link
from kdcon.tools.simtarget.cli import main

from ..linecheck import checksum_blind_spot
from .kd_host import KdHost
from .kd_sim_fixtures import IMAGES, Booted, exception_code, follow_boot

TESTDRV = IMAGES / "test" / "testdrv.sys"
MISSING = IMAGES / "test" / "missingimports.sys"
START_TIMEOUT = 20.0


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kdcon.tools.simtarget.cli import main; "
         "sys.exit(main())", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    ready = selector.select(timeout=START_TIMEOUT)
    selector.close()
    if not ready:
        proc.kill()
        pytest.fail(f"kdcon-sim printed nothing within {START_TIMEOUT} s")
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        pytest.fail(f"kdcon-sim said {line!r}; stderr: {proc.stderr.read()}")
    return proc, line[len("listening on "):]


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


def _attach(url: str) -> Booted:
    port = open_link(url)
    booted = Booted(sim=None, host=KdHost(port, start=False))  # type: ignore[arg-type]
    # A debugger attaching to a target that already talks.
    follow_boot(booted, timeout=START_TIMEOUT, first=booted.host.reset(START_TIMEOUT))
    return booted


def test_unix_socket_serves_a_debugger_with_a_user_driver_beside_trackdemo(tmp_path):
    path = tmp_path / "kd.sock"
    proc, url = _start("--listen", f"unix://{path}", "--driver", str(TESTDRV))
    try:
        assert url == f"unix://{path}"
        booted = _attach(url)
        # trackdemo's DriverEntry breaks in before the next image is loaded.
        booted.host.continue2()
        load = booted.host.next_stop(timeout=START_TIMEOUT)
        assert load.data.rstrip(b"\0").endswith(b"\\testdrv.sys")
        booted.loads["testdrv.sys"] = (load.message.u.BaseOfDll, load.message.u.SizeOfImage)
        assert list(booted.loads) == ["ntoskrnl.exe", "hal.dll", "kdcom.dll",
                                      "trackdemo.sys", "testdrv.sys"]
        size = pefile.PE(str(TESTDRV), fast_load=True).OPTIONAL_HEADER.SizeOfImage
        assert booted.loads["testdrv.sys"][1] == size
        assert booted.host.request(A.DbgKdGetVersionApi).return_status == 0
        booted.host.continue2()
        booted.host.wait_for(DebugPrint, START_TIMEOUT, where=lambda e: b"testdrv" in e.text)
        booted.host.close()
        # A second debugger attaches to the same, now running, target and breaks in.
        again = KdHost(open_link(url))
        again.breakin()
        stop = again.next_stop(timeout=START_TIMEOUT)
        assert exception_code(stop) == 0x80000003
        again.close()
    finally:
        assert _stop(proc) == 0
    assert not path.exists()


def test_pty_serves_a_debugger_on_the_slave_path():
    proc, url = _start("--listen", "pty", "--no-trackdemo")
    try:
        assert url.startswith("/dev/")
        port = open_link(url)
        host = KdHost(port, start=False)
        first = host.reset(START_TIMEOUT)
        assert first.data.rstrip(b"\0").endswith(b"ntoskrnl.exe")
        assert host.request(A.DbgKdGetVersionApi).return_status == 0
        host.close()
    finally:
        assert _stop(proc) == 0


def test_noisy_line_still_carries_the_boot_and_a_large_read(tmp_path):
    path = tmp_path / "noisy.sock"
    proc, url = _start("--listen", f"unix://{path}", "--faults",
                       "flip=2e-5,drop=2e-4,dup=2e-4,seed=11")
    try:
        booted = _attach(url)
        base = booted.base("ntoskrnl.exe")
        image = (IMAGES / "ntoskrnl.exe").read_bytes()[:0x400]
        got = booted.host.read_virtual(base, 0x400)
        # Exact, or shifted by the one fault the KD byte sum cannot see (linecheck.py).
        assert got == image or checksum_blind_spot(got, image)
        stats = booted.host.conn.stats
        booted.host.close()
    finally:
        assert _stop(proc) == 0
    assert stats["bad_packets"] + stats["garbage_bytes"] + stats["resends_received"] > 0


@pytest.mark.parametrize("argv, says", [
    (["--listen", "ftp://x"], "use unix:///path, tcp://127.0.0.1:PORT or pty"),
    (["--listen", "tcp://10.1.2.3:5000"], "not a loopback address"),
    (["--listen", "tcp://127.0.0.1"], "use tcp://127.0.0.1:PORT"),
    (["--listen", "unix:///tmp/x?listen"], "options after '?'"),
    (["--listen", "pty", "--driver", "/nonexistent/drv.sys"], "no such file"),
])
def test_bad_arguments_end_in_one_line_and_status_2(capsys, argv, says):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


def test_driver_with_missing_imports_is_refused_listing_every_one(capsys):
    assert main(["--listen", "pty", "--driver", str(MISSING)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "KsimNoSuchRoutine" in err[0] and "ZwNoSuchService" in err[0]


def test_usage_error_from_argparse_is_status_2(capsys):
    assert main(["--seed", "x"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_refused_listen_address_is_status_1(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a socket")
    assert main(["--listen", f"unix://{blocker}", "--no-trackdemo"]) == 1
    assert "kdcon-sim:" in capsys.readouterr().err


def test_tcp_loopback_reports_the_bound_port_and_serves():
    proc, url = _start("--listen", "tcp://127.0.0.1:0", "--no-trackdemo")
    try:
        assert url.startswith("tcp://127.0.0.1:") and not url.endswith(":0")
        host = KdHost(open_link(url), start=False)
        first = host.reset(START_TIMEOUT)
        assert first.data.rstrip(b"\0").endswith(b"ntoskrnl.exe")
        host.close()
    finally:
        assert _stop(proc) == 0
