# URL format: pty://[?link=/path/for/symlink]
"""pyserial handler that creates a pseudo-terminal pair and keeps the master end.

The object reads and writes the master; ``.peer_name`` is the slave's path (e.g.
``/dev/pts/7``), which the other side opens as an ordinary serial device with pyserial,
the "real serial" set-up of simulated-target.md §8.3. ``?link=PATH`` also creates a
symlink to the slave (removed on close), like socat's ``link=``.

The slave is put in raw mode (simulated-target.md §8.2: otherwise the line discipline
mangles 0x0D, 0x11/0x13). This end keeps its own slave descriptor open for its whole
life, so, like a UART, the master never sees EOF: a peer can close and reopen the slave
path. The peer does see EOF when this end closes (pyserial raises, ``open_link``
reports ``LinkError``). POSIX only.
"""

from __future__ import annotations

import logging
import os
import sys

from .errors import LinkError
from .fdport import Channel, FdPort
from .urlopts import split_url

__all__ = ["Serial"]

log = logging.getLogger(__name__)

URL_FORMAT = "pty://[?link=/path/for/symlink]"


class Serial(FdPort):
    """The master end of a fresh pty pair."""

    peer_name: str = ""
    link_path: str | None = None
    _slave_fd: int | None = None

    def _open_link(self) -> None:
        if sys.platform == "win32":
            raise LinkError("pty:// needs a POSIX system (Linux or macOS)")
        import tty

        _, options = split_url(self.portstr, "pty", {"link"}, URL_FORMAT)
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            self.peer_name = os.ttyname(slave)
            if options.get("link"):
                os.symlink(self.peer_name, options["link"])
                self.link_path = options["link"]
        except OSError as exc:
            os.close(master)
            os.close(slave)
            raise LinkError(f"cannot set up the pty: {exc.strerror or exc}") from exc
        self._slave_fd = slave
        self._set_channel(Channel(fd=master))
        log.info("pty ready: the peer opens %s", self.peer_name)

    def _close_link(self) -> None:
        if self._slave_fd is not None:
            os.close(self._slave_fd)
            self._slave_fd = None
        if self.link_path:
            try:
                os.unlink(self.link_path)
            except OSError:
                pass
            self.link_path = None
