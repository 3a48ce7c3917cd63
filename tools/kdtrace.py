"""kdcon-kdtrace: decode a captured KD serial byte stream, one line per packet.

Usage: ``kdcon-kdtrace [FILE|-] [--json]``. Every byte of the input ends up in exactly
one line: a data packet, a control packet, a lone break-in byte, a run of garbage, or
a damaged packet (bad checksum, bad trailer, absurd ByteCount, truncated). Data packets
show their message: API name and status for manipulate, new state, exception code and
program counter for state changes, the text of DbgPrint and prompts. ``--json`` prints
one object per line with the keys of ``FIELDS``. It never stops on bad input; a file
that cannot be read is one line on stderr and exit status 2.
Spec: kd-protocol.md §1 (framing), §4-§7 (messages). A capture mixes both directions,
so a manipulate is described as both request and reply would be (API and status).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from kdcon.protocol.buffer import (
    BadFrame,
    BreakInFrame,
    ControlFrame,
    DataFrame,
    Frame,
    FrameBuffer,
    GarbageFrame,
)
from kdcon.protocol.constants import (
    DebugIoApi,
    PacketType,
    StateChange as NewState,
    api_name,
    packet_type_name,
    status_name,
)
from kdcon.protocol.events import (
    DebugPrint,
    DebugPrompt,
    FileIo,
    ManipulateReply,
    StateChange,
    UnknownPacket,
)
from kdcon.protocol.messages import decode_payload

__all__ = ["main", "describe", "trace", "tile", "FIELDS"]

log = logging.getLogger(__name__)

FIELDS = ("offset", "kind", "type", "id", "byte_count", "checksum_ok", "api",
          "return_status", "new_state", "exception_code", "program_counter", "text",
          "length")

_BAD_TEXT = {
    "checksum": "bad checksum",
    "trailer": "bad trailer byte",
    "byte_count": "ByteCount above 4000",
    "truncated": "truncated packet",
}
CHUNK = 65536


def trace(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Describe every item of ``stream`` as it is read; the items tile the input."""
    for frame, length in tile(_frames(stream)):
        yield describe(frame, length)


def _frames(stream: IO[bytes]) -> Iterator[Frame]:
    frames = FrameBuffer()
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        frames.receive_data(chunk)
        while (frame := frames.next_frame()) is not None:
            yield frame
    for frame in frames.close():
        yield frame
        yield from _inside_cut_packet(frame)


def _inside_cut_packet(frame: Frame) -> Iterator[Frame]:
    """The frames in what a packet cut off at the end of the stream held after its
    leader: its header may have run into a whole packet that followed it."""
    if not isinstance(frame, BadFrame) or frame.reason != "truncated" or len(frame.raw) <= 4:
        return
    rest = FrameBuffer()
    rest.receive_data(frame.raw[4:])
    base = frame.offset + 4
    for inner in [*iter(rest.next_frame, None), *rest.close()]:
        moved = dataclasses.replace(inner, offset=inner.offset + base)
        yield moved
        yield from _inside_cut_packet(moved)


def tile(frames: Iterable[Frame]) -> Iterator[tuple[Frame, int]]:
    """(frame, length) with every input byte in exactly one item.

    The framing resumes right after a damaged packet's leader (a dropped byte may
    have run it into the next packet), so the frames after a ``BadFrame`` cover
    bytes it claimed. Here the damaged packet keeps what it claimed, garbage,
    break-in bytes and damaged packets found inside included, up to the first
    good packet that starts inside it; what runs past its end stays separate.
    """
    held: BadFrame | None = None
    held_end = 0
    for frame in frames:
        if held is not None:
            if frame.offset >= held_end:
                yield held, held_end - held.offset
                held = None
            elif isinstance(frame, (DataFrame, ControlFrame)):
                yield held, frame.offset - held.offset
                held = None
            elif frame.offset + frame.length <= held_end:
                continue
            elif isinstance(frame, GarbageFrame):
                yield held, held_end - held.offset
                held = None
                frame = GarbageFrame(offset=held_end, data=frame.data[held_end - frame.offset:])
            else:
                yield held, frame.offset - held.offset
                held = None
        if isinstance(frame, BadFrame):
            held, held_end = frame, frame.offset + frame.length
        else:
            yield frame, frame.length
    if held is not None:
        yield held, held_end - held.offset


