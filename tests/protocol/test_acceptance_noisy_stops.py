"""Acceptance: 1,000 continue-and-stop cycles between a HOST and a TARGET KdConnection
over the noisy line of test_acceptance_noisy_line.py, on its virtual clock.

Each cycle: the host continues the target, the target runs for a while and stops at a
new address, the host reads memory and continues again. Every stop must reach the host
exactly once and in order: no stop reported twice (a repeat taken for a new stop,
state.py Rules 2 and 12), none lost for good (a stop the target believes delivered while
the host waits; Rules 7 and 13: the host breaks in, as a user would press Ctrl+C, when
no stop came for STOP_PATIENCE seconds). A break-in may show the stop the host already
holds: right when the target never took the Continue, which the checksum's blind spot
can turn into another request. The line: bit flips 1e-4, drops and duplicates 0.1%,
garbage bursts, both ways.
"""

from __future__ import annotations

import random

from kdcon.protocol.connection import Phase
from kdcon.protocol.constants import ManipulateApi
from kdcon.protocol.errors import TargetTimeout
from kdcon.protocol.events import BreakIn, Event, ManipulateRequest, StateChange
from kdcon.protocol.messages import build_exception_state_change

from .test_acceptance_noisy_line import Simulation, memory

CONTINUE2 = ManipulateApi.DbgKdContinueApi2
CYCLES = 1_000
BASE = 0xFFFFF80000401000
STOP_PATIENCE = 10.0
CYCLE_BOUND = 60.0


class StopSimulation(Simulation):
    """The noisy line's simulation with a target that runs after Continue and stops at
    a new address a little later, and a host that counts the stops it takes."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.rng = random.Random(seed)
        self.stops_made = 0
        self.stop_at: float | None = 0.0  # the target stops at once: its first break
        self.stops: list[int] = []  # stop numbers as the host received them
        self.reports = 0  # state changes the host took: stops, and stops said again
        self.breakins = 0
        self.again: list[int] = []  # a stop the target said again after a break-in
        self.broke_in = False

    def wakeups(self) -> list[float | None]:
        return [self.stop_at]

    def target_event(self, event: Event) -> bytes:
        if isinstance(event, ManipulateRequest) and event.api == CONTINUE2:
            self.stop_at = self.now + self.rng.uniform(0.0, 0.05)
            return b""
        if isinstance(event, BreakIn):
            return b""  # the target stops of its own accord soon after any Continue
        return super().target_event(event)

    def target_tick(self) -> bytes:
        target = self.target
        if (self.stop_at is None or self.now < self.stop_at
                or target.phase is not Phase.RUNNING or target.awaiting_ack):
            return b""
        self.stop_at = None
        address = BASE + 16 * self.stops_made
        self.stops_made += 1
        return target.send_state_change(build_exception_state_change(0x80000003, address))

    def host_event(self, event: Event) -> None:
        if not isinstance(event, StateChange):
            super().host_event(event)
            return
        number = (event.program_counter - BASE) // 16
        self.reports += 1
        if self.broke_in and self.stops and number == self.stops[-1]:
            # Right: the target never took the Continue (the checksum's blind spot made
            # it another request) and still waits in that stop.
            self.again.append(number)
        else:
            self.stops.append(number)
        self.broke_in = False

    def wait_for_stop(self) -> None:
        """Until the host takes a state change; break in after STOP_PATIENCE of silence,
        as a user would press Ctrl+C."""
        start = last_breakin = self.now
        reports = self.reports
        while self.reports == reports:
            if self.now - start > CYCLE_BOUND:
                raise TargetTimeout(f"after stop {self.stops[-1:]}: none in {CYCLE_BOUND} s")
            if self.now - last_breakin >= STOP_PATIENCE:
                self.host_send(self.host.send_breakin())
                self.breakins += 1
                self.broke_in = True
                last_breakin = self.now
            self.step()

    def go(self) -> None:
        self.host_send(self.host.send_manipulate(CONTINUE2, dict(
            ContinueStatus=0x10002, ControlSet=dict(Amd64=dict(
                TraceFlag=0, Dr7=0, CurrentSymbolStart=1, CurrentSymbolEnd=0)))))


def test_a_thousand_stops_each_arrive_once_and_in_order() -> None:
    sim = StopSimulation(seed=20261126)
    reads_ok = 0
    for n in range(CYCLES):
        sim.wait_for_stop()
        address = 0xFFFFF80000000000 + n * 0x1000
        if sim.read(address, 64) == memory(address, 64):
            reads_ok += 1
        sim.go()
    summary = (f"stops={len(sim.stops)} made={sim.stops_made} again={sim.again} "
               f"breakins={sim.breakins} host={dict(sim.host.stats)} "
               f"target={dict(sim.target.stats)}")
    # Each stop once, in order. The checksum's blind spot (§1.3) may have shifted the
    # bytes of a stop's address: such an entry is no stop number at all, never another.
    assert len(sim.stops) == sim.stops_made, summary
    damaged = [n for n, got in enumerate(sim.stops) if got != n]
    assert all(not 0 <= sim.stops[n] < sim.stops_made for n in damaged), summary
    assert len(damaged) <= CYCLES // 50, summary
    # A stop said again only answers a break-in, and only when the target still held it.
    assert len(sim.again) <= sim.breakins, summary
    # Reads between stops go through too (a rare one may hit the checksum's blind spot).
    assert reads_ok >= CYCLES - 3, summary
    # The faults happened, repeats were met and dropped, and lost stops were rare.
    assert sim.host.stats["bad_packets"] > 20 and sim.target.stats["bad_packets"] > 20, summary
    assert sim.breakins <= CYCLES // 100, summary
