"""Common base of port wrappers (pacing, faults): a pyserial port over another port.

``PortWrapper`` is a ``serial.SerialBase``, as pyserial's own URL handlers are, so a
paced or noisy port has the whole pyserial API (``readline``, ``read_until``,
``iread_until``, ``get_settings``/``apply_settings``, ``with``, ``send_break``) on top of
its subclass's ``read`` and ``write``. The wrapped port is ``inner``; ``port``,
``portstr`` and ``name`` are its name, as pyserial's ``port`` is a name, never an object.

The line settings belong to the wrapped port, the one with the UART or the socket:
``baudrate``, ``write_timeout`` and the other settings pyserial saves, the modem lines and
``exclusive`` read and write through to it, and ``is_open`` is its state. The one
exception is ``timeout``: the wrapper keeps its own (SerialBase's ``_timeout``, which
``read_until`` uses too) because it drives the wrapped port's timeout itself on every
read. Attributes pyserial does not define (``peer_name``, ``address``, ``reconnects``,
``peer_in_process``, ``wait_for_peer``, ...) are the wrapped port's too.

Not here: what a wrapper does to the bytes (``pacing``, ``faulty_port``), and opening a
wrapper from a URL (``open.wrap_link`` reads ``?pace=`` and ``?faults=``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from serial.serialutil import SerialBase

__all__ = ["PortWrapper"]

log = logging.getLogger(__name__)


def _through(name: str) -> property:
    """A setting that lives on the wrapped port."""

    def getter(self: PortWrapper) -> Any:
        return getattr(self.inner, name)

    def setter(self: PortWrapper, value: Any) -> None:
        setattr(self.inner, name, value)

    return property(getter, setter, doc=f"The wrapped port's ``{name}``.")


class PortWrapper(SerialBase):
    """A pyserial port that passes bytes through ``inner``; subclasses change them."""

    def __init__(self, port: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        # Not SerialBase.__init__: it would assign every setting its default, and those
        # write through to the open port being wrapped.
        self.inner = port
        self._clock = clock
        self._timeout: float | None = getattr(port, "timeout", None)
        self._inner_timeout: object = object()

    # Not the inner port's: a wrapper's bytes must pass through its own ``read``.
    read_available = None

    def __getattr__(self, name: str) -> Any:
        # Only reached for names neither the wrapper nor SerialBase defines.
        try:
            inner = self.__dict__["inner"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    def __del__(self) -> None:
        # IOBase would close on collection, and with it the wrapped port that someone
        # may still use; an unused wrapped port closes itself when it is collected.
        pass

    # -- the wrapped port's name, state and settings ---------------------------------

    @property
    def port(self) -> str | None:
        """The wrapped port's name; setting it reopens the wrapped port there."""
        return self.inner.port

    @port.setter
    def port(self, value: str | None) -> None:
        self.inner.port = value

    portstr = property(lambda self: self.inner.portstr)
    name = property(lambda self: self.inner.name)
    is_open = property(lambda self: bool(self.inner.is_open))

    baudrate = _through("baudrate")
    bytesize = _through("bytesize")
    parity = _through("parity")
    stopbits = _through("stopbits")
    xonxoff = _through("xonxoff")
    rtscts = _through("rtscts")
    dsrdtr = _through("dsrdtr")
    # The inner port does the writing: the bound is its own.
    write_timeout = _through("write_timeout")
    inter_byte_timeout = _through("inter_byte_timeout")
    exclusive = _through("exclusive")
    rs485_mode = _through("rs485_mode")
    rts = _through("rts")
    dtr = _through("dtr")
    break_condition = _through("break_condition")

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to push: ``timeout``, the one setting kept here, applies per read."""

    def get_settings(self) -> dict[str, Any]:
        # SerialBase reads its own ``_baudrate`` and so on; here they are the inner port's.
        return {key: getattr(self, key) for key in self._SAVED_SETTINGS}

    def apply_settings(self, d: dict[str, Any]) -> None:
        for key in self._SAVED_SETTINGS:
            if key in d and d[key] != getattr(self, key):
                setattr(self, key, d[key])

    # -- life cycle and the lines that bypass the bytes ------------------------------

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> PortWrapper:
        if not self.is_open and self.port is not None:
            self.open()
        return self

    def fileno(self) -> int:
        return self.inner.fileno()

    def flush(self) -> None:
        self.inner.flush()

    def send_break(self, duration: float = 0.25) -> None:
        self.inner.send_break(duration)

    def reset_output_buffer(self) -> None:
        self.inner.reset_output_buffer()

    def cancel_read(self) -> None:
        if hasattr(self.inner, "cancel_read"):
            self.inner.cancel_read()

    # -- bytes: passed through unchanged unless a subclass says otherwise -------------

    @property
    def in_waiting(self) -> int:
        return self.inner.in_waiting

    def read(self, size: int = 1) -> bytes:
        self._set_inner_timeout(self._timeout)
        return self.inner.read(size)

    def write(self, data: bytes) -> int:
        return self.inner.write(data)

    def reset_input_buffer(self) -> None:
        self.inner.reset_input_buffer()

    # -- helpers for subclasses --------------------------------------------------------

    def _deadline(self) -> float | None:
        return None if self._timeout is None else self._clock() + self._timeout

    def _time_left(self, deadline: float | None) -> float | None:
        return None if deadline is None else max(0.0, deadline - self._clock())

    def _set_inner_timeout(self, value: float | None) -> None:
        # Setting a native port's timeout reconfigures the tty: skip needless changes.
        if value != self._inner_timeout:
            self.inner.timeout = value
            self._inner_timeout = value
