"""Native serial devices (``/dev/ttyS0``, ``/dev/ttyUSB0``, ptys, ``COM1``) with our EOF policy.

``NativeSerial`` is pyserial's own ``serial.Serial`` for the platform with one change:
failures while in use are reported as ``LinkError`` (a ``TransportError`` and a
``SerialException``). On a pty whose other end has gone, pyserial raises
``SerialException("device reports readiness to read but returned no data ...")`` from
``read`` and a bare ``OSError(EIO)`` from ``in_waiting`` (simulated-target.md §8.2);
both become ``LinkError``. Opening errors are translated by ``open_link``.
"""

from __future__ import annotations

import errno
import logging

import serial

from .errors import LinkError, LinkWriteTimeout

__all__ = ["NativeSerial", "KD_BAUD_RATES"]

log = logging.getLogger(__name__)

#: The rates kd cycles through with Ctrl+A (windbg.md, kd-protocol.md §3.1).
KD_BAUD_RATES = (19200, 38400, 57600, 115200)


class NativeSerial(serial.Serial):
    """A platform serial port whose EOF and I/O errors raise ``LinkError``."""

    def read(self, size: int = 1) -> bytes:
        try:
            return super().read(size)
        except serial.SerialException as exc:
            raise LinkError(f"{self.portstr}: the device went away ({exc})") from exc
        except OSError as exc:
            raise LinkError(f"{self.portstr}: read failed: {exc.strerror or exc}") from exc

    def write(self, data: bytes) -> int | None:
        try:
            return super().write(data)
        except serial.SerialTimeoutException as exc:
            raise LinkWriteTimeout(f"{self.portstr}: the peer stopped reading (write timeout)") from exc
        except serial.SerialException as exc:
            raise LinkError(f"{self.portstr}: the device went away ({exc})") from exc
        except OSError as exc:
            raise LinkError(f"{self.portstr}: write failed: {exc.strerror or exc}") from exc

    @property
    def in_waiting(self) -> int:
        try:
            return super().in_waiting
        except OSError as exc:
            if exc.errno == errno.EIO or isinstance(exc, serial.SerialException):
                raise LinkError(f"{self.portstr}: the device went away ({exc})") from exc
            raise
