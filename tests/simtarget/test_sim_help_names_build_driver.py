"""``kdcon-sim --help`` names the build-driver subcommand the README sends users to."""

from __future__ import annotations

from kdcon.tools.simtarget.cli import build_parser


def test_the_help_names_build_driver_and_how_to_get_its_own_help():
    text = build_parser().format_help()
    assert "kdcon-sim build-driver SRCDIR -o DRIVER.sys" in " ".join(text.split())
    assert "build-driver -h" in text
