"""A hostile target's well-formed packets never hang, crash or drive the console.

The target (tools/simtarget/hostile.py) is the simulated kernel behind a kd that
tampers with every reply (wrong ApiNumber, ActualBytesRead past the request or the
data, an error status on every request, seeded random damage, silence mid-session),
overlays hostile module lists (cycles, self links, entries past the cap, 64 KiB and
escape-laden names, absurd image sizes), fakes GetVersion fields, and sends raw state
changes and debug I/O, between requests or in the middle of one. Each case drives a
real console (and a few the ``kdcon`` process) through attach and the commands below
and checks: no traceback, internal error or error log, every failure one line, no
character that could act on a terminal (output, toolbar, completion menu), and a
later ``? 1+1`` still answered.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import subprocess
import sys
import threading

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

import kdcon.session
from kdcon.app import App
from kdcon.completion import KdCompleter
from kdcon.output import Output
from kdcon.protocol.constants import ManipulateApi as A, NtStatus
from kdcon.session import TargetLost
from kdcon.toolbar import toolbar_text
from kdcon.tools.simtarget.hostile import (
    OVERLAY_BASE,
    HostileTarget,
    Tamper,
    module_chain,
    raw_debug_io,
    raw_exception,
    raw_load_symbols,
    self_linked,
)

ACTING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
COMMANDS = ["lm", "!lmi nt", ".reload /f", "k", "kv", "r", "u", "dt nt!_EPROCESS @$proc",
            "!process 0 0", "db @rsp", "da @rip", "du @rip", "dps @rsp", "x *!*",
            "!pool @rsp", "!analyze -v"]
HEAD = OVERLAY_BASE
PC = 0xFFFFF80001001B7A
EVIL = "\x1b[2J\x1b]0;pwned\x07\x9b31m\u202egnp.exe\r\x08"
# A silent target costs a command (REQUEST_RETRIES + 1) * REQUEST_TIMEOUT; the target
# answers in milliseconds, so this is only the time a lie or a silence takes.
REQUEST_TIMEOUT, REQUEST_RETRIES = 0.15, 1
# Far past what any command here takes even when every request times out.
HANG_BOUND = 60.0


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Run:
    """One console attached to one hostile target; ``close()`` ends both."""

    def __init__(self, target: HostileTarget, *, answers: tuple[str, ...] = ("y", "zz")) -> None:
        self.target = target
        self.stream = io.StringIO()
        self.thread_errors: list[str] = []
        # What kdcon's CLI would print on stderr (it logs at ERROR): a traceback there too.
        self._errors = _Collect(level=logging.ERROR)
        self.app = App(target.connect(), link_name="hostile", output=Output(stream=self.stream),
                       request_timeout=REQUEST_TIMEOUT, prompt_answers=answers)
        self.app.session.host.retries = REQUEST_RETRIES

    def __enter__(self) -> Run:
        self._hook, threading.excepthook = threading.excepthook, self._on_thread_error
        logging.getLogger().addHandler(self._errors)
        return self

    def __exit__(self, *exc: object) -> None:
        threading.excepthook = self._hook
        logging.getLogger().removeHandler(self._errors)
        self.app.close()
        self.target.close()

    def _on_thread_error(self, args: threading.ExceptHookArgs) -> None:
        self.thread_errors.append(f"{args.exc_type.__name__}: {args.exc_value}")

    def connect(self) -> None:
        _bounded(self.app.connect, 10)

    def commands(self, lines: list[str]) -> None:
        for line in lines:
            _bounded(self.app.run_line, line)
            result = self.app.console.results[-1]
            assert result.error is None or "\n" not in result.error.strip(), result.error

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def check(self) -> None:
        """The console's promise, then a command that still works."""
        _bounded(self.app.run_line, "? 1+1")
        text = self.text
        assert "Traceback" not in text
        assert "Internal error" not in text, _near(text, "Internal error")
        found = ACTING.search(text)
        assert found is None, _near(text, found.group())
        assert text.rstrip().endswith("00000002"), text[-500:]
        assert not self.thread_errors
        assert not self._errors.records, [r.getMessage() for r in self._errors.records]


