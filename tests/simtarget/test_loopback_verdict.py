"""open_loopback waits for its child's verdict: ready, or why not, as one LinkError."""

from __future__ import annotations

import pytest

from kdcon.protocol.transports import LinkError
from kdcon.tools.simtarget import loopback


def test_driver_that_is_no_image_is_the_childs_one_line(tmp_path, monkeypatch) -> None:
    started = []
    real_start = loopback.start_child

    def start_child(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(loopback, "start_child", start_child)
    bad = tmp_path / "bad.sys"
    bad.write_bytes(b"MZ but nothing after\n")
    with pytest.raises(LinkError) as caught:
        loopback.open_loopback(drivers=[bad], include_trackdemo=False)
    text = str(caught.value)
    assert text.startswith("the simulated target could not start: bad.sys is not a PE image")
    assert "\n" not in text
    # The child said so and ended; nothing is left running.
    assert started[0].returncode == 2


def test_child_that_dies_before_its_verdict_is_one_line(monkeypatch) -> None:
    real_start = loopback.start_child

    def start_and_kill(*args, **kwargs):
        process = real_start(*args, **kwargs)
        process.kill()
        return process

    monkeypatch.setattr(loopback, "start_child", start_and_kill)
    with pytest.raises(LinkError, match=r"^the simulated target could not start: its process "
                                        r"ended before it was ready \(exit status -9\)$"):
        loopback.open_loopback(include_trackdemo=False)
