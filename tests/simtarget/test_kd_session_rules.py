"""The kd session over a real socket pair, against a scripted machine: the wire rules."""

from __future__ import annotations

import signal
import threading

import pytest

from kdcon.protocol.buffer import DataFrame, FrameBuffer
from kdcon.protocol.constants import INITIAL_PACKET_ID, SYNC_PACKET_ID, ManipulateApi as A
from kdcon.protocol.events import DebugPrint, DebugPrompt, Reset, StateChange
from kdcon.protocol.link import LinkClosed
from kdcon.tools.simtarget.kd import StopReport
from kdcon.protocol.transports import socket_pair
from kdcon.tools.simtarget.loopback import SimTarget

from kdcon.protocol.link import LinkClosed

from .kd_fake_machine import FakeMachine
from .kd_host import KdHost

CODE = 0xFFFFF80000401000
NT = StopReport(kind="load", path=r"\SystemRoot\system32\ntoskrnl.exe",
                base=0xFFFFF80000400000, size=0x20000)


@pytest.fixture
def machine() -> FakeMachine:
    m = FakeMachine()
    m.map(CODE, bytes(range(256)) * 16)
    return m


@pytest.fixture
def no_leaks():
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= before


BREAK = StopReport(kind="exception", code=0x80000003, address=CODE)


def _attach(sim: SimTarget) -> KdHost:
    return KdHost(sim.connect())


@pytest.fixture
def broken(machine, no_leaks):
    """A target that reported one breakpoint: (host, the state change, the SimTarget)."""
    machine.stops = [BREAK]
    with SimTarget(machine=machine) as sim:
        host = _attach(sim)
        yield host, host.next_stop(), sim
        host.close()


def test_boot_load_is_reported_with_the_sync_id_then_requests_answered(machine, no_leaks):
    machine.stops = [NT, StopReport(kind="print", text=b"DriverEntry\n")]
    with SimTarget(machine=machine) as sim:
        host = _attach(sim)
        first = host.next_stop()
        assert first.packet_id == INITIAL_PACKET_ID | SYNC_PACKET_ID
        assert first.new_state == 0x3031 and first.data == NT.path.encode() + b"\0"
        load = first.message.u
        assert (load.BaseOfDll, load.SizeOfImage, load.PathNameLength) == (
            NT.base, NT.size, len(NT.path) + 1)
        version = host.request(A.DbgKdGetVersionApi)
        assert version.packet_id == INITIAL_PACKET_ID | 1
        assert version.message.u.KernBase == machine.version_info().kern_base
        host.continue2()
        assert host.wait_for(DebugPrint).text == b"DriverEntry\n"
        host.close()


def test_breakin_while_running_reports_a_breakpoint_with_original_bytes(machine, no_leaks):
    with SimTarget(machine=machine) as sim:
        host = _attach(sim)
        handle_reply = None
        host.breakin()
        stop = host.next_stop()
        exception = stop.message.u.ExceptionRecord
        assert stop.new_state == 0x3030 and exception.ExceptionCode == 0x80000003
        assert stop.message.u.FirstChance == 1
        report = stop.message.ControlReport.Amd64ControlReport
        assert report.InstructionStream == bytes(range(16)) and report.InstructionCount == 16
        assert (report.SegCs, report.ReportFlags, report.Dr7) == (0x10, 3, 0x400)
        handle_reply = host.request(A.DbgKdWriteBreakPointApi, dict(BreakPointAddress=CODE + 2,
                                                                    BreakPointHandle=0))
        assert handle_reply.return_status == 0
        host.continue2()
        host.breakin()
        stop = host.next_stop()
        stream = stop.message.ControlReport.Amd64ControlReport.InstructionStream
        assert stream == bytes(range(16)), "armed 0xCC must not show in the report"
        host.close()


def test_trace_flag_gives_a_single_step_exception(machine, broken):
    host, _, _ = broken
    host.continue2(trace=True, dr7=0x401)
    stop = host.next_stop()
    assert stop.message.u.ExceptionRecord.ExceptionCode == 0x80000004
    assert machine.resumes == [(True, 0x401)]


def test_breakin_byte_while_broken_in_is_not_a_second_break(machine, broken):
    host, _, sim = broken
    host.breakin()
    # The reply proves the target read the byte before it.
    assert host.request(A.DbgKdGetVersionApi).return_status == 0
    assert not sim.session._breakin_pending.is_set() and not machine.breakin.is_set()
    # Had it repeated its stop (state.py Rule 13: only after a lone break-in byte),
    # the host would take that as no new stop either (Rule 12).
    later = []
    while not host._events.empty():
        later.append(host._events.get_nowait())
    assert not any(isinstance(e, StateChange) for e in later)


def test_stop_soon_never_takes_a_lock_its_caller_may_hold(broken):
    host, _, sim = broken
    pump = sim.session._pump
    done = threading.Event()
    stopping: list[threading.Thread] = []

    def from_a_signal_handler() -> None:
        # As a handler interrupting the session's Queue.get: the queue's lock is held.
        with pump._events.mutex:
            stopping.append(sim.session.stop_soon())
        done.set()

    handler = threading.Thread(target=from_a_signal_handler, daemon=True)
    handler.start()
    assert done.wait(10)
    for thread in (handler, *stopping):
        thread.join(10)
        assert not thread.is_alive()
    with pytest.raises(EOFError):  # the session ended and closed its end
        host.wait_for(LinkClosed, 10)