def _bounded(call, *args) -> None:
    """``call(*args)`` on a thread: a hang is a failure here, not a stuck suite (every
    request has a time bound, so a command that passes HANG_BOUND never ends)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="hostile-command", daemon=True)
    worker.start()
    worker.join(HANG_BOUND)
    assert not worker.is_alive(), f"{args} did not end within {HANG_BOUND} s"
    if failure:
        raise failure[0]


def _near(text: str, what: str) -> str:
    at = text.find(what)
    return text[max(0, at - 300): at + 300]


def _attached(target: HostileTarget, lines: list[str] = COMMANDS) -> Run:
    run = Run(target)
    with run:
        run.connect()
        run.commands(lines)
        run.check()
    return run


def _listed(text: str) -> list[str]:
    """The overlay's modules in the last ``lm``."""
    return re.findall(r"^\S+ \S+ +(m\d+) ", text.split("0: kd> lm\n")[-1], re.M)


def _chain(count: int, **kwargs) -> HostileTarget:
    return HostileTarget(overlays=[module_chain(HEAD, count, **kwargs)],
                         version=dict(PsLoadedModuleList=HEAD))


# -- replies ----------------------------------------------------------------------------


def test_an_error_status_on_every_reply_fails_each_command_in_one_line():
    run = _attached(HostileTarget(tamper=Tamper(status=NtStatus.STATUS_ACCESS_VIOLATION)))
    assert "WARNING: the debugger data block is unreadable" in run.text


def test_replies_with_the_wrong_api_number_are_not_taken_and_time_out():
    tamper = Tamper(wrong_api=True, apis=frozenset({A.DbgKdGetContextApi,
                                                     A.DbgKdGetContextExApi}))
    run = _attached(HostileTarget(tamper=tamper), ["r", "k"])
    assert "did not answer" in run.text


@pytest.mark.parametrize("tamper", [Tamper(actual_extra=64), Tamper(actual_past_data=64)],
                         ids=["past-the-request", "past-the-data"])
def test_actual_bytes_read_that_lies_fails_the_attach_in_one_line(tamper):
    with Run(HostileTarget(tamper=tamper)) as run:
        with pytest.raises(TargetLost) as caught:
            run.connect()
    assert "\n" not in str(caught.value) and "ReadVirtualMemory" in str(caught.value)


def test_a_target_that_stops_answering_after_attach_leaves_a_working_console():
    tamper = Tamper()
    with Run(HostileTarget(tamper=tamper)) as run:
        run.connect()
        tamper.silent_after = tamper.answered + 2     # in the middle of the walk
        run.commands(["!process 0 0", "k", "db @rsp L100"])
        run.check()
    assert run.text.count("did not answer") == 3


def test_a_target_that_falls_silent_while_its_first_stop_is_shown_still_attaches():
    # After 24 answers the attach is done and the first stop's display under way; the
    # attach's own share moves with the kernel's size (20 sufficed before its exports grew).
    with Run(HostileTarget(tamper=Tamper(silent_after=24))) as run:
        run.connect()
        run.commands(["r rip"])
        run.check()
    assert "The first stop could not be shown" in run.text


def test_a_context_reply_shorter_than_asked_is_one_protocol_error():
    tamper = Tamper(data_limit=6, apis=frozenset({A.DbgKdGetContextExApi}))
    run = _attached(HostileTarget(tamper=tamper), ["r", "k"])
    assert "Protocol error: the target sent 6 of" in run.text


@pytest.mark.parametrize("seed", range(2))
def test_seeded_random_damage_to_replies_never_breaks_the_console(seed):
    tamper = Tamper(chance=0.3, seed=seed)
    _attached(HostileTarget(tamper=tamper))
    assert tamper.log, "the damage happened"


# -- GetVersion ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [
    dict(KernBase=0, PsLoadedModuleList=0),
    dict(KernBase=0xFFFFF80001000003, PsLoadedModuleList=0xFFFFF80001000005),
    dict(KernBase=0x0000900000000000, PsLoadedModuleList=0x8000000000000000,
         DebuggerDataList=0x1234),
], ids=["zero", "unaligned", "non-canonical"])
def test_absurd_getversion_fields_attach_with_a_warning_at_most(version):
    _attached(HostileTarget(version=version), ["lm", "k", "!analyze -v", "!process 0 0"])


