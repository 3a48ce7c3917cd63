"""The Windows KD serial protocol, sans-I/O, for both the host and the target role.

Spec: windbgkd.h names throughout; the wire is described in kd-protocol.md.
Nothing in this package reads a clock, sleeps, or touches a port, except the
``transports`` subpackage, whose modules are pyserial URL handlers.
"""