def test_prompt_answer_reaches_the_machine(machine, no_leaks):
    machine.stops = [StopReport(kind="prompt", text=b"(bipt)? ", max_length=4),
                     BREAK]
    with SimTarget(machine=machine) as sim:
        host = _attach(sim)
        prompt = host.wait_for(DebugPrompt)
        assert prompt.prompt == b"(bipt)? " and prompt.max_length == 4
        host.send("send_prompt_reply", b"ignore")
        host.next_stop()
        assert machine.prompt_answers == ["igno"]
        host.close()


def test_reset_while_broken_in_resends_the_state_change(broken):
    host, first, _ = broken
    again = host.reset()
    assert again.packet_id == INITIAL_PACKET_ID and again.raw == first.raw
    assert host.request(A.DbgKdGetVersionApi).return_status == 0


def test_switch_processor_reports_the_same_stop_again(broken):
    host, first, _ = broken
    host.send("send_manipulate", A.DbgKdSwitchProcessor)
    assert host.next_stop().raw == first.raw


def test_reboot_restarts_ids_and_reports_loads_again(machine, no_leaks):
    machine.stops = [NT]
    machine.reboot_stops = [NT]
    with SimTarget(machine=machine) as sim:
        host = _attach(sim)
        host.next_stop()
        host.request(A.DbgKdGetVersionApi)
        host.send("send_manipulate", A.DbgKdRebootApi)
        again = host.next_stop()
        assert machine.reboots == 1
        assert again.packet_id == INITIAL_PACKET_ID | SYNC_PACKET_ID
        assert again.new_state == 0x3031
        assert host.request(A.DbgKdGetVersionApi).return_status == 0
        host.close()


def test_cause_bugcheck_runs_the_machine_into_its_bugcheck(machine, broken):
    host, _, _ = broken
    host.send("send_manipulate", A.DbgKdCauseBugCheckApi)
    host.next_stop()
    assert machine.bugchecks == 1


def test_a_new_debugger_gets_the_pending_state_change(machine, no_leaks):
    machine.stops = [BREAK]
    with SimTarget(machine=machine) as sim:
        host = _attach(sim)
        first = host.next_stop()
        host.close()
        sim.close()
        host = _attach(sim)
        again = host.reset()
        assert again.message.u.ExceptionRecord.ExceptionCode == 0x80000003
        assert again.raw == first.raw
        assert host.request(A.DbgKdGetVersionApi).return_status == 0
        host.close()


def test_a_debugger_attaches_after_one_that_left_a_reply_unacked(machine, no_leaks):
    machine.stops = [BREAK]
    with SimTarget(machine=machine) as sim:
        host = _attach(sim)
        first = host.next_stop()
        assert host.request(A.DbgKdGetVersionApi).return_status == 0
        host.link.port.close()  # the cable pulled before the ACK of that reply went
        host.close()
        sim.close()
        host = _attach(sim)
        # The target sends the unACKed reply again first; sync must still get the stop.
        again = host.reset()
        assert again.raw == first.raw
        assert host.request(A.DbgKdGetVersionApi).return_status == 0
        host.close()


def test_a_signal_that_reaches_another_thread_still_stops_serve_on_the_main_one(machine):
    # kdcon-sim serves on its main thread and stops on SIGTERM. The kernel may hand
    # the signal to any thread; Python runs the handler on the main thread only once
    # that thread runs Python again, so serve must not wait on a lock without end.
    machine.stops = [BREAK]
    sim = SimTarget(machine=machine)
    host_port, target_port = socket_pair(timeout=0.05)
    host = KdHost(host_port)
    stopping: list[threading.Thread] = []
    watchdog_fired = threading.Event()

    def on_signal(signum, frame) -> None:
        stopping.append(sim.session.stop_soon())

    def poke() -> None:
        host.next_stop()  # broken in: serve now waits for the debugger's requests
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # to this thread

    def rescue() -> None:
        watchdog_fired.set()
        target_port.close()

    previous = signal.signal(signal.SIGUSR1, on_signal)
    poker = threading.Thread(target=poke)
    watchdog = threading.Timer(15, rescue)
    try:
        poker.start()
        watchdog.start()
        sim.serve(target_port)
    finally:
        watchdog.cancel()
        signal.signal(signal.SIGUSR1, previous)
        poker.join(10)
        for thread in stopping:
            thread.join(10)
        host.close()
        sim.close()
    assert stopping and not watchdog_fired.is_set()


def test_print_with_no_debugger_answering_is_given_up_then_dropped(machine, no_leaks):
    machine.stops = [StopReport(kind="print", text=b"first"), StopReport(kind="print", text=b"second"),
                     NT, BREAK]
    with SimTarget(machine=machine, ack_timeout=0.005) as sim:
        port = sim.connect()
        frames = FrameBuffer()
        seen: list[DataFrame] = []
        while not any(f.packet_type == 7 for f in seen):
            data = port.read(max(1, port.in_waiting))
            frames.receive_data(data)
            while (frame := frames.next_frame()) is not None:
                if isinstance(frame, DataFrame):
                    seen.append(frame)
        prints = [f for f in seen if f.packet_type == 3]
        assert len(prints) == 20 and all(f.payload.endswith(b"first") for f in prints)
        state = [f for f in seen if f.packet_type == 7]
        assert len(state) == 1 and state[0].payload[:4] == b"\x30\x30\x00\x00"
        # Given up: the ids went back to INITIAL|SYNC for the next packet (§2.5).
        assert state[0].packet_id == INITIAL_PACKET_ID | SYNC_PACKET_ID
        assert sim.session.stats.prints_dropped == 2
        assert sim.session.stats.loads_dropped == 1
