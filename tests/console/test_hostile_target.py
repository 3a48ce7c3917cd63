"""A hostile kernel's text never reaches the terminal with control or bidi characters.

A scripted machine (no CPU) prints escape sequences through DbgPrint, prompts with
them, names a module with them in both the module list and a LoadSymbols report, and
the console's whole output is checked for any byte that could act on a terminal.
"""

from __future__ import annotations

import io
import re
import struct

from kdcon.app import App
from kdcon.output import Output, printable
from kdcon.tools.simtarget.kd import StopReport
from kdcon.tools.simtarget.loopback import SimTarget
from tests.simtarget.kd_fake_machine import FakeMachine

EVIL = "\x1b[2J\x1b]0;pwned\x07\x9b31m\u202egnp.exe\r\x08"
ACTING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

LIST_HEAD = 0xFFFFF80000410000
ENTRY = 0xFFFFF80000420000
NAME = 0xFFFFF80000430000


def _machine() -> FakeMachine:
    machine = FakeMachine()
    name = EVIL.encode("utf-16-le")
    entry = bytearray(0xA0)
    struct.pack_into("<QQ", entry, 0, LIST_HEAD, LIST_HEAD)
    struct.pack_into("<QQI", entry, 0x30, 0xFFFFF80000500000, 0, 0x1000)
    struct.pack_into("<HHxxxxQ", entry, 0x58, len(name), len(name), NAME)
    machine.map(LIST_HEAD, struct.pack("<QQ", ENTRY, ENTRY))
    machine.map(ENTRY, bytes(entry))
    machine.map(NAME, name)
    machine.map(0xFFFFF80000401000, b"\xcc\xc3" + bytes(14))
    machine.stops = [
        StopReport(kind="exception", code=0x80000003, address=0xFFFFF80000401000),
        StopReport(kind="print", text=EVIL.encode("latin-1", "replace") + b"\n"),
        StopReport(kind="load", path="\\SystemRoot\\" + EVIL, base=0xFFFFF80000600000,
                   size=0x1000),
        StopReport(kind="prompt", text=b"\x1b[31mAnswer? ", max_length=4),
        StopReport(kind="exception", code=0x80000003, address=0xFFFFF80000401000),
    ]
    return machine


def test_nothing_the_target_sends_can_drive_the_terminal():
    sim = SimTarget(machine=_machine())
    stream = io.StringIO()
    app = App(sim.connect(), link_name="fake", output=Output(stream=stream),
              prompt_answers=["y"])
    try:
        app.connect()
        app.console.settings.exceptions["ld"] = "sxn"
        for line in ("lm", "g", "lm"):
            app.run_line(line)
    finally:
        app.close()
        sim.close()
    text = stream.getvalue()
    assert "pwned" in text                       # the text is shown, made harmless
    assert "\\x1b[2J" in text and "\\u202e" in text
    assert not ACTING.search(text), repr(ACTING.search(text))


def test_printable_escapes_every_acting_character():
    for code in list(range(0x20)) + list(range(0x7F, 0xA0)) + [0x202E, 0x2066]:
        char = chr(code)
        shown = printable(char)
        if char in "\n\t":
            assert shown == char
        else:
            assert not ACTING.search(shown) and shown.startswith("\\")
    assert printable("a\nb", newlines=False) == "a\\x0ab"
