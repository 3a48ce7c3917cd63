"""A pyserial port over one OS stream (socket or pty master), the base of our URL handlers.

``FdPort`` is a ``serial.SerialBase`` whose bytes travel over a socket or a file
descriptor instead of a UART. Subclasses say how to get a peer (``_attach``): connect,
accept, or nothing (a pty is always attached). The base gives every handler the same
read, write, EOF and reconnect behaviour:

- ``read(size)`` returns once ``size`` bytes arrived or ``timeout`` expired (pyserial's
  contract); ``in_waiting`` is the exact count the kernel holds (FIONREAD), so the
  ``read(max(1, in_waiting))`` pattern of simulated-target.md §8.2 never blocks a short
  KD handshake.
- EOF (recv returns nothing, EIO, ECONNRESET, EPIPE) raises ``LinkError``, after any
  bytes already read in that call are returned. A port created with ``reconnect``
  instead forgets the peer and attaches again (WinDbg's ``reconnect``, windbg.md §0.8);
  bytes written while no peer is attached are lost, as on a cable with nobody at the end.
- A listening port never makes a writer wait for a peer: ``write`` takes a peer that
  is already queued to connect, else the bytes are lost at once (the serial line with
  no cable plugged in), whatever ``write_timeout`` says. ``read`` is what waits for the
  peer, within ``timeout``. A writer with its own lock held (KdLink) is never stuck.
- ``cancel_read()`` wakes a blocked ``read`` (pyserial's ``ReaderThread.stop`` uses it).

Baud rate, parity and modem lines are accepted and ignored: there is no UART.
Not here: URL parsing (the ``protocol_*`` modules) and pacing or faults (wrappers).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import sys
import time
from collections import deque

from serial.serialutil import PortNotOpenError, SerialBase, Timeout, to_bytes

from .errors import LinkError, LinkWriteTimeout

if sys.platform != "win32":
    import fcntl
    import termios
else:  # pragma: no cover - exercised only on Windows
    fcntl = termios = None

__all__ = ["FdPort", "Channel"]

_yield_cpu = getattr(os, "sched_yield", lambda: time.sleep(0))

# A yield that comes back this much later ran some other process for its time slice:
# every CPU is busy, and there a poller that yields waits out others' slices where
# a sleeper would be woken first (a socket-pair round trip went from 0.1 ms to 2 ms,
# bench/simtarget.py). The peer's own turn takes tens of µs.
_BUSY_YIELD = 0.0002
# One such yield is not yet a busy machine: a kernel thread that ran for a moment
# (a VM's memory monitor, say) would otherwise stop the polling for a whole pause, and
# every round trip would pay a wake-up (bench/simtarget.py: 65-70 against 104 µs). A
# port gives up polling when _BUSY_YIELDS of them come within _BUSY_WINDOW, for the
# next _BUSY_PAUSE seconds.
_BUSY_YIELDS = 3
_BUSY_WINDOW = 0.05
_BUSY_PAUSE = 1.0

log = logging.getLogger(__name__)

# errno values that mean "the other end is gone" rather than "try again".
_EOF_ERRNOS = {errno.EIO, errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ESHUTDOWN}
_RETRY_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR}


class Channel:
    """One attached stream: a non-blocking socket or a raw file descriptor."""

    def __init__(self, *, sock: socket.socket | None = None, fd: int | None = None, owns_fd: bool = True) -> None:
        if (sock is None) == (fd is None):
            raise ValueError("a channel wraps exactly one of sock or fd")
        self.sock = sock
        self._fd = fd
        self._owns_fd = owns_fd
        if sock is not None:
            sock.setblocking(False)
        else:
            os.set_blocking(fd, False)  # type: ignore[arg-type]

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else self._fd  # type: ignore[return-value]

    def recv(self, size: int) -> bytes:
        if self.sock is not None:
            return self.sock.recv(size)
        return os.read(self._fd, size)  # type: ignore[arg-type]

    def send(self, data: bytes | memoryview) -> int:
        if self.sock is not None:
            return self.sock.send(data)
        return os.write(self._fd, data)  # type: ignore[arg-type]

    def pending(self) -> int:
        """Bytes the kernel holds for us now (0 when unknown or at EOF)."""
        if fcntl is not None:
            try:
                raw = fcntl.ioctl(self.fileno(), termios.FIONREAD, b"\0\0\0\0")
                return struct.unpack("i", raw)[0]
            except OSError as exc:
                if exc.errno in _EOF_ERRNOS:
                    raise
                return 0
        ready, _, _ = select.select([self.fileno()], [], [], 0)
        return 1 if ready else 0

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already disconnected: nothing to shut down
            self.sock.close()
        elif self._owns_fd and self._fd is not None:
            os.close(self._fd)
            self._fd = None


class FdPort(SerialBase):
    """Base class of the stream-backed pyserial ports; subclasses implement ``_attach``."""

    #: Attach a new peer after EOF instead of raising LinkError.
    reconnect: bool = False
    #: Wait for peers to connect (a listening socket) instead of having one from open.
    listen: bool = False
    #: The peer runs in this process (socket_pair): it needs our interpreter lock.
    peer_in_process: bool = False

    def __init__(self, *args, **kwargs) -> None:
        self._chan: Channel | None = None
        self._eof = False
        self._cancel_r: int | None = None
        self._cancel_w: int | None = None
        self.reconnects = 0
        self._busy_until = 0.0  # read_available polls no more until then
        self._slow_yields: deque[float] = deque(maxlen=_BUSY_YIELDS)
        super().__init__(*args, **kwargs)

    # -- what subclasses provide -------------------------------------------------

    def _open_link(self) -> None:
        """Parse ``self.portstr`` and create the channel or the listening socket."""
        raise NotImplementedError

    def _attach(self, timeout: float | None) -> bool:
        """Get a peer within ``timeout`` (None: wait forever); True once attached."""
        return False

    def _attach_for_write(self, timeout: float | None) -> bool:
        """Get a peer before a write (listeners override it: they never wait)."""
        return self._attach(timeout)

    def _close_link(self) -> None:
        """Release what ``_open_link`` created besides the channel."""

    # -- pyserial entry points ---------------------------------------------------

    def open(self) -> None:
        if self._port is None:
            raise LinkError("no link address given")
        if self.is_open:
            raise LinkError(f"{self.portstr} is already open")
        self._cancel_r, self._cancel_w = os.pipe()
        os.set_blocking(self._cancel_r, False)
        try:
            self._open_link()
        except BaseException:
            self._release()
            raise
        self._eof = False
        self.is_open = True

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self._release()

    def _release(self) -> None:
        self._drop_channel()
        self._close_link()
        for fd in (self._cancel_r, self._cancel_w):
            if fd is not None:
                os.close(fd)
        self._cancel_r = self._cancel_w = None

    def _reconfigure_port(self, *args, **kwargs) -> None:
        """Nothing to configure: the stream has no baud rate or line settings."""

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass

    cts = dsr = cd = property(lambda self: True)
    ri = property(lambda self: False)

    @property
    def attached(self) -> bool:
        """True while a peer is connected."""
        return self._chan is not None

    def wait_for_peer(self, timeout: float | None = None) -> bool:
        """Block until a peer is attached (listening forms); True on success."""
        self._check_open()
        return self._chan is not None or self._attach(timeout)

    def fileno(self) -> int:
        self._check_open()
        if self._chan is None:
            raise LinkError(f"{self.portstr} has no peer attached")
        return self._chan.fileno()

    @property
    def in_waiting(self) -> int:
        self._check_open()
        if self._chan is None:
            if self._eof:
                raise LinkError(f"{self.portstr}: the peer closed the link")
            if not self._attach(0):
                return 0
        chan = self._chan  # a writer that meets EOF may drop it meanwhile
        if chan is None:
            return 1  # the next read reports the EOF
        try:
            return chan.pending()
        except OSError:
            # Reported as data so that the next read sees the EOF and reacts to it.
            return 1

    def read(self, size: int = 1) -> bytes:
        self._check_open()
        buf = bytearray()
        timeout = Timeout(self._timeout)
        while len(buf) < size:
            if self._chan is None:
                if self._eof:
                    if buf:
                        break
                    raise LinkError(f"{self.portstr}: the peer closed the link")
                if not self._attach(timeout.time_left()):
                    break
                continue
            # One channel for the whole step: a writer that meets EOF drops it.
            chan = self._chan
            ready, _, _ = select.select([chan.fileno(), self._cancel_r], [], [],
                                        timeout.time_left())
            if self._cancel_r in ready:
                self._drain_cancel()
                break
            if not ready:
                break
            try:
                chunk = chan.recv(size - len(buf))
            except OSError as exc:
                if exc.errno in _RETRY_ERRNOS:
                    continue
                if exc.errno not in _EOF_ERRNOS:
                    raise LinkError(f"{self.portstr}: read failed: {exc.strerror or exc}") from exc
                chunk = b""
            if not chunk:
                self._lost_peer("read")
                continue
            buf += chunk
            if timeout.expired():
                break
        return bytes(buf)

    def read_available(self, limit: int = 1 << 16, spin: float = 0.0) -> bytes:
        """Up to ``limit`` bytes: whatever the kernel holds now, else what arrives first
        within ``timeout`` (b"" if nothing). What ``read(max(1, in_waiting))`` gives, in
        one or two system calls instead of five: each call lets another thread take
        the interpreter lock, and KdLink's reader makes them for every packet
        (bench/simtarget.py). With ``spin``, polls that long before sleeping in
        select: an answer due within microseconds is taken without the cost of a
        wake-up, which on a virtual machine is most of a round trip; a yield that
        ran another process instead, three times within ``_BUSY_WINDOW``, says every
        CPU is busy, and the port sleeps in select for the next ``_BUSY_PAUSE`` seconds. EOF and reconnects are
        ``read``'s business."""
        self._check_open()
        timeout: Timeout | None = None  # made when first needed: most calls find data
        now = time.perf_counter()
        spin_until = now + spin if spin > 0 and now >= self._busy_until else 0.0
        while (chan := self._chan) is not None:
            try:
                chunk = chan.recv(limit)
            except OSError as exc:
                if exc.errno not in _RETRY_ERRNOS:
                    break
            else:
                if not chunk:
                    break
                return chunk
            if spin_until and (now := time.perf_counter()) < spin_until:
                # Give the CPU to anything else that can run on it, the peer included:
                # polling pays only while a CPU is free.
                _yield_cpu()
                if time.perf_counter() - now > _BUSY_YIELD and self._cpus_busy(now):
                    spin_until = 0.0
                    self._busy_until = time.perf_counter() + _BUSY_PAUSE
                continue
            if timeout is None:
                timeout = Timeout(self._timeout)
            ready, _, _ = select.select([chan.fileno(), self._cancel_r], [], [],
                                        timeout.time_left())
            if self._cancel_r in ready:
                self._drain_cancel()
                return b""
            if not ready:
                return b""
        return self.read(1)

    def _cpus_busy(self, now: float) -> bool:
        """A slow yield at ``now``: whether it makes _BUSY_YIELDS within _BUSY_WINDOW."""
        slow = self._slow_yields
        slow.append(now)
        return len(slow) == _BUSY_YIELDS and now - slow[0] <= _BUSY_WINDOW

    def write(self, data: bytes) -> int:
        self._check_open()
        chan = self._chan
        if chan is not None and type(data) is bytes:
            # Nearly every write goes out whole in one send: no view, no loop.
            try:
                sent = chan.send(data)
            except OSError:
                sent = 0  # the loop below tells EOF, a full buffer and a failure apart
            if sent == len(data):
                return sent
            data = data[sent:]
            payload = memoryview(data)
            total = sent + len(data)
        else:
            payload = memoryview(to_bytes(data))
            total = len(payload)
        # Made when first needed: most writes go out in one send and never wait.
        timeout: Timeout | None = None
        if self._chan is None:
            timeout = Timeout(self._write_timeout)
            if self._eof:
                raise LinkError(f"{self.portstr}: the peer closed the link")
            if not self._attach_for_write(timeout.time_left()):
                if self.reconnect or self.listen:
                    log.debug("%s: no peer, %d bytes lost", self.portstr, total)
                    return total
                raise LinkWriteTimeout(f"{self.portstr}: no peer attached within the write timeout")
        while payload:
            chan = self._chan  # a reader that meets EOF may drop it meanwhile
            if chan is None:
                log.debug("%s: peer left mid-write, %d bytes lost", self.portstr, len(payload))
                return total
            try:
                sent = chan.send(payload)
                payload = payload[sent:]
                continue
            except OSError as exc:
                if exc.errno in _EOF_ERRNOS:
                    self._lost_peer("write")
                    if self._eof:
                        raise LinkError(f"{self.portstr}: the peer closed the link") from exc
                    continue
                if exc.errno not in _RETRY_ERRNOS:
                    raise LinkError(f"{self.portstr}: write failed: {exc.strerror or exc}") from exc
            if timeout is None:
                timeout = Timeout(self._write_timeout)
            _, ready, _ = select.select([], [chan.fileno()], [], timeout.time_left())
            if not ready:
                raise LinkWriteTimeout(f"{self.portstr}: the peer stopped reading (write timeout)")
        return total

    def flush(self) -> None:
        self._check_open()

    def reset_input_buffer(self) -> None:
        self._check_open()
        while self._chan is not None:
            try:
                if not self._chan.recv(4096):
                    self._lost_peer("reset_input_buffer")
                    break
            except OSError as exc:
                if exc.errno in _EOF_ERRNOS:
                    self._lost_peer("reset_input_buffer")
                break

    def reset_output_buffer(self) -> None:
        self._check_open()

    def cancel_read(self) -> None:
        if self._cancel_w is not None:
            os.write(self._cancel_w, b"x")

    def cancel_write(self) -> None:
        """Writes finish or time out on their own; nothing to cancel."""

    # -- helpers -----------------------------------------------------------------

    def _check_open(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    def _drain_cancel(self) -> None:
        try:
            while os.read(self._cancel_r, 64):  # type: ignore[arg-type]
                pass
        except BlockingIOError:
            pass

    def _set_channel(self, chan: Channel) -> None:
        self._chan = chan
        self._eof = False

    def _drop_channel(self) -> None:
        if self._chan is not None:
            chan, self._chan = self._chan, None
            chan.close()

    def _lost_peer(self, where: str) -> None:
        self._drop_channel()
        if self.reconnect:
            self.reconnects += 1
            log.info("%s: peer went away during %s; waiting for it to come back", self.portstr, where)
        else:
            self._eof = True
            log.debug("%s: peer closed the link during %s", self.portstr, where)

    def _cancel_wait(self, timeout: float | None) -> bool:
        """Wait ``timeout`` seconds unless cancel_read is called; True if cancelled."""
        ready, _, _ = select.select([self._cancel_r], [], [], timeout)
        if ready:
            self._drain_cancel()
            return True
        return False
