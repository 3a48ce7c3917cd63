"""The ``kdcon`` command line: arguments, modes and exit status.

``kdcon -k CONNECTION | --port URL | --loopback`` attaches to a target; ``-c``,
``-cf`` and ``-cfr`` (kept on the App as ``restart_commands`` to run again after a
reconnect) give commands to run first; with ``--loopback``, ``--ioctl`` has the
simulated target's user program send a loaded driver requests as ``kdcon-sim --ioctl``
does, each result a ``user_io`` event; ``-logo``/``-loga`` log the session from its
first line; ``--batch`` runs the commands and exits (0 when every
command succeeded, 1 when one failed, 2 for usage or connection errors, 3 when
``--timeout`` expired); ``--json`` writes one JSON object per result and event.
Without ``--batch`` the interactive console (repl.py) reads commands when standard
input and output are a terminal, and a plain line prompt (``0: kd> ``) reads them from
a pipe or a dumb terminal. ``--no-color`` (or ``NO_COLOR``, or ``TERM=dumb``) keeps
the terminal plain. ``--workspace FILE`` opens a workspace (workspace.py), saved when
an interactive session ends; a link that can heal is reopened when it is lost, in
``--batch`` too, and waited for when kdcon starts before it exists (kd's ``Waiting to
reconnect...``; Ctrl+C gives up with status 2), unless ``--no-reconnect``
(reconnect.py, linkwait.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kdcon import __version__
from kdcon.protocol.transports.cli import add_link_arguments, link_baud, open_link_from_args
from kdcon.protocol.transports.errors import LinkError

from .app import EXIT_FAILED, EXIT_TIMEOUT, EXIT_USAGE, App
from .commands.logs import close_log, open_log
from .errors import CommandError
from .linkwait import WaitExpired, open_waiting
from .output import Output
from .reconnect import reopen_for
from .session import TargetLost
from .terminal import TerminalStream, colour_wanted
from .workspace import from_command_line, save_at_exit

__all__ = ["main", "build_parser"]

_IMAGES = Path(__file__).resolve().parent.parent / "tools" / "simtarget" / "images"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdcon", description="Kernel-debugger console for the Windows KD serial protocol.")
    parser.add_argument("--version", action="version", version=f"kdcon {__version__}")
    add_link_arguments(parser)
    parser.add_argument("--loopback", action="store_true",
                        help="debug the built-in simulated target (run in a child process)")
    sim = parser.add_argument_group("simulated target (--loopback)")
    sim.add_argument("--driver", action="append", default=[], metavar="FILE.sys",
                     help="load this x64 driver as well (repeatable)")
    sim.add_argument("--flavour", choices=("checked", "free"), default="checked",
                     help="which trackdemo build the simulated kernel loads (default checked)")
    sim.add_argument("--seed", type=int, default=0, help="simulated machine seed (default 0)")
    sim.add_argument("--ioctl", action="append", default=[],
                     metavar="DEVICE,CODE,INPUT[,OUTLEN]",
                     help=r"once the target runs, open DEVICE (\\.\Name or \Device\Name), "
                          "send the device control CODE with INPUT (text, or hex:...), close "
                          "it, and show each result as kdcon-sim does; repeatable")
    parser.add_argument("-y", dest="symbol_path", metavar="SYMPATH", help="symbol path")
    parser.add_argument("-c", dest="commands", action="append", default=[], metavar="CMDS",
                        help="commands to run after connecting (';' separates them)")
    parser.add_argument("-cf", dest="command_file", metavar="FILE",
                        help="a file of commands to run after connecting")
    parser.add_argument("-cfr", dest="restart_file", metavar="FILE",
                        help="a file of commands to run after connecting and again after "
                             "every reconnect")
    logs = parser.add_mutually_exclusive_group()
    logs.add_argument("-logo", dest="log_open", metavar="FILE",
                      help="log everything the console shows to FILE (overwritten)")
    logs.add_argument("-loga", dest="log_append", metavar="FILE",
                      help="log everything the console shows to FILE (appended)")
    parser.add_argument("--batch", action="store_true",
                        help="run the -c/-cf commands and exit with their status")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line for every result and event")
    parser.add_argument("--timeout", type=_seconds, metavar="S",
                        help="give up (break in, exit 3) when the run takes longer than S seconds")
    parser.add_argument("--prompt-answer", action="append", default=[], metavar="TEXT",
                        help="answer the target's next DbgPrompt with TEXT (repeatable)")
    parser.add_argument("--no-color", action="store_true",
                        help="no colour on the terminal (also NO_COLOR=1 or TERM=dumb)")
    parser.add_argument("--ext-path", action="append", default=[], metavar="DIR[;DIR]",
                        help="load the extensions (*.py) in these directories too "
                             "(repeatable; also KDCON_EXT_PATH)")
    parser.add_argument("--workspace", metavar="FILE",
                        help="the workspace (TOML) to open and, when an interactive session "
                             "ends, save (default: one per link under the user's state "
                             "directory; none for --batch and --loopback)")
    parser.add_argument("--no-workspace", action="store_true",
                        help="neither open nor save a workspace")
    parser.add_argument("--no-reconnect", action="store_true",
                        help="do not reopen the link when it is lost, nor wait for it to "
                             "appear at start (unix://, tcp:// and devices reconnect by "
                             "default; kd pipe strings with reconnect)")
    parser.add_argument("--request-timeout", type=_seconds, default=5.0, metavar="S",
                        help="how long each of a request's 3 tries waits for the target "
                             "(default 5)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _ioctl_specs(texts: list[str]) -> list[tuple[str, int, bytes, int]]:
    """kdcon-sim's --ioctl specs; ValueError, one line, for a bad one."""
    from kdcon.tools.simtarget.userio import parse_ioctl

    return [parse_ioctl(text) for text in texts]


