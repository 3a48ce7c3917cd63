"""The noisy-line tests' notion of damage the KD byte-sum checksum cannot see."""

from __future__ import annotations

from ..linecheck import checksum_blind_spot

PAGE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00"


def test_a_duplicate_then_a_drop_of_the_same_value_is_the_blind_spot() -> None:
    assert checksum_blind_spot(b"ABxxCDEF", b"ABxCDxEF")
    assert checksum_blind_spot(b"ABCDxxEF", b"ABxCDxEF")


def test_a_drop_in_the_reply_header_and_a_duplicate_in_the_data_is_the_blind_spot() -> None:
    assert checksum_blind_spot(PAGE[1:4] + PAGE[3:4] + PAGE[4:], PAGE)


def test_any_other_damage_is_not() -> None:
    assert not checksum_blind_spot(PAGE, PAGE)
    assert not checksum_blind_spot(b"ABxxCDEG", b"ABxCDxEF")
    assert not checksum_blind_spot(b"ABDCxxEF", b"ABxCDxEF")
    assert not checksum_blind_spot(b"ABxCDxE", b"ABxCDxEF")
    assert not checksum_blind_spot(PAGE[1:4] + b"Q" + PAGE[4:], PAGE)
    assert not checksum_blind_spot(PAGE[:2] + b"\x91" + PAGE[3:], PAGE)
