"""Link options shared by every command-line tool: --port / -k, --baud, --pace, --faults.

``add_link_arguments(parser)`` declares them; ``open_link_from_args(args)`` opens the link
they describe with ``open_link``; ``link_baud(args)`` is the rate that link runs at (a kd
string's ``baud=`` wins over ``--baud``, as in kd). ``open_checked`` opens one link the way
the tools do: a local path that is no terminal (a directory, a file) is one plain line. The argument types raise
``argparse.ArgumentTypeError`` so that argparse prints one usage line for a bad value.
Not here: printing or exit codes (the tools own those).
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import stat
import sys
from typing import Any

from .errors import LinkError
from .faults import FaultModel, parse_fault_spec
from .kdstring import is_kd_string, parse_kd_string
from .open import DEFAULT_TIMEOUT, open_link

__all__ = ["add_link_arguments", "open_link_from_args", "open_checked", "local_device", "link_baud",
           "baud_rate", "fault_spec"]

DEFAULT_BAUD = 115200
_COM_NAME = re.compile(r"^com\d+$", re.IGNORECASE)
_NOT_A_TERMINAL = "not a terminal device: give a serial port (/dev/ttyS0, /dev/ttyUSB0), a pty or a URL"


def baud_rate(text: str) -> int:
    """A positive baud rate, e.g. ``115200``."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a baud rate") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a baud rate")
    return value


def fault_spec(text: str) -> FaultModel:
    """A fault model from ``flip=1e-4,drop=1e-3,dup=1e-3,garbage=1e-4,seed=7``."""
    try:
        return parse_fault_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_link_arguments(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add the link options to ``parser`` (in a "link" group)."""
    group = parser.add_argument_group("link")
    where = group.add_mutually_exclusive_group(required=required)
    where.add_argument(
        "--port",
        metavar="URL",
        help="link to open: a device (/dev/ttyS0, COM1) or URL (unix:///path, tcp://host:port, "
        "pty://, socket://host:port, rfc2217://, loop://)",
    )
    where.add_argument(
        "-k",
        dest="kd_string",
        metavar="KDSTRING",
        help="a kd connection string: com:port=/dev/ttyS0,baud=115200 or com:pipe,port=/path[,reconnect]",
    )
    group.add_argument("--baud", type=baud_rate, default=DEFAULT_BAUD,
                       help=f"line rate (default {DEFAULT_BAUD}; a -k string's baud= wins)")
    group.add_argument(
        "--pace", type=baud_rate, metavar="BAUD", help="deliver bytes no faster than a real line at BAUD (8N1)"
    )
    group.add_argument(
        "--faults",
        type=fault_spec,
        metavar="SPEC",
        help="inject line faults, e.g. flip=1e-4,drop=1e-3,dup=1e-3,garbage=1e-4,seed=7",
    )


def link_baud(args: argparse.Namespace) -> int:
    """The rate the link of the parsed options runs at: a kd string's ``baud=`` wins over
    ``--baud`` (as in kd). ``LinkError`` for a bad kd string."""
    spec = getattr(args, "port", None) or getattr(args, "kd_string", None)
    if spec and is_kd_string(spec):
        kd = parse_kd_string(spec)
        if kd.baud is not None:
            return kd.baud
    return getattr(args, "baud", None) or DEFAULT_BAUD


def open_link_from_args(args: argparse.Namespace, *, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """Open the link the parsed options describe; ``LinkError`` when none or a bad one was given."""
    spec = getattr(args, "port", None) or getattr(args, "kd_string", None)
    if not spec:
        raise LinkError("no link given: use --port URL or -k com:port=...,baud=...")
    return open_checked(
        spec,
        baud=link_baud(args),
        timeout=timeout,
        pace=getattr(args, "pace", None),
        faults=getattr(args, "faults", None),
    )


def local_device(spec: str) -> str | None:
    """The local path a device spec or kd string opens (None for a URL or a pipe)."""
    spec = spec.strip()
    if is_kd_string(spec):
        kd = parse_kd_string(spec)
        if kd.pipe:
            return None
        spec = kd.to_url()
    elif _COM_NAME.match(spec) and sys.platform != "win32":
        spec = parse_kd_string(f"com:port={spec}").to_url()
    return None if "://" in spec else spec


def open_checked(spec: str, **options: Any) -> Any:
    """``open_link(spec, **options)``, with one plain line when a local path is a
    directory, a socket or a file rather than a terminal (instead of the errno
    text of the failed open or ioctl)."""
    path = local_device(spec) if isinstance(spec, str) and spec.strip() else None
    if path is not None:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = None          # missing: open_link says what to check
        if mode is not None and stat.S_ISDIR(mode):
            raise LinkError(f"cannot open {path}: it is a directory, {_NOT_A_TERMINAL}")
        if mode is not None and stat.S_ISSOCK(mode):
            raise LinkError(f"cannot open {path}: it is a unix socket: use unix://{path}")
        if mode is not None and not stat.S_ISCHR(mode):
            raise LinkError(f"cannot open {path}: {_NOT_A_TERMINAL}")
    try:
        return open_link(spec, **options)
    except LinkError as exc:
        cause = exc.__cause__
        if path is not None and (getattr(cause, "errno", None) == errno.ENOTTY
                                 or "Inappropriate ioctl" in str(exc)):
            raise LinkError(f"cannot open {path}: {_NOT_A_TERMINAL}") from None
        raise
