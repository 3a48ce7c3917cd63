"""Simulated-target benchmarks: ``python -m kdcon.tools.bench.simtarget``, JSON lines.

Figures, each with a baseline measured in the same run:

- ``start_to_listening_s``: ``kdcon-sim --listen unix://...`` from process start to its
  ``listening on`` line (goal < 1 s), against starting the same interpreter with
  ``python -c pass``;
- ``request_round_trip_us``: median GetVersion round trip, a host KdLink against
  kdcon-sim (its own process) broken in at trackdemo's first break, over a unix socket
  (goal < 200 µs), against the median round trip of a 16-byte echo over a unix socket
  pair with a thread;
- ``bulk_read_mb_per_s``: 16 MiB of the kernel's pool read with ReadVirtualMemory in
  3944-byte transfers over that unix socket (goal >= 20 MB/s), against raw bulk
  throughput of a socket pair in 3944-byte writes;
- the same two with ``_in_process``: SimTarget and the host in one process over a
  socket pair (the console's --loopback), where both ends share one interpreter lock;
  and with ``_in_process_one_cpu``, that process kept on one CPU
  (``loopback.share_one_cpu``), where handing the lock over costs no wake-up of
  another CPU;
- the same two with ``_loopback_process``: ``loopback.open_loopback``, the target in a
  child process over a socket pair, what ``kdcon --loopback`` uses (goal: round trip
  <= 2x the echo's, >= 20 MB/s); and its round trip once more,
  ``_loopback_process_vs_child_echo``, against the echo of the same topology: a child
  process echoing over a socket pair (the thread echo's two threads may share one CPU,
  which a cross-process exchange does not);
- the two kdcon-sim figures again with ``_beside_a_busy_process``: a CPU-bound process
  runs beside host and target the whole time.

Not a test: nothing here asserts; the README quotes the figures.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from kdcon.protocol import Role
from kdcon.protocol.constants import MAX_TRANSFER_SIZE, ManipulateApi as A
from kdcon.protocol.events import Event, StateChange
from kdcon.protocol.link import KdLink
from kdcon.protocol.transports import open_link
from kdcon.tools.bench.args import BenchParser, positive_int
from kdcon.tools.simtarget.loopback import SimTarget, open_loopback, share_one_cpu

__all__ = ["main"]

MB = 1_000_000
POOL_BASE = 0xFFFFFA8000000000  # the kernel's nonpaged pool, 16 MiB mapped
LOAD_SYMBOLS = 0x3031


def _emit(name: str, value: float, unit: str, baseline_name: str, baseline: float,
          goal: str, **extra: Any) -> None:
    record = dict(figure=name, value=round(value, 3), unit=unit, goal=goal,
                  baseline=baseline_name, baseline_value=round(baseline, 3),
                  ratio=round(value / baseline, 3) if baseline else None, **extra)
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


# -- start to listening ------------------------------------------------------------------

def _time_to_line(argv: list[str], expect: str, timeout: float = 30.0) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"{argv[0]} printed nothing in {timeout} s")
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - start
        if not line.startswith(expect):
            raise RuntimeError(f"unexpected first line {line!r}")
        return elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_start(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sim, base = [], []
        for i in range(runs):
            path = os.path.join(tmp, f"kd{i}.sock")
            sim.append(_time_to_line(
                [sys.executable, "-c", "import sys; from kdcon.tools.simtarget.cli import main;"
                 " sys.exit(main())", "--listen", f"unix://{path}"], "listening on "))
            base.append(_time_to_line([sys.executable, "-c", "print('ready')"], "ready"))
    _emit("start_to_listening_s", statistics.median(sim), "s", "python_start_s",
          statistics.median(base), "< 1 s", runs=runs)


# -- round trip and bulk over the live target -----------------------------------------------

class _Host:
    """A KdLink host that follows the boot to the first break (module loads continue)."""

    def __init__(self, port: Any) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        # Not started: attach() starts the reader as it sends its first RESET.
        self.link = KdLink(port, Role.HOST, on_event=self.events.put, start=False)

    def _next(self, kind: type, timeout: float) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(event, kind):
                return event

    def attach(self) -> StateChange:
        """Attach to a target that already talks (§3.5), without breaking in."""
        return self.link.sync(30.0, breakin=False)

    def follow_boot(self, first: StateChange | None = None) -> None:
        self.link.start()
        while True:
            stop = first if first is not None else self._next(StateChange, 30.0)
            first = None
            if stop.new_state != LOAD_SYMBOLS:
                return
            self.link.request(A.DbgKdContinueApi2, dict(ContinueStatus=0x10002, ControlSet=dict(
                Amd64=dict(TraceFlag=0, Dr7=0x400, CurrentSymbolStart=1, CurrentSymbolEnd=0))))


def _echo_round_trips(count: int) -> list[float]:
    a, b = socket.socketpair()

    def echo() -> None:
        while data := b.recv(64):
            b.sendall(data)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    times = []
    message = bytes(16)
    for _ in range(count):
        start = time.perf_counter()
        a.sendall(message)
        got = 0
        while got < len(message):
            got += len(a.recv(64))
        times.append(time.perf_counter() - start)
    a.close()
    thread.join(5)
    b.close()
    return times


_ECHO_CHILD = """
import socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
while data := sock.recv(64):
    sock.sendall(data)
