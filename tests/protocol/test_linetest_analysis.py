"""kdcon-linetest's pure verdicts: cable comparisons and probe answers, cause by cause."""

from __future__ import annotations

import pytest

from kdcon.protocol.transports import FaultModel, resample_at_wrong_baud
from kdcon.tools.linetest import (
    PATTERN,
    analyse_cable,
    analyse_probe,
    cable_pattern,
    guess_sender_baud,
    guess_target_baud,
    run_probe,
)

SENT = cable_pattern(4)
DATA_PACKET = bytes.fromhex("30303030" "0200" "0500" "00088080" "0f000000" "0102030405" "aa")
DBGPRINT_START = bytes.fromhex("30303030" "0300" "2e00" "00000000" "df0b0000")
RESET_PACKET = bytes.fromhex("69696969" "0600" "0000" "60000080" "00000000")


def test_pattern_holds_every_byte_value_in_each_round_and_never_repeats():
    assert SENT[:256] == PATTERN
    for r in range(4):
        assert sorted(SENT[256 * r : 256 * (r + 1)]) == list(range(256))
    assert SENT[256:512] != SENT[512:768]


def test_identical_stream_is_ok():
    report = analyse_cable(SENT, SENT, 115200)
    assert report.ok and (report.lost, report.corrupted, report.extra) == (0, 0, 0)


def test_nothing_received_is_no_connection():
    report = analyse_cable(SENT, b"", 115200)
    assert not report.ok and report.cause.startswith("no connection") and report.lost == len(SENT)


def test_swallowed_xon_xoff_bytes_name_software_flow_control():
    received = bytes(b for b in SENT if b not in (0x11, 0x13))
    report = analyse_cable(SENT, received, 115200)
    assert "XON/XOFF" in report.cause and report.lost == 8


def test_cr_turned_into_lf_names_a_cooked_tty():
    report = analyse_cable(SENT, SENT.replace(b"\r", b"\n"), 115200)
    assert "raw mode" in report.cause


def test_prefix_then_nothing_is_a_flow_control_stall():
    report = analyse_cable(SENT, SENT[:300], 115200)
    assert "stall" in report.cause and "300 of 1024" in report.cause


@pytest.mark.parametrize("sender", [57600, 38400, 19200])
def test_stream_resampled_from_another_rate_is_a_baud_mismatch_with_that_rate(sender):
    received = resample_at_wrong_baud(SENT, sender, 115200)
    report = analyse_cable(SENT, received, 115200)
    assert report.cause.startswith("baud mismatch") and report.guessed_baud == sender
    assert guess_sender_baud(SENT, received, 115200) == sender


def test_single_bit_flips_are_line_noise_with_counts():
    model = FaultModel(9, bit_flip=0.01)
    received = model.apply(SENT)
    report = analyse_cable(SENT, received, 115200)
    assert report.cause.startswith("line noise")
    assert report.corrupted == model.counts.bit_flips > 0 and report.lost == report.extra == 0


def test_scattered_drops_are_loss_with_counts():
    model = FaultModel(10, drop=0.01)
    received = model.apply(SENT)
    report = analyse_cable(SENT, received, 115200)
    assert report.cause.startswith("bytes lost") and report.lost == model.counts.drops > 0


def test_garbage_bursts_are_extra_bytes():
    model = FaultModel(11, garbage=0.005, garbage_len=(3, 6))
    report = analyse_cable(SENT, model.apply(SENT), 115200)
    assert report.extra == model.counts.garbage_bytes and report.cause.startswith("extra bytes")


@pytest.mark.parametrize("split", ["whole", "leading_garbage", "trailing_bytes"])
@pytest.mark.parametrize(
    "packet, expected",
    [(DATA_PACKET, "data packet type 2 (STATE_MANIPULATE)"), (RESET_PACKET, "control packet type 6 (RESET)"),
     (DBGPRINT_START, "data packet type 3 (DEBUG_IO)")],
)
def test_leaders_anywhere_mean_a_kd_target_is_answering(packet, expected, split):
    received = {"whole": packet, "leading_garbage": b"\x00\xff\x13" + packet, "trailing_bytes": packet + b"\x99" * 9}[
        split
    ]
    report = analyse_probe(received, 115200)
    assert report.ok and expected in report.lines[0]


def test_a_lone_leader_without_type_still_counts_as_answering():
    report = analyse_probe(b"iiii", 115200)
    assert report.ok and report.lines[0] == "KD target answering: control packet; 4 bytes received in 0.0 s"


def test_nothing_back_is_silent_with_advice():
    report = analyse_probe(b"", 115200, waited=3.0)
    assert report.kind == "silent" and "3.0 s" in report.lines[0] and "bcdedit" in report.lines[1]


def test_printable_text_is_a_console_not_kd():
    report = analyse_probe(b"Welcome to Linux\r\nlogin: ", 115200)
    assert report.kind == "text" and not report.ok


@pytest.mark.parametrize("target_rate", [57600, 38400, 19200])
def test_kd_packets_sent_at_another_rate_are_wrong_baud_with_a_guess(target_rate):
    received = resample_at_wrong_baud(RESET_PACKET, target_rate, 115200) + resample_at_wrong_baud(
        DATA_PACKET, target_rate, 115200
    )
    report = analyse_probe(received, 115200)
    assert report.kind == "wrong_baud" and report.guessed_baud == target_rate
    assert guess_target_baud(received, 115200) == target_rate


def test_mostly_nul_bytes_without_a_guess_point_to_a_slower_target():
    received = resample_at_wrong_baud(RESET_PACKET * 3, 9600, 115200)
    report = analyse_probe(received, 115200)
    assert report.kind == "wrong_baud" and "slower than 115200" in report.lines[-1]


class ScriptedPort:
    """Answers a break-in with ``answer``, delivered one byte per read."""

    def __init__(self, answer: bytes) -> None:
        self.answer = bytearray()
        self._script = answer
        self.timeout = 0
        self.written = bytearray()

    def write(self, data: bytes) -> int:
        self.written += data
        if b"\x62" in data:
            self.answer += self._script
        return len(data)

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        out = bytes(self.answer[:1])
        del self.answer[:1]
        return out


def test_probe_collects_a_leader_split_across_one_byte_reads():
    port = ScriptedPort(b"\xff\x00" + DATA_PACKET)
    report = run_probe(port, 115200, wait=5.0)
    assert port.written == b"\x62"
    assert report.ok and "type 2" in report.lines[0]
