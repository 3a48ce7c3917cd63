"""Exceptions of the transports: each is a TransportError and a pyserial exception.

Code written against pyserial (``serial.threaded.ReaderThread`` catches
``SerialException``) and code written against the protocol layer (which catches
``TransportError``) both see the same failure. EOF policy (simulated-target.md §8.2):
a link whose peer has gone raises ``LinkError`` from ``read``/``write``/``in_waiting``;
``read`` returns ``b""`` only when its timeout expired with nothing to deliver. (What a
KdLink reports when that happens is the ``LinkClosed`` event, events.py.)
"""

from __future__ import annotations

import serial

from ..errors import TransportError

__all__ = ["LinkError", "LinkWriteTimeout"]


class LinkError(TransportError, serial.SerialException):
    """A link could not be opened, or failed while in use: the peer went away (socket
    EOF, pty hang-up, EIO) or the device did. The message says what to check."""


class LinkWriteTimeout(LinkError, serial.SerialTimeoutException):
    """A write could not complete within ``write_timeout`` (no peer, or the peer stopped reading)."""
