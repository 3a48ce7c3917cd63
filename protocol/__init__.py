"""The Windows KD serial protocol, sans-I/O, for both the host and the target role.

Spec: windbgkd.h names throughout; the wire is described in kd-protocol.md.
Nothing in this package reads a clock, sleeps, or touches a port, except the
``transports`` subpackage, whose modules are pyserial URL handlers, and ``link``,
the one blocking driver (one reader thread over one pyserial-like port).

The engine is ``KdConnection(role)``: feed it bytes, take events, send what its
methods return. Structures live in ``packet`` (KD_PACKET), ``windbgkd`` (state
change, debug/file/trace I/O), ``manipulate`` (DBGKD_MANIPULATE_STATE*),
``context`` (CONTEXT, KSPECIAL_REGISTERS) and ``debugger_data`` (KDDEBUGGER_DATA64).
"""

from __future__ import annotations

from .connection import KdConnection
from .events import NEED_DATA
from .state import Phase, Role

__all__ = ["KdConnection", "NEED_DATA", "Phase", "Role"]
