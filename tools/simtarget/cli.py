"""kdcon-sim: the simulated target on a link a debugger can attach to.

    kdcon-sim --listen URL [--driver FILE.sys ...] [--no-trackdemo] [--break-on-connect]
              [--seed N] [--pace BAUD] [--faults SPEC] [--allow-remote]
    kdcon-sim --run --driver FILE.sys [--ioctl DEVICE,CODE,INPUT[,OUTLEN] ...]   (replay.py)
    either with [--files DIR]: DIR is drive C: of the drivers' ZwCreateFile (hostfiles.py)
    kdcon-sim build-driver SRCDIR -o DRIVER.sys     (drvbuild.py: a WDM driver's sources)

URL is ``unix:///path``, ``tcp://127.0.0.1:PORT`` (loopback only unless --allow-remote)
or ``pty`` (a new pseudo-terminal; its slave path is what a debugger opens). Prints one
line ``listening on URL`` when ready and serves until SIGINT or SIGTERM, which end it
within a second with status 0 and nothing printed, requests in flight or not (their
replies are dropped); a debugger may detach and another attach (unix and tcp accept the
next peer, a pty stays open). Bad arguments and
drivers the kernel cannot load end in one line and exit status 2; a link that cannot be
opened, status 1. Nothing below this module prints.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kdcon.protocol.transports import LinkError, open_link, wrap_link
from kdcon.protocol.transports.cli import baud_rate, fault_spec

__all__ = ["main", "build_parser", "listen_url"]

log = logging.getLogger(__name__)


class UsageError(Exception):
    """A bad command line; the message is the one line the user sees."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdcon-sim",
        description="Run the simulated x64 kernel as a KD target a debugger can attach to.",
        epilog="kdcon-sim build-driver SRCDIR -o DRIVER.sys builds a WDM driver's sources "
               "for --driver (kdcon-sim build-driver -h).")
    parser.add_argument("--listen", metavar="URL",
                        help="unix:///path, tcp://127.0.0.1:PORT or pty")
    parser.add_argument("--run", action="store_true",
                        help="no debugger: run the drivers and the --ioctl requests, print what the "
                             "kernel prints and each reply, unload and exit")
    parser.add_argument("--ioctl", action="append", default=[], type=_ioctl_spec,
                        metavar="DEVICE,CODE,INPUT[,OUTLEN]",
                        help=r"open DEVICE (\\.\Name or \Device\Name), send the device control "
                             "CODE with INPUT (text, or hex:...), close it; {event} in hex INPUT is the "
                             "handle of an event the program makes first and then waits for "
                             "({event:MS}: MS guest ms, default 100); repeatable")
    parser.add_argument("--files", metavar="DIR",
                        help=r"a host directory the drivers' files live in: \??\C:\x is DIR/x, "
                             r"\SystemRoot\x is DIR/Windows/x (without it, file names are not found)")
    parser.add_argument("--driver", action="append", default=[], metavar="FILE.sys",
                        help="load this x64 driver too (its PDB beside it); repeatable")
    parser.add_argument("--no-trackdemo", action="store_true",
                        help="do not load trackdemo.sys (only the --driver images)")
    parser.add_argument("--flavour", choices=("checked", "free"), default="checked",
                        help="which trackdemo build to load (default checked)")
    parser.add_argument("--break-on-connect", action="store_true",
                        help="break in right after the boot modules are reported")
    parser.add_argument("--seed", type=int, default=0, help="machine seed (default 0)")
    parser.add_argument("--pace", type=baud_rate, metavar="BAUD",
                        help="deliver bytes no faster than a real line at BAUD (8N1)")
    parser.add_argument("--faults", type=fault_spec, metavar="SPEC",
                        help="inject line faults, e.g. flip=1e-4,drop=1e-3,seed=7")
    parser.add_argument("--allow-remote", action="store_true",
                        help="let tcp:// listen on a non-loopback address")
    parser.add_argument("--debug", action="store_true", help="log details; tracebacks")
    return parser


