"""Acceptance: 10,000 ReadVirtualMemory exchanges between a HOST and a TARGET
KdConnection over a seeded noisy line, on a virtual clock (no I/O, no sleeping).

The line runs at 115200 8N1 (86.8 µs a byte): bytes written at time t arrive when the
line has carried them. Each direction passes through its own FaultModel (bit flips
1e-4, drops 0.1%, duplicates 0.1%, garbage bursts). check_timeouts drives every
retransmission. The host re-issues a request whose reply has not come within
REPLY_TIMEOUT and gives the exchange up with a TargetTimeout after EXCHANGE_BOUND.

The KD checksum is a byte sum (§1.3): a duplicated byte followed by a dropped byte of
the same value leaves length and sum intact, so no receiver can reject it. Such
payloads are counted apart from the corruptions the checksum can see (which must be
zero) and reported in the README.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from kdcon.protocol.connection import NEED_DATA, KdConnection, Phase, Role
from kdcon.protocol.constants import ManipulateApi, NtStatus
from kdcon.protocol.errors import TargetTimeout
from kdcon.protocol.events import BreakIn, Event, ManipulateReply, ManipulateRequest, StateChange
from kdcon.protocol.messages import (
    build_exception_state_change,
    build_manipulate,
    reply_matches,
)
from kdcon.protocol.transports.faults import FaultModel

from ..linecheck import checksum_blind_spot

READ = ManipulateApi.DbgKdReadVirtualMemoryApi
BYTE_TIME = 10 / 115200
TICK = 0.01
REPLY_TIMEOUT = 2.0
EXCHANGE_BOUND = 20.0
EXCHANGES = 10_000


def memory(address: int, size: int) -> bytes:
    """The target's deterministic memory: a keyed pseudo-random byte per address."""
    rng = random.Random(address)
    return rng.randbytes(size)


@dataclass
class Line:
    """One direction of the cable: serialisation delay plus a fault model."""

    faults: FaultModel
    free_at: float = 0.0
    deliveries: list[tuple[float, int, bytes]] = field(default_factory=list)
    seq: int = 0

    def write(self, now: float, data: bytes) -> None:
        if not data:
            return
        start = max(now, self.free_at)
        self.free_at = start + len(data) * BYTE_TIME
        damaged = self.faults.apply(data)
        if damaged:
            self.seq += 1
            heapq.heappush(self.deliveries, (self.free_at, self.seq, damaged))

    def due(self, now: float) -> bytes:
        out = bytearray()
        while self.deliveries and self.deliveries[0][0] <= now:
            out += heapq.heappop(self.deliveries)[2]
        return bytes(out)

    def next_time(self) -> float | None:
        return self.deliveries[0][0] if self.deliveries else None


