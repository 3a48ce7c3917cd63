"""open_link: URLs, devices and kd strings to ports; wrapper options; one-line failures."""

from __future__ import annotations

import errno
import os
import sys

import pytest
import serial

from kdcon.protocol.errors import TransportError
from kdcon.protocol.transports import (
    FaultModel,
    FaultyPort,
    LinkError,
    PacedPort,
    open_link,
    socket_pair,
    wrap_link,
)


def test_pyserial_loop_url_opens_and_echoes():
    with open_link("loop://", timeout=1) as port:
        port.write(b"0000")
        assert port.read(4) == b"0000"


def test_pyserial_socket_url_reaches_our_tcp_listener():
    with open_link("tcp://127.0.0.1:0?listen", timeout=5) as server:
        host, tcp_port = server.address
        with open_link(f"socket://{host}:{tcp_port}", timeout=5) as client:
            client.write(b"iiii")
            assert server.read(4) == b"iiii"


def test_kd_pipe_string_opens_a_unix_socket_and_its_baud_is_applied(tmp_path):
    path = tmp_path / "vm-com1"
    with open_link(f"unix://{path}?listen", timeout=5) as server:
        with open_link(f"com:pipe,port={path},resets=0", timeout=5) as client:
            client.write(b"b")
            assert server.read(1) == b"b"
    with open_link("com:port=loop://,baud=57600") as looped:
        assert looped.baudrate == 57600


def test_pace_and_faults_url_options_wrap_the_port_in_line_order():
    port = open_link("loop://?pace=115200&faults=drop=0.5,seed=3")
    assert isinstance(port, PacedPort) and port.pace_baud == 115200
    assert isinstance(port.inner, FaultyPort)
    assert port.inner.model_tx.drop == 0.5 and port.inner.model_rx.seed == 4
    assert isinstance(port.inner.inner, serial.SerialBase) and "pace" not in port.inner.inner.portstr
    port.close()


def test_keyword_wrappers_override_url_options_and_keep_handler_flags(tmp_path):
    path = tmp_path / "s"
    port = open_link(f"unix://{path}?listen&pace=9600", pace=115200, faults=FaultModel(1, drop=0.1))
    assert port.pace_baud == 115200 and port.inner.model_tx.drop == 0.1
    assert port.inner.inner.listen  # the listen flag survived the option stripping
    port.close()


def test_disabled_fault_model_adds_no_wrapper():
    a, b = socket_pair()
    assert wrap_link(a, faults=FaultModel(0)) is a
    a.close()
    b.close()


@pytest.mark.skipif(sys.platform == "win32", reason="COMn is a native name on Windows")
def test_bare_com_name_off_windows_opens_the_matching_ttys_device():
    with pytest.raises(LinkError, match="/dev/ttyS249: no such device"):
        open_link("COM250")


def test_missing_device_says_to_check_the_device():
    with pytest.raises(LinkError, match="no such device") as info:
        open_link("/dev/ttyKDCON-missing")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "err, message",
    [(errno.EACCES, "permission denied"), (errno.EBUSY, "busy"), (errno.ENOENT, "no such device")],
)
def test_device_open_errors_from_pyserial_become_advice(monkeypatch, err, message):
    # pyserial's posix open() raises SerialException(errno, text) for these; as root the
    # permission case cannot be produced with a real device, so pyserial's raise is replayed.
    def fail_open(self):
        raise serial.SerialException(err, f"could not open port {self.portstr}: [Errno {err}] {os.strerror(err)}")

    monkeypatch.setattr(serial.Serial, "open", fail_open)
    with pytest.raises(LinkError, match=message) as info:
        open_link("/dev/ttyS0")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "no link given"),
        ("   ", "no link given"),
        ("bogus://x", "unknown URL scheme"),
        ("socket://127.0.0.1:1", "refused"),
        ("rfc2217://127.0.0.1:1", "refused"),
        ("loop://?pace=fast", "not a baud rate"),
        ("loop://?faults=drop=2", "bad faults"),
        ("com:port=COM1,baud=fast", "not a number"),
    ],
)
def test_bad_specs_raise_one_line_transport_error(spec, message):
    with pytest.raises(TransportError, match=message) as info:
        open_link(spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("pace", [0, -1])
def test_impossible_pace_is_refused(pace):
    with pytest.raises(LinkError, match="not a baud rate"):
        open_link("loop://", pace=pace)


@pytest.mark.parametrize("baud", [0, -9600])
def test_impossible_baud_rate_is_refused(baud):
    with pytest.raises(LinkError, match="not a baud rate"):
        open_link("loop://", baud=baud)


def test_unusual_baud_rate_opens_with_a_warning(caplog):
    with open_link("loop://", baud=9600) as port:
        assert port.baudrate == 9600
    assert any("9600" in record.getMessage() for record in caplog.records)
