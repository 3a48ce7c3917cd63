"""KdLink's write order: on the host a reply's ACK goes out before the caller's next
request (in the same write when that request follows at once) and on its own soon
after when none follows (§2.1); on a target that answers from its event callback, the
request's ACK and the reply leave in one write, ACK first."""

from __future__ import annotations

import select
import socket
import threading

from kdcon.protocol.connection import KdConnection
from kdcon.protocol.constants import (
    INITIAL_PACKET_ID,
    ManipulateApi,
    PacketType,
)
from kdcon.protocol.events import (
    NEED_DATA,
    Ack,
    Event,
    ManipulateReply,
    ManipulateRequest,
    StateChange,
)
from kdcon.protocol.link import KdLink
from kdcon.protocol.messages import build_exception_state_change
from kdcon.protocol.packet import build_control_packet
from kdcon.protocol.state import Role
from kdcon.protocol.transports import socket_pair
from kdcon.protocol.transports.socketport import SocketPort

READ = ManipulateApi.DbgKdReadVirtualMemoryApi


def _events_until(port, conn: KdConnection, kind: type[Event]) -> Event:
    """Read ``port`` into ``conn`` until an event of ``kind`` comes (bounded reads)."""
    for _ in range(500):
        conn.receive_data(port.read(max(1, port.in_waiting)))
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__} from the host")


def _answer(port, target: KdConnection, value: bytes) -> None:
    request = _events_until(port, target, ManipulateRequest)
    assert isinstance(request, ManipulateRequest)
    port.write(target.data_to_send() + target.send_manipulate(
        READ, dict(request.message.u, ActualBytesRead=len(value)), value))


def test_reply_ack_goes_before_the_next_request_or_alone_when_idle() -> None:
    host_port, target_port = socket_pair(timeout=0.05)
    target = KdConnection(Role.TARGET)
    with KdLink(host_port, Role.HOST) as host:
        target_port.write(target.send_state_change(
            build_exception_state_change(0x80000003, 0x401000)))
        assert isinstance(host.wait_for(StateChange, 10), StateChange)
        _events_until(target_port, target, Ack)

        replies: list[object] = []

        def ask(count: int) -> None:
            for n in range(count):
                replies.append(host.request(READ, dict(
                    TargetBaseAddress=0x1000 + n, TransferCount=4, ActualBytesRead=0),
                    timeout=10))

        asker = threading.Thread(target=ask, args=(3,))
        asker.start()
        for n in range(3):
            # Each request arrives after the ACK of the previous reply: no implicit
            # ACK, no RESEND, nothing dropped (Rule 7 never fires).
            _answer(target_port, target, bytes([n]) * 4)
        asker.join(10)
        assert not asker.is_alive()
        assert [r.data for r in replies] == [bytes([n]) * 4 for n in range(3)]
        assert target.stats["implicit_acks"] == 0 and target.stats["resends_sent"] == 0
        # Nobody asks again: the last reply's ACK still goes out, on its own.
        assert isinstance(_events_until(target_port, target, Ack), Ack)
        assert not target.awaiting_ack
    target_port.close()


def test_target_ack_and_reply_leave_in_one_write() -> None:
    host_sock, target_sock = socket.socketpair()
    host = KdConnection(Role.HOST)
    answered = threading.Event()
    early: list[bool] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ManipulateRequest):
            # Whether the ACK already went out on its own before the reply exists.
            early.append(bool(select.select([host_sock], [], [], 0)[0]))
            target.send_manipulate(READ, dict(event.message.u, ActualBytesRead=8), bytes(8))
            answered.set()

    target = KdLink(SocketPort(target_sock, timeout=0.05), Role.TARGET, on_event=on_event)
    try:
        target.send_state_change(build_exception_state_change(0x80000003, 0x401000))
        host_sock.settimeout(10)
        host.receive_data(host_sock.recv(4096))
        assert isinstance(host.next_event(), StateChange)
        host_sock.sendall(host.data_to_send())
        target.wait_acked(10)

        host_sock.sendall(host.send_manipulate(READ, dict(
            TargetBaseAddress=0x1000, TransferCount=8, ActualBytesRead=0)))
        assert answered.wait(10)
        assert early == [False]
        assert select.select([host_sock], [], [], 10)[0]
        first = host_sock.recv(65536)
        ack = build_control_packet(PacketType.PACKET_TYPE_KD_ACKNOWLEDGE, INITIAL_PACKET_ID)
        assert first.startswith(ack) and len(first) > len(ack)
        host.receive_data(first)
        events = []
        while (event := host.next_event()) is not NEED_DATA:
            events.append(event)
        assert [type(e) for e in events] == [Ack, ManipulateReply]
    finally:
        target.close()
        host_sock.close()
