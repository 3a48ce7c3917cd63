"""The simulated target in-process: for the console's --loopback mode and for tests.

What it does: ``SimTarget`` owns one machine and one kd session and serves it over
links: ``connect()`` makes a socket pair, serves the target end in a thread and returns
the host end (a pyserial-like port for the console or a KD host); ``serve(port)`` runs
the session in the calling thread (kdcon-sim does this for each debugger that
attaches). ``close()`` ends the session and joins the thread; nothing is left running.
What it does not do: open URLs (cli.py) or speak the host role.

    with SimTarget(seed=0, break_on_connect=True) as sim:
        port = sim.connect()        # host end; the target runs in a thread
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from os import PathLike
from typing import Any

from kdcon.protocol.transports import socket_pair, wrap_link
from kdcon.protocol.transports.faults import FaultModel

from .kd import KdTargetSession

__all__ = ["SimTarget", "share_one_cpu"]

log = logging.getLogger(__name__)


class SimTarget:
    """One simulated machine with its kd, served over in-process or external links."""

    def __init__(self, *, seed: int = 0, drivers: Sequence[str | PathLike[str]] | None = None,
                 break_on_connect: bool = False, include_trackdemo: bool = True,
                 flavour: str = "checked", machine: Any = None,
                 ack_timeout: float = 0.5) -> None:
        if machine is None:
            from .kd.adapter import MachineAdapter

            machine = MachineAdapter.create(seed=seed, drivers=list(drivers or ()),
                                            break_on_connect=break_on_connect,
                                            include_trackdemo=include_trackdemo,
                                            flavour=flavour)
        self.machine = machine
        self.session = KdTargetSession(machine, ack_timeout=ack_timeout)
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None  # what stopped a connect() thread, if anything
        self._ports: list[Any] = []
        self._lock = threading.Lock()

    def __enter__(self) -> SimTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self, *, timeout: float | None = 1.0, pace: int | None = None,
                faults: FaultModel | None = None) -> Any:
        """The host end of a fresh socket pair; the target serves the other end."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("the simulated target already has a debugger attached")
            host, target = socket_pair(timeout=timeout)
            target_port = wrap_link(target, pace=pace, faults=faults)
            self._ports = [host, target]
            self._thread = threading.Thread(target=self._serve_in_thread, args=(target_port,),
                                            name="kdsim-target", daemon=True)
            self._thread.start()
        return wrap_link(host, pace=pace)

    def _serve_in_thread(self, port: Any) -> None:
        try:
            self.serve(port)
        except Exception as exc:  # noqa: BLE001 - reported, kept, and the link closes
            self.error = exc
            log.error("the simulated target stopped: %s", exc)
            try:
                port.close()
            except OSError:
                pass

    def serve(self, port: Any) -> None:
        """Serve one link in this thread until it ends or ``close()`` is called."""
        self.session.serve(port)

    def close(self) -> None:
        """End the session, join its thread, close the in-process ports."""
        self.session.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
            if thread.is_alive():
                log.warning("the simulated target's thread did not stop")
        self._thread = None
        for port in self._ports:
            try:
                port.close()
            except OSError:
                pass
        self._ports = []
        closer = getattr(self.machine, "close", None)
        if closer is not None:
            closer()


def share_one_cpu() -> set[int] | None:
    """Keep the calling thread, and every thread it starts from now on, on one CPU;
    return the CPUs it had (None where the platform cannot pin threads). Call it
    before making the SimTarget and the host's link: threads already running keep
    their CPUs.

    A host and a SimTarget in one process hand the interpreter lock to each other on
    every packet; between two CPUs each hand-over wakes the other one, which on a
    virtual machine costs more than the work of the round trip (bench/simtarget.py).
    The machine's CPU emulation runs without the lock and gives up its parallelism,
    which a debugger session barely uses. Undo with ``os.sched_setaffinity(0, cpus)``.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    return cpus
