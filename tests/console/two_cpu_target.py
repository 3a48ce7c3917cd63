"""The simulated machine served as a two-CPU target: every state change says
NumberProcessors=2, and SwitchProcessor(N) is answered by the stop reported again
from processor N, as a multi-processor kd64 answers it (kd-protocol.md §5.1). Both
processors show the one simulated CPU's state; every request is logged with the
processor its header addresses."""

from __future__ import annotations

import struct
from typing import Any

from kdcon.protocol.events import ManipulateRequest
from kdcon.tools.simtarget.kd.session import KdTargetSession
from kdcon.tools.simtarget.kd.stub import KdStub, ReportAgain
from kdcon.tools.simtarget.loopback import SimTarget

# DBGKD_ANY_WAIT_STATE_CHANGE: Processor (u16) at 6, NumberProcessors (u32) at 8;
# DBGKD_MANIPULATE_STATE64: Processor (u16) at 6.
_PROCESSOR, _COUNT = 6, 8
PROCESSORS = 2


def as_processor(payload: bytes, processor: int) -> bytes:
    out = bytearray(payload)
    struct.pack_into("<H", out, _PROCESSOR, processor)
    struct.pack_into("<I", out, _COUNT, PROCESSORS)
    return bytes(out)


class _LoggingStub(KdStub):
    processor_count = PROCESSORS

    def __init__(self, machine: Any) -> None:
        super().__init__(machine)
        self.requests: list[tuple[int, int]] = []      # (ApiNumber, Processor)

    def handle(self, request: ManipulateRequest) -> Any:
        self.requests.append((request.api, struct.unpack_from("<H", request.raw, 6)[0]))
        return super().handle(request)


class _TwoCpuSession(KdTargetSession):
    def __init__(self, machine: Any) -> None:
        super().__init__(machine)
        self.stub = _LoggingStub(machine)

    def _enter_break(self, pump: Any, payload: bytes) -> None:
        super()._enter_break(pump, as_processor(payload, 0))

    def _act(self, pump: Any, result: Any) -> bool:
        if isinstance(result, ReportAgain) and self._broken is not None:
            self.stub.new_break()
            pump.send("send_state_change", as_processor(self._broken, result.processor))
            return False
        return super()._act(pump, result)


def two_cpu_target() -> tuple[SimTarget, list[tuple[int, int]]]:
    """A simulated target that stops on connect and reports two processors, and the
    log of (ApiNumber, Processor) of every request it answers."""
    sim = SimTarget(seed=0, break_on_connect=True)
    sim.session = _TwoCpuSession(sim.machine)
    return sim, sim.session.stub.requests
