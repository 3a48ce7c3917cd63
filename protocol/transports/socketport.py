"""Stream-socket ports: connect or listen for one peer, optionally reconnecting.

``StreamSocketPort`` is the common part of ``unix://`` and ``tcp://``: a client
connects once at open (a refusal is an error saying what to check); a listener binds at
open and accepts its one peer lazily, on a read, a write or ``wait_for_peer``, so that
the address exists as soon as the port object does; a write never waits for the peer
(bytes written before one connects are lost). With ``reconnect`` a client
retries the connection (every 0.1 s, within the caller's timeout) and a listener accepts
the next peer. ``SocketPort`` adopts an already connected socket (``socket_pair``).

Not here: URL syntax (``protocol_unix``/``protocol_tcp``).
"""

from __future__ import annotations

import logging
import select
import socket
import time

from .errors import LinkError
from .fdport import Channel, FdPort

__all__ = ["StreamSocketPort", "SocketPort"]

log = logging.getLogger(__name__)

_RETRY_INTERVAL = 0.1


class StreamSocketPort(FdPort):
    """Connects (``listen`` False) or accepts one peer (``listen`` True) on a stream socket.

    A listener with no peer attached drops what is written (FdPort.write): nobody is
    there to receive it, and waiting in accept() would stall the writer indefinitely.
    """

    def __init__(self, *args, **kwargs) -> None:
        self._listener: socket.socket | None = None
        super().__init__(*args, **kwargs)

    # Subclasses: parse the URL and create sockets.
    def _parse(self) -> None:
        raise NotImplementedError

    def _connect(self) -> socket.socket:
        """A connected socket; OSError when the peer is not there."""
        raise NotImplementedError

    def _make_listener(self) -> socket.socket:
        raise NotImplementedError

    def _describe_connect_error(self, exc: OSError) -> str:
        return f"cannot connect to {self.portstr}: {exc.strerror or exc}"

    def _open_link(self) -> None:
        self._parse()
        if self.listen:
            self._listener = self._make_listener()
            self._listener.setblocking(False)
            return
        try:
            sock = self._connect()
        except OSError as exc:
            raise LinkError(self._describe_connect_error(exc)) from exc
        self._set_channel(Channel(sock=sock))

    def _attach(self, timeout: float | None) -> bool:
        if self.listen:
            return self._accept(timeout)
        if not self.reconnect:
            return False
        deadline = None if timeout is None else _now() + timeout
        while True:
            try:
                sock = self._connect()
            except OSError as exc:
                log.debug("%s: reconnect failed: %s", self.portstr, exc)
            else:
                log.info("%s: reconnected", self.portstr)
                self._set_channel(Channel(sock=sock))
                return True
            left = None if deadline is None else deadline - _now()
            if left is not None and left <= 0:
                return False
            wait = _RETRY_INTERVAL if left is None else min(_RETRY_INTERVAL, left)
            if self._cancel_wait(wait):
                return False

    def _attach_for_write(self, timeout: float | None) -> bool:
        if self.listen:
            return self._accept(0, cancellable=False)
        return self._attach(timeout)

    def _accept(self, timeout: float | None, *, cancellable: bool = True) -> bool:
        """Accept a peer within ``timeout``. The reader and a writer may both call this:
        a writer neither waits nor consumes the reader's ``cancel_read``."""
        listener = self._listener
        if listener is None:
            return self._chan is not None
        watched = [listener, self._cancel_r] if cancellable else [listener]
        try:
            ready, _, _ = select.select(watched, [], [], timeout)
            if self._cancel_r in ready:
                self._drain_cancel()
                return False
            if not ready:
                return False
            sock, peer = listener.accept()
        except BlockingIOError:
            return False          # the other thread accepted this peer first
        except (OSError, ValueError):
            # The other thread accepted and closed the one-peer listener under us.
            return self._chan is not None
        if self._chan is not None:
            log.info("%s: refusing a second peer %s", self.portstr, peer or "")
            sock.close()
            return True
        log.info("%s: peer connected %s", self.portstr, peer or "")
        self._tune(sock)
        self._set_channel(Channel(sock=sock))
        if not self.reconnect:
            # One peer only: later connection attempts are refused, not queued.
            self._close_listener()
        return True

    def _tune(self, sock: socket.socket) -> None:
        """Socket options for an accepted peer."""

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _close_link(self) -> None:
        self._close_listener()


class SocketPort(FdPort):
    """A pyserial-like port over an already connected stream socket."""

    def __init__(self, sock: socket.socket, name: str = "socketpair", timeout: float | None = None) -> None:
        self._adopted: socket.socket | None = sock
        super().__init__(port=None, timeout=timeout)
        self.port = name  # sets portstr and name as pyserial does; opening is explicit
        self.open()

    def _open_link(self) -> None:
        if self._adopted is None:
            raise LinkError(f"{self.portstr}: the socket was closed and cannot be reopened")
        self._set_channel(Channel(sock=self._adopted))
        self._adopted = None


def _now() -> float:
    return time.monotonic()
