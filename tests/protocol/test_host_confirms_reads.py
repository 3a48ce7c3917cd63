"""Large replies on a noisy line are asked for twice: damage the byte-sum checksum passes
(a duplicated and a dropped byte of the same value) is caught; a clean line pays nothing.

The link is a stand-in that answers from a script and counts what it was asked; its
``connection.state.stats`` are the counters a real connection keeps.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from kdcon.protocol.constants import ManipulateApi as A
from kdcon.protocol.host import CONFIRM_BYTES, NOISY_TRIPS, KdHost

from ..linecheck import checksum_blind_spot

STACK = bytes(range(256)) * 4 + b"\x00\xff" * 64


def _shifted(data: bytes, start: int, end: int) -> bytes:
    """``data`` as a duplicate at ``start`` and a drop at ``end`` of the same value leave it."""
    assert data[start] == data[end]
    return data[:start] + data[start:start + 1] + data[start:end] + data[end + 1:]


class ScriptedLink:
    """Answers each request with the next of ``answers`` (bytes of memory)."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.asked = 0
        self.connection = SimpleNamespace(state=SimpleNamespace(stats=Counter()))

    def damage(self) -> None:
        self.connection.state.stats["bad_packets"] += 1

    def request(self, api, u=None, data=b"", *, timeout, retries, processor):
        self.asked += 1
        wanted = u["TransferCount"] if u and "TransferCount" in u else len(self.answers[0])
        return SimpleNamespace(data=self.answers.pop(0)[:wanted], return_status=0, api=api)


def test_the_stand_in_damage_is_the_kind_the_checksum_cannot_see():
    damaged = _shifted(STACK, 1040, 1100)
    assert len(damaged) == len(STACK) and sum(damaged) == sum(STACK)
    assert checksum_blind_spot(damaged, STACK)


def test_a_clean_line_reads_large_memory_once():
    link = ScriptedLink([STACK])
    host = KdHost(link)
    assert host.read_virtual(0x1000, len(STACK)) == STACK
    assert link.asked == 1 and host.confirmations == 0


def test_on_a_noisy_line_a_damaged_read_is_caught_and_read_until_two_agree():
    damaged = _shifted(STACK, 1040, 1100)
    link = ScriptedLink([damaged, STACK, STACK])
    link.damage()
    host = KdHost(link)
    assert host.read_virtual(0x1000, len(STACK)) == STACK
    assert link.asked == 3
    assert (host.confirmations, host.disagreements) == (2, 1)
    assert host.round_trips == 3


def test_on_a_noisy_line_a_good_read_costs_one_more_request():
    link = ScriptedLink([STACK, STACK])
    link.damage()
    host = KdHost(link)
    assert host.read_virtual(0x1000, len(STACK)) == STACK
    assert link.asked == 2 and host.disagreements == 0


def test_small_replies_are_not_asked_for_again():
    link = ScriptedLink([STACK[:CONFIRM_BYTES - 1]])
    link.damage()
    host = KdHost(link)
    assert host.read_virtual(0x1000, CONFIRM_BYTES - 1) == STACK[:CONFIRM_BYTES - 1]
    assert link.asked == 1


def test_the_line_counts_as_clean_again_once_no_damage_was_seen_for_a_while():
    small = STACK[:8]
    link = ScriptedLink([small] * (NOISY_TRIPS + 1) + [STACK])
    link.damage()
    host = KdHost(link)
    for _ in range(NOISY_TRIPS + 1):
        host.read_virtual(0x1000, 8)
    asked = link.asked
    assert host.read_virtual(0x1000, len(STACK)) == STACK
    assert link.asked == asked + 1


def test_a_new_link_with_fewer_counted_faults_is_not_taken_for_a_noisy_one():
    link = ScriptedLink([STACK[:8], STACK])
    host = KdHost(link)
    link.connection.state.stats["bad_packets"] = 5
    host._damage = 9                   # what the link before the reconnect had counted
    host.read_virtual(0x1000, 8)
    assert host.read_virtual(0x1000, len(STACK)) == STACK
    assert link.asked == 2


class FaultyScriptedLink(ScriptedLink):
    """Every request sees faults at ``rate`` per byte carried (a fractional count kept)."""

    def __init__(self, answers: list[bytes], rate: float) -> None:
        super().__init__(answers)
        self.rate = rate
        self._owed = 0.0

    def request(self, api, u=None, data=b"", *, timeout, retries, processor):
        reply = super().request(api, u, data, timeout=timeout, retries=retries,
                                processor=processor)
        self._owed += (len(reply.data) + 200) * self.rate
        whole = int(self._owed)
        self._owed -= whole
        self.connection.state.stats["bad_packets"] += whole
        return reply


@pytest.mark.parametrize("rate, asked_again", [(3e-5, False), (3e-4, True), (3e-3, True)])
def test_rare_faults_read_once_and_a_bad_cables_rate_reads_twice(rate, asked_again):
    page = STACK[:1024]
    link = FaultyScriptedLink([page[:200]] * NOISY_TRIPS + [page, page], rate)
    host = KdHost(link)
    for _ in range(NOISY_TRIPS):
        host.read_virtual(0x1000, 200)
    assert host.read_virtual(0x2000, len(page)) == page
    assert (host.confirmations == 1) is asked_again