def test_a_debugger_data_block_cut_short_leaves_no_field_to_trip_on():
    target = HostileTarget()
    inner = target.machine.inner

    def cut(address: int, size: int) -> bytes | None:
        listed = struct.unpack_from("<Q", inner.version_block(), 0x20)[0]
        head = struct.unpack("<Q", inner.read_virtual(listed, 8).ljust(8, b"\0"))[0]
        end = head + 0x40              # the header and a few pointers; KiBugcheckData is past it
        if head and address < end < address + size:
            return inner.read_virtual(address, end - address)
        return None

    target.machine.overlays.append(cut)
    run = _attached(target, [".bugcheck", "!analyze -v", "k"])
    assert "The debugger data block is not available" in run.text


# -- the module list ------------------------------------------------------------------------


@pytest.mark.parametrize("count, loop_to", [(5, 2), (3, 2), (0, None)],
                         ids=["cycle", "entry-to-itself", "head-to-itself"])
def test_a_module_list_that_loops_ends_the_walk(count, loop_to):
    run = _attached(_chain(count, loop_to=loop_to), ["lm", ".reload /f", "lm"])
    assert _listed(run.text) == [f"m{i}" for i in range(count)]


def test_a_module_list_past_the_cap_is_cut_with_a_warning(monkeypatch):
    monkeypatch.setattr(kdcon.session, "_MAX_MODULES", 40)
    run = _attached(_chain(2_000_000), ["lm"])
    assert "goes on past 40 entries" in run.text
    assert len(_listed(run.text)) == 40


def test_a_process_list_that_loops_on_one_entry_shows_it_once():
    target = HostileTarget()
    with Run(target) as run:
        run.connect()
        head = run.app.console.try_resolve("nt!PsActiveProcessHead")
        target.machine.overlays.append(self_linked(head))
        run.app.session.memory.invalidate()
        run.commands(["!process 0 0"])
        run.check()
    assert len(re.findall("^PROCESS ", run.text, re.M)) == 1


@pytest.mark.parametrize("name", [
    b"A\0" * 32767,
    EVIL.encode("utf-16-le") + b"\x00\xd8A\x00",
], ids=["64KiB", "escapes-and-lone-surrogate"])
def test_hostile_module_names_are_cut_and_escaped(name):
    run = _attached(_chain(3, name=lambda i: name), ["lm", "!lmi m0", "x *!*", "k"])
    assert max(len(line) for line in run.text.splitlines()) < 2000


def test_the_toolbar_escapes_a_hostile_module_name_at_the_stop():
    base = 0xFFFFF80100000000
    target = _chain(1, name=lambda i: EVIL.encode("utf-16-le"), base=lambda i: base)
    target.machine.stops = [raw_exception(0x80000003, base + 0x10)]
    with Run(target) as run:
        run.connect()
        run.commands(["g"])
        shown = toolbar_text(run.app)
        run.check()
    assert "pwned" in shown and ACTING.search(shown) is None, repr(shown)


def test_the_completion_menu_escapes_hostile_module_names():
    with Run(_chain(2, name=lambda i: EVIL.encode("utf-16-le"))) as run:
        run.connect()
        completions = list(KdCompleter(run.app.console).get_completions(
            Document("lm m "), CompleteEvent()))
        run.check()
    shown = [c.display_text for c in completions] + [c.display_meta_text for c in completions]
    assert any("pwned" in text for text in shown)
    assert not any(ACTING.search(text) for text in shown), shown


@pytest.mark.parametrize("size, base", [
    (0, lambda i: 0xFFFFF80001000000),
    (2**32 - 1, lambda i: 0xFFFFF80001000000 + i * 0x1000),
    (2**32 - 1, lambda i: 0xFFFFFFFFFFFFF000),
], ids=["size-0-on-nt", "4GiB-overlapping", "4GiB-past-the-top"])
def test_absurd_and_overlapping_image_sizes(size, base):
    _attached(_chain(3, size=lambda i: size, base=base), ["lm", "k", "u", "x *!*", "ln @rip"])


# -- state changes and debug I/O --------------------------------------------------------------


