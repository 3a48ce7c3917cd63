# URL format: unix:///path/to/socket[?listen][&reconnect]
"""pyserial handler for unix-domain stream sockets: VM serial pipes and the simulated target.

- ``unix:///path`` connects to a listening socket, e.g. QEMU ``-serial unix:PATH,server``
  or a VirtualBox/VMware host pipe on Linux (kd-protocol.md §8.1 describes the same link
  from radare2's side).
- ``?listen`` binds the path and accepts one peer (the simulated target's form); the
  path is removed again on close. A stale socket file left by a dead process is
  replaced; any other existing file is an error. Until a peer connects, writes are
  dropped at once, as on a serial line with no cable (never waiting in ``accept()``).
- ``?reconnect`` survives the peer going away: a client reconnects, a listener accepts
  the next peer (WinDbg ``com:pipe,...,reconnect``, windbg.md §0.8).

Everything after ``unix://`` up to ``?`` is the path, so ``unix:///tmp/kd`` is absolute and
``unix://kd.sock`` is relative to the working directory.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat

from .errors import LinkError
from .socketport import StreamSocketPort
from .urlopts import split_url

__all__ = ["Serial"]

log = logging.getLogger(__name__)

URL_FORMAT = "unix:///path/to/socket[?listen][&reconnect]"


class Serial(StreamSocketPort):
    """A unix-domain stream socket as a pyserial port."""

    path: str = ""
    _created: tuple[int, int] | None = None

    def _parse(self) -> None:
        body, options = split_url(self.portstr, "unix", {"listen", "reconnect"}, URL_FORMAT)
        if not body:
            raise LinkError(f"no socket path in {self.portstr!r} (format {URL_FORMAT})")
        self.path = body
        self.listen = "listen" in options
        self.reconnect = "reconnect" in options

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def _describe_connect_error(self, exc: OSError) -> str:
        if exc.errno == errno.ENOENT:
            hint = "no such socket: is the VM or simulator running and listening on that path?"
        elif exc.errno == errno.ECONNREFUSED:
            hint = "nobody listens there (a stale socket file?): restart the VM or simulator"
        elif exc.errno == errno.EACCES:
            hint = "permission denied: check the socket file's owner and mode"
        else:
            hint = exc.strerror or str(exc)
        return f"cannot connect to {self.path}: {hint}"

    def _make_listener(self) -> socket.socket:
        self._remove_stale_socket()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            sock.listen(1)
        except OSError as exc:
            sock.close()
            raise LinkError(f"cannot listen on {self.path}: {exc.strerror or exc}") from exc
        info = os.stat(self.path)
        self._created = (info.st_dev, info.st_ino)
        return sock

    def _remove_stale_socket(self) -> None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise LinkError(f"cannot listen on {self.path}: {exc.strerror or exc}") from exc
        if not stat.S_ISSOCK(info.st_mode):
            raise LinkError(f"cannot listen on {self.path}: a file that is not a socket is in the way")
        try:
            self._connect().close()
        except OSError:
            log.info("removing stale socket %s", self.path)
            os.unlink(self.path)
            return
        raise LinkError(f"cannot listen on {self.path}: another process is listening there")

    def _close_link(self) -> None:
        super()._close_link()
        if self._created is None:
            return
        # Unlink only the socket we bound, not one a newer process put at the same path.
        try:
            info = os.stat(self.path)
            if (info.st_dev, info.st_ino) == self._created:
                os.unlink(self.path)
        except OSError:
            pass
        self._created = None
