"""A Continue does not wait out the host reader's time aside.

After each exchange the host's reader thread stands aside for a poll interval, so that
the caller's next request reads its own reply. A Continue has no reply: its ACK and the
stop that follows are read by the caller and by a reader brought back at once, never
after the interval. With a poll interval of 30 s the step below would take 30 s or more
if either waited it out."""

from __future__ import annotations

import time

from kdcon.protocol import Role
from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.constants import StateChange as NewState
from kdcon.protocol.events import StateChange
from kdcon.protocol.host import KdHost
from kdcon.protocol.link import KdLink
from kdcon.tools.simtarget.loopback import SimTarget

POLL = 30.0


def test_a_step_after_a_request_arrives_without_waiting_out_the_poll_interval():
    sim = SimTarget(seed=0, break_on_connect=True)
    link = KdLink(sim.connect(), Role.HOST, poll_interval=POLL, start=False)
    try:
        first = link.sync(timeout=20.0)
        while first.new_state != NewState.DbgKdExceptionStateChange:   # LoadSymbols stops during boot: go on
            KdHost(link).continue2()
            first = _next_stop(link, 20.0)
        host = KdHost(link)
        host.request(A.DbgKdGetVersionApi)       # the reader now stands aside
        started = time.monotonic()
        host.continue2(trace=True)
        stop = _next_stop(link, POLL / 3)
        elapsed = time.monotonic() - started
        assert stop is not None and stop.new_state == NewState.DbgKdExceptionStateChange
        assert elapsed < POLL / 3, elapsed
    finally:
        link.close()
        sim.close()


def _next_stop(link: KdLink, timeout: float) -> StateChange | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = link.next_event(left)
        if isinstance(event, StateChange):
            return event
    return None
