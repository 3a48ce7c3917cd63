# URL format: tcp://host:port[?listen][&allow_remote][&reconnect]
"""pyserial handler for TCP links with TCP_NODELAY (pyserial's ``socket://`` leaves Nagle on).

- ``tcp://host:port`` connects (a VM's serial port exposed as a TCP server, e.g. QEMU
  ``-serial tcp::PORT,server``).
- ``?listen`` binds and accepts one peer. Only loopback addresses are allowed unless
  ``?allow_remote`` is given: a kernel debugger port gives full control of a machine.
  ``tcp://127.0.0.1:0?listen`` picks a free port; ``.address`` holds the bound one.
  Until a peer connects, writes are dropped at once (never waiting in ``accept()``).
- ``?reconnect`` as for ``unix://``.

KD packets are small and latency-bound (kd-protocol.md §10.2), hence TCP_NODELAY.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket

from .errors import LinkError
from .socketport import StreamSocketPort
from .urlopts import split_url

__all__ = ["Serial"]

log = logging.getLogger(__name__)

URL_FORMAT = "tcp://host:port[?listen][&allow_remote][&reconnect]"
_CONNECT_TIMEOUT = 5.0


class Serial(StreamSocketPort):
    """A TCP stream as a pyserial port."""

    host: str = ""
    tcp_port: int = 0
    allow_remote: bool = False
    address: tuple[str, int] | None = None

    def _parse(self) -> None:
        body, options = split_url(self.portstr, "tcp", {"listen", "allow_remote", "reconnect"}, URL_FORMAT)
        host, sep, port_text = body.rpartition(":")
        if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
            raise LinkError(f"bad TCP address in {self.portstr!r} (format {URL_FORMAT})")
        self.host = host.strip("[]")
        self.tcp_port = int(port_text)
        self.listen = "listen" in options
        self.allow_remote = "allow_remote" in options
        self.reconnect = "reconnect" in options
        if not self.listen and (not self.host or self.tcp_port == 0):
            raise LinkError(f"{self.portstr!r} needs a host and a port to connect to")

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.tcp_port), timeout=_CONNECT_TIMEOUT)
        self._tune(sock)
        return sock

    def _tune(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _describe_connect_error(self, exc: OSError) -> str:
        where = f"{self.host}:{self.tcp_port}"
        if exc.errno == errno.ECONNREFUSED:
            hint = "connection refused: is the VM or simulator listening on that port?"
        elif isinstance(exc, (socket.timeout, TimeoutError)):
            hint = "no answer: check the host name and any firewall"
        elif isinstance(exc, socket.gaierror):
            hint = "unknown host name"
        else:
            hint = exc.strerror or str(exc)
        return f"cannot connect to {where}: {hint}"

    def _make_listener(self) -> socket.socket:
        host = self.host or "127.0.0.1"
        try:
            infos = socket.getaddrinfo(host, self.tcp_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise LinkError(f"cannot listen on {host}:{self.tcp_port}: unknown host name") from exc
        family, _, _, _, sockaddr = infos[0]
        if not self.allow_remote and not ipaddress.ip_address(sockaddr[0]).is_loopback:
            raise LinkError(
                f"refusing to listen on {sockaddr[0]}: not a loopback address "
                "(a debug port controls the machine; add ?allow_remote to mean it)"
            )
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(1)
        except OSError as exc:
            sock.close()
            raise LinkError(f"cannot listen on {host}:{self.tcp_port}: {exc.strerror or exc}") from exc
        self.address = sock.getsockname()[:2]
        return sock
