"""``open_link``: one entry point from a URL, device path or kd string to an open port.

``spec`` may be any pyserial URL (``socket://``, ``rfc2217://``, ``loop://``, ``spy://``),
one of ours (``unix://``, ``tcp://``, ``pty://``, ``kdsim://``), a device path (``/dev/ttyS0``,
``/dev/pts/3``, ``COM1``), or a kd ``-k`` string (``com:port=...,baud=...``,
``com:pipe,port=...,reconnect``; see ``kdstring``). Off Windows a bare ``COMn`` means
``/dev/ttyS<n-1>``, as in kd strings. Two options are handled here for
every URL and stripped before pyserial sees it: ``pace=BAUD`` and ``faults=SPEC``
(``faults=flip=1e-4,drop=1e-3,seed=7``, see ``faults.parse_fault_spec``).

The result is the pyserial port, wrapped as ``PacedPort(FaultyPort(port))`` when pacing
or faults are asked for: noise happens on the line, pacing is the line's rate. The
wrappers are ``serial.SerialBase`` ports too (``wrapper.PortWrapper``), so whatever is
returned has pyserial's whole API. They are options rather than schemes of their own
in the way of pyserial's ``spy://``: a spy URL names a device, so it can wrap only a
native port, while an option applies to every scheme, pyserial's included, without
nesting one URL in another. Every failure to open is a ``LinkError`` (a
``TransportError``) with one line saying what to check. ``socket_pair()`` gives two
connected in-process ports.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import sys
from typing import Any
from urllib.parse import parse_qsl, urlencode

import serial

from .errors import LinkError
from .faults import FaultModel, parse_fault_spec
from .faulty_port import FaultyPort
from .kdstring import is_kd_string, parse_kd_string
from .native import KD_BAUD_RATES, NativeSerial
from .pacing import PacedPort
from .socketport import SocketPort

__all__ = ["open_link", "wrap_link", "socket_pair", "register_handlers", "DEFAULT_TIMEOUT"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1.0
_HANDLER_PACKAGE = __name__.rpartition(".")[0]
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_COM_NAME = re.compile(r"^com\d+$", re.IGNORECASE)


def register_handlers() -> None:
    """Make pyserial's ``serial_for_url`` find our ``protocol_<scheme>`` modules."""
    if _HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(_HANDLER_PACKAGE)


register_handlers()


def _split_wrapper_options(url: str) -> tuple[str, int | None, FaultModel | None]:
    """Remove ``pace=`` and ``faults=`` from a URL's query."""
    base, sep, query = url.partition("?")
    if not sep:
        return url, None, None
    pace: int | None = None
    faults: FaultModel | None = None
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() == "pace":
            if not value.isdigit() or int(value) <= 0:
                raise LinkError(f"pace={value!r} is not a baud rate in {url!r}")
            pace = int(value)
        elif key.lower() == "faults":
            try:
                faults = parse_fault_spec(value)
            except ValueError as exc:
                raise LinkError(f"bad faults= in {url!r}: {exc}") from None
        else:
            kept.append((key, value))
    if not kept:
        return base, pace, faults
    # Flags (no value) must stay flags: pyserial handlers test for their presence.
    query = "&".join(k if v == "" else urlencode([(k, v)]) for k, v in kept)
    return f"{base}?{query}", pace, faults


def _describe_open_error(spec: str, exc: BaseException) -> str:
    errno_value = getattr(exc, "errno", None)
    text = str(exc)
    if errno_value == errno.ENOENT or "No such file" in text or "FileNotFoundError" in text:
        return f"cannot open {spec}: no such device (check the cable or USB adapter is plugged in and the name)"
    if errno_value == errno.EACCES or "Permission denied" in text or "PermissionError" in text:
        return f"cannot open {spec}: permission denied (add your user to the dialout group, or check the device's mode)"
    if errno_value == errno.EBUSY or "busy" in text.lower():
        return f"cannot open {spec}: the device is busy (another program has it open?)"
    if "Connection refused" in text:
        return f"cannot open {spec}: connection refused (is the target or VM listening there?)"
    if "No module named" in text or "invalid URL" in text:
        return f"cannot open {spec}: unknown URL scheme (use unix://, tcp://, pty://, kdsim://, socket://, rfc2217://, loop:// or a device path)"
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot open {spec}: {first_line}"


