"""WinDbg's ``.formats`` block: one value in hex, decimal, octal, binary, characters,
time and floating point.

    Evaluate expression:
      Hex:     00000000`1c407e62
      Decimal: 473988706
      Octal:   0000000000003420077142
      Binary:  00000000 00000000 00000000 00000000 00011100 01000000 01111110 01100010
      Chars:   .....@~b
      Time:    Mon Jan  7 15:31:46 1985
      Float:   low 6.36908e-022 high 0
      Double:  2.34182e-315

A value that fits in 32 bits reads as a CRT time (seconds since 1970), a wider one as
a FILETIME (100 ns since 1601, with milliseconds), as the .formats page says. Times
are shown in UTC: nothing here reads the host's time zone. Floats use the C runtime's
``%g`` with its three-digit exponent. Pure functions; what it does not do: evaluate
the expression (the console does).
Spec: the .formats page of the debugger documentation.
"""

from __future__ import annotations

import math
import re
import struct

from . import format_address
from .clock import filetime_datetime, kd_date, unix_datetime, utc_offset

__all__ = ["format_number_block", "crt_float"]

_EXPONENT = re.compile(r"e([+-])(\d+)$")


def crt_float(value: float) -> str:
    """``%g`` as Microsoft's C runtime prints it: ``6.36908e-022``."""
    if math.isnan(value):
        return "-nan(ind)" if math.copysign(1.0, value) < 0 else "nan"
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return _EXPONENT.sub(lambda m: f"e{m.group(1)}{int(m.group(2)):03d}", f"{value:g}")


def _time(value: int) -> str:
    if value < 1 << 32:
        return kd_date(unix_datetime(value))
    try:
        moment = filetime_datetime(value)
    except OverflowError:
        return "***** Invalid FILETIME"
    return f"{kd_date(moment, milliseconds=True)} {utc_offset(0)}"


def format_number_block(value: int, pointer_size: int = 8) -> list[str]:
    """The lines ``.formats`` prints for ``value`` on a target with ``pointer_size``-byte
    pointers (the value is taken modulo that width)."""
    bits = 8 * pointer_size
    value &= (1 << bits) - 1
    signed = value - (1 << bits) if value >> (bits - 1) else value
    raw = value.to_bytes(pointer_size, "big")
    octal_digits = (bits + 2) // 3
    chars = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in raw)
    low, high = struct.unpack("<ff", (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))
    double, = struct.unpack("<d", (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))
    return [
        "Evaluate expression:",
        f"  Hex:     {format_address(value, pointer_size)}",
        f"  Decimal: {signed}",
        f"  Octal:   {value:0{octal_digits}o}",
        f"  Binary:  {' '.join(f'{b:08b}' for b in raw)}",
        f"  Chars:   {chars}",
        f"  Time:    {_time(value)}",
        f"  Float:   low {crt_float(low)} high {crt_float(high)}",
        f"  Double:  {crt_float(double)}",
    ]
