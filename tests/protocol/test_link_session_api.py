"""What a console's session needs of KdLink: events kept in order, cancellation of a
request or sync in flight, and event callbacks that may use the link."""

from __future__ import annotations

import threading
import time

import pytest

from kdcon.protocol.constants import ManipulateApi
from kdcon.protocol.errors import RequestCancelled, TargetTimeout
from kdcon.protocol.events import (
    BreakIn,
    DebugPrint,
    Event,
    ManipulateReply,
    ManipulateRequest,
    StateChange,
)
from kdcon.protocol.link import KdLink
from kdcon.protocol.messages import build_exception_state_change
from kdcon.protocol.state import Phase, Role
from kdcon.protocol.transports import socket_pair

READ = ManipulateApi.DbgKdReadVirtualMemoryApi
WAIT = 10.0


class GatedTarget:
    """Breaks in on a break-in byte; answers each read with the number of the request
    (one byte), but only once ``gate`` is open. ``asked`` is set per request seen."""

    def __init__(self, port) -> None:
        self.gate = threading.Event()
        self.asked = threading.Semaphore(0)
        self.count = 0
        self.link = KdLink(port, Role.TARGET, on_event=self.on_event)

    def on_event(self, event: Event) -> None:
        link = self.link
        if isinstance(event, BreakIn) and link.connection.phase is Phase.RUNNING:
            link.send_state_change(build_exception_state_change(0x80000003, 0x401000))
        elif isinstance(event, ManipulateRequest) and event.api == READ:
            self.count += 1
            self.asked.release()
            # The reader thread waits here, as a slow target would.
            assert self.gate.wait(WAIT)
            u = event.message.u
            link.send_manipulate(READ, dict(u, ActualBytesRead=1), bytes([self.count]))


@pytest.fixture
def gated():
    host_port, target_port = socket_pair(timeout=0.05)
    target = GatedTarget(target_port)
    host = KdLink(host_port, Role.HOST)
    host.sync(timeout=WAIT)
    yield host, target
    target.gate.set()
    host.close()
    target.link.close()


def read_one_byte(host: KdLink, **kwargs):
    return host.request(READ, dict(TargetBaseAddress=0x10, TransferCount=1, ActualBytesRead=0),
                        **kwargs)


def until(condition, timeout: float = WAIT) -> bool:
    """Whether ``condition()`` became true within ``timeout`` (checked every ms)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() >= deadline:
            return False
        pause.wait(0.001)
    return True


def in_thread(fn) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(fn())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_cancel_ends_a_request_awaiting_its_reply(gated) -> None:
    host, target = gated
    thread, outcome = in_thread(lambda: read_one_byte(host, timeout=60, retries=0))
    assert target.asked.acquire(timeout=WAIT)
    host.cancel()
    thread.join(WAIT)
    # Ended by the cancel, with the reply still held back by the target.
    assert not target.gate.is_set()
    assert len(outcome) == 1 and isinstance(outcome[0], RequestCancelled)
    assert not host.closed


def test_late_reply_to_a_cancelled_request_is_not_the_next_ones(gated) -> None:
    host, target = gated
    thread, outcome = in_thread(lambda: read_one_byte(host, timeout=60, retries=0))
    assert target.asked.acquire(timeout=WAIT)
    host.cancel()
    thread.join(WAIT)
    assert isinstance(outcome[0], RequestCancelled)
    # The same request again: the first reply (1) comes first and must be dropped.
    target.gate.set()
    reply = read_one_byte(host, timeout=WAIT, retries=0)
    assert reply.data == bytes([2])
    later = iter(lambda: host.next_event(0), None)
    assert not [event for event in later if isinstance(event, ManipulateReply)]


def test_cancel_ends_requests_of_every_thread_waiting(gated) -> None:
    host, target = gated
    first, first_outcome = in_thread(lambda: read_one_byte(host, timeout=60, retries=0))
    assert target.asked.acquire(timeout=WAIT)
    # The second waits for its turn behind the first.
    second, second_outcome = in_thread(lambda: read_one_byte(host, timeout=60, retries=0))
    assert until(lambda: host.calls_in_progress == 2)
    host.cancel()
    first.join(WAIT)
    second.join(WAIT)
    assert isinstance(first_outcome[0], RequestCancelled)
    assert isinstance(second_outcome[0], RequestCancelled)


def test_cancel_ends_a_sync_in_progress() -> None:
    host_port, _silent = socket_pair(timeout=0.05)
    with KdLink(host_port, Role.HOST) as host:
        thread, outcome = in_thread(lambda: host.sync(timeout=60, reset_interval=60))
        # A sync is in progress once its break-in and RESET are on the wire.
        assert _silent.read(17)
        host.cancel()
        thread.join(WAIT)
        assert len(outcome) == 1 and isinstance(outcome[0], RequestCancelled)
        assert not host.closed and not host.connection.awaiting_reset_answer
        # A cancel with nothing in progress changes nothing later.
        with pytest.raises(TargetTimeout):
            host.request(READ, dict(TargetBaseAddress=0, TransferCount=1, ActualBytesRead=0),
                         timeout=0.1, retries=0)
    _silent.close()


class Printer:
    """A target that sends three DbgPrints and then breaks in, when asked."""

    def __init__(self, port) -> None:
        self.link = KdLink(port, Role.TARGET)

    def talk(self) -> None:
        for text in (b"one\n", b"two\n", b"three\n"):
            self.link.send_debug_print(text)
            self.link.wait_acked(WAIT)
        self.link.send_state_change(build_exception_state_change(0x80000003, 0x401000))


def test_wait_for_keeps_the_events_it_passes_over() -> None:
    host_port, target_port = socket_pair(timeout=0.05)
    target = Printer(target_port)
    with KdLink(host_port, Role.HOST) as host:
        target.talk()
        stop = host.wait_for(StateChange, WAIT)
        assert stop.new_state == 0x3030
        texts = [host.next_event(WAIT).text for _ in range(3)]
        assert texts == [b"one\n", b"two\n", b"three\n"]
        assert host.next_event(0) is None
    target.link.close()


def test_wait_for_takes_the_first_event_that_matches_where() -> None:
    host_port, target_port = socket_pair(timeout=0.05)
    target = Printer(target_port)
    with KdLink(host_port, Role.HOST) as host:
        target.talk()
        two = host.wait_for(DebugPrint, WAIT, where=lambda e: e.text == b"two\n")
        assert two.text == b"two\n"
        rest = [type(host.next_event(WAIT)) for _ in range(3)]
        assert rest == [DebugPrint, DebugPrint, StateChange]
    target.link.close()


def test_event_callback_may_make_a_request_of_the_link() -> None:
    host_port, target_port = socket_pair(timeout=0.05)
    target = GatedTarget(target_port)
    target.gate.set()
    replies: list = []
    done = threading.Event()
    host: KdLink

    def on_event(event: Event) -> None:
        if isinstance(event, DebugPrint):
            # Waits for bytes the link must read: not while the callback holds the port.
            replies.append(read_one_byte(host, timeout=WAIT, retries=0))
            done.set()

    host = KdLink(host_port, Role.HOST, on_event=on_event)
    try:
        host.sync(timeout=WAIT)
        target.link.send_debug_print(b"ask me\n")
        assert done.wait(WAIT)
        assert replies[0].data == bytes([1])
    finally:
        host.close()
        target.link.close()
