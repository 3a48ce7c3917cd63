"""Log files: what goes in, what never does, names, encodings and failures."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from kdcon import cli
from kdcon.app import App
from kdcon.commands.logs import stamped_name
from kdcon.logfile import CommandLog, strip_escapes

from .memory_fake import Harness
from .transcripts import run_kdcon


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.chdir(tmp_path)
    return Harness()


@pytest.mark.parametrize("raw, clean", [
    ("\x1b[31mred\x1b[0m plain", "red plain"),
    ("\x1b]0;title\x07after", "after"),
    ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
    ("\x1b(Bcharset \x1b7saved\x1b8", "charset saved"),
    ("\x9b1mC1 csi", "C1 csi"),
    ("lone \x1b", "lone "),
    ("no escapes at all\n", "no escapes at all\n"),
])
def test_escape_sequences_never_reach_a_log(raw, clean):
    assert strip_escapes(raw) == clean


def test_logopen_logs_what_the_console_shows_until_logclose(h, tmp_path):
    assert h.run(".logopen one.log") == "Opened log file 'one.log'\n"
    h.run(".echo inside")
    h.console.output.event_text("TrackDemo: a DbgPrint\n")
    assert h.run(".logclose") == "Closing open log file one.log\n"
    h.run(".echo outside")
    # Nothing echoed these lines through the output (as in the REPL): the log adds them.
    assert (tmp_path / "one.log").read_text(encoding="utf-8") == (
        "Opened log file 'one.log'\nkd> .echo inside\ninside\nTrackDemo: a DbgPrint\n"
        "kd> .logclose\nClosing open log file one.log\n")


def test_a_log_gets_no_escape_codes_from_the_output_or_from_its_other_writers(h, tmp_path):
    h.run(".logopen esc.log")
    h.run(r'.printf "\x1b[1mbold\x1b[0m\n"')
    h.console.log.write("\x1b[32mgreen from a colouring writer\x1b[0m\n")
    h.run(".logclose")
    text = (tmp_path / "esc.log").read_text(encoding="utf-8")
    assert "\x1b" not in text
    assert "green from a colouring writer\n" in text


def test_logopen_overwrites_and_logappend_appends(h, tmp_path):
    (tmp_path / "a.log").write_text("old\n", encoding="utf-8")
    h.run(".logopen a.log; .echo new; .logclose")
    h.run(".logappend a.log; .echo more; .logclose")
    assert (tmp_path / "a.log").read_text(encoding="utf-8") == (
        "Opened log file 'a.log'\nnew\nClosing open log file a.log\n"
        "Opened log file 'a.log'\nmore\nClosing open log file a.log\n")


def test_opening_a_second_log_closes_the_first(h, tmp_path):
    h.run(".logopen a.log")
    assert h.run('.logopen "b c.log"') == "Closing open log file a.log\nOpened log file 'b c.log'\n"
    assert h.run(".logfile") == "Log 'b c.log' open\n"
    assert (tmp_path / "a.log").read_text(encoding="utf-8").endswith("Closing open log file a.log\n")


def test_unicode_logs_are_utf16_with_a_byte_order_mark(h, tmp_path):
    h.run(".logopen /u wide.log; .echo wide; .logclose")
    raw = (tmp_path / "wide.log").read_bytes()
    assert raw.startswith(b"\xff\xfe")
    assert raw.decode("utf-16").splitlines()[1] == "wide"


def test_t_adds_the_process_id_date_and_time_before_the_extension():
    when = datetime(2005, 2, 28, 9, 5, 50, 935000)
    assert stamped_name("c/logs/mylog.txt", when, 0x2BC) == "c/logs/mylog_02BC_2005-02-28_09-05-50-935.txt"
    assert stamped_name("noext", when, 0x12345) == "noext_2345_2005-02-28_09-05-50-935"


def test_t_and_d_name_files_that_exist_afterwards(h, tmp_path):
    h.run(".logopen /t stamped.log; .logclose; .logopen /d; .logclose")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 2
    assert names[0].startswith("kernel_halted_") and names[0].endswith(".log")
    assert names[1].startswith("stamped_") and names[1].endswith(".log")


def test_no_name_is_kdcon_log(h, tmp_path):
    h.run(".logopen; .logclose")
    assert (tmp_path / "kdcon.log").exists()


def test_log_errors_are_one_line(h, tmp_path):
    assert h.run(".logclose") == "No log file open\n"
    assert h.run(".logfile") == "No log file open\n"
    assert h.run(f".logopen {tmp_path}/no/such/dir/x.log") == \
        f"Unable to open log file '{tmp_path}/no/such/dir/x.log': No such file or directory\n"


def test_a_failing_write_stops_the_log_and_logfile_says_why(h):
    h.run(".logopen full.log")

    class Full(io.StringIO):
        def write(self, text):
            raise OSError(28, "No space left on device")

    h.console.log._file = Full()
    assert h.run(".echo lost") == "lost\n"
    assert h.run(".logfile") == "Log 'full.log' stopped: No space left on device\n"
    assert h.run(".logclose") == ""


def test_a_typed_line_is_logged_once_whoever_echoed_it(tmp_path):
    log = CommandLog(tmp_path / "typed.log")
    log.write("0: kd> r\n")                    # batch: the echo went through the output
    log.note_input("0: kd> ", "r")
    log.write("0: kd> ")                       # plain prompt: the terminal echoed the line
    log.note_input("0: kd> ", "dd rsp")
    log.write("output\n")
    log.note_input("0: kd> ", "k")             # a prompt the output never saw
    log.write("0: kd> \n")
    log.note_input("0: kd> ", "")              # an empty line, echoed
    log.write("0: kd> ")
    log.note_input("0: kd> ", "")              # an empty line after the prompt
    log.close()
    assert (tmp_path / "typed.log").read_text(encoding="utf-8") == \
        "0: kd> r\n0: kd> dd rsp\noutput\n0: kd> k\n0: kd> \n0: kd> \n"


def test_an_empty_line_repeating_a_command_is_logged_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, status = run_kdcon(["--loopback", "--batch", "--timeout", "60", "-c", ".logopen r.log",
                              "-c", "r $t0", "-c", "p", "-c", "", "-c", ".logclose"])
    assert status == 0
    logged = (tmp_path / "r.log").read_text(encoding="utf-8")
    assert logged == text[text.index("Opened log file"): text.index("Closing open log file r.log\n") +
                          len("Closing open log file r.log\n")]
    assert "0: kd> \n" in logged


def test_cls_prints_nothing_when_not_on_a_terminal_and_uses_the_consoles_hook(h):
    assert h.run(".cls") == ""
    cleared = []
    h.console.clear_screen = lambda: cleared.append(True)
    h.run(".cls")
    assert cleared == [True]


def test_startup_scripts_skip_blank_lines_and_cfr_is_kept_for_reconnects(tmp_path, monkeypatch):
    script = tmp_path / "start.txt"
    script.write_text("r $t0 = 3\n\n   \n? @$t0\n", encoding="utf-8")
    kept: list[list[str]] = []

    class Recording(App):
        def run_commands(self, lines):
            kept.append(list(self.restart_commands))
            return super().run_commands(lines)

    monkeypatch.setattr(cli, "App", Recording)
    text, status = run_kdcon(["--loopback", "--batch", "--timeout", "60", "-cfr", str(script)])
    assert status == 0
    assert kept == [["r $t0 = 3", "? @$t0"]]
    assert text.count("kd> ") == 2
    assert "Evaluate expression: 3 = " in text


def test_a_log_option_that_cannot_open_is_a_usage_error(tmp_path, capsys):
    status = cli.main(["--loopback", "--batch", "-logo", str(tmp_path / "no" / "x.log")])
    assert status == 2
    assert capsys.readouterr().err.startswith("kdcon: Unable to open log file")
