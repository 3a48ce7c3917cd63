"""waiting.Inbox: events stay in order whoever waits; a waiter that names what wakes it
is not woken by the rest (a console's pump and the ACK of every request), and wait_for
still wakes for its kind and for the end of the link."""

from __future__ import annotations

import threading

import pytest

from kdcon.protocol.errors import TransportError
from kdcon.protocol.events import Ack, DebugPrint, LinkClosed, StateChange
from kdcon.protocol.waiting import Inbox

PUMPED = (DebugPrint, StateChange, LinkClosed)


def _print(text: bytes) -> DebugPrint:
    return DebugPrint(packet_id=1, packet_type=3, message=None, data=text, raw=b"", text=text)


def _waiting_thread(inbox: Inbox, **kwargs):
    got: list = []
    started = threading.Event()

    def run() -> None:
        started.set()
        got.append(inbox.next_event(**kwargs))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5)
    return thread, got


def _wait_until_asleep(inbox: Inbox, count: int = 1) -> None:
    # The waiter is registered while it sleeps: no sleep needed to know it is waiting.
    done = threading.Event()
    for _ in range(10000):
        with inbox._changed:
            if len(inbox._waking) >= count:
                done.set()
                break
        done.wait(0.001)
    assert done.is_set(), "the waiter never went to sleep"


def test_a_waiter_without_wake_on_is_woken_by_any_event() -> None:
    inbox = Inbox()
    thread, got = _waiting_thread(inbox, timeout=5)
    _wait_until_asleep(inbox)
    inbox.put(Ack(packet_id=7))
    thread.join(5)
    assert got == [Ack(packet_id=7)]


def test_events_a_waiter_does_not_wake_on_are_returned_first_once_one_it_does_comes() -> None:
    inbox = Inbox()
    thread, got = _waiting_thread(inbox, timeout=5, wake_on=PUMPED)
    _wait_until_asleep(inbox)
    inbox.put(Ack(packet_id=1))
    inbox.put(Ack(packet_id=2))
    thread.join(0.2)
    assert thread.is_alive() and got == []  # two ACKs woke nobody
    inbox.put(_print(b"hello"))
    thread.join(5)
    assert got == [Ack(packet_id=1)]
    assert inbox.next_event(0, wake_on=PUMPED) == Ack(packet_id=2)
    assert inbox.next_event(0, wake_on=PUMPED) == _print(b"hello")
    assert inbox.next_event(0, wake_on=PUMPED) is None


def test_events_a_waiter_does_not_wake_on_come_out_at_its_timeout() -> None:
    inbox = Inbox()
    thread, got = _waiting_thread(inbox, timeout=0.3, wake_on=PUMPED)
    _wait_until_asleep(inbox)
    inbox.put(Ack(packet_id=1))
    thread.join(5)
    assert got == [Ack(packet_id=1)]


def test_each_wait_for_is_woken_by_its_own_kind_beside_another() -> None:
    inbox = Inbox()
    results: dict[type, list] = {Ack: [], StateChange: []}

    def wait(kind: type) -> None:
        results[kind].append(inbox.wait_for(kind, 5))

    threads = [threading.Thread(target=wait, args=(kind,), daemon=True) for kind in results]
    for thread in threads:
        thread.start()
    _wait_until_asleep(inbox, 2)
    inbox.put(Ack(packet_id=4))
    threads[0].join(5)
    assert results[Ack] == [Ack(packet_id=4)] and threads[1].is_alive()
    stop = StateChange(packet_id=5, packet_type=7, message=None, data=b"", raw=b"",
                       new_state=0x3030, program_counter=0x1000)
    inbox.put(stop)
    threads[1].join(5)
    assert results[StateChange] == [stop]


def test_wait_for_wakes_for_its_kind_and_raises_when_the_link_ends() -> None:
    inbox = Inbox()
    result: list = []

    def wait() -> None:
        try:
            result.append(inbox.wait_for(Ack, 5))
        except TransportError as exc:
            result.append(exc)

    for last in (Ack(packet_id=9), LinkClosed(reason="end of file")):
        result.clear()
        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        _wait_until_asleep(inbox)
        inbox.put(_print(b"not this"))
        inbox.put(last)
        thread.join(5)
        assert not thread.is_alive()
        if isinstance(last, Ack):
            assert result == [last]
        else:
            assert isinstance(result[0], TransportError) and "end of file" in str(result[0])
    assert inbox.next_event(0) == _print(b"not this")


@pytest.mark.parametrize("wake_on", [None, PUMPED])
def test_next_event_returns_none_only_after_its_timeout(wake_on) -> None:
    assert Inbox().next_event(0.05, wake_on=wake_on) is None
