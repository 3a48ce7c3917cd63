"""The simulated target for the console's --loopback mode and for tests.

What it does: ``open_loopback(...)``, what ``kdcon --loopback`` uses, runs the target in
a child process (kdcon-sim's serve loop over a socket pair) and returns the host end:
host and target share no interpreter lock, which halves a round trip against the
target in a thread (bench/simtarget.py) and keeps the console responsive while the
machine runs. The child says on a pipe that its machine is made, or why not (one
line: a bad driver); it ends when the port closes, and with the process that started
it (end of file, and on Linux the kernel's parent-death signal). With ``ioctls``
(``userio.parse_ioctl``'s tuples) the child posts a test program's requests as
``kdcon-sim --ioctl`` does and says each result on a pipe of its own, which the host
end reads whenever the link is read: ``on_io_result`` gets kdcon-sim's line and the
result's fields before the packets the target sent after it. ``SimTarget`` owns
one machine and one kd session in this process and serves it over links:
``connect()`` makes a socket pair, serves the target end in a thread and returns the
host end (a pyserial-like port for a KD host); ``serve(port)`` runs the session in
the calling thread (kdcon-sim does this for each debugger that attaches). ``close()``
ends the session and joins the thread; nothing is left running.
What it does not do: open URLs (cli.py) or speak the host role.

    port = open_loopback(seed=0, break_on_connect=True)   # the target in a child
    port = open_loopback(drivers=["my.sys"], ioctls=[parse_ioctl(spec)], on_io_result=show)
    with SimTarget(seed=0, break_on_connect=True) as sim:
        port = sim.connect()        # host end; the target runs in a thread
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any

from kdcon.protocol.transports import socket_pair, wrap_link
from kdcon.protocol.transports.errors import LinkError
from kdcon.protocol.transports.faults import FaultModel
from kdcon.protocol.transports.socketport import SocketPort

from .kd import KdTargetSession

__all__ = ["SimTarget", "open_loopback", "start_child", "reap", "share_one_cpu"]

log = logging.getLogger(__name__)

# What open_loopback's child says once its machine is made, and how long that may take
# (parsing the images and drivers on a busy machine).
READY = "ready"
READY_TIMEOUT = 60.0
_PR_SET_PDEATHSIG = 1


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
        host, target = socket_pair(timeout=timeout)
        self.serve_in_thread(wrap_link(target, pace=pace, faults=faults), host, target)
        return wrap_link(host, pace=pace)

    def serve_in_thread(self, port: Any, *also_close: Any) -> None:
        """Serve ``port`` in a thread until it ends or ``close()``, which closes it
        (and ``also_close``)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("the simulated target already has a debugger attached")
            self._ports = [*also_close, port]
            self._thread = threading.Thread(target=self._serve_in_thread, args=(port,),
                                            name="kdsim-target", daemon=True)
            self._thread.start()

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


