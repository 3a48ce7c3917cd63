"""pty:// and device paths over real ptys (os.openpty, our handler, a socat pair): raw bytes and EOF."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kdcon.protocol.transports import LinkError, NativeSerial, open_link
from tests.oracles import require_tool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="ptys are POSIX only")

ALL_BYTES = bytes(range(256))


def _read_exactly(port, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = port.read(max(1, min(n - len(got), port.in_waiting)))
        assert chunk, f"timed out after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


def test_pty_handler_exposes_the_peer_path_and_passes_every_byte_raw():
    with open_link("pty://", timeout=5) as master:
        assert master.peer_name.startswith("/dev/")
        with open_link(master.peer_name, timeout=5) as peer:
            assert isinstance(peer, NativeSerial)
            master.write(ALL_BYTES * 4)  # 0x0D, 0x11, 0x13, 0x7F would be mangled in cooked mode
            assert _read_exactly(peer, 1024) == ALL_BYTES * 4
            peer.write(ALL_BYTES)
            assert _read_exactly(master, 256) == ALL_BYTES


def test_peer_of_pty_handler_sees_link_closed_when_the_master_goes_away():
    master = open_link("pty://", timeout=5)
    peer = open_link(master.peer_name, timeout=5)
    master.write(b"0000")
    assert _read_exactly(peer, 4) == b"0000"
    master.close()
    with pytest.raises(LinkError):
        peer.read(1)
    with pytest.raises(LinkError):
        peer.in_waiting  # noqa: B018 - the property raises EIO underneath (simulated-target.md §8.2)
    peer.close()


def test_pty_master_survives_the_peer_closing_and_reopening():
    with open_link("pty://", timeout=5) as master:
        for word in (b"first", b"again"):
            with open_link(master.peer_name, timeout=5) as peer:
                peer.write(word)
                assert _read_exactly(master, len(word)) == word
        master.timeout = 0.05
        assert master.read(1) == b""  # no EOF: like a UART with the cable unplugged


def test_pty_link_option_creates_and_removes_a_symlink(tmp_path):
    link = tmp_path / "ttyKD"
    master = open_link(f"pty://?link={link}")
    assert os.path.realpath(link) == os.path.realpath(master.peer_name)
    master.close()
    assert not os.path.lexists(link)


def test_os_openpty_slave_opened_by_path_reports_link_closed_on_master_close():
    master_fd, slave_fd = os.openpty()
    path = os.ttyname(slave_fd)
    port = open_link(path, timeout=5)
    os.close(slave_fd)
    os.write(master_fd, b"iiii")
    assert _read_exactly(port, 4) == b"iiii"
    os.close(master_fd)
    with pytest.raises(LinkError):
        port.read(1)
    port.close()


@pytest.fixture
def socat_pair(tmp_path):
    socat = require_tool("socat")
    a, b = tmp_path / "ptyA", tmp_path / "ptyB"
    proc = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    # socat -d -d announces each pty and then the transfer loop: wait for that line.
    for line in proc.stderr:
        if "starting data transfer loop" in line:
            break
    else:
        proc.wait(10)
        pytest.fail("socat exited before creating the pty pair")
    yield proc, str(a), str(b)
    if proc.poll() is None:
        proc.terminate()
    proc.wait(10)
    proc.stderr.close()


def test_socat_pty_pair_carries_every_byte_both_ways(socat_pair):
    _, a, b = socat_pair
    with open_link(a, timeout=5) as left, open_link(b, timeout=5) as right:
        left.write(ALL_BYTES * 8)
        assert _read_exactly(right, 2048) == ALL_BYTES * 8
        right.write(ALL_BYTES)
        assert _read_exactly(left, 256) == ALL_BYTES


def test_socat_exit_ends_the_link_with_link_closed(socat_pair):
    proc, a, _ = socat_pair
    left = open_link(a, timeout=5)
    proc.terminate()
    proc.wait(10)
    with pytest.raises(LinkError):
        left.read(1)
    left.close()