def _ioctl_spec(text: str):
    from .userio import parse_ioctl
    try:
        return parse_ioctl(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def listen_url(url: str, allow_remote: bool) -> str:
    """The open_link URL that listens where ``url`` says (UsageError if it cannot)."""
    if url in ("pty", "pty://"):
        return "pty://"
    parts = urlsplit(url)
    if parts.query:
        raise UsageError(f"--listen {url}: options after '?' are not accepted here")
    if parts.scheme == "unix":
        path = url[len("unix://"):]
        if not path:
            raise UsageError(f"--listen {url}: give a socket path, e.g. unix:///tmp/kd.sock")
        return f"unix://{path}?listen&reconnect"
    if parts.scheme == "tcp":
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise UsageError(f"--listen {url}: bad port") from None
        if not host or port is None:
            raise UsageError(f"--listen {url}: use tcp://127.0.0.1:PORT")
        if not allow_remote and not _is_loopback(host):
            raise UsageError(f"--listen {url}: {host} is not a loopback address; a kernel "
                             "debugger port controls the machine (add --allow-remote)")
        extra = "&allow_remote" if allow_remote else ""
        return f"tcp://{parts.netloc}?listen&reconnect{extra}"
    raise UsageError(f"--listen {url}: use unix:///path, tcp://127.0.0.1:PORT or pty")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown_url(requested: str, port: Any) -> str:
    if requested in ("pty", "pty://"):
        return port.peer_name
    address = getattr(port, "address", None)
    if requested.startswith("tcp://") and address:
        return f"tcp://{address[0]}:{address[1]}"
    return requested


def _check_drivers(paths: Sequence[str]) -> None:
    for path in paths:
        if not Path(path).is_file():
            raise UsageError(f"--driver {path}: no such file")


def _check_files(path: str | None) -> None:
    if path is not None and not Path(path).is_dir():
        raise UsageError(f"--files {path}: no such directory")


def main(argv: Sequence[str] | None = None) -> int:
    """Run kdcon-sim; ``argv`` None means the program's own arguments (sys.argv)."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["build-driver"]:
        from .drvbuild import main as build_driver_main
        return build_driver_main(args_in[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed its one usage line
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="kdcon-sim: %(message)s")
    if args.run == bool(args.listen):
        print("kdcon-sim: give --listen URL (serve a debugger) or --run (no debugger)", file=sys.stderr)
        return 2
    if args.run:
        return _run_without_debugger(args)
    try:
        url = listen_url(args.listen, args.allow_remote)
        _check_drivers(args.driver)
        _check_files(args.files)
        if args.no_trackdemo and not args.driver:
            log.info("no driver loaded: only the kernel, hal and kdcom run")
        from .errors import SimTargetError
        from .loopback import SimTarget

        try:
            sim = SimTarget(seed=args.seed, drivers=args.driver,
                            break_on_connect=args.break_on_connect,
                            include_trackdemo=not args.no_trackdemo, flavour=args.flavour)
        except SimTargetError as exc:
            raise UsageError(str(exc)) from None
        if args.files is not None:
            sim.machine.machine.files.root = Path(args.files)
    except UsageError as exc:
        print(f"kdcon-sim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl+C while booting: nothing is open yet
        return 130

    if args.ioctl:
        from .userio import ioctl_requests
        io = sim.machine.machine.io
        io.on_result = lambda result: print(f"kdcon-sim: {result.describe()}", flush=True)
        io.post(*ioctl_requests(args.ioctl))

    stopping: list[Any] = []

    def _stop(signum: int, frame: Any) -> None:
        stopping.append(sim.session.stop_soon())

    # From here on a signal stops the session: one that lands before serve begins
    # leaves serve out, and the link is closed below either way.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    port: Any = None
    try:
        try:
            raw = open_link(url, timeout=0.05)
        except LinkError as exc:
            print(f"kdcon-sim: {exc}", file=sys.stderr)
            return 1
        port = wrap_link(raw, pace=args.pace, faults=args.faults)
        print(f"listening on {_shown_url(args.listen, raw)}", flush=True)
        if not stopping:
            sim.serve(port)
    except SimTargetError as exc:
        print(f"kdcon-sim: the machine stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        # The stopping thread closes the link and the port (a unix listener unlinks its
        # path then): let it finish before the process exits under it.  Our handler
        # stays until all is closed, so a second signal cannot cut the cleanup short.
        for thread in stopping:
            thread.join(timeout=10)
        sim.close()
        if port is not None:
            try:
                port.close()
            except OSError:
                pass
        # Called with argv (in-process), give the caller its handlers back.  As the
        # program, ignore further signals: the interpreter puts SIG_DFL back for every
        # signal with a Python handler as it finalizes, and one landing then would
        # kill the process with a status of its own; an ignored one it leaves alone.
        for sig, handler in previous.items():
            signal.signal(sig, handler if argv is not None else signal.SIG_IGN)
    return 0


def _run_without_debugger(args: argparse.Namespace) -> int:
    from .errors import SimTargetError
    from .kernel import trackdemo_image
    from .machine import Machine
    from .replay import replay
    from .userio import ioctl_requests
    try:
        _check_drivers(args.driver)
        _check_files(args.files)
        drivers = ([] if args.no_trackdemo else [trackdemo_image(args.flavour)]) + list(args.driver)
        machine = Machine(seed=args.seed, drivers=drivers, files=args.files)
    except (UsageError, SimTargetError) as exc:
        print(f"kdcon-sim: {exc}", file=sys.stderr)
        return 2
    try:
        return replay(machine, ioctl_requests(args.ioctl), sys.stdout)
    except KeyboardInterrupt:
        return 130
    except (SimTargetError, RuntimeError) as exc:
        print(f"kdcon-sim: the machine stopped: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
