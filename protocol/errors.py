"""Exceptions of the protocol layer.

The framing never raises on bad bytes from the peer: garbage, bad checksums and
truncated packets are behaviour (skip, RESEND), not exceptions. These types are
for caller misuse, a peer that cannot be recovered, and transports.
"""

from __future__ import annotations

__all__ = [
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "TargetTimeout",
    "TransportError",
]


class ProtocolError(Exception):
    """Base class of every error the protocol layer raises."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol state does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer did something the protocol cannot recover from."""


class TargetTimeout(ProtocolError):
    """A request got no reply within its time bound, retries included."""


class TransportError(ProtocolError):
    """A link could not be opened, or it failed while in use (bad URL, missing device, EOF)."""
