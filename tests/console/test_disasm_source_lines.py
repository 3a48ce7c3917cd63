"""With ``.lines`` on, ``ub`` and ``uf`` label source-line changes as ``u`` does
(``name [file @ line]:``), every ``uf`` block's label names its line, ``uf /c``
is unchanged, and with ``.lines`` off no listing names a line."""

from __future__ import annotations

import re

import pytest

from .transcripts import batch

TICK = "trackdemo!TrackDemoTick"
LABEL = re.compile(r"^\S+ \[C:\\src\\trackdemo\\trackdemo\.c @ \d+\]:$")


def _outputs(text: str) -> dict[str, list[str]]:
    """Each command's output lines, by the command line (the last one of a name wins)."""
    found: dict[str, list[str]] = {}
    command = None
    for line in text.splitlines():
        match = re.match(r"^\d+: kd> (.*)$", line)
        if match:
            command = match.group(1)
            found[command] = []
        elif command is not None:
            found[command].append(line)
    return found


@pytest.fixture(scope="module")
def outputs() -> dict[str, list[str]]:
    text, _ = batch(".lines -e", "bp `trackdemo.c:197`", "g", "g",
                    "ub . L4", f"u {TICK} L4", f"uf {TICK}", f"uf /c {TICK}",
                    ".lines -d", f"uf {TICK} ", "ub . L4 ", "q")
    return _outputs(text)


def test_ub_labels_source_lines_exactly_as_u_does_for_the_same_code(outputs):
    back, forward = outputs["ub . L4"], outputs[f"u {TICK} L4"]
    assert any(LABEL.match(line) for line in back)
    assert back == forward


def test_every_uf_block_label_names_its_source_line(outputs):
    listing = outputs[f"uf {TICK}"]
    blocks = [listing[0]] + [listing[i + 1] for i, line in enumerate(listing) if not line]
    assert len(blocks) > 5
    assert all(LABEL.match(label) for label in blocks), blocks
    assert blocks[0].startswith(f"{TICK} [")


def test_uf_with_lines_differs_from_uf_without_only_in_labels(outputs):
    on, off = outputs[f"uf {TICK}"], outputs[f"uf {TICK} "]
    code = [line for line in on if line and not line.endswith(":")]
    assert code == [line for line in off if line and not line.endswith(":")]
    assert not any(" @ " in line for line in off)
    assert not any(" @ " in line for line in outputs["ub . L4 "])


def test_uf_calls_only_names_no_lines(outputs):
    calls = outputs[f"uf /c {TICK}"]
    assert calls and not any(" @ " in line for line in calls)
