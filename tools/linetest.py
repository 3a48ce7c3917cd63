"""kdcon-linetest: is the cable working, and is a KD target answering at the far end?

Two ends on this host (``--port A --peer B``) or one port with a loopback plug
(``--loopback-plug``): every byte value is sent, the received bytes are compared with
what was sent, and the likely cause of a difference is named: nothing arrives (no
connection), the bytes are garbled consistently (baud mismatch; the sender's rate is
guessed by replaying the pattern through the 8N1 sampling model in
``kdcon.protocol.transports.uart``), 0x11/0x13 vanish (XON/XOFF), CR becomes LF (tty
not raw), the stream stops part way (flow control), scattered losses or bit errors
(noise, overruns).

One end with a target (``--probe``): the break-in byte 0x62 is sent (kd-protocol.md
§3.4) and the answer is classified: a KD leader ("0000" data, "iiii" control, §1.1)
means "KD target answering"; our own break-in bytes coming back are an echo (a
loopback plug, ``loop://``); other bytes without a leader look like a wrong baud rate
(or a text console); nothing at all is "silent", with what to check.

The line rate analysed and reported is the link's: a ``-k`` string's ``baud=`` wins
over ``--baud``.

Output is a few plain lines; exit status 0 when all is well, 1 when a problem was
found, 2 for usage errors and links that cannot be opened. This tool does not speak the
protocol beyond recognising leaders: it must work when nothing else does.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kdcon.protocol.errors import TransportError
from kdcon.protocol.transports import add_link_arguments, open_link_from_args
from kdcon.protocol.transports.cli import link_baud, open_checked
from kdcon.protocol.transports.uart import resample_at_wrong_baud

__all__ = [
    "main",
    "analyse_cable",
    "analyse_probe",
    "guess_sender_baud",
    "guess_target_baud",
    "target_baud_candidates",
    "cable_pattern",
    "CableReport",
    "ProbeReport",
    "PATTERN",
]

log = logging.getLogger(__name__)

PATTERN = bytes(range(256))
BREAKIN = b"\x62"  # BREAKIN_PACKET_BYTE
DATA_LEADER = b"0000"  # PACKET_LEADER
CONTROL_LEADER = b"iiii"  # CONTROL_PACKET_LEADER
STANDARD_RATES = (9600, 19200, 38400, 57600, 115200)
PACKET_TYPES = {  # kd-protocol.md §1.5
    1: "STATE_CHANGE32",
    2: "STATE_MANIPULATE",
    3: "DEBUG_IO",
    4: "ACKNOWLEDGE",
    5: "RESEND",
    6: "RESET",
    7: "STATE_CHANGE64",
    9: "TRACE_IO",
    10: "CONTROL_REQUEST",
    11: "FILE_IO",
}
# Packet starts a target sends first after a break-in or while waiting (kd-protocol.md §3).
_PACKET_STARTS = tuple(DATA_LEADER + bytes((t, 0)) for t in (7, 3, 2)) + tuple(
    CONTROL_LEADER + bytes((t, 0)) for t in (6, 5, 4)
)
SILENT_ADVICE = (
    "check the null-modem cable, the COM port on both ends, that no other program holds the port, "
    "and on the target: bcdedit /debug on and bcdedit /dbgsettings serial debugport:N baudrate:B"
)


@dataclass
class CableReport:
    """What one direction of a cable test saw."""

    sent: int
    received: int
    lost: int = 0
    corrupted: int = 0
    extra: int = 0
    ok: bool = False
    cause: str = ""
    advice: str = ""
    guessed_baud: int | None = None


@dataclass
class ProbeReport:
    """What a probe for a KD target saw."""

    kind: str  # "answering", "echo", "wrong_baud", "text" or "silent"
    received: int
    lines: list[str] = field(default_factory=list)
    guessed_baud: int | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "answering"


def cable_pattern(rounds: int) -> bytes:
    """``rounds`` blocks of every byte value: the first in order, the others shuffled.

    Shuffled blocks keep the stream from repeating, so that aligning what was received
    with what was sent has one answer and a lost byte is not mistaken for a lost block.
    """
    blocks = [PATTERN]
    for index in range(1, rounds):
        block = list(PATTERN)
        random.Random(index).shuffle(block)
        blocks.append(bytes(block))
    return b"".join(blocks)


def _similarity(a: bytes, b: bytes) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _positional_match(a: bytes, b: bytes) -> float:
    """Share of positions where two streams agree, over the longer one (linear time)."""
    if not a and not b:
        return 1.0
    return sum(1 for x, y in zip(a, b) if x == y) / max(len(a), len(b))


def guess_sender_baud(sent: bytes, received: bytes, rx_baud: int) -> int | None:
    """The standard rate at which ``sent`` would arrive as ``received`` at ``rx_baud``, if any.

    The 8N1 model is replayed for each rate; a real mismatch reproduces the received
    stream position by position, up to the odd noise, so a linear comparison suffices.
    """
    best, best_score = None, 0.8
    for rate in STANDARD_RATES:
        if rate == rx_baud:
            continue
        score = _positional_match(resample_at_wrong_baud(sent, rate, rx_baud), received)
        if score >= best_score:
            best, best_score = rate, score
    return best


def _differences(sent: bytes, received: bytes) -> tuple[int, int, int, int]:
    """(lost, corrupted, extra, single-bit corruptions) from an alignment of the two streams."""
    lost = corrupted = extra = single_bit = 0
    matcher = difflib.SequenceMatcher(None, sent, received, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "delete":
            lost += i2 - i1
        elif op == "insert":
            extra += j2 - j1
        elif op == "replace":
            common = min(i2 - i1, j2 - j1)
            corrupted += common
            single_bit += sum(1 for a, b in zip(sent[i1:i2], received[j1:j2]) if bin(a ^ b).count("1") == 1)
            lost += (i2 - i1) - common
            extra += (j2 - j1) - common
    return lost, corrupted, extra, single_bit


def analyse_cable(sent: bytes, received: bytes, baud: int) -> CableReport:
    """Compare one direction of a cable test and name the likely cause of any difference."""
    report = CableReport(sent=len(sent), received=len(received))
    if received == sent:
        report.ok = True
        report.cause = "OK"
        return report
    if not received:
        report.lost = len(sent)
        report.cause = "no connection: nothing arrived"
        report.advice = "check the cable is a null-modem cable, both ends name the right ports, and the far end is open"
        return report
    report.lost = max(0, len(sent) - len(received))
    report.extra = max(0, len(received) - len(sent))
    if received == bytes(b for b in sent if b not in (0x11, 0x13)):
        report.cause = "software flow control: 0x11/0x13 (XON/XOFF) were swallowed"
        report.advice = "turn XON/XOFF off on both ends (stty -F DEVICE -ixon -ixoff)"
        return report
    if received == sent.replace(b"\r", b"\n"):
        report.corrupted, report.lost, report.extra = sent.count(b"\r"), 0, 0
        report.cause = "the tty is not in raw mode: CR arrived as LF"
        report.advice = "open the port with a raw-mode client or run stty -F DEVICE raw"
        return report
    if len(received) < len(sent) and sent.startswith(received):
        report.cause = f"flow control stall: the line stopped after {len(received)} of {len(sent)} bytes"
        report.advice = "check the RTS/CTS wires of the cable or turn hardware flow control off; is the far end reading?"
        return report
    guess = guess_sender_baud(sent, received, baud)
    if guess is not None:
        report.guessed_baud = guess
        report.cause = f"baud mismatch: the bytes look sent at {guess} baud and read at {baud}"
        report.advice = "set the same baud rate on both ends"
        return report
    # Aligning two unrelated streams is quadratic: check cheaply that they are related first.
    if len(received) > 2 * len(sent) or difflib.SequenceMatcher(None, sent, received, autojunk=False).quick_ratio() < 0.5:
        report.cause = "garbled: almost nothing arrives as sent, as with a baud mismatch"
        report.advice = "set the same baud rate on both ends (8N1, no flow control)"
        return report
    report.lost, report.corrupted, report.extra, single_bit = _differences(sent, received)
    if report.corrupted and single_bit >= report.corrupted * 0.8 and not report.lost and not report.extra:
        report.cause = "line noise: single-bit errors"
        report.advice = "check the cable, its length and grounding, or lower the baud rate"
    elif report.extra and not report.lost and not report.corrupted:
        report.cause = "extra bytes: noise bursts on the line or bytes received twice"
        report.advice = "check the cable and its grounding; keep it away from power cables"
    elif report.lost and not report.corrupted and not report.extra:
        report.cause = "bytes lost: receiver overruns or a loose connection"
        report.advice = "try a lower baud rate, and check the connectors"
    else:
        report.cause = "corruption: bytes lost, changed or added"
        report.advice = "check the cable and that both ends use the same baud rate, 8N1, no flow control"
    return report


def _is_text(data: bytes) -> bool:
    printable = sum(1 for b in data if 0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D))
    return len(data) >= 8 and printable >= 0.9 * len(data)


def target_baud_candidates(received: bytes, rx_baud: int) -> list[int]:
    """Rates at which a target's usual packet starts would look most like ``received``.

    Each rate scores the number of distinct images of packet starts (with a non-zero
    byte: framing-error NULs alone prove nothing) found in the stream. At slow rates
    different packets can look alike, so several rates may tie.
    """
    scores: dict[int, int] = {}
    for rate in STANDARD_RATES:
        if rate == rx_baud:
            continue
        images = {resample_at_wrong_baud(start, rate, rx_baud)[:-1] for start in _PACKET_STARTS}
        # The last byte of an image depends on what follows it, hence [:-1].
        found = sum(1 for image in images if len(image) >= 3 and any(image) and image in received)
        if found:
            scores[rate] = found
    if not scores:
        return []
    best = max(scores.values())
    return sorted(rate for rate, score in scores.items() if score == best)


def guess_target_baud(received: bytes, rx_baud: int) -> int | None:
    """The one most likely rate of the target, or None when there is none or a tie."""
    candidates = target_baud_candidates(received, rx_baud)
    return candidates[0] if len(candidates) == 1 else None


def analyse_probe(received: bytes, baud: int, waited: float = 0.0, sent: int | None = None) -> ProbeReport:
    """Classify what came back after ``sent`` break-in bytes (None: not counted)."""
    report = ProbeReport(kind="silent", received=len(received))
    positions = [(received.find(leader), leader) for leader in (DATA_LEADER, CONTROL_LEADER)]
    found = [(pos, leader) for pos, leader in positions if pos >= 0]
    if found:
        pos, leader = min(found)
        kind = "data" if leader == DATA_LEADER else "control"
        detail = f"{kind} packet"
        if len(received) >= pos + 6:
            number = int.from_bytes(received[pos + 4 : pos + 6], "little")
            detail += f" type {number} ({PACKET_TYPES.get(number, 'unknown')})"
        report.kind = "answering"
        before = f", after {pos} bytes that were not KD (noise or a boot message)" if pos else ""
        report.lines.append(f"KD target answering: {detail}{before}; {len(received)} bytes received "
                            f"in {waited:.1f} s")
        return report
    if not received:
        report.lines.append(f"silent: nothing arrived in {waited:.1f} s")
        report.lines.append(SILENT_ADVICE)
        return report
    if received.strip(BREAKIN) == b"" and (sent is None or len(received) <= sent):
        report.kind = "echo"
        report.lines.append(f"echo: the {len(received)} break-in byte{'s' * (len(received) != 1)} sent "
                            "came back unchanged, and nothing else")
        report.lines.append("the port is looped back (a loopback plug or loop://) or the far end echoes "
                            "what it gets: no KD target is on this line (--loopback-plug tests such a port)")
        return report
    if _is_text(received):
        report.kind = "text"
        sample = received[:40].decode("ascii", "replace").strip()
        report.lines.append(f"text arrives, not KD: {sample!r}")
        report.lines.append("the far end is a console (serial login or EMS), not the kernel debugger: check bcdedit /dbgsettings")
        return report
    report.kind = "wrong_baud"
    nul = received.count(0) / len(received)
    report.lines.append(
        f"bytes arrive but look like a wrong baud rate: {len(received)} bytes, no KD leader, "
        f"{nul:.0%} NUL (framing errors), {len(set(received))} distinct values"
    )
    candidates = target_baud_candidates(received, baud)
    if len(candidates) == 1:
        report.guessed_baud = candidates[0]
        report.lines.append(f"the target probably runs at {candidates[0]} baud: try --baud {candidates[0]}")
    elif candidates:
        rates = " or ".join(map(str, candidates))
        report.lines.append(f"the target probably runs at {rates} baud: try those with --baud")
    elif nul >= 0.3:
        report.lines.append(f"many framing errors: the target likely runs slower than {baud} baud")
    else:
        report.lines.append("use the baud rate set on the target (bcdedit /dbgsettings shows it)")
    return report


def _collect(port: Any, expected: int, quiet: float, baud: int) -> bytes:
    """Read until ``expected`` bytes arrived (then what trails them) or ``quiet`` seconds of silence."""
    port.timeout = quiet
    got = bytearray()
    while True:
        if len(got) >= expected:
            # Duplicates or garbage may make the stream longer: take what still trickles in.
            port.timeout = max(0.05, 20 * 10 / baud)
        chunk = port.read(max(1, port.in_waiting))
        if not chunk:
            return bytes(got)
        got += chunk


def run_cable(sender: Any, receiver: Any, baud: int, rounds: int, quiet: float) -> CableReport:
    """Send the pattern from ``sender`` while ``receiver`` collects it; analyse the result."""
    sent = cable_pattern(rounds)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            sender.write(sent)
            sender.flush()
        except (TransportError, OSError) as exc:
            errors.append(exc)

    writer = threading.Thread(target=write, name="linetest-writer", daemon=True)
    writer.start()
    # Receive while sending: a small buffer on either side must not deadlock the test.
    received = _collect(receiver, len(sent), quiet, baud)
    writer.join()
    if errors:
        raise errors[0]
    return analyse_cable(sent, received, baud)


def run_probe(port: Any, baud: int, wait: float) -> ProbeReport:
    """Send break-ins (one a second) and listen up to ``wait`` seconds for an answer."""
    started = time.monotonic()
    deadline = started + wait
    got = bytearray()
    next_breakin = started
    sent = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_breakin:
            port.write(BREAKIN)
            sent += 1
            next_breakin = now + 1.0
        port.timeout = max(0.0, min(deadline, next_breakin) - now)
        chunk = port.read(max(1, port.in_waiting))
        got += chunk
        found = [at for at in (got.find(DATA_LEADER), got.find(CONTROL_LEADER)) if at >= 0]
        if found:
            leader_at = min(found)
            # Wait briefly for the type field after the leader.
            port.timeout = 0.5
            while len(got) < leader_at + 6 and (chunk := port.read(leader_at + 6 - len(got))):
                got += chunk
            break
    return analyse_probe(bytes(got), baud, waited=time.monotonic() - started, sent=sent)


def _print_cable(label: str, report: CableReport) -> None:
    print(
        f"{label}: sent {report.sent}, received {report.received}, lost {report.lost}, "
        f"corrupted {report.corrupted}, extra {report.extra}: {report.cause}"
    )
    if report.advice:
        print(f"  {report.advice}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdcon-linetest", description="Check a serial link and probe for a KD target at the far end."
    )
    add_link_arguments(parser, required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--peer", metavar="URL", help="the other end of the cable, on this host")
    mode.add_argument("--loopback-plug", action="store_true", help="the port has a loopback plug (TX wired to RX)")
    mode.add_argument("--probe", action="store_true", help="send a break-in and listen for a KD target")
    parser.add_argument("--rounds", type=int, default=4, help="copies of the 256-byte pattern (default 4)")
    parser.add_argument(
        "--wait", type=float, default=None, help="seconds to listen (probe, default 3) or of silence that ends a test (default 0.5)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.rounds < 1 or (args.wait is not None and args.wait <= 0):
        print("kdcon-linetest: error: --rounds and --wait must be positive", file=sys.stderr)
        return 2
    ports: list[Any] = []
    try:
        try:
            ports.append(open_link_from_args(args))
            args.baud = link_baud(args)
            if args.peer:
                ports.append(open_checked(args.peer, baud=args.baud))
        except TransportError as exc:
            print(f"kdcon-linetest: error: {exc}", file=sys.stderr)
            return 2
        try:
            return _run(args, *ports)
        except TransportError as exc:
            print(f"link failed during the test: {exc}")
            return 1
    finally:
        for opened in ports:
            try:
                opened.close()
            except (TransportError, OSError):
                log.debug("closing %r failed", opened, exc_info=True)


def _run(args: argparse.Namespace, port: Any, peer: Any = None) -> int:
    where = args.port or args.kd_string
    if args.probe:
        report = run_probe(port, args.baud, args.wait or 3.0)
        print(f"probe {where} at {args.baud} baud")
        for line in report.lines:
            print(line)
        return 0 if report.ok else 1
    quiet = args.wait or 0.5
    if peer is None:
        print(f"loopback plug on {where} at {args.baud} baud")
        reports = [("loop", run_cable(port, port, args.baud, args.rounds, quiet))]
    else:
        print(f"cable {where} <-> {args.peer} at {args.baud} baud")
        reports = [
            ("A->B", run_cable(port, peer, args.baud, args.rounds, quiet)),
            ("B->A", run_cable(peer, port, args.baud, args.rounds, quiet)),
        ]
    for label, report in reports:
        _print_cable(label, report)
    ok = all(report.ok for _, report in reports)
    print("result: cable OK" if ok else "result: problem found")
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