class _UserIoResults:
    """The simulated user program's results (--ioctl), shown as events of the App's
    console once there is one (none can come before it attaches)."""

    def __init__(self) -> None:
        self.app: App | None = None

    def __call__(self, text: str, fields: dict[str, Any]) -> None:
        if self.app is not None:
            self.app.console.emit_event("user_io", text=text, **fields)
            self.app.output.event_text(text + "\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the time limit must be above 0 seconds")
    return value


def _symbol_path(args: argparse.Namespace) -> str | None:
    parts = []
    if args.symbol_path:
        parts.append(args.symbol_path)
    elif os.environ.get("_NT_SYMBOL_PATH"):
        parts.append(os.environ["_NT_SYMBOL_PATH"])
    if args.loopback:
        parts += [str(_IMAGES), str(_IMAGES / args.flavour)]
        parts += [str(Path(d).resolve().parent) for d in args.driver]
    return ";".join(parts) or None


def _ext_path(args: argparse.Namespace) -> list[str]:
    from .extload import split_path

    directories = split_path(os.environ.get("KDCON_EXT_PATH", ""))
    for text in args.ext_path:
        directories += split_path(text)
    return directories


def _commands(args: argparse.Namespace) -> list[str]:
    return list(args.commands) + _script_lines(args.command_file)


def _script_lines(name: str | None) -> list[str]:
    """A startup script's commands; blank lines are skipped (an empty line would
    repeat the last command)."""
    if not name:
        return []
    with open(name, encoding="utf-8") as handle:
        return [line.rstrip("\r\n") for line in handle if line.strip()]


def _open(args: argparse.Namespace, reopen: Callable[[], Any] | None = None,
          deadline: float | None = None,
          on_io_result: Callable[[str, dict[str, Any]], None] | None = None):
    """The port and a name for the connect banner; the simulated target when asked
    (``on_io_result`` gets its user program's results); ``reopen`` opens a link that
    heals (reconnect.reopen_for), waiting until ``deadline`` for one that is not there
    yet (linkwait.py)."""
    if args.loopback:
        from kdcon.tools.simtarget.loopback import open_loopback

        # The target in a child process: no interpreter lock shared with the console,
        # so a round trip on an idle machine is half the in-thread one, and the
        # machine's emulation runs beside the console's threads rather than taking
        # their lock (bench/simtarget.py). Closing the port ends the child.
        port = open_loopback(seed=args.seed, drivers=args.driver, flavour=args.flavour,
                             break_on_connect=True, pace=args.pace, faults=args.faults,
                             ioctls=args.ioctl, on_io_result=on_io_result)
        return port, "kdsim (simulated target, child process)", port
    if reopen is not None:
        port = open_waiting(reopen, say=_status, deadline=deadline)
    else:
        port = open_link_from_args(args)
    name = args.port or args.kd_string
    return port, f"{name} at {link_baud(args)} baud", None


