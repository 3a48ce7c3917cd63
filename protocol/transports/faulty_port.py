"""``FaultyPort``: a real port whose line damages bytes in each direction.

Each direction has a line model, any object with ``apply(data: bytes) -> bytes``:
``FaultModel`` (bit flips, drops, duplicates, garbage) or ``BaudMismatch`` (bytes
resampled at the wrong rate). ``write`` passes ``model_tx.apply(data)`` to the port and
reports ``len(data)`` written, as a UART does whatever happens on the wire; ``read``
applies ``model_rx`` to what arrives and keeps any surplus (duplicates, garbage) for the
next read. A read returns early, with fewer bytes than asked, when the line lost bytes
the port had announced in ``in_waiting``: waiting out the timeout for bytes that will
never come would stall a ``read(in_waiting)`` pump. Not here: the models themselves.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from .wrapper import PortWrapper

__all__ = ["FaultyPort", "LineModel"]

log = logging.getLogger(__name__)


class LineModel(Protocol):
    def apply(self, data: bytes) -> bytes: ...


class FaultyPort(PortWrapper):
    """Applies ``model_tx`` to written bytes and ``model_rx`` to read bytes (None: untouched)."""

    def __init__(self, port: Any, model_tx: LineModel | None = None, model_rx: LineModel | None = None) -> None:
        super().__init__(port)
        self.model_tx = model_tx
        self.model_rx = model_rx
        self._rx = bytearray()
        # The models keep state: a pump reading while another thread writes must not
        # interleave inside one model.
        self._tx_lock = threading.Lock()
        self._rx_lock = threading.Lock()

    def write(self, data: bytes) -> int:
        data = bytes(data)
        with self._tx_lock:
            out = self.model_tx.apply(data) if self.model_tx is not None else data
            if out:
                self.inner.write(out)
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self._rx) + self.inner.in_waiting

    def read(self, size: int = 1) -> bytes:
        with self._rx_lock:
            return self._read_locked(size)

    def _read_locked(self, size: int) -> bytes:
        deadline = self._deadline()
        while len(self._rx) < size:
            if self._rx and not self.inner.in_waiting:
                break  # deliver what we have rather than wait for more
            self._set_inner_timeout(self._time_left(deadline))
            chunk = self.inner.read(max(1, min(size - len(self._rx), self.inner.in_waiting)))
            if not chunk:
                break
            self._rx += self.model_rx.apply(chunk) if self.model_rx is not None else chunk
            if deadline is not None and self._clock() >= deadline:
                break
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def reset_input_buffer(self) -> None:
        with self._rx_lock:
            self._rx.clear()
            self.inner.reset_input_buffer()
