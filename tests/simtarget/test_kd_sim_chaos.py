"""kdcon-sim against a string of debuggers that misbehave as real ones and real users do.

Seeded: each debugger attaches with a break-in and RESET, then does a random mix of
requests (some at unmapped or absurd addresses), continue-and-break-in, junk bytes on
the line followed by a resync, RestoreBreakPoint for stale handles, and an abrupt close
with a request in flight. Every attach must succeed, every request be answered, and
kdcon-sim must still exit cleanly at the end.
"""

from __future__ import annotations

import queue
import random

import pytest

from kdcon.protocol import Role
from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.events import Event, StateChange
from kdcon.protocol.link import KdLink
from kdcon.protocol.transports import open_link

from .test_kd_sim_cli import _start, _stop

LOAD_SYMBOLS = 0x3031
CONTINUE = dict(ContinueStatus=0x10002, ControlSet=dict(Amd64=dict(
    TraceFlag=0, Dr7=0x400, CurrentSymbolStart=1, CurrentSymbolEnd=0)))
ADDRESSES = (0xFFFFF80000400000, 0xFFFFFA8000000000, 0, 0xFFFF800000000000)


def _next_stop(events: queue.Queue[Event], link: KdLink) -> StateChange:
    """Break in, answering module loads met on the way with Continue."""
    link.send_breakin()
    while True:
        event = events.get(timeout=10)
        if not isinstance(event, StateChange):
            continue
        if event.new_state != LOAD_SYMBOLS:
            return event
        link.request(A.DbgKdContinueApi2, CONTINUE, timeout=5)
        link.send_breakin()


def _session(url: str, rng: random.Random) -> list[str]:
    events: queue.Queue[Event] = queue.Queue()
    link = KdLink(open_link(url), Role.HOST, on_event=events.put, start=False)
    done = ["attach"]
    try:
        link.sync(10)
        for _ in range(rng.randint(1, 10)):
            roll = rng.random()
            if roll < 0.35:
                assert link.request(A.DbgKdGetVersionApi, timeout=5).return_status == 0
                done.append("version")
            elif roll < 0.55:
                address = rng.choice(ADDRESSES + (rng.getrandbits(64),))
                reply = link.request(A.DbgKdReadVirtualMemoryApi, dict(
                    TargetBaseAddress=address, TransferCount=rng.randint(1, 3944),
                    ActualBytesRead=0), timeout=5)
                assert reply.message.u.ActualBytesRead == len(reply.data)
                done.append("read")
            elif roll < 0.7:
                link.request(A.DbgKdContinueApi2, CONTINUE, timeout=5)
                _next_stop(events, link)
                done.append("go+break")
            elif roll < 0.8:
                link.port.write(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))))
                link.sync(10)
                done.append("junk+resync")
            elif roll < 0.9:
                link.request(A.DbgKdRestoreBreakPointApi,
                             dict(BreakPointHandle=rng.randint(1, 32)), timeout=5)
                done.append("restore")
            else:
                link.send_manipulate(A.DbgKdReadVirtualMemoryApi, dict(
                    TargetBaseAddress=ADDRESSES[0], TransferCount=3944, ActualBytesRead=0))
                done.append("close mid-request")
                break
    finally:
        link.close()
    return done


@pytest.mark.parametrize("seed", [1, 2])
def test_a_string_of_unruly_debuggers_never_wedges_kdcon_sim(tmp_path, seed):
    proc, url = _start("--listen", f"unix://{tmp_path / 'kd.sock'}")
    rng = random.Random(seed)
    history: list[list[str]] = []
    try:
        for _ in range(12):
            history.append(_session(url, rng))
            assert proc.poll() is None, f"kdcon-sim died after {history}"
    finally:
        assert _stop(proc) == 0
    kinds = {step for steps in history for step in steps}
    # The seeds were chosen so that every kind of mischief happened.
    assert kinds >= {"version", "read", "go+break", "junk+resync", "restore",
                     "close mid-request"}, kinds
