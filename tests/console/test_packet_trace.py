""".kdtrace: the wire recorded as kdcon-kdtrace reads it, with a times file beside it."""

from __future__ import annotations

import re

from kdcon.packettrace import read_times, timed, times_path
from kdcon.tools.kdtrace import trace

from .transcripts import run_kdcon


def test_kdtrace_records_packets_kdcon_kdtrace_decodes_with_their_times(tmp_path):
    capture = tmp_path / "wire.bin"
    text, status = run_kdcon(["--loopback", "--batch", "-c", f".kdtrace on {capture}",
                              "-c", "r rip", "-c", "db nt L10", "-c", ".kdtrace off",
                              "-c", "db nt L10", "-c", ".kdtrace"])
    assert status == 0, text
    assert f"Packet trace on: {capture} (kdcon-kdtrace decodes it; times in " \
           f"{times_path(capture)})" in text
    counts = re.search(r"Packet trace off: \S+, (\d+) bytes sent and (\d+) received", text)
    assert counts is not None, text
    assert "Packet trace is off (.kdtrace on [file] starts one)" in text
    data = capture.read_bytes()
    assert int(counts[1]) + int(counts[2]) == len(data) > 0

    with open(capture, "rb") as stream:
        rows = list(trace(stream))
    assert sum(row["length"] for row in rows) == len(data)
    assert {row["kind"] for row in rows} <= {"data", "control"}
    assert all(row["checksum_ok"] for row in rows if row["kind"] == "data")
    apis = {row["api"] for row in rows if row["api"]}
    assert "DbgKdReadVirtualMemoryApi" in apis

    times = read_times(times_path(capture))
    assert [t["offset"] for t in times] == \
        [sum(t["length"] for t in times[:i]) for i in range(len(times))]
    assert sum(t["length"] for t in times) == len(data)
    assert {t["direction"] for t in times} == {"sent", "received"}
    elapsed = [t["elapsed"] for t in times]
    assert elapsed == sorted(elapsed)
    stamped = list(timed(rows, times))
    assert all(row["elapsed"] is not None and row["direction"] for row in stamped)
    reads = [row for row in stamped if row["api"] == "DbgKdReadVirtualMemoryApi"]
    assert {row["direction"] for row in reads} == {"sent", "received"}
