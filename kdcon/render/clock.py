"""WinDbg's text for times: dates as ``.time`` and ``lmv`` print them, and uptimes.

    Debug session time: Tue Sep  9 01:41:26.237 2025 (UTC - 7:00)
    System Uptime: 0 days 0:00:03.872
    Timestamp:        Thu Sep  5 14:02:54 2019 (5D7140BE)

Takes Windows times as numbers: FILETIME counts (100 ns since 1601-01-01 UTC), 100 ns
intervals and PE TimeDateStamps (seconds since 1970-01-01 UTC). Pure functions; nothing
here reads the target or the host's clock or time zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["filetime_datetime", "unix_datetime", "kd_date", "kd_uptime", "utc_offset", "stamp_date"]

_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)
_EPOCH_1970 = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TICKS_PER_SECOND = 10_000_000


def filetime_datetime(filetime: int) -> datetime:
    """A FILETIME as an aware UTC datetime (microsecond precision)."""
    return _EPOCH_1601 + timedelta(microseconds=filetime // 10)


def unix_datetime(seconds: int) -> datetime:
    """Seconds since 1970-01-01 UTC (a PE TimeDateStamp, a CRT time) as a UTC datetime."""
    return _EPOCH_1970 + timedelta(seconds=seconds)


def kd_date(moment: datetime, *, milliseconds: bool = False) -> str:
    """``Tue Sep  9 01:41:26.237 2025``: ctime's layout (day padded with a space),
    with milliseconds when asked."""
    clock = moment.strftime("%H:%M:%S")
    if milliseconds:
        clock += f".{moment.microsecond // 1000:03d}"
    return f"{moment.strftime('%a %b')} {moment.day:2d} {clock} {moment.year}"


def utc_offset(minutes: int) -> str:
    """``(UTC - 7:00)`` for a local time 420 minutes behind UTC."""
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"(UTC {sign} {hours}:{rest:02d})"


def kd_uptime(interval: int) -> str:
    """``0 days 0:00:03.872`` for a count of 100 ns intervals."""
    milliseconds = max(0, interval) // 10_000
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days} days {hours}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def stamp_date(stamp: int) -> str:
    """``Thu Sep  5 14:02:54 2019 (5D7140BE)``: a PE TimeDateStamp, in UTC."""
    return f"{kd_date(unix_datetime(stamp))} ({stamp:08X})"
