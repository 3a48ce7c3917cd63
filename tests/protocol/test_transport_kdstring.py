"""kd -k connection strings: parsing, the translation table, and one-line errors."""

from __future__ import annotations

import pytest

from kdcon.protocol.errors import TransportError
from kdcon.protocol.transports import KdString, is_kd_string, parse_kd_string

TRANSLATIONS = [
    # (kd string, platform, expected URL, expected baud)
    ("com:port=/dev/ttyS0,baud=115200", "linux", "/dev/ttyS0", 115200),
    ("com:port=COM1,baud=57600", "linux", "/dev/ttyS0", 57600),
    ("com:port=COM2,baud=19200", "darwin", "/dev/ttyS1", 19200),
    ("com:port=COM1,baud=57600", "win32", "COM1", 57600),
    ("COM:PORT=COM3,BAUD=38400", "linux", "/dev/ttyS2", 38400),
    ("  com: port = /dev/ttyUSB0 , baud = 115200 ", "linux", "/dev/ttyUSB0", 115200),
    ("-k com:port=/dev/ttyS1,baud=115200", "linux", "/dev/ttyS1", 115200),
    ("com:port=/dev/ttyAMA0", "linux", "/dev/ttyAMA0", None),
    ("com:pipe,port=/tmp/vm-com1,reconnect,resets=0", "linux", "unix:///tmp/vm-com1?reconnect", None),
    ("com:pipe,port=/tmp/vm-com1", "darwin", "unix:///tmp/vm-com1", None),
    ("com:Pipe,Port=/tmp/Case/Kept,Resets=0,Reconnect", "linux", "unix:///tmp/Case/Kept?reconnect", None),
    ("com:port=/dev/ttyS0,baud=115200,", "linux", "/dev/ttyS0", 115200),
]


@pytest.mark.parametrize("text, platform, url, baud", TRANSLATIONS)
def test_kd_string_translates_to_link_url(text, platform, url, baud):
    parsed = parse_kd_string(text)
    assert parsed.to_url(platform) == url
    assert parsed.baud == baud


def test_pipe_options_are_kept_in_the_parsed_record():
    assert parse_kd_string("com:pipe,port=/p,resets=0,reconnect") == KdString(
        port="/p", pipe=True, reconnect=True, resets=0
    )


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_windows_named_pipe_is_reported_unsupported_in_one_line(platform):
    parsed = parse_kd_string(r"com:pipe,port=\\.\pipe\com_1,resets=0,reconnect")
    with pytest.raises(TransportError, match="named pipes") as info:
        parsed.to_url(platform)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("net:port=50000,key=1.2.3.4", "KDNET"),
        ("usb:targetname=x", "USB"),
        ("1394:channel=1", "1394"),
        ("-kl", "local kernel"),
        ("com:modem", "modem"),
        ("com:baud=115200", "no port="),
        ("com:port=,baud=115200", "needs a value"),
        ("com:port=COM1,baud=fast", "not a number"),
        ("com:port=COM1,baud=0", "not a baud rate"),
        ("com:port=COM1,parity=even", "unknown option"),
        ("com:port=COM1,reconnect", "pipes only"),
        ("com:pipe=1,port=/x", "takes no value"),
        ("serial:port=COM1", "not a kd connection string|unknown connection kind"),
    ],
)
def test_bad_kd_strings_raise_one_line_transport_error(text, message):
    with pytest.raises(TransportError, match=message) as info:
        parse_kd_string(text)
    assert "\n" not in str(info.value)


def test_com0_is_not_a_port():
    with pytest.raises(TransportError):
        parse_kd_string("com:port=COM0").to_url("linux")


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("com:port=COM1", True),
        ("-k com:pipe,port=/x", True),
        ("net:port=1", True),
        ("COM1", False),
        ("COM1:", False),
        ("/dev/ttyS0", False),
        ("socket://localhost:1", False),
        ("unix:///tmp/x", False),
        ("loop://", False),
    ],
)
def test_kd_strings_are_told_apart_from_urls_and_devices(spec, expected):
    assert is_kd_string(spec) is expected
