"""Feed a byte stream to a decoder three ways (whole, byte by byte, with trailing bytes).

Every decoder test in tests/protocol goes through these helpers so that a chunking bug
cannot hide (h11's tr() pattern).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from kdcon.protocol.buffer import BadFrame, FrameBuffer, GarbageFrame
from kdcon.protocol.connection import NEED_DATA, KdConnection

TRAILING = b"\x11\x22\x33"


def _frames(chunks: list[bytes], close: bool) -> list[Any]:
    buf = FrameBuffer()
    out: list[Any] = []
    for chunk in chunks:
        buf.receive_data(chunk)
        while (frame := buf.next_frame()) is not None:
            out.append(frame)
    if close:
        out.extend(buf.close())
    return out


def frames_three_ways(data: bytes, *, close: bool = True) -> list[Any]:
    """Frames of ``data``; asserts that all three feeding styles agree."""
    whole = _frames([data], close)
    bytewise = _frames([data[i:i + 1] for i in range(len(data))], close)
    assert bytewise == whole
    trailing = _frames([data + TRAILING], close)
    # The trailing bytes may only add (or extend) a final garbage run.
    if trailing and isinstance(trailing[-1], GarbageFrame) and trailing[-1].data.endswith(TRAILING):
        last = trailing.pop()
        rest = last.data[: -len(TRAILING)]
        if rest:
            trailing.append(GarbageFrame(offset=last.offset, data=rest))
    elif trailing and isinstance(trailing[-1], BadFrame) and trailing[-1].reason == "truncated":
        # A packet cut short absorbs whatever follows it, trailing bytes included.
        last = trailing.pop()
        trailing.append(replace(last, raw=last.raw[: -len(TRAILING)]))
    assert trailing == whole
    return whole


def events_three_ways(make: Callable[[], KdConnection],
                      data: bytes) -> tuple[list[Any], KdConnection]:
    """Events a fresh connection gives for ``data``, fed three ways (must agree), and
    the connection that got it whole (for its output and state).

    With trailing bytes the extra garbage stays buffered (it may start a leader), so
    the events are the same.
    """
    results = []
    for chunks in ([data], [data[i:i + 1] for i in range(len(data))], [data + TRAILING]):
        conn = make()
        events = []
        for chunk in chunks:
            conn.receive_data(chunk)
            while (event := conn.next_event()) is not NEED_DATA:
                events.append(event)
        results.append((events, conn))
    (whole, conn), (bytewise, _), (trailing, _) = results
    assert bytewise == whole
    assert trailing == whole
    return whole, conn