def describe(frame: Frame, length: int | None = None) -> dict[str, Any]:
    """One record with every key of FIELDS (None where it does not apply); ``length``
    is the item's share of the input when it is not the whole frame."""
    row: dict[str, Any] = dict.fromkeys(FIELDS)
    row["offset"] = frame.offset
    row["length"] = frame.length if length is None else length
    if isinstance(frame, GarbageFrame):
        row["kind"] = "garbage"
    elif isinstance(frame, BreakInFrame):
        row["kind"] = "breakin"
    elif isinstance(frame, ControlFrame):
        row.update(kind="control", type=packet_type_name(frame.packet_type),
                   id=frame.packet_id, byte_count=frame.byte_count)
    elif isinstance(frame, BadFrame):
        row.update(kind="data", id=frame.packet_id, byte_count=frame.byte_count,
                   text=_BAD_TEXT.get(frame.reason, frame.reason))
        if frame.packet_type is not None:
            row["type"] = packet_type_name(frame.packet_type)
        if frame.computed_checksum is not None:
            row["checksum_ok"] = frame.computed_checksum == frame.checksum
        else:
            row["checksum_ok"] = False
    else:
        row.update(kind="data", type=packet_type_name(frame.packet_type), id=frame.packet_id,
                   byte_count=len(frame.payload), checksum_ok=True)
        _describe_message(frame, row)
    return row


def _describe_message(frame: DataFrame, row: dict[str, Any]) -> None:
    event = decode_payload(frame.packet_type, frame.packet_id, frame.payload, from_host=False)
    if isinstance(event, ManipulateReply):
        row["api"] = api_name(event.api)
        row["return_status"] = event.return_status
    elif isinstance(event, StateChange):
        row["new_state"] = api_name(event.new_state)
        row["program_counter"] = event.program_counter
        if event.new_state == NewState.DbgKdExceptionStateChange:
            row["exception_code"] = event.message.u.ExceptionRecord.ExceptionCode
        elif event.new_state == NewState.DbgKdLoadSymbolsStateChange:
            row["text"] = _text(event.data.split(b"\0", 1)[0])
        elif event.new_state == NewState.DbgKdCommandStringStateChange:
            row["text"] = _text(event.data.rstrip(b"\0").replace(b"\0", b" "))
    elif isinstance(event, DebugPrint):
        row["api"] = api_name(DebugIoApi.DbgKdPrintStringApi)
        row["text"] = _text(event.text)
    elif isinstance(event, DebugPrompt):
        row["api"] = api_name(DebugIoApi.DbgKdGetStringApi)
        # From the target this is the prompt; from the host the same bytes follow as
        # the typed answer, whose length sits in LengthOfStringRead.
        prompt = event.prompt or event.data[: event.max_length]
        row["text"] = _text(prompt)
    elif isinstance(event, FileIo):
        row["api"] = api_name(event.api)
        row["return_status"] = event.status
        if event.data:
            row["text"] = _text(event.data.decode("utf-16-le", "replace").encode())
    elif isinstance(event, UnknownPacket) and frame.packet_type not in (
            PacketType.PACKET_TYPE_KD_TRACE_IO, PacketType.PACKET_TYPE_KD_CONTROL_REQUEST):
        row["text"] = "unknown packet"
    else:
        api = int.from_bytes(frame.payload[:4], "little")
        row["api"] = api_name(api)


def _text(data: bytes) -> str:
    return data.decode("latin-1")


def format_line(row: dict[str, Any]) -> str:
    """The human-readable line for one record."""
    parts = [f"{row['offset']:08x}", f"{row['kind']:<7}"]
    if row["kind"] in ("garbage", "breakin"):
        parts.append(f"{row['length']} byte{'s' if row['length'] != 1 else ''}")
        return "  ".join(parts)
    if row["type"] is not None:
        parts.append(row["type"])
    if row["id"] is not None:
        parts.append(f"id={row['id']:#010x}")
    if row["byte_count"] is not None:
        parts.append(f"count={row['byte_count']}")
    if row["kind"] == "data":
        parts.append("checksum=" + ("ok" if row["checksum_ok"] else "BAD"))
    if row["api"] is not None:
        parts.append(row["api"])
    if row["return_status"] is not None:
        parts.append(f"status={status_name(row['return_status'])}")
    if row["new_state"] is not None:
        parts.append(row["new_state"])
    if row["exception_code"] is not None:
        parts.append(f"code={row['exception_code']:#010x}")
    if row["program_counter"] is not None:
        parts.append(f"pc={row['program_counter']:#x}")
    if row["text"] is not None:
        parts.append(json.dumps(row["text"]))
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kdcon-kdtrace", description="Decode a captured KD serial byte stream.")
    parser.add_argument("file", nargs="?", default="-", help="capture file, or - for stdin")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    try:
        stream: IO[bytes] = (sys.stdin.buffer if args.file == "-"
                             else open(args.file, "rb"))  # noqa: SIM115
    except FileNotFoundError:
        print(f"kdcon-kdtrace: {args.file}: no such file", file=sys.stderr)
        return 2
    except IsADirectoryError:
        print(f"kdcon-kdtrace: {args.file}: is a directory, not a file", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kdcon-kdtrace: {args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    try:
        with stream:
            for row in trace(stream):
                out.write((json.dumps(row) if args.json else format_line(row)) + "\n")
    except BrokenPipeError:
        return 0
    except OSError as exc:
        print(f"kdcon-kdtrace: read failed on {args.file}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