def open_loopback(*, seed: int = 0, drivers: Sequence[str | PathLike[str]] | None = None,
                  break_on_connect: bool = False, include_trackdemo: bool = True,
                  flavour: str = "checked", pace: int | None = None,
                  faults: FaultModel | None = None, timeout: float | None = 1.0,
                  ready_timeout: float = READY_TIMEOUT,
                  ioctls: Sequence[tuple[str, int, bytes, int]] = (),
                  on_io_result: Callable[[str, dict[str, Any]], None] | None = None) -> Any:
    """The host end of a socket pair whose other end a child process serves with a
    ``SimTarget`` of these options (as ``SimTarget(...).connect(...)`` does in a
    thread). Returns once the child has made its machine (the boot to the first
    stop goes on while the caller does); it leaves Ctrl+C to the caller (a process
    group of its own) and ends when the port closes or the caller's process dies.
    LinkError, one line, when a driver file is missing or is no driver, or the child
    cannot start."""
    missing = [str(path) for path in drivers or () if not os.path.isfile(path)]
    if missing:
        raise LinkError(f"no such driver file: {', '.join(missing)}")
    options = dict(seed=seed, drivers=[os.fspath(path) for path in drivers or ()],
                   break_on_connect=break_on_connect, include_trackdemo=include_trackdemo,
                   flavour=flavour, pace=pace,
                   faults=None if faults is None else dict(
                       seed=faults.seed, bit_flip=faults.bit_flip, drop=faults.drop,
                       duplicate=faults.duplicate, garbage=faults.garbage,
                       garbage_len=list(faults.garbage_len)))
    results_r = results_w = None
    if ioctls:
        results_r, results_w = os.pipe()
        os.set_blocking(results_r, False)
        # An IoctlSpec may carry more than the four fields (the {event} placeholder's).
        options.update(ioctls=[[spec[0], spec[1], spec[2].hex(), *spec[3:]] for spec in ioctls],
                       results=results_w)
    host, child = socket.socketpair()
    verdict_r, verdict_w = os.pipe()
    try:
        process = start_child(child, options, verdict=verdict_w,
                              also_pass=() if results_w is None else (results_w,))
    except LinkError:
        host.close()
        os.close(verdict_r)
        if results_r is not None:
            os.close(results_r)
        raise
    finally:
        if results_w is not None:
            os.close(results_w)
    try:
        _await_ready(verdict_r, process, ready_timeout)
    except BaseException:
        # Not ready, or the caller gave up (Ctrl+C): its machine is of no use.
        host.close()
        process.kill()
        process.wait()
        if results_r is not None:
            os.close(results_r)
        raise
    finally:
        os.close(verdict_r)
    return wrap_link(_ChildPort(host, process, timeout, results=results_r,
                                on_io_result=on_io_result), pace=pace)


