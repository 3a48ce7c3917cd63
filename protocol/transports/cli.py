"""Link options shared by every command-line tool: --port / -k, --baud, --pace, --faults.

``add_link_arguments(parser)`` declares them; ``open_link_from_args(args)`` opens the link
they describe with ``open_link``; ``link_baud(args)`` is the rate that link runs at (a kd
string's ``baud=`` wins over ``--baud``, as in kd). The argument types raise
``argparse.ArgumentTypeError`` so that argparse prints one usage line for a bad value.
Not here: printing or exit codes (the tools own those).
"""

from __future__ import annotations

import argparse
from typing import Any

from .errors import LinkError
from .faults import FaultModel, parse_fault_spec
from .kdstring import is_kd_string, parse_kd_string
from .open import DEFAULT_TIMEOUT, open_link

__all__ = ["add_link_arguments", "open_link_from_args", "link_baud", "baud_rate", "fault_spec"]

DEFAULT_BAUD = 115200


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
    return open_link(
        spec,
        baud=link_baud(args),
        timeout=timeout,
        pace=getattr(args, "pace", None),
        faults=getattr(args, "faults", None),
    )
