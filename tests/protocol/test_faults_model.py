"""FaultModel: a pure seeded line-noise model (determinism, rates, rules, spec parsing)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdcon.protocol.transports.faults import FaultModel, parse_fault_spec

STREAM = random.Random(1234).randbytes(200_000)


def _within(observed: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """Binomial count within ``sigmas`` standard deviations of its mean."""
    mean = n * p
    return abs(observed - mean) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_zero_probabilities_pass_bytes_through_unchanged():
    model = FaultModel(seed=1)
    assert not model.enabled
    assert model.apply(STREAM[:5000]) == STREAM[:5000]
    assert model.counts.bytes_in == model.counts.bytes_out == 5000


def test_same_seed_same_output_different_seed_different_output():
    kwargs = dict(bit_flip=1e-3, drop=1e-3, duplicate=1e-3, garbage=1e-3)
    a = FaultModel(7, **kwargs).apply(STREAM)
    b = FaultModel(7, **kwargs).apply(STREAM)
    c = FaultModel(8, **kwargs).apply(STREAM)
    assert a == b
    assert a != c


@pytest.mark.parametrize("split", ["whole", "bytewise", "random_chunks"])
def test_output_is_independent_of_how_input_is_chunked(split):
    kwargs = dict(bit_flip=5e-3, drop=5e-3, duplicate=5e-3, garbage=5e-3)
    data = STREAM[:20_000]
    expected = FaultModel(3, **kwargs).apply(data)
    model = FaultModel(3, **kwargs)
    if split == "whole":
        got = model.apply(data)
    elif split == "bytewise":
        got = b"".join(model.apply(data[i : i + 1]) for i in range(len(data)))
    else:
        rng = random.Random(5)
        pieces, i = [], 0
        while i < len(data):
            n = rng.randint(0, 300)
            pieces.append(model.apply(data[i : i + n]))
            i += n
        got = b"".join(pieces)
    assert got == expected


def test_bit_flip_changes_exactly_one_bit_per_counted_flip():
    model = FaultModel(11, bit_flip=2e-3)
    out = model.apply(STREAM)
    assert len(out) == len(STREAM)
    diffs = [a ^ b for a, b in zip(STREAM, out) if a != b]
    assert all(bin(d).count("1") == 1 for d in diffs)
    assert len(diffs) == model.counts.bit_flips
    assert _within(model.counts.bit_flips, len(STREAM), 2e-3)


def test_drop_rate_matches_probability_and_output_shrinks_by_count():
    model = FaultModel(12, drop=1e-3)
    out = model.apply(STREAM)
    assert len(out) == len(STREAM) - model.counts.drops
    assert _within(model.counts.drops, len(STREAM), 1e-3)


def test_dropped_bytes_leave_a_subsequence_of_the_input():
    data = bytes(range(256)) * 40
    out = FaultModel(2, drop=0.05).apply(data)
    it = iter(data)
    assert all(any(x == y for y in it) for x in out)


def test_duplicate_repeats_the_byte_once():
    data = bytes(range(256)) * 100  # no natural repeats next to each other
    model = FaultModel(13, duplicate=1e-2)
    out = model.apply(data)
    repeats = sum(1 for i in range(1, len(out)) if out[i] == out[i - 1])
    assert repeats == model.counts.duplicates
    assert len(out) == len(data) + model.counts.duplicates
    assert _within(model.counts.duplicates, len(data), 1e-2)


def test_garbage_bursts_have_lengths_in_range_and_expected_frequency():
    model = FaultModel(14, garbage=1e-3, garbage_len=(4, 9))
    out = model.apply(STREAM)
    bursts = model.counts.garbage_bursts
    assert _within(bursts, len(STREAM), 1e-3)
    assert 4 * bursts <= model.counts.garbage_bytes <= 9 * bursts
    assert len(out) == len(STREAM) + model.counts.garbage_bytes


def test_drop_wins_over_flip_and_duplicate_on_the_same_byte():
    model = FaultModel(1, bit_flip=1.0, drop=1.0, duplicate=1.0)
    assert model.apply(b"abc") == b""
    assert model.counts.drops == 3
    assert model.counts.bit_flips == model.counts.duplicates == 0


def test_duplicate_copies_the_flipped_byte():
    model = FaultModel(1, bit_flip=1.0, duplicate=1.0)
    out = model.apply(b"\x00")
    assert len(out) == 2 and out[0] == out[1] and bin(out[0]).count("1") == 1


def test_certain_garbage_precedes_every_byte():
    model = FaultModel(4, garbage=1.0, garbage_len=(2, 2))
    out = model.apply(b"xy")
    assert len(out) == 6 and out[2:3] == b"x" and out[5:6] == b"y"


@pytest.mark.parametrize(
    "kwargs",
    [dict(drop=-0.1), dict(bit_flip=1.5), dict(garbage=float("nan")), dict(garbage_len=(0, 3)),
     dict(garbage_len=(5, 2))],
)
def test_bad_parameters_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        FaultModel(0, **kwargs)


def test_fault_spec_maps_short_names_and_seed():
    model = parse_fault_spec("flip=1e-4, drop=1e-3,dup=2e-3,garbage=1e-4,seed=7,garbage_len=3-5")
    assert (model.bit_flip, model.drop, model.duplicate, model.garbage) == (1e-4, 1e-3, 2e-3, 1e-4)
    assert model.seed == 7 and model.garbage_len == (3, 5)


@pytest.mark.parametrize("text", ["flop=1", "drop", "drop=abc", "seed=x", "drop=2"])
def test_bad_fault_spec_raises_one_line_value_error(text):
    with pytest.raises(ValueError) as info:
        parse_fault_spec(text)
    assert "\n" not in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_any_chunking_gives_the_same_output_and_counts(data, cuts, seed):
    kwargs = dict(bit_flip=0.02, drop=0.02, duplicate=0.02, garbage=0.01, garbage_len=(1, 4))
    whole_model = FaultModel(seed, **kwargs)
    whole = whole_model.apply(data)
    model = FaultModel(seed, **kwargs)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = b"".join(model.apply(data[a:b]) for a, b in zip(bounds, bounds[1:]))
    assert pieces == whole
    assert model.counts == whole_model.counts
