"""Exceptions of the protocol layer.

The framing never raises on bad bytes from the peer: garbage, bad checksums and
truncated packets are behaviour (skip, RESEND), not exceptions. These types are
for caller misuse, requests that get no answer, and transports.
"""

from __future__ import annotations

__all__ = [
    "ProtocolError",
    "LocalProtocolError",
    "TargetTimeout",
    "RequestCancelled",
    "TransportError",
]


class ProtocolError(Exception):
    """Base class of every error the protocol layer raises."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol state does not allow."""


class TargetTimeout(ProtocolError):
    """A request got no reply within its time bound, retries included."""


class RequestCancelled(ProtocolError):
    """A request or sync was cancelled (KdLink.cancel, e.g. Ctrl+C) before its answer."""


class TransportError(ProtocolError):
    """A link could not be opened, or it failed while in use (bad URL, missing device, EOF)."""