def _status(line: str) -> None:
    print(f"kdcon: {line}", file=sys.stderr, flush=True)


def _interactive(args: argparse.Namespace) -> bool:
    """The prompt_toolkit console: a terminal on both ends that can move the cursor
    (not ``TERM=dumb``), and text, not JSON."""
    if args.json or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    workspace, workspace_lines = from_command_line(args)
    if not (args.loopback or args.port or args.kd_string):
        for line in workspace_lines:
            print(f"kdcon: {line}", file=sys.stderr)
        parser.print_usage(sys.stderr)
        print("kdcon: give a target: --loopback, --port URL or -k CONNECTION", file=sys.stderr)
        return EXIT_USAGE
    if args.ioctl and not args.loopback:
        print("kdcon: --ioctl needs --loopback (kdcon-sim --ioctl sends them to a target "
              "kdcon-sim serves)", file=sys.stderr)
        return EXIT_USAGE
    try:
        args.ioctl = _ioctl_specs(args.ioctl)
    except ValueError as exc:
        print(f"kdcon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(name)s: %(message)s")
    try:
        commands = _commands(args)
        restart_commands = _script_lines(args.restart_file)
    except OSError as exc:
        print(f"kdcon: cannot read the command file: {exc.strerror}: {exc.filename}",
              file=sys.stderr)
        return EXIT_USAGE
    sim = None
    reopen = reopen_for(args)
    started = time.monotonic()
    user_io = _UserIoResults()
    try:
        port, name, sim = _open(args, reopen,
                                None if args.timeout is None else started + args.timeout,
                                on_io_result=user_io)
    except (LinkError, OSError, ValueError) as exc:
        print(f"kdcon: cannot open the link: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WaitExpired as exc:
        print(f"kdcon: --timeout expired: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except KeyboardInterrupt:
        print("kdcon: stopped waiting for the link (Ctrl+C)", file=sys.stderr)
        return EXIT_USAGE
    stream = TerminalStream()
    app = App(port, link_name=name, symbol_path=_symbol_path(args), debug=args.debug,
              output=Output(stream),
              json_stream=sys.stdout if args.json else None, timeout=args.timeout,
              prompt_answers=args.prompt_answer, ext_path=_ext_path(args),
              request_timeout=args.request_timeout, started=started)
    user_io.app = app
    # -cfr: run now and again after every reconnect (reconnect.py).
    app.restart_commands = restart_commands
    app.console.workspace = workspace
    app.output.lines(workspace_lines)
    try:
        log_name = args.log_open or args.log_append
        if log_name:
            try:
                open_log(app.console, log_name, append=bool(args.log_append))
            except CommandError as exc:
                print(f"kdcon: {exc}", file=sys.stderr)
                return EXIT_USAGE
        try:
            app.connect()
        except TargetLost as exc:
            print(f"kdcon: could not connect: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if workspace is not None:
            app.output.lines(workspace.apply(app.console))
        if reopen is not None:
            app.healer.watch(reopen)
        status = app.run_commands(commands + restart_commands)
        if args.batch or app.timed_out or app.console.quit_requested:
            return status
        if _interactive(args):
            prompt_status = app.run_repl(stream=stream,
                                         colour=colour_wanted(sys.stdout, no_color=args.no_color))
        else:
            prompt_status = app.run_prompt(sys.stdin)
        return max(status, prompt_status) if status != EXIT_USAGE else status
    except KeyboardInterrupt:
        return EXIT_FAILED
    finally:
        if not args.batch:
            app.output.lines([line for line in [save_at_exit(app.console)] if line])
        close_log(app.console)
        app.close()
        if sim is not None:
            sim.close()


if __name__ == "__main__":
    sys.exit(main())