def _check_baud(baud: int) -> None:
    if not isinstance(baud, int) or baud <= 0:
        raise LinkError(f"{baud!r} is not a baud rate")
    if baud not in KD_BAUD_RATES:
        log.warning("baud rate %d is not one kd uses (%s)", baud, ", ".join(map(str, KD_BAUD_RATES)))


def _check_pace(pace: int | None) -> None:
    if pace is not None and (not isinstance(pace, int) or pace <= 0):
        raise LinkError(f"pace={pace!r} is not a baud rate")


def open_link(
    spec: str,
    *,
    baud: int = 115200,
    timeout: float | None = DEFAULT_TIMEOUT,
    pace: int | None = None,
    faults: FaultModel | None = None,
) -> Any:
    """Open ``spec`` and return a pyserial port (see the module docstring)."""
    if not isinstance(spec, str) or not spec.strip():
        raise LinkError("no link given: use a URL (unix:///path, tcp://host:port, ...), a device or com:port=...")
    spec = spec.strip()
    if is_kd_string(spec):
        kd = parse_kd_string(spec)
        if kd.baud is not None:
            baud = kd.baud
        target = kd.to_url()
        log.info("kd string %r opens %s", spec, target)
    else:
        target = spec
        com = _COM_NAME.match(target)
        if com and sys.platform != "win32":
            # The name a Windows user types: the same translation as kd strings get.
            target = parse_kd_string(f"com:port={target}").to_url()
            log.info("%s is %s on this system", spec, target)
    _check_baud(baud)
    url_pace: int | None = None
    url_faults: FaultModel | None = None
    if _URL.match(target):
        target, url_pace, url_faults = _split_wrapper_options(target)
    pace = pace if pace is not None else url_pace
    faults = faults if faults is not None else url_faults
    _check_pace(pace)
    try:
        if _URL.match(target):
            port = serial.serial_for_url(target, baudrate=baud, timeout=timeout)
        else:
            port = NativeSerial(target, baudrate=baud, timeout=timeout)
    except LinkError:
        raise
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkError(_describe_open_error(target, exc)) from exc
    return wrap_link(port, pace=pace, faults=faults)


def wrap_link(port: Any, *, pace: int | None = None, faults: FaultModel | None = None) -> Any:
    """``port`` wrapped for faults and pacing, each wrapper a pyserial port whose ``inner``
    is the port it wraps; the received direction uses a sibling seed."""
    if faults is not None and faults.enabled:
        port = FaultyPort(port, model_tx=faults, model_rx=faults.with_seed(faults.seed + 1))
    _check_pace(pace)
    if pace is not None:
        port = PacedPort(port, pace)
    return port


def socket_pair(timeout: float | None = DEFAULT_TIMEOUT) -> tuple[SocketPort, SocketPort]:
    """Two connected pyserial-like ports over ``socket.socketpair()`` for in-process links.

    Both say ``peer_in_process``: the two ends share one interpreter lock, so a reader
    must not spin waiting for the other (KdLink's ``spin``)."""
    if sys.platform == "win32" and not hasattr(socket, "AF_UNIX"):  # pragma: no cover
        a, b = socket.socketpair(socket.AF_INET)
    else:
        a, b = socket.socketpair()
    ports = SocketPort(a, "socketpair:a", timeout=timeout), SocketPort(b, "socketpair:b", timeout=timeout)
    for port in ports:
        port.peer_in_process = True
    return ports

