"""WinDbg/kd ``-k`` connection strings, parsed and translated to our link URLs.

Forms (windbg.md §0.8, kd-protocol.md §3.1)::

    com:port=COM1,baud=115200            a serial port
    com:port=/dev/ttyS0,baud=57600       the same on Linux/macOS
    com:pipe,port=/tmp/vm-com1[,resets=0][,reconnect]
                                         a VM's serial pipe (a unix socket here)

Keys and flags are case-insensitive and may be spaced (``COM: Port = COM1 , Baud=57600``);
values keep their case, since device paths are case-sensitive. A leading ``-k`` is
accepted. On Linux and macOS ``COMn`` is read as ``/dev/ttyS<n-1>``. ``resets`` is kept
for the protocol layer (how many RESET packets to send while syncing; 0 = unlimited).

Not supported, each with one clear line: Windows named pipes (``\\\\.\\pipe\\name``),
``net:`` (KDNET), ``usb:``, ``1394:``, ``-kl`` and ``com:modem``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from .errors import LinkError

__all__ = ["KdString", "parse_kd_string", "is_kd_string"]

_KIND = re.compile(r"^\s*(?:-k\s*)?([A-Za-z0-9]+)\s*:(?!//)\s*(.*)$", re.DOTALL)
_LOOKS_KD = re.compile(r"^\s*(?:-k|(?:com|net|usb|1394)\s*:(?!//))", re.IGNORECASE)
_COM_PORT = re.compile(r"^com(\d+)$", re.IGNORECASE)
_UNSUPPORTED_KINDS = {
    "net": "KDNET (net:) is not supported: use a serial cable or a VM serial pipe",
    "usb": "USB debugging (usb:) is not supported: use a serial cable or a VM serial pipe",
    "1394": "1394 debugging is not supported: use a serial cable or a VM serial pipe",
}


@dataclass(frozen=True, kw_only=True)
class KdString:
    """One parsed ``com:`` connection string."""

    port: str
    baud: int | None = None
    pipe: bool = False
    reconnect: bool = False
    resets: int | None = None

    def to_url(self, platform: str = sys.platform) -> str:
        """The pyserial URL or device path that ``open_link`` opens for this string."""
        if self.pipe:
            if self.port.startswith("\\\\"):
                raise LinkError(
                    f"Windows named pipes ({self.port}) are not supported: "
                    "give the VM's serial pipe as a unix socket path (com:pipe,port=/path)"
                )
            return f"unix://{self.port}" + ("?reconnect" if self.reconnect else "")
        match = _COM_PORT.match(self.port)
        if match and platform != "win32":
            number = int(match.group(1))
            if number < 1:
                raise LinkError(f"there is no serial port {self.port}")
            return f"/dev/ttyS{number - 1}"
        return self.port


def is_kd_string(spec: str) -> bool:
    """True when ``spec`` looks like a kd ``-k`` string rather than a URL or device path."""
    return bool(_LOOKS_KD.match(spec))


def parse_kd_string(text: str) -> KdString:
    """Parse a kd ``-k`` string; ``LinkError`` (a TransportError) says what is wrong in one line."""
    stripped = text.strip()
    if stripped.lower() == "-kl":
        raise LinkError("local kernel debugging (-kl) is not supported: kdcon debugs over a link")
    match = _KIND.match(stripped)
    if not match:
        raise LinkError(f"not a kd connection string: {text!r} (expected com:port=...,baud=...)")
    kind, rest = match.group(1).lower(), match.group(2)
    if kind in _UNSUPPORTED_KINDS:
        raise LinkError(_UNSUPPORTED_KINDS[kind])
    if kind != "com":
        raise LinkError(f"unknown connection kind {kind!r} in {text!r} (expected com:)")
    port: str | None = None
    baud: int | None = None
    pipe = reconnect = False
    resets: int | None = None
    for item in rest.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not key and not sep:
            continue
        if key in ("pipe", "reconnect", "modem") and sep:
            raise LinkError(f"{key!r} takes no value in {text!r}")
        if key == "pipe":
            pipe = True
        elif key == "reconnect":
            reconnect = True
        elif key == "modem":
            raise LinkError("modem connections (com:modem) are not supported")
        elif key in ("port", "baud", "resets"):
            if not value:
                raise LinkError(f"{key}= needs a value in {text!r}")
            if key == "port":
                port = value
            elif not value.isdigit():
                raise LinkError(f"{key}={value!r} is not a number in {text!r}")
            elif key == "baud":
                baud = int(value)
                if baud <= 0:
                    raise LinkError(f"baud={value} is not a baud rate")
            else:
                resets = int(value)
        else:
            raise LinkError(f"unknown option {key!r} in {text!r} (known: port, baud, pipe, reconnect, resets)")
    if port is None:
        raise LinkError(f"no port= in {text!r} (e.g. com:port=/dev/ttyS0,baud=115200)")
    if reconnect and not pipe:
        raise LinkError(f"reconnect applies to pipes only (com:pipe,port=...,reconnect), in {text!r}")
    return KdString(port=port, baud=baud, pipe=pipe, reconnect=reconnect, resets=resets)
