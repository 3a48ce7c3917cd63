"""Common base of port wrappers (pacing, faults): forward what is not overridden.

A wrapper looks like the pyserial port it wraps: attributes it does not define
(``portstr``, ``baudrate``, ``peer_name``, ``address``, ...) are the inner port's. It
keeps its own ``timeout`` because it drives the inner port's timeout itself.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

__all__ = ["PortWrapper"]

log = logging.getLogger(__name__)


class PortWrapper:
    """A pyserial-like port that delegates to ``self.port``."""

    def __init__(self, port: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.port = port
        self._clock = clock
        self._timeout: float | None = getattr(port, "timeout", None)
        self._inner_timeout: object = object()

    # Not the inner port's: a wrapper's bytes must pass through its own ``read``.
    read_available = None

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the wrapper does not define itself.
        try:
            inner = self.__dict__["port"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.port!r})"

    def __enter__(self) -> PortWrapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError(f"not a valid timeout: {value!r}")
        self._timeout = value

    @property
    def write_timeout(self) -> float | None:
        return self.port.write_timeout

    @write_timeout.setter
    def write_timeout(self, value: float | None) -> None:
        # The inner port does the writing: the bound is its own.
        self.port.write_timeout = value

    @property
    def is_open(self) -> bool:
        return bool(self.port.is_open)

    def close(self) -> None:
        self.port.close()

    def flush(self) -> None:
        self.port.flush()

    def cancel_read(self) -> None:
        if hasattr(self.port, "cancel_read"):
            self.port.cancel_read()

    def _deadline(self) -> float | None:
        return None if self._timeout is None else self._clock() + self._timeout

    def _time_left(self, deadline: float | None) -> float | None:
        return None if deadline is None else max(0.0, deadline - self._clock())

    def _set_inner_timeout(self, value: float | None) -> None:
        # Setting a native port's timeout reconfigures the tty: skip needless changes.
        if value != self._inner_timeout:
            self.port.timeout = value
            self._inner_timeout = value
