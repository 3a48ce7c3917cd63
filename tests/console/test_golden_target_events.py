"""Target events in batch: the ASSERT prompt answered, a bugcheck, JSON lines."""

from __future__ import annotations

import json

from .transcripts import batch, check_golden, run_kdcon


def test_assert_prompt_is_answered_from_the_command_line():
    text, status = batch("ed nt!KiSimRequest 2", "g", "g", extra=["--prompt-answer", "b"])
    assert status == 0
    assert "(bipt)? b\n" in text
    check_golden("assert_prompt", text)


def test_crash_then_bugcheck_shows_the_fatal_system_error():
    text, status = batch(".crash", ".bugcheck")
    assert status == 0
    assert "*** Fatal System Error: 0x000000e2" in text
    check_golden("crash_bugcheck", text)


def test_json_lines_carry_results_events_and_wire_costs():
    text, status = run_kdcon(["--loopback", "--batch", "--json", "--timeout", "60",
                              "-c", "? 2*3", "-c", "r rip", "-c", "nonsense", "-c", "g"])
    assert status == 1
    objects = [json.loads(line) for line in text.splitlines()]
    assert all(o["type"] in ("result", "event") for o in objects)
    assert objects[0] == {**objects[0], "type": "event", "event": "connected"}
    results = [o for o in objects if o["type"] == "result"]
    assert [r["command"] for r in results] == ["? 2*3", "r rip", "nonsense", "g"]
    assert results[0]["ok"] and results[0]["rows"] == [{"value": 6}]
    assert results[0]["wire"] == {"round_trips": 0, "bytes": 0}
    assert results[1]["wire"]["round_trips"] == 1 and results[1]["wire"]["bytes"] < 400
    assert not results[2]["ok"] and results[2]["error"] == "Couldn't resolve error at 'nonsense'"
    stops = [o for o in objects if o.get("event") == "stop"]
    assert stops and stops[-1]["code"] == 0x80000003
    assert "Evaluate expression" not in "".join(
        line for line in text.splitlines() if not line.startswith("{"))


def test_commands_an_extension_runs_are_not_results_of_their_own(tmp_path):
    (tmp_path / "inner.py").write_text('''"""!inner: runs two commands of its own, one failing."""
from kdcon.api import bang


@bang("inner")
def inner(target, args):
    """Run r rip and a bad command; report what came back."""
    good = target.run("r rip")
    bad = target.run("nonsense")
    return f"{good.ok} {bad.ok}"
''', encoding="utf-8")
    text, status = run_kdcon(["--loopback", "--batch", "--json", "--ext-path", str(tmp_path),
                              "-c", "!inner"])
    results = [json.loads(line) for line in text.splitlines()
               if json.loads(line)["type"] == "result"]
    assert [r["command"] for r in results] == ["!inner"]
    assert results[0]["ok"] and status == 0
