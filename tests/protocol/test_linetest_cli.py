"""kdcon-linetest end to end: cable tests, KD probes against fake targets, exit statuses.

The fake target answers with bytes built from the reference's vectors (kd-protocol.md
§1.3 and §1.6), not from the protocol core, so this tool is tested on its own.
"""

from __future__ import annotations

import threading

import pytest

from kdcon.protocol.transports import BaudMismatch, FaultyPort, LinkError, open_link
from kdcon.tools.linetest import main
from tests.protocol.test_transport_ptys import socat_pair  # noqa: F401 - a fixture

# Data packet type 2, payload 01..05, id 0x80800800 (kd-protocol.md §1.3, with the serial trailer).
DATA_PACKET = bytes.fromhex("30303030" "0200" "0500" "00088080" "0f000000" "0102030405" "aa")
# RESET as captured (kd-protocol.md §1.6).
RESET_PACKET = bytes.fromhex("69696969" "0600" "0000" "60000080" "00000000")


class FakeTarget:
    """Listens on a link; answers every break-in byte (or any byte) with ``answer``."""

    def __init__(self, port, answer: bytes, *, on_any_byte: bool = False, line=None) -> None:
        self.port = port
        self.answer = answer
        self.on_any_byte = on_any_byte
        self.out = FaultyPort(port, model_tx=line) if line is not None else port
        self.stop = threading.Event()
        self.received = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.port.timeout = 0.05
        while not self.stop.is_set():
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except LinkError:
                return
            self.received += data
            if self.answer and data and (self.on_any_byte or b"\x62" in data):
                self.out.write(self.answer)

    def __enter__(self) -> FakeTarget:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)
        self.port.close()


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "kd.sock")


def test_probe_reports_kd_target_answering_over_a_unix_socket(sock_path, capsys):
    target_end = open_link(f"unix://{sock_path}?listen")
    with FakeTarget(target_end, DATA_PACKET) as target:
        status = main(["--port", f"unix://{sock_path}", "--probe", "--wait", "10"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "KD target answering: data packet type 2 (STATE_MANIPULATE)" in out
    assert target.received.startswith(b"\x62")


def test_probe_over_a_pty_with_a_kd_string_finds_control_packets(capsys):
    target_end = open_link("pty://")
    with FakeTarget(target_end, RESET_PACKET):
        status = main(["-k", f"com:port={target_end.peer_name},baud=115200", "--probe", "--wait", "10"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "control packet type 6 (RESET)" in out


def test_probe_over_tcp_finds_the_target(capsys):
    target_end = open_link("tcp://127.0.0.1:0?listen")
    host, tcp_port = target_end.address
    with FakeTarget(target_end, DATA_PACKET):
        status = main(["--port", f"tcp://{host}:{tcp_port}", "--probe", "--wait", "10"])
    assert status == 0 and "KD target answering" in capsys.readouterr().out


def test_probe_reports_wrong_baud_and_guesses_the_targets_rate(sock_path, capsys):
    target_end = open_link(f"unix://{sock_path}?listen")
    line = BaudMismatch(tx_baud=57600, rx_baud=115200)
    with FakeTarget(target_end, RESET_PACKET + DATA_PACKET, on_any_byte=True, line=line):
        status = main(["--port", f"unix://{sock_path}", "--probe", "--wait", "1.5"])
    out = capsys.readouterr().out
    assert status == 1
    assert "bytes arrive but look like a wrong baud rate" in out
    assert "probably runs at 57600 baud" in out


def test_probe_of_a_silent_peer_says_what_to_check(sock_path, capsys):
    target_end = open_link(f"unix://{sock_path}?listen")
    with FakeTarget(target_end, b"") as target:
        status = main(["--port", f"unix://{sock_path}", "--probe", "--wait", "0.3"])
    out = capsys.readouterr().out
    assert status == 1
    assert "silent: nothing arrived" in out and "bcdedit" in out
    assert target.received.startswith(b"\x62")


def test_loopback_plug_over_pyserial_loop_url_is_ok(capsys):
    assert main(["--port", "loop://", "--loopback-plug"]) == 0
    out = capsys.readouterr().out
    assert "received 1024, lost 0, corrupted 0, extra 0: OK" in out and "result: cable OK" in out


def test_loopback_plug_with_injected_drops_reports_loss(capsys):
    status = main(["--port", "loop://", "--loopback-plug", "--faults", "drop=0.01,seed=5"])
    out = capsys.readouterr().out
    assert status == 1
    assert "bytes lost" in out and "result: problem found" in out


def test_paced_unix_cable_between_two_ends_is_ok_both_ways(sock_path, capsys):
    status = main(["--port", f"unix://{sock_path}?listen", "--peer", f"unix://{sock_path}", "--pace", "115200"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "A->B: sent 1024, received 1024" in out and "B->A: sent 1024, received 1024" in out


def test_socat_pty_cable_is_ok(socat_pair, capsys):
    _, a, b = socat_pair
    status = main(["--port", a, "--peer", b])
    out = capsys.readouterr().out
    assert status == 0, out


def test_cable_with_nothing_at_the_far_end_reports_no_connection(sock_path, capsys):
    # The peer end is open but nobody copies bytes across: nothing arrives.
    listener = open_link(f"unix://{sock_path}-x?listen")
    try:
        status = main(["--port", f"unix://{sock_path}-x", "--loopback-plug", "--wait", "0.2"])
    finally:
        listener.close()
    out = capsys.readouterr().out
    assert status == 1
    assert "no connection: nothing arrived" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "/dev/ttyKDCON-missing", "--probe"],
        ["--port", "bogus://x", "--probe"],
        ["-k", "net:port=50000,key=1.2.3.4", "--probe"],
        ["--port", "loop://", "--peer", "/dev/ttyKDCON-missing"],
    ],
)
def test_links_that_cannot_open_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kdcon-linetest: error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--port", "loop://"],
        ["--port", "loop://", "--probe", "--loopback-plug"],
        ["--port", "loop://", "--probe", "--baud", "fast"],
        ["--port", "loop://", "--probe", "--faults", "flop=1"],
        ["--port", "loop://", "--probe", "--wait", "-1"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err
