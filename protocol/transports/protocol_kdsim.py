# URL format: kdsim://[?seed=N][&flavour=checked|free][&driver=PATH]...[&break_on_connect][&no_trackdemo][&process]
"""pyserial handler for the simulated target: ``kdsim://`` opens a fresh one, attached.

The port is the host's end of a socket pair; a ``SimTarget`` (kdcon.tools.simtarget)
serves the other end in a thread of this process, or with ``?process`` in a child
process (``loopback.start_child``), where it shares no interpreter lock with the host.
Options are ``SimTarget``'s: ``seed``, ``flavour``, ``driver`` (repeatable),
``break_on_connect``, ``no_trackdemo``; ``pace=`` and ``faults=`` work as on every URL
(``open_link``). Closing the port ends the target. The tools package is imported only
when such a URL is opened: the protocol layer stays importable without it.
Not here: the target itself, or speaking KD.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any
from urllib.parse import parse_qsl

from .errors import LinkError
from .fdport import Channel, FdPort
from .socketport import SocketPort
from .urlopts import split_url

__all__ = ["Serial"]

log = logging.getLogger(__name__)

URL_FORMAT = ("kdsim://[?seed=N][&flavour=checked|free][&driver=PATH]...[&break_on_connect]"
              "[&no_trackdemo][&process]")
_OPTIONS = {"seed", "flavour", "driver", "break_on_connect", "no_trackdemo", "process"}


def simtarget_options(url: str) -> tuple[dict[str, Any], bool]:
    """``SimTarget``'s keyword arguments from ``url``, and whether it asks for a child
    process. LinkError for a bad option."""
    _, options = split_url(url, "kdsim", _OPTIONS, URL_FORMAT)
    seed = options.get("seed", "0")
    if not seed.isdigit():
        raise LinkError(f"seed={seed!r} is not a number in {url!r}")
    flavour = options.get("flavour", "checked")
    if flavour not in ("checked", "free"):
        raise LinkError(f"flavour={flavour!r} in {url!r}: use checked or free")
    drivers = [value for key, value in parse_qsl(url.partition("?")[2]) if key == "driver"]
    missing = [path for path in drivers if not os.path.isfile(path)]
    if missing:
        raise LinkError(f"no such driver file: {', '.join(missing)}")
    return dict(seed=int(seed), flavour=flavour, drivers=drivers,
                break_on_connect="break_on_connect" in options,
                include_trackdemo="no_trackdemo" not in options), "process" in options


class Serial(FdPort):
    """The host's end of a link to a fresh simulated target."""

    _sim: Any = None
    _process: Any = None

    def _open_link(self) -> None:
        options, in_child = simtarget_options(self.portstr)
        # Imported here, not at the top: tools import the protocol layer, never the
        # reverse at import time.
        from kdcon.tools.simtarget import loopback
        from kdcon.tools.simtarget.errors import SimTargetError

        host, target = socket.socketpair()
        try:
            if in_child:
                self._process = loopback.start_child(target, dict(options, pace=None,
                                                                   faults=None))
            else:
                self._sim = loopback.SimTarget(**options)
                self._sim.serve_in_thread(SocketPort(target, "kdsim:target", timeout=0.05))
                # The target's thread needs the interpreter lock a spinning reader holds.
                self.peer_in_process = True
        except SimTargetError as exc:
            host.close()
            target.close()
            raise LinkError(f"kdsim: {exc}") from exc
        except BaseException:
            host.close()
            target.close()
            raise
        self._set_channel(Channel(sock=host))

    def _close_link(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim = None
        if self._process is not None:
            from kdcon.tools.simtarget.loopback import reap

            # Our end is closed by now: end of file ends the child's session.
            reap(self._process)
            self._process = None
