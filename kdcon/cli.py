"""The ``kdcon`` command line.

The interactive console is not part of this release; the protocol, symbols and
simulated-target layers are, with their own tools. ``kdcon`` says so in one line
rather than pretending to connect.
"""

from __future__ import annotations

import argparse
import sys

from kdcon import __version__

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdcon", description="Kernel-debugger console for the Windows KD serial protocol."
    )
    parser.add_argument("--version", action="version", version=f"kdcon {__version__}")
    link = parser.add_mutually_exclusive_group()
    link.add_argument("-k", dest="kd_string", metavar="CONNECTION",
                      help="WinDbg connection string, e.g. com:port=/dev/ttyS0,baud=115200")
    link.add_argument("--port", metavar="URL", help="pyserial URL of the link to the target")
    link.add_argument("--loopback", action="store_true",
                      help="debug the built-in simulated target over an in-process link")
    parser.add_argument("-y", dest="symbol_path", metavar="PATH", help="symbol path")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("kdcon: the interactive console is not in this release yet; what runs today: "
          "kdcon-sim, kdcon-linetest, kdcon-kdtrace, kdcon-symbols (see README.md)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
