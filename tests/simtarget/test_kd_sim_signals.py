"""SIGTERM ends kdcon-sim cleanly while a debugger's requests are in flight.

The real program over a unix socket: a host attaches and keeps requests going from a
few threads (one of them a search the target takes about 0.1 s to answer, so a request
is nearly always being answered); SIGTERM arrives at varying moments, twice in a row in
every other attempt. Each time kdcon-sim must exit 0 within a second, say at most one
line (never a traceback) and remove its socket.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from kdcon.protocol import Role
from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.errors import ProtocolError, TransportError
from kdcon.protocol.link import KdLink
from kdcon.protocol.transports import open_link

from .test_kd_sim_cli import _start

EXIT_BOUND = 1.0
KERNEL = 0xFFFFF800_01000000   # the image area's base, where ntoskrnl.exe lies for seed 0
POOL, POOL_SIZE = 0xFFFFFA80_00000000, 0x1000000
ABSENT = b"\x5a\xa5kdcon-absent\xa5\x5a"


def _keep_asking(link: KdLink, done: threading.Event, search: bool) -> None:
    """Small reads, or searches of the whole pool for a pattern it does not hold (the
    target spends about 0.1 s answering each): one is nearly always in flight."""
    while not done.is_set():
        try:
            if search:
                link.request(A.DbgKdSearchMemoryApi, dict(SearchAddress=POOL, SearchLength=POOL_SIZE,
                                                          PatternLength=len(ABSENT)), ABSENT, timeout=2.0, retries=0)
            else:
                link.request(A.DbgKdReadVirtualMemoryApi, dict(
                    TargetBaseAddress=KERNEL, TransferCount=16, ActualBytesRead=0), timeout=2.0, retries=0)
        except (TransportError, ProtocolError):
            return


@pytest.mark.parametrize("attempt", range(5))
def test_sigterm_with_requests_in_flight_exits_within_a_second_without_a_traceback(tmp_path, attempt):
    socket_path = tmp_path / "kd.sock"
    proc, url = _start("--listen", f"unix://{socket_path}", "--no-trackdemo")
    link = KdLink(open_link(url), Role.HOST, start=False)
    done = threading.Event()
    askers = [threading.Thread(target=_keep_asking, args=(link, done, n == 0)) for n in range(3)]
    try:
        link.sync(10)
        for asker in askers:
            asker.start()
        # Let the requests get going; vary the moment the signal lands.
        until = time.monotonic() + 0.02 * (attempt + 1)
        while time.monotonic() < until:
            done.wait(0.005)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        if attempt % 2:
            # A second signal while the first is being handled, as an impatient user's.
            done.wait(0.01)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
        took = time.monotonic() - sent
    finally:
        done.set()
        for asker in askers:
            if asker.is_alive() or asker.ident is not None:
                asker.join(5)
        link.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert "Traceback" not in err and len(err.splitlines()) <= 1, err
    assert status == 0 and took < EXIT_BOUND, (status, took)
    assert not socket_path.exists()