def _await_ready(fd: int, process: subprocess.Popen, timeout: float) -> None:
    """Wait for the child's one line on its verdict pipe: READY, or why it could not
    make the machine (LinkError with that line)."""
    text = b""
    deadline = time.monotonic() + timeout
    while not text.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            process.kill()
            raise LinkError(f"the simulated target did not start within {timeout:g} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        text += chunk
    line = text.decode("utf-8", "replace").strip()
    if line == READY:
        return
    try:
        status = process.wait(10)  # it ends right after saying why
    except subprocess.TimeoutExpired:
        status = None
    if not line:
        line = f"its process ended before it was ready (exit status {status})"
    raise LinkError(f"the simulated target could not start: {line}")


def start_child(sock: socket.socket, options: dict[str, Any], *,
                verdict: int | None = None, also_pass: Sequence[int] = ()) -> subprocess.Popen:
    """A child process serving ``SimTarget(**options)`` (plus ``pace`` and ``faults``
    as a dict of FaultModel's fields, and optionally ``ioctls`` with the descriptor
    ``results`` their results go to) on ``sock``, the target's end of a socket pair,
    which is closed here. With ``verdict`` (a pipe's write end, closed here) the child
    writes READY or why it could not make the machine there, one line, instead of
    saying so on its standard error. ``also_pass``: more descriptors the child
    inherits (the caller closes them). LinkError when the child cannot start."""
    fds = ((sock.fileno(),) if verdict is None else (sock.fileno(), verdict)) + tuple(also_pass)
    # The kernel's watch on the parent is a watch on the thread that starts the
    # child: one started from a thread that ends sooner must not die with it.
    watch = threading.current_thread() is threading.main_thread()
    try:
        return subprocess.Popen(
            [sys.executable, "-c", "import sys; from kdcon.tools.simtarget.loopback import "
             "serve_inherited; sys.exit(serve_inherited())",
             str(sock.fileno()), json.dumps(options),
             *(() if verdict is None else (str(verdict),)),
             *((str(os.getpid()),) if verdict is not None and watch else ())],
            # A process group of its own keeps the terminal's Ctrl+C from it; a
            # session of its own would also put it in another scheduling group,
            # whose wake-ups cost ten times the round trip under load.
            pass_fds=fds, stdin=subprocess.DEVNULL, process_group=0)
    except OSError as exc:
        raise LinkError(f"cannot start the simulated target: {exc}") from exc
    finally:
        sock.close()
        if verdict is not None:
            os.close(verdict)


class _ChildPort(SocketPort):
    """The host end of ``open_loopback``: closing it ends and reaps the child. The
    user program's results are read after each read of the link: the child wrote a
    result to its pipe before it sent any later packet, so every result that came
    before the bytes read is passed on before those bytes are returned."""

    def __init__(self, sock: socket.socket, proc: subprocess.Popen,
                 timeout: float | None, *, results: int | None = None,
                 on_io_result: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.process = proc
        self._results = results
        self._partial = b""
        self.on_io_result = on_io_result
        super().__init__(sock, "kdsim:loopback", timeout=timeout)

    def read(self, size: int = 1) -> bytes:
        data = super().read(size)
        self._pass_results()
        return data

    def read_available(self, limit: int = 1 << 16, spin: float = 0.0) -> bytes:
        data = super().read_available(limit, spin)
        self._pass_results()
        return data

    def _pass_results(self) -> None:
        if self._results is None:
            return
        try:
            while chunk := os.read(self._results, 1 << 16):
                self._partial += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            result = json.loads(line)
            if self.on_io_result is not None:
                self.on_io_result(result.pop("text"), result)

    def close(self) -> None:
        super().close()
        reap(self.process)
        if self._results is not None:
            os.close(self._results)
            self._results = None


def reap(process: subprocess.Popen) -> None:
    """Wait for a child of ``start_child`` whose socket was closed (end of file ends
    its session); one stuck anyway is killed."""
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log.warning("the simulated target's process did not stop; killing it")
        process.kill()
        process.wait(timeout=10)


def serve_inherited(argv: Sequence[str] | None = None) -> int:
    """The child of ``start_child``: argv is the inherited socket's descriptor, the
    options as JSON and, from ``open_loopback``, the verdict pipe's descriptor and the
    parent's process id. Serves until the socket closes or the parent dies; errors
    are one line (on the verdict pipe when there is one)."""
    fd_text, options_text, *rest = (sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.ERROR, format="kdcon-sim: %(message)s")
    from .errors import SimTargetError

    verdict = int(rest[0]) if rest else None
    if len(rest) > 1:
        _end_with_parent(int(rest[1]))
    options = json.loads(options_text)
    pace, faults = options.pop("pace"), options.pop("faults")
    ioctls, results = options.pop("ioctls", []), options.pop("results", None)
    sock = socket.socket(fileno=int(fd_text))
    try:
        sim = SimTarget(**options)
    except SimTargetError as exc:
        _say(verdict, str(exc))
        sock.close()
        return 2
    if ioctls:
        _post_ioctls(sim, ioctls, results)
    _say(verdict, READY)
    model = None if faults is None else FaultModel(**dict(
        faults, garbage_len=tuple(faults["garbage_len"])))
    port = wrap_link(SocketPort(sock, "kdsim:target", timeout=0.05), pace=pace, faults=model)
    try:
        sim.serve(port)
    finally:
        sim.close()
        port.close()
    return 0


def _post_ioctls(sim: SimTarget, ioctls: list[list[Any]], results: int) -> None:
    """Queue a test program's requests, as ``kdcon-sim --ioctl`` does; each result
    goes to ``results`` as one JSON line: kdcon-sim's text and the result's fields."""
    from .userio import IoctlSpec, ioctl_requests

    def report(result: Any) -> None:
        line = json.dumps(dict(text=f"kdcon-sim: {result.describe()}",
                               request=result.request.describe(), status=result.status,
                               information=result.information, output=result.output.hex()))
        try:
            os.write(results, line.encode() + b"\n")
        except OSError:
            pass  # the console is gone; the socket's end of file ends this process

    io = sim.machine.machine.io
    io.on_result = report
    io.post(*ioctl_requests([IoctlSpec(device, code, bytes.fromhex(data), *rest)
                             for device, code, data, *rest in ioctls]))


def _say(verdict: int | None, line: str) -> None:
    if verdict is None:
        if line != READY:
            sys.stderr.write(f"kdcon-sim: {line}\n")
        return
    try:
        with os.fdopen(verdict, "w", encoding="utf-8") as pipe:
            pipe.write(" ".join(line.split()) + "\n")
    except OSError:
        pass  # the parent gave up waiting: the socket's end of file ends this process


def _end_with_parent(parent: int) -> None:
    """Have the kernel end this process when the one that started it dies (Linux), so
    that nothing is left running even when end of file cannot come (the parent's
    socket end inherited by some process of its own). Elsewhere the end of file is
    all there is."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(0)  # the parent died before the kernel was told to watch it
