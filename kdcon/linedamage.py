"""The session's defences against the KD checksum's blind spot on a noisy line.

The checksum is a byte sum: a duplicated and a dropped byte of the same value keep the
length and the sum and shift the bytes between (docs/protocol.md). KdHost asks again
for large replies; what it cannot see is checked here, and only on a line that damaged
packets lately (``KdHost.line_damaged``), so a clean line pays nothing:
- a stop whose ProgramCounter differs from its exception record's ExceptionAddress
  takes RIP from the context;
- a stop's instruction bytes are checked against one read of that memory, which seeds
  the stop's cache for ``u``;
- small reads whose wrong value would last the session (loader entries, their names)
  are read again until two agree;
- a stop is reported again (SwitchProcessor to the CPU that stopped, answered by a fresh
  state change: kd-protocol.md §5.1) until two reports agree, since nothing in memory
  can confirm an exception code, a first-chance flag or a module's load record.

A mixin of ``Session``: it uses the session's ``memory``, ``registers``, ``breakpoints``,
``host``, ``read_virtual``, ``_stop_from`` and ``report_from``.
"""

from __future__ import annotations

import dataclasses
import logging

from kdcon.protocol.errors import ProtocolError

from .errors import KdconError
from .stops import Stop

__all__ = ["LineDamageChecks"]

log = logging.getLogger(__name__)

# DBGKD_CONTROL_REPORT.InstructionStream: the bytes at the PC a state change carries.
_STREAM_SIZE = 16
_INT3 = 0xCC
# Reads past the first before a small reply on a noisy line is taken unconfirmed.
_CONFIRM_TRIES = 3
# How long a stop's second report may take: a state change is about 300 bytes, 26 ms at
# 115200 baud, and a damaged one is resent after the target's ACK timeout.
_REPORT_AGAIN_TIMEOUT = 3.0


class LineDamageChecks:
    """Checks of what a noisy line may have shifted past the checksum."""

    # A target that did not report its stop again once is not asked again.
    _reports_again = True

    def _stop_reported_again(self, stop: Stop) -> Stop:
        """On a line that damaged packets lately, the CPU that stopped is asked to report
        its stop again until two reports agree: the checksum's blind spot can shift a
        field of the state change (an exception code, the first-chance flag, an
        address) that no read of memory can check. A target that sends no second
        report within _REPORT_AGAIN_TIMEOUT keeps its first one, and is not asked
        again this session."""
        if not self._reports_again:
            return stop
        seen = [stop]
        for _ in range(_CONFIRM_TRIES):
            try:
                event = self.report_from(stop.processor, _REPORT_AGAIN_TIMEOUT)
            except (ProtocolError, KdconError) as exc:
                log.debug("could not have the stop reported again: %s", exc)
                return stop
            if event is None:
                log.warning("the target did not report its stop again; stops on this "
                            "noisy line are taken as first reported")
                self._reports_again = False
                return stop
            again = self._stop_from(event)
            if again in seen:
                if again != stop:
                    log.warning("two reports of a stop differed (damage the checksum "
                                "passed): using the one two reports agree on")
                return again
            seen.append(again)
        return stop

    def _stream_from_memory(self, stop: Stop) -> Stop:
        """On a line that damaged packets lately, the instruction bytes a state change
        carried (the stop line disassembles them) are checked against one read of the
        same memory, which also seeds this stop's cache for ``u``. When they differ a
        second read decides which of the two is right."""
        stream = stop.instruction_stream
        try:
            read = self.memory.read(stop.pc, _STREAM_SIZE)[:len(stream)]
            if len(read) < len(stream) or self._same_code(stop.pc, stream, read):
                return stop
            log.warning("a state change's instruction bytes at %#x differ from memory "
                        "(damage the checksum passed); reading them again", stop.pc)
            self.memory.invalidate()
            again = self.memory.read(stop.pc, _STREAM_SIZE)[:len(stream)]
        except (ProtocolError, KdconError, MemoryError) as exc:
            log.debug("could not check the stop's instruction bytes: %s", exc)
            return stop
        if self._same_code(stop.pc, stream, again):
            return stop
        return dataclasses.replace(stop, instruction_stream=again)

    def _same_code(self, pc: int, stream: bytes, read: bytes) -> bool:
        """The stream and a read of it agree, but where one of our breakpoints sits: a
        target reports there either the original byte or the int 3 (kd64 deletes the
        breakpoints inside the stream it reports; the memory may still hold them)."""
        if stream == read:
            return True
        if len(stream) != len(read):
            return False
        ours = {bp.address - pc for bp in self.breakpoints if not bp.hardware
                and bp.address is not None and 0 <= bp.address - pc < len(stream)}
        return all(a == b or (i in ours and _INT3 in (a, b))
                   for i, (a, b) in enumerate(zip(stream, read)))

    def _pc_from_context(self, stop: Stop) -> Stop:
        """A target reports an exception with ProgramCounter equal to the record's
        ExceptionAddress (both are the context's RIP). When they differ the checksum's
        blind spot may have shifted one of them: take RIP from the context itself."""
        try:
            rip = self.registers.get("rip")
        except (ProtocolError, KdconError) as exc:
            log.debug("could not check the stop's RIP: %s", exc)
            return stop
        if rip != stop.pc:
            log.warning("a state change said RIP %#x, the context %#x: using the context",
                        stop.pc, rip)
            stop = dataclasses.replace(stop, pc=rip)
        return stop

    def _confirmed_read(self, address: int, size: int) -> bytes:
        """A read whose wrong value would last (a loader entry, its name): on a line that
        damaged packets lately it is read again, past the cache, until two agree, since
        a reply this small is below KdHost's own re-read and a shift in it would leave a
        module misnamed or misplaced for the session. A clean line reads it once."""
        data = self.read_virtual(address, size)
        if not data or not self.host.line_damaged():
            return data
        seen = [data]
        for _ in range(_CONFIRM_TRIES):
            again = self.host.read_virtual(address, len(data))
            if again in seen:
                if again != data:
                    log.warning("a read at %#x differed from the one before (damage the "
                                "checksum passed): using the one two reads agree on", address)
                    self.memory.invalidate()
                return again
            seen.append(again)
        return data
