"""Transports: every link is a pyserial URL; pacing and fault wrappers for realistic cables.

Importing this package registers our URL handlers (``unix://``, ``tcp://``, ``pty://``,
``kdsim://``) with pyserial. Start with ``open_link``; see each module for the details.
"""

from __future__ import annotations

from .cli import add_link_arguments, open_link_from_args
from .errors import LinkError, LinkWriteTimeout
from .faults import FaultCounts, FaultModel, parse_fault_spec
from .faulty_port import FaultyPort
from .kdstring import KdString, is_kd_string, parse_kd_string
from .open import DEFAULT_TIMEOUT, open_link, register_handlers, socket_pair, wrap_link
from .native import KD_BAUD_RATES, NativeSerial
from .pacing import LineSchedule, PacedPort, byte_time
from .uart import BaudMismatch, resample_at_wrong_baud

__all__ = [
    "DEFAULT_TIMEOUT",
    "KD_BAUD_RATES",
    "BaudMismatch",
    "FaultCounts",
    "FaultModel",
    "FaultyPort",
    "KdString",
    "LineSchedule",
    "LinkError",
    "LinkWriteTimeout",
    "NativeSerial",
    "PacedPort",
    "add_link_arguments",
    "byte_time",
    "is_kd_string",
    "open_link",
    "open_link_from_args",
    "parse_fault_spec",
    "parse_kd_string",
    "register_handlers",
    "resample_at_wrong_baud",
    "socket_pair",
    "wrap_link",
]
