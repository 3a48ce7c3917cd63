"""add_link_arguments / open_link_from_args: the link options every CLI shares."""

from __future__ import annotations

import argparse

import pytest

from kdcon.protocol.transports import (
    FaultyPort,
    LinkError,
    PacedPort,
    add_link_arguments,
    open_link_from_args,
)
from kdcon.protocol.transports.cli import baud_rate, fault_spec


def _parser(required: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tool", exit_on_error=False)
    add_link_arguments(parser, required=required)
    return parser


def test_defaults_leave_the_link_unwrapped():
    args = _parser().parse_args(["--port", "loop://"])
    assert (args.port, args.kd_string, args.baud, args.pace, args.faults) == ("loop://", None, 115200, None, None)
    with open_link_from_args(args) as port:
        assert not isinstance(port, (PacedPort, FaultyPort)) and port.baudrate == 115200


def test_pace_and_faults_options_wrap_the_link():
    args = _parser().parse_args(["--port", "loop://", "--pace", "57600", "--faults", "flip=1e-4,drop=1e-3,seed=7"])
    port = open_link_from_args(args)
    assert isinstance(port, PacedPort) and port.pace_baud == 57600
    assert isinstance(port.inner, FaultyPort) and port.inner.model_tx.seed == 7
    port.close()


def test_kd_string_baud_wins_over_the_baud_option_and_fills_in_when_absent(tmp_path):
    args = _parser().parse_args(["-k", "com:port=loop://,baud=19200", "--baud", "57600"])
    with open_link_from_args(args) as port:
        assert port.baudrate == 19200
    args = _parser().parse_args(["-k", "com:port=loop://", "--baud", "38400"])
    with open_link_from_args(args) as port:
        assert port.baudrate == 38400


def test_port_and_kd_string_are_mutually_exclusive_and_can_be_required():
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        _parser().parse_args(["--port", "loop://", "-k", "com:port=COM1"])
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        _parser(required=True).parse_args([])


def test_no_link_given_is_a_link_error():
    with pytest.raises(LinkError, match="no link given"):
        open_link_from_args(_parser().parse_args([]))


@pytest.mark.parametrize("text", ["fast", "0", "-9600", ""])
def test_bad_baud_values_are_argument_type_errors(text):
    with pytest.raises(argparse.ArgumentTypeError):
        baud_rate(text)


@pytest.mark.parametrize("text", ["flip", "flop=1", "drop=2", "seed=x"])
def test_bad_fault_specs_are_argument_type_errors(text):
    with pytest.raises(argparse.ArgumentTypeError):
        fault_spec(text)
