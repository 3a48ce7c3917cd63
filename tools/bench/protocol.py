"""Protocol benchmarks: ``python -m kdcon.tools.bench.protocol``, one JSON line per figure.

Figures, each compared with a baseline measured in the same run:

- ``control_packets_per_s``: FrameBuffer decoding a stream of 16-byte ACKs, against a
  bare ``struct.iter_unpack`` over the same bytes (no scan, no checks);
- ``data_packets_per_s`` and ``payload_mb_per_s``: 4000-byte data packets through
  FrameBuffer (leader scan, trailer, checksum), against a hand loop of ``bytes.find`` +
  ``struct`` + ``sum`` over the same stream;
- ``read_virtual_wire_efficiency``: a host KdLink reading target memory in 3944-byte
  ReadVirtualMemory transfers from a target KdLink over a socket pair paced to a real
  115200 8N1 cable (transports.PacedPort): memory bytes delivered per second divided by
  the line's 11520 B/s, against the protocol limit 3944 / (73 + 16 + 4017 + 16).

Not a test: nothing here asserts; the README quotes the figures.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from typing import Any

from kdcon.protocol.buffer import FrameBuffer
from kdcon.protocol.constants import MAX_TRANSFER_SIZE, ManipulateApi, PacketType
from kdcon.protocol.events import BreakIn, Event, ManipulateRequest
from kdcon.protocol.link import KdLink
from kdcon.protocol.messages import build_exception_state_change
from kdcon.protocol.packet import build_control_packet, build_data_packet
from kdcon.protocol.state import Phase, Role
from kdcon.protocol.transports import socket_pair
from kdcon.protocol.transports.pacing import PacedPort
from kdcon.tools.bench.args import BenchParser, positive_int

__all__ = ["main"]

READ = ManipulateApi.DbgKdReadVirtualMemoryApi
LINE_BYTES_PER_S = 115200 / 10


def _emit(name: str, value: float, baseline_name: str, baseline: float, unit: str,
          **extra: Any) -> None:
    record = dict(figure=name, value=round(value, 4), unit=unit, baseline=baseline_name,
                  baseline_value=round(baseline, 4),
                  ratio=round(value / baseline, 4) if baseline else None, **extra)
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _best_rate(func: Any, items: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return items / best


def _frame_all(stream: bytes) -> int:
    buf = FrameBuffer()
    buf.receive_data(stream)
    count = 0
    while buf.next_frame() is not None:
        count += 1
    return count


def _baseline_struct(stream: bytes) -> int:
    return sum(1 for _ in struct.iter_unpack("<IHHII", stream))


def _baseline_find(stream: bytes) -> int:
    header = struct.Struct("<IHHII")
    pos = count = 0
    while (pos := stream.find(b"0000", pos)) >= 0:
        _, _, size, _, csum = header.unpack_from(stream, pos)
        payload = stream[pos + 16:pos + 16 + size]
        if stream[pos + 16 + size] == 0xAA and sum(payload) & 0xFFFFFFFF == csum:
            count += 1
        pos += 17 + size
    return count


def bench_decoding(control_count: int, data_count: int) -> None:
    control = build_control_packet(PacketType.PACKET_TYPE_KD_ACKNOWLEDGE, 0x80800000)
    stream = control * control_count
    assert _frame_all(stream) == control_count
    ours = _best_rate(lambda: _frame_all(stream), control_count)
    base = _best_rate(lambda: _baseline_struct(stream), control_count)
    _emit("control_packets_per_s", ours, "struct.iter_unpack", base, "packets/s",
          packet_bytes=16)

    payload = bytes(range(256)) * 15 + bytes(160)
    packet = build_data_packet(PacketType.PACKET_TYPE_KD_STATE_MANIPULATE, 0x80800000, payload)
    stream = packet * data_count
    assert _frame_all(stream) == data_count == _baseline_find(stream)
    ours = _best_rate(lambda: _frame_all(stream), data_count)
    base = _best_rate(lambda: _baseline_find(stream), data_count)
    _emit("data_packets_per_s", ours, "bytes.find+struct+sum", base, "packets/s",
          packet_bytes=len(packet))
    _emit("payload_mb_per_s", ours * len(payload) / 1e6, "bytes.find+struct+sum",
          base * len(payload) / 1e6, "MB/s")


class _MemoryTarget:
    def __init__(self, port: Any) -> None:
        self.memory = bytes((i * 7) & 0xFF for i in range(1 << 16))
        self.link = KdLink(port, Role.TARGET, on_event=self.on_event)

    def on_event(self, event: Event) -> None:
        if isinstance(event, BreakIn) and self.link.connection.phase is Phase.RUNNING:
            self.link.send_state_change(build_exception_state_change(0x80000003, 0x1000))
        elif isinstance(event, ManipulateRequest) and event.api == READ:
            u = event.message.u
            start = u.TargetBaseAddress % len(self.memory)
            chunk = (self.memory * 2)[start:start + u.TransferCount]
            self.link.send_manipulate(READ, dict(u, ActualBytesRead=len(chunk)), chunk)


def bench_wire_efficiency(transfers: int) -> None:
    host_port, target_port = socket_pair(timeout=0.02)
    paced = PacedPort(host_port, 115200)
    target = _MemoryTarget(target_port)
    with KdLink(paced, Role.HOST) as host:
        host.sync(timeout=10)
        # One unmeasured transfer lets the attach traffic (the state change the target
        # repeats after our RESET) drain, so the figure is the steady bulk rate.
        host.request(READ, dict(TargetBaseAddress=0, TransferCount=MAX_TRANSFER_SIZE,
                                ActualBytesRead=0), timeout=5)
        delivered = 0
        start = time.monotonic()
        for n in range(transfers):
            reply = host.request(READ, dict(TargetBaseAddress=n * MAX_TRANSFER_SIZE,
                                            TransferCount=MAX_TRANSFER_SIZE,
                                            ActualBytesRead=0), timeout=5)
            assert reply is not None
            delivered += len(reply.data)
        elapsed = time.monotonic() - start
    target.link.close()
    limit = MAX_TRANSFER_SIZE / (73 + 16 + (MAX_TRANSFER_SIZE + 56 + 17) + 16)
    _emit("read_virtual_wire_efficiency", delivered / elapsed / LINE_BYTES_PER_S,
          "protocol limit 3944/4122", limit, "fraction of 11520 B/s",
          transfers=transfers, transfer_bytes=MAX_TRANSFER_SIZE, seconds=round(elapsed, 3))


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.protocol",
                         description="KD protocol benchmarks (JSON lines).")
    parser.add_argument("--control", type=positive_int, default=200_000, help="ACK packets to decode")
    parser.add_argument("--data", type=positive_int, default=5_000, help="4000-byte packets to decode")
    parser.add_argument("--transfers", type=positive_int, default=10,
                        help="3944-byte reads over the paced cable (~0.36 s each)")
    args = parser.parse_args(argv)
    bench_decoding(args.control, args.data)
    bench_wire_efficiency(args.transfers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
