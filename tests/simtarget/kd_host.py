"""A minimal KD host for the target's tests: KdConnection(Role.HOST) over one port.

One reader thread feeds the connection and queues its events; ``request`` sends a
manipulate request and waits for the matching reply; ``wait_for`` waits for an event of
a given kind, keeping what it skips in ``seen``. Everything waits on a queue with a
timeout: no sleeps. This is test plumbing, not the console.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import serial

from kdcon.protocol import NEED_DATA, KdConnection, Role
from kdcon.protocol.constants import ContinueStatus, ManipulateApi as A
from kdcon.protocol.events import (
    DebugPrint,
    Event,
    ManipulateReply,
    StateChange,
)


class KdHost:
    def __init__(self, port: Any, *, ack_timeout: float = 0.5) -> None:
        self.port = port
        self.conn = KdConnection(Role.HOST, ack_timeout=ack_timeout)
        self.seen: list[Event] = []
        self.prints: list[bytes] = []
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        try:
            port.timeout = 0.05
        except (AttributeError, ValueError):
            pass
        self._thread = threading.Thread(target=self._read_loop, name="kdhost-reader",
                                        daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.port.read(max(1, self.port.in_waiting))
                with self._lock:
                    if data:
                        self.conn.receive_data(data)
                    while (event := self.conn.next_event()) is not NEED_DATA:
                        if isinstance(event, DebugPrint):
                            self.prints.append(event.text)
                        self._events.put(event)
                    out = self.conn.data_to_send() + self.conn.check_timeouts(time.monotonic())
                    if out:
                        self.port.write(out)
        except (EOFError, OSError, serial.SerialException, TypeError, AttributeError):
            pass
        finally:
            self._events.put(None)

    def send(self, method: Any, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            out = method(*args, **kwargs) + self.conn.data_to_send()
            self.port.write(out)

    def wait_for(self, kind: type | tuple[type, ...], timeout: float = 10.0,
                 where: Any = None) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} within {timeout} s; saw {self.seen[-5:]}")
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                self._events.put(None)
                raise EOFError("the target link closed")
            self.seen.append(event)
            if isinstance(event, kind) and (where is None or where(event)):
                return event

    def request(self, api: int, u: dict | None = None, data: bytes = b"", *,
                timeout: float = 10.0, **fields: Any) -> ManipulateReply:
        self.send(self.conn.send_manipulate, api, u, data, **fields)
        return self.wait_for(ManipulateReply, timeout, where=lambda e: e.api == api)

    def request_raw(self, payload: bytes, *, timeout: float = 10.0) -> ManipulateReply:
        api = int.from_bytes(payload[:4], "little")
        self.send(self.conn.send_manipulate_payload, payload)
        return self.wait_for(ManipulateReply, timeout, where=lambda e: e.api == api)

    def read_virtual(self, address: int, size: int) -> bytes:
        out = b""
        while len(out) < size:
            count = min(size - len(out), 3944)
            reply = self.request(A.DbgKdReadVirtualMemoryApi, dict(
                TargetBaseAddress=address + len(out), TransferCount=count, ActualBytesRead=0))
            if reply.return_status != 0 or not reply.data:
                break
            out += reply.data
            if len(reply.data) < count:
                break
        return out

    def continue2(self, *, trace: bool = False, dr7: int = 0x400) -> None:
        self.send(self.conn.send_manipulate, A.DbgKdContinueApi2, dict(
            ContinueStatus=ContinueStatus.DBG_CONTINUE,
            ControlSet=dict(Amd64=dict(TraceFlag=int(trace), Dr7=dr7, CurrentSymbolStart=1,
                                       CurrentSymbolEnd=0))))

    def breakin(self) -> None:
        self.send(self.conn.send_breakin)

    def reset(self) -> None:
        self.send(self.conn.send_reset)

    def next_stop(self, timeout: float = 10.0) -> StateChange:
        return self.wait_for(StateChange, timeout)

    def close(self) -> None:
        self._stop.set()
        cancel = getattr(self.port, "cancel_read", None)
        if cancel is not None:
            cancel()
        self._thread.join(timeout=5)