class Simulation:
    def __init__(self, seed: int) -> None:
        noise = dict(bit_flip=1e-4, drop=1e-3, duplicate=1e-3, garbage=1e-4,
                     garbage_len=(1, 32))
        self.to_target = Line(FaultModel(seed=seed, **noise))
        self.to_host = Line(FaultModel(seed=seed + 1, **noise))
        self.host = KdConnection(Role.HOST)
        self.target = KdConnection(Role.TARGET)
        self.now = 0.0
        self.replies: list[ManipulateReply] = []
        self.state_changes = 0

    def host_send(self, data: bytes) -> None:
        self.to_target.write(self.now, data)

    def step(self) -> None:
        """Advance the clock to the next delivery or tick and let both sides react."""
        candidates = [t for t in (self.to_target.next_time(), self.to_host.next_time(),
                                  *self.wakeups()) if t is not None]
        self.now = min([self.now + TICK, *candidates])
        self._run_target(self.to_target.due(self.now))
        self._run_host(self.to_host.due(self.now))

    # -- what a test may change ----------------------------------------------------

    def wakeups(self) -> list[float | None]:
        """Times the target has something of its own to do."""
        return []

    def target_event(self, event: Event) -> bytes:
        """The target's answer to one event: a stop on break-in, memory on a read."""
        target = self.target
        if isinstance(event, BreakIn) and target.phase is Phase.RUNNING:
            return target.send_state_change(build_exception_state_change(0x80000003, 0x401000))
        if isinstance(event, ManipulateRequest) and event.api == READ:
            u = event.message.u
            size = min(u.TransferCount, 3944)
            return target.send_manipulate(READ, dict(u, ActualBytesRead=size),
                                          memory(u.TargetBaseAddress, size),
                                          return_status=NtStatus.STATUS_SUCCESS)
        return b""

    def target_tick(self) -> bytes:
        """What the target sends of its own accord at ``now``."""
        return b""

    def host_event(self, event: Event) -> None:
        if isinstance(event, ManipulateReply):
            self.replies.append(event)
        elif isinstance(event, StateChange):
            self.state_changes += 1

    # -- the two sides -------------------------------------------------------------

    def _run_target(self, data: bytes) -> None:
        target = self.target
        target.receive_data(data)
        out = bytearray()
        while (event := target.next_event()) is not NEED_DATA:
            out += target.data_to_send()
            out += self.target_event(event)
        out += self.target_tick()
        out += target.check_timeouts(self.now)
        self.to_host.write(self.now, bytes(out))

    def _run_host(self, data: bytes) -> None:
        host = self.host
        host.receive_data(data)
        while (event := host.next_event()) is not NEED_DATA:
            self.host_event(event)
        self.to_target.write(self.now, host.check_timeouts(self.now))

    def break_in(self) -> None:
        deadline = self.now + EXCHANGE_BOUND
        sent_at = -1.0
        while not self.state_changes:
            if self.now >= deadline:
                raise TargetTimeout("no state change after break-in")
            if self.now - sent_at >= 1.0:  # a lost 'b' is sent again, as kd does
                self.host_send(self.host.send_breakin())
                sent_at = self.now
            self.step()

    def read(self, address: int, size: int) -> bytes:
        """One exchange: request, wait, re-request on silence; TargetTimeout past the bound."""
        start = self.now
        request = None
        sent_at = -1.0
        while True:
            if self.now - start >= EXCHANGE_BOUND:
                raise TargetTimeout(
                    f"ReadVirtualMemory {address:#x} L{size:#x}: no reply in {EXCHANGE_BOUND} s")
            if request is None or (self.now - sent_at >= REPLY_TIMEOUT
                                   and not self.host.awaiting_ack):
                request = build_manipulate(READ, dict(
                    TargetBaseAddress=address, TransferCount=size, ActualBytesRead=0))
                self.host_send(self.host.send_manipulate_payload(request))
                sent_at = self.now
            self.step()
            while self.replies:
                reply = self.replies.pop(0)
                if reply_matches(request, reply):
                    return reply.data


def test_ten_thousand_exchanges_over_a_noisy_line() -> None:
    sim = Simulation(seed=20261126)
    sim.break_in()
    rng = random.Random(7)
    completed = timed_out = 0
    blind_spot: list[int] = []  # shifted by a duplicate and a drop of the same value
    detectable: list[int] = []  # corrupted in a way the checksum sees: must never pass
    longest = 0.0
    for n in range(EXCHANGES):
        address = 0xFFFFF80000000000 + n * 0x1000 + rng.randrange(0, 0x800)
        size = rng.randint(1, 256)
        started = sim.now
        try:
            data = sim.read(address, size)
        except TargetTimeout:
            timed_out += 1
            continue
        longest = max(longest, sim.now - started)
        expected = memory(address, size)
        if data == expected:
            completed += 1
        elif checksum_blind_spot(data, expected):
            blind_spot.append(n)
        else:
            detectable.append(n)
    line = sim.to_target.faults.counts.as_dict(), sim.to_host.faults.counts.as_dict()
    stats = dict(sim.host.stats), dict(sim.target.stats)
    summary = (f"completed={completed} blind_spot={blind_spot} detectable={detectable} "
               f"timed_out={timed_out} longest={longest:.2f}s line={line} stats={stats}")
    # Zero corrupted payloads that the KD checksum can detect were accepted.
    assert detectable == [], summary
    # The byte-sum checksum (§1.3) cannot see a duplicated byte followed by a dropped
    # byte of the same value: the length and the sum survive. At 0.1% drops and 0.1%
    # duplicates per byte that happens about once in 10^4 replies of this size; it is
    # counted, not hidden, and must stay that rare.
    assert len(blind_spot) <= 3, summary
    assert completed + len(blind_spot) + timed_out == EXCHANGES
    assert completed >= 0.999 * EXCHANGES, summary
    assert longest <= EXCHANGE_BOUND
    # The faults really happened and were recovered from.
    assert sim.host.stats["bad_packets"] > 100 and sim.target.stats["bad_packets"] > 10
