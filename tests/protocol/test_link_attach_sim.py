"""A host attaching to the real kdcon-sim program, over a unix socket, as kd does.

The target runs in its own process (``kdcon-sim --listen unix://...``); the host is
KdLink over open_link. The "listening on" line is awaited with a selector and a
deadline; every other wait is an event or a reply with a timeout.
"""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys

import pytest

from kdcon.protocol.connection import KdConnection
from kdcon.protocol.constants import ContinueStatus, ManipulateApi as A
from kdcon.protocol.link import KdLink
from kdcon.protocol.state import Role
from kdcon.protocol.transports import open_link

START_TIMEOUT = 20.0
RESET_PACKET = KdConnection(Role.HOST).send_reset()
LOAD_SYMBOLS, EXCEPTION = 0x3031, 0x3030
CONTINUE = dict(ContinueStatus=ContinueStatus.DBG_CONTINUE, ControlSet=dict(Amd64=dict(
    TraceFlag=0, Dr7=0x400, CurrentSymbolStart=1, CurrentSymbolEnd=0)))


class CountingPort:
    """The host's port, counting the RESET packets written through it."""

    def __init__(self, port) -> None:
        self.port = port
        self.resets = 0

    def __getattr__(self, name: str):
        return getattr(self.port, name)

    @property
    def timeout(self) -> float | None:
        return self.port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self.port.timeout = value

    @property
    def in_waiting(self) -> int:
        return self.port.in_waiting

    def write(self, data: bytes) -> int:
        self.resets += data.count(RESET_PACKET)
        return self.port.write(data)


@pytest.fixture
def sim_url(tmp_path):
    path = tmp_path / "kd.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kdcon.tools.simtarget.cli import main; "
         "sys.exit(main())", "--listen", f"unix://{path}", "--no-trackdemo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=START_TIMEOUT), "kdcon-sim printed nothing"
        line = proc.stdout.readline().strip()
        assert line == f"listening on unix://{path}", proc.stderr.read()
        yield line[len("listening on "):]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def _boot_and_leave_running(url: str) -> None:
    """A first debugger takes the boot stops, resumes each, and detaches."""
    with KdLink(open_link(url), Role.HOST, start=False) as host:
        state = host.sync(START_TIMEOUT, breakin=False)
        for module in (b"ntoskrnl.exe", b"hal.dll", b"kdcom.dll"):
            assert state.new_state == LOAD_SYMBOLS and module in state.data
            host.request(A.DbgKdContinueApi2, CONTINUE, timeout=START_TIMEOUT)
            if module != b"kdcom.dll":
                state = host.wait_for(type(state), START_TIMEOUT)


def test_attach_to_a_running_target_syncs_on_the_first_reset(sim_url) -> None:
    _boot_and_leave_running(sim_url)
    port = CountingPort(open_link(sim_url))
    with KdLink(port, Role.HOST, start=False) as host:
        # Break-in and RESET in one write; no second RESET, on a timer or otherwise.
        state = host.sync(START_TIMEOUT, reset_interval=60)
        assert state.new_state == EXCEPTION
        assert state.message.u.ExceptionRecord.ExceptionCode == 0x80000003
        assert port.resets == 1
        assert host.request(A.DbgKdGetVersionApi, timeout=START_TIMEOUT).return_status == 0
        host.request(A.DbgKdContinueApi2, CONTINUE, timeout=START_TIMEOUT)


def test_attach_to_a_booting_target_syncs_on_the_first_reset(sim_url) -> None:
    port = CountingPort(open_link(sim_url))
    with KdLink(port, Role.HOST, start=False) as host:
        state = host.sync(START_TIMEOUT, reset_interval=60, breakin=False)
        assert state.new_state == LOAD_SYMBOLS and b"ntoskrnl.exe" in state.data
        assert port.resets == 1