def test_hostile_state_changes_and_debug_io_are_shown_harmlessly():
    evil = EVIL.encode("utf-8")
    stops = [
        raw_exception(0x80000003, PC, processor=5, processors=2),
        raw_exception(0x80000003, PC, processor=0, processors=0),
        raw_exception(0xC0000005, PC, parameters=[1, 2], count=0xFFFFFFFF),
        raw_exception(0xC0000005, PC, parameters=[], count=2),
        raw_load_symbols(b"\\SystemRoot\\x.sys\0", length=0xFFFF, base=0xFFFFF80005000000,
                         size=0x1000),
        raw_load_symbols(evil + b"\0", length=len(evil) + 1, base=0xFFFFF80006000000,
                         size=2**32 - 1),
        raw_load_symbols(b"A" * 3000, length=3000, base=0, size=0),
        raw_load_symbols(b"x.sys\0", length=6, base=0x1234, size=0, unload=True),
        raw_debug_io(evil + b"\n"),
        raw_debug_io(b"short", length=4000),
        raw_debug_io(b"\0" * 100 + b"\n"),
        raw_debug_io(evil, prompt_max=4),
        raw_debug_io(b"x", length=3000, prompt_max=0xFFFFFFFF),
    ] + [raw_exception(0x80000003, PC) for _ in range(8)]
    target = HostileTarget(stops=stops)
    with Run(target) as run:
        run.connect()
        run.app.console.settings.exceptions["ld"] = "sxn"
        for _ in range(6):
            run.commands(["g", "r rip", "k", "lm", "!analyze -v"])
        run.check()
    text = run.text
    assert "pwned" in text and "\\x1b[2J" in text
    assert [answer.strip() for answer in target.machine.answers] == ["y", "zz"]


@pytest.mark.parametrize("report, then_reply", [
    (raw_exception(0xC0000005, PC), False),
    (raw_debug_io(EVIL.encode("utf-8") + b"\n"), True),
    (raw_debug_io(EVIL.encode("utf-8"), prompt_max=8), True),
    (raw_debug_io(EVIL.encode("utf-8"), prompt_max=8), False),
], ids=["state-change-for-a-reply", "print-before-a-reply", "prompt-before-a-reply",
        "prompt-for-a-reply"])
def test_a_stop_print_or_prompt_in_the_middle_of_a_request_leaves_a_working_console(
        report, then_reply):
    target = HostileTarget(stops=[raw_exception(0x80000003, PC)])
    with Run(target) as run:
        run.connect()
        target.interject(report, then_reply=then_reply)
        run.commands(["k", "r rip", "k", "g", "k"])
        run.check()
    # A prompt that came mid-request is answered first; g still sees the next stop.
    assert run.text.split("kd> g\n")[-1].count("nt!") >= 3, run.text[-800:]
    if report.max_length:
        assert [answer.strip() for answer in target.machine.answers] == ["y"]


# -- end to end --------------------------------------------------------------------------------


def _kdcon(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kdcon.cli", "--port", f"unix://{path}",
                           "--request-timeout", "0.3", "--no-workspace", "--no-reconnect",
                           "--batch", *args], capture_output=True, text=True, timeout=60)


def test_kdcon_that_cannot_read_the_module_list_says_so_in_one_line(tmp_path):
    path = str(tmp_path / "kd.sock")
    target = HostileTarget(tamper=Tamper(actual_extra=16))
    target.listen_unix(path)
    try:
        run = _kdcon(path, "-c", "lm")
    finally:
        target.close()
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if "could not connect" in line] \
        == run.stderr.strip().splitlines()[-1:]


def test_kdcon_against_hostile_names_and_prints_writes_no_control_byte(tmp_path):
    path = str(tmp_path / "kd.sock")
    target = HostileTarget(overlays=[module_chain(HEAD, 3, name=lambda i: EVIL.encode("utf-16-le"))],
                           version=dict(PsLoadedModuleList=HEAD),
                           stops=[raw_debug_io(EVIL.encode("utf-8") + b"\n"),
                                  raw_exception(0x80000003, PC)])
    target.listen_unix(path)
    try:
        run = _kdcon(path, "-c", "lm;g;k;? 1+1")
    finally:
        target.close()
    assert "Traceback" not in run.stdout + run.stderr
    assert ACTING.search(run.stdout) is None and ACTING.search(run.stderr) is None
    assert "pwned" in run.stdout and run.stdout.rstrip().endswith("00000002")