"""


def _child_echo_round_trips(count: int) -> list[float]:
    """The 16-byte echo of ``_echo_round_trips`` with the echoing end in a child
    process, started as ``loopback.start_child`` starts the target (an inherited
    socket-pair end, a process group of its own): the topology of open_loopback."""
    a, b = socket.socketpair()
    try:
        child = subprocess.Popen([sys.executable, "-c", _ECHO_CHILD, str(b.fileno())],
                                 pass_fds=(b.fileno(),), stdin=subprocess.DEVNULL,
                                 process_group=0)
    finally:
        b.close()
    message = bytes(16)
    times = []
    try:
        for i in range(count + 20):  # the first 20 warm up, as _measure's do
            start = time.perf_counter()
            a.sendall(message)
            got = 0
            while got < len(message):
                got += len(a.recv(64))
            if i >= 20:
                times.append(time.perf_counter() - start)
    finally:
        a.close()
        child.wait(timeout=30)
    return times


def _raw_bulk(total: int) -> float:
    a, b = socket.socketpair()
    received = 0

    def sink() -> None:
        nonlocal received
        while data := b.recv(65536):
            received += len(data)

    thread = threading.Thread(target=sink, daemon=True)
    thread.start()
    chunk = bytes(MAX_TRANSFER_SIZE)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        a.sendall(chunk)
        sent += len(chunk)
    a.shutdown(socket.SHUT_WR)
    thread.join(30)
    elapsed = time.perf_counter() - start
    a.close()
    b.close()
    return received / elapsed


def _measure(link: KdLink, count: int, bulk: int) -> tuple[list[float], int, float]:
    for _ in range(20):
        link.request(A.DbgKdGetVersionApi)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        link.request(A.DbgKdGetVersionApi)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    done = 0
    while done < bulk:
        size = min(MAX_TRANSFER_SIZE, bulk - done)
        reply = link.request(A.DbgKdReadVirtualMemoryApi, dict(
            TargetBaseAddress=POOL_BASE + done, TransferCount=size, ActualBytesRead=0))
        if reply is None or reply.return_status != 0 or not reply.data:
            raise RuntimeError(f"read failed at {POOL_BASE + done:#x}")
        done += len(reply.data)
    return times, done, time.perf_counter() - start


def _emit_live(where: str, times: list[float], done: int, elapsed: float,
               echo: list[float], raw: float, round_trip_goal: str = "< 200 us") -> None:
    count = len(times)
    _emit(f"request_round_trip_us{where}", statistics.median(times) * 1e6, "us",
          "socket_echo_round_trip_us", statistics.median(echo) * 1e6, round_trip_goal,
          requests=count, p99_us=round(sorted(times)[int(count * 0.99)] * 1e6, 1))
    _emit(f"bulk_read_mb_per_s{where}", done / elapsed / MB, "MB/s", "socket_bulk_mb_per_s",
          raw / MB, ">= 20 MB/s", bytes=done, transfers=-(-done // MAX_TRANSFER_SIZE))


def bench_process(count: int, bulk: int, *, busy: bool = False) -> None:
    """kdcon-sim in its own process on a unix socket; the host here (two processes).
    With ``busy``, a CPU-bound process runs beside them the whole time, on a machine
    where CPUs are few (a reader that polls must not starve its peer)."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        times, done, elapsed = _run_process(count, bulk)
        echo, raw = _echo_round_trips(count), _raw_bulk(bulk)
    finally:
        if burner is not None:
            burner.kill()
            burner.wait(timeout=30)
    _emit_live("_beside_a_busy_process" if busy else "", times, done, elapsed, echo, raw)


