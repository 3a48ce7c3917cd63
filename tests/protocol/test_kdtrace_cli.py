"""kdcon-kdtrace: one line per packet, break-in or garbage run; never stops on bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from kdcon.protocol.connection import KdConnection, Role
from kdcon.protocol.constants import ManipulateApi
from kdcon.protocol.messages import build_exception_state_change, build_manipulate
from kdcon.protocol.packet import build_control_packet, build_data_packet
from kdcon.tools import kdtrace
from kdcon.tools.kdtrace import FIELDS, trace

from .test_reference_vectors import DBGPRINT_VECTOR, GETVERSION_REPLY, RESEND_VECTOR


def capture() -> bytes:
    """A plausible two-way capture: break-in, state change, ACK, request, reply, noise."""
    target = KdConnection(Role.TARGET)
    sc = target.send_state_change(build_exception_state_change(0x80000003, 0x401000))
    req = build_data_packet(2, 0x80800000, build_manipulate(
        ManipulateApi.DbgKdReadVirtualMemoryApi,
        dict(TargetBaseAddress=0x1000, TransferCount=4, ActualBytesRead=0)))
    bad = bytearray(req)
    bad[20] ^= 0x40
    return (b"b" + sc + build_control_packet(4, 0x80800000) + req + b"\x01\x02junk"
            + bytes(bad) + DBGPRINT_VECTOR + GETVERSION_REPLY + RESEND_VECTOR + b"000")


def rows(data: bytes) -> list[dict]:
    return list(trace(io.BytesIO(data)))


def test_rows_cover_breakin_state_change_ack_request_garbage_and_bad_packet() -> None:
    out = rows(capture())
    kinds = [r["kind"] for r in out]
    assert kinds[:5] == ["breakin", "data", "control", "data", "garbage"]
    sc = out[1]
    assert sc["type"] == "PACKET_TYPE_KD_STATE_CHANGE64" and sc["checksum_ok"] is True
    assert sc["new_state"] == "DbgKdExceptionStateChange"
    assert sc["exception_code"] == 0x80000003 and sc["program_counter"] == 0x401000
    assert out[2]["type"] == "PACKET_TYPE_KD_ACKNOWLEDGE" and out[2]["id"] == 0x80800000
    assert out[3]["api"] == "DbgKdReadVirtualMemoryApi"
    bad = [r for r in out if r["checksum_ok"] is False]
    assert len(bad) == 1 and bad[0]["text"] == "bad checksum"
    prints = [r for r in out if r["api"] == "DbgKdPrintStringApi"]
    assert prints[0]["text"] == "BD: Boot Debugger Initialized\n"
    version = [r for r in out if r["api"] == "DbgKdGetVersionApi"]
    assert version[0]["return_status"] == 0 and version[0]["byte_count"] == 56
    assert out[-1]["kind"] == "garbage" and out[-1]["length"] == 3
    assert all(set(r) == set(FIELDS) for r in out)


def test_trace_is_the_same_fed_whole_or_byte_by_byte_or_with_trailing_bytes() -> None:
    data = capture()

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.pos = 0

        def read(self, size: int = -1) -> bytes:
            chunk = data[self.pos:self.pos + 1]
            self.pos += len(chunk)
            return chunk

    whole = rows(data)
    assert list(trace(Trickle())) == whole  # type: ignore[arg-type]
    trailing = rows(data + b"\x05\x06")
    assert trailing[:-1] == whole[:-1]
    assert trailing[-1]["length"] == whole[-1]["length"] + 2


def test_json_output_has_exactly_the_documented_keys(tmp_path, capsys) -> None:
    path = tmp_path / "cap.bin"
    path.write_bytes(capture())
    assert kdtrace.main([str(path), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    objects = [json.loads(line) for line in lines]
    assert objects and all(list(o) == list(FIELDS) for o in objects)
    assert objects[0] == dict(dict.fromkeys(FIELDS), offset=0, kind="breakin", length=1)


def test_text_output_one_line_per_frame(tmp_path, capsys) -> None:
    path = tmp_path / "cap.bin"
    path.write_bytes(capture())
    assert kdtrace.main([str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(rows(capture()))
    assert "DbgKdExceptionStateChange" in lines[1] and "code=0x80000003" in lines[1]
    assert "checksum=BAD" in "".join(lines)


def test_missing_file_is_one_line_and_status_2(tmp_path, capsys) -> None:
    assert kdtrace.main([str(tmp_path / "nope.bin")]) == 2
    err = capsys.readouterr().err
    assert err == f"kdcon-kdtrace: {tmp_path / 'nope.bin'}: no such file\n"


@pytest.mark.parametrize("junk", [b"", b"\xff" * 5000, b"0000" + b"\xff" * 12,
                                  b"iiii\x09\x00", bytes(range(256)) * 40])
def test_any_input_decodes_without_a_traceback(junk: bytes) -> None:
    out = rows(junk)
    assert sum(r["length"] for r in out if r["kind"] != "data" or r["checksum_ok"]) <= len(junk)


def test_console_script_reads_stdin() -> None:
    result = subprocess.run([sys.executable, "-m", "kdcon.tools.kdtrace", "-", "--json"],
                            input=DBGPRINT_VECTOR, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.decode().splitlines()
    assert json.loads(line)["text"] == "BD: Boot Debugger Initialized\n"