def _run_process(count: int, bulk: int) -> tuple[list[float], int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kd.sock")
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from kdcon.tools.simtarget.cli import main;"
             " sys.exit(main())", "--listen", f"unix://{path}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        host = None
        try:
            if not proc.stdout.readline().startswith("listening on "):
                raise RuntimeError("kdcon-sim did not start")
            host = _Host(open_link(f"unix://{path}"))
            host.follow_boot(host.attach())
            times, done, elapsed = _measure(host.link, count, bulk)
        finally:
            if host is not None:
                host.link.close()
            proc.terminate()
            proc.wait(timeout=30)
    return times, done, elapsed


def bench_in_process(count: int, bulk: int, *, one_cpu: bool = False) -> None:
    """SimTarget and the host in one process over a socket pair (the --loopback case),
    free to use every CPU or kept on one (loopback.share_one_cpu)."""
    cpus = share_one_cpu() if one_cpu else None
    try:
        sim = SimTarget(seed=0)
        host = _Host(sim.connect())
        try:
            host.follow_boot()
            times, done, elapsed = _measure(host.link, count, bulk)
        finally:
            host.link.close()
            sim.close()
        echo, raw = _echo_round_trips(count), _raw_bulk(bulk)
    finally:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
    _emit_live("_in_process_one_cpu" if one_cpu else "_in_process", times, done, elapsed,
               echo, raw)


def bench_loopback_process(count: int, bulk: int) -> None:
    """open_loopback, what ``kdcon --loopback`` uses: the target in a child process.
    The round trip is given against two echoes from this run: the thread echo of the
    other figures, and an echo of the loopback's own topology (a child process on a
    socket pair); neither is chosen to flatter it, and both ratios are reported."""
    host = _Host(open_loopback(seed=0))
    try:
        host.follow_boot(host.attach())
        times, done, elapsed = _measure(host.link, count, bulk)
    finally:
        host.link.close()
    echo, child_echo, raw = (_echo_round_trips(count), _child_echo_round_trips(count),
                             _raw_bulk(bulk))
    _emit_live("_loopback_process", times, done, elapsed, echo, raw,
               round_trip_goal="<= 2x the echo")
    _emit("request_round_trip_us_loopback_process_vs_child_echo",
          statistics.median(times) * 1e6, "us", "child_process_echo_round_trip_us",
          statistics.median(child_echo) * 1e6, "<= 2x the echo", requests=count,
          thread_echo_us=round(statistics.median(echo) * 1e6, 3))


def main(argv: list[str] | None = None) -> int:
    parser = BenchParser(prog="python -m kdcon.tools.bench.simtarget")
    parser.add_argument("--requests", type=positive_int, default=2000)
    parser.add_argument("--bulk-mib", type=positive_int, default=16)
    parser.add_argument("--start-runs", type=positive_int, default=3)
    args = parser.parse_args(argv)
    bench_start(args.start_runs)
    bench_process(args.requests, args.bulk_mib << 20)
    bench_process(args.requests, args.bulk_mib << 20, busy=True)
    bench_in_process(args.requests, args.bulk_mib << 20)
    bench_loopback_process(args.requests, args.bulk_mib << 20)
    if hasattr(os, "sched_setaffinity"):
        bench_in_process(args.requests, args.bulk_mib << 20, one_cpu=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
