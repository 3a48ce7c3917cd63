"""A pure, seeded model of a noisy serial line: bit flips, drops, duplicates, garbage.

``FaultModel.apply(data)`` returns the bytes a receiver would see after the line
damaged ``data``. It does no I/O and reads no clock; wrapping a real port is the job of
``FaultyPort`` in ``faulty_port.py``.

Every probability is per byte of input:

- ``bit_flip``: the byte arrives with one bit (chosen uniformly) inverted;
- ``drop``: the byte never arrives;
- ``duplicate``: the byte arrives twice;
- ``garbage``: a burst of random bytes, ``garbage_len`` long (inclusive bounds), is
  inserted before the byte, as line noise on an idle UART would produce.

Determinism: each fault kind draws from its own ``random.Random`` seeded from ``seed``
and schedules its next event by a geometric gap over the input stream. The output
therefore depends only on the seed and the concatenated input, never on how the input
was split into ``apply`` calls. When several kinds hit the same byte: garbage comes
first, a drop wins over flip and duplicate (those events are spent unused), and a
duplicate copies the flipped byte.

Not here: timing faults (stalls, pacing) live in ``pacing.py``.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import asdict, dataclass

__all__ = ["FaultModel", "FaultCounts", "parse_fault_spec"]

log = logging.getLogger(__name__)

_NEVER = math.inf


@dataclass
class FaultCounts:
    """What a ``FaultModel`` has done so far."""

    bytes_in: int = 0
    bytes_out: int = 0
    bit_flips: int = 0
    drops: int = 0
    duplicates: int = 0
    garbage_bursts: int = 0
    garbage_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _EventClock:
    """Positions in the input stream where one fault kind strikes (Bernoulli per byte)."""

    def __init__(self, rng: random.Random, probability: float) -> None:
        self.rng = rng
        self.probability = probability
        self.next_at: float = _NEVER
        if probability > 0:
            self.next_at = self._gap()

    def _gap(self) -> float:
        # The number of failures before the first success of a per-byte Bernoulli
        # trial is geometric; drawing it once per event is O(events), not O(bytes).
        if self.probability >= 1.0:
            return 0
        u = self.rng.random()
        return math.floor(math.log1p(-u) / math.log1p(-self.probability))

    def advance(self, position: int) -> None:
        """Consume the event at ``position`` and schedule the next one."""
        self.next_at = position + 1 + self._gap()


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return value


class FaultModel:
    """Seeded per-byte fault model; ``apply`` may be called on any chunking of a stream."""

    def __init__(
        self,
        seed: int,
        bit_flip: float = 0,
        drop: float = 0,
        duplicate: float = 0,
        garbage: float = 0,
        garbage_len: tuple[int, int] = (1, 32),
    ) -> None:
        self.seed = seed
        self.bit_flip = _check_probability("bit_flip", bit_flip)
        self.drop = _check_probability("drop", drop)
        self.duplicate = _check_probability("duplicate", duplicate)
        self.garbage = _check_probability("garbage", garbage)
        low, high = garbage_len
        if not 1 <= low <= high:
            raise ValueError(f"garbage_len must be (low, high) with 1 <= low <= high, got {garbage_len!r}")
        self.garbage_len = (int(low), int(high))
        # One generator per kind (string seeds are hashed deterministically by random).
        self._flip = _EventClock(random.Random(f"{seed}:flip"), self.bit_flip)
        self._drop = _EventClock(random.Random(f"{seed}:drop"), self.drop)
        self._dup = _EventClock(random.Random(f"{seed}:dup"), self.duplicate)
        self._garbage = _EventClock(random.Random(f"{seed}:garbage"), self.garbage)
        self._position = 0
        self.counts = FaultCounts()

    @property
    def enabled(self) -> bool:
        """True when any fault has a non-zero probability."""
        return any((self.bit_flip, self.drop, self.duplicate, self.garbage))

    def with_seed(self, seed: int) -> FaultModel:
        """A fresh model with the same rates and another seed (e.g. for the other direction)."""
        return FaultModel(seed, self.bit_flip, self.drop, self.duplicate, self.garbage, self.garbage_len)

    def __repr__(self) -> str:
        return (
            f"FaultModel(seed={self.seed!r}, bit_flip={self.bit_flip!r}, drop={self.drop!r}, "
            f"duplicate={self.duplicate!r}, garbage={self.garbage!r}, garbage_len={self.garbage_len!r})"
        )

    def apply(self, data: bytes) -> bytes:
        """The bytes that arrive when ``data`` crosses the faulty line."""
        data = bytes(data)
        start = self._position
        end = start + len(data)
        clocks = (self._garbage, self._drop, self._flip, self._dup)
        out = bytearray()
        copied = start
        while True:
            at = min(clock.next_at for clock in clocks)
            if at >= end:
                break
            at = int(at)
            out += data[copied - start : at - start]
            out += self._apply_at(at, data[at - start])
            copied = at + 1
        out += data[copied - start :]
        self._position = end
        self.counts.bytes_in += len(data)
        self.counts.bytes_out += len(out)
        return bytes(out)

    def _apply_at(self, position: int, value: int) -> bytes:
        """Every fault that strikes the byte at ``position`` (see the module rules)."""
        piece = bytearray()
        if self._garbage.next_at == position:
            rng = self._garbage.rng
            length = rng.randint(*self.garbage_len)
            piece += rng.randbytes(length)
            self._garbage.advance(position)
            self.counts.garbage_bursts += 1
            self.counts.garbage_bytes += length
        dropped = self._drop.next_at == position
        if dropped:
            self._drop.advance(position)
            self.counts.drops += 1
        if self._flip.next_at == position:
            bit = self._flip.rng.randrange(8)
            self._flip.advance(position)
            if not dropped:
                value ^= 1 << bit
                self.counts.bit_flips += 1
        if self._dup.next_at == position:
            self._dup.advance(position)
            if not dropped:
                piece.append(value)
                self.counts.duplicates += 1
        if not dropped:
            piece.append(value)
        return bytes(piece)


_SPEC_KEYS = {
    "flip": "bit_flip",
    "bit_flip": "bit_flip",
    "drop": "drop",
    "dup": "duplicate",
    "duplicate": "duplicate",
    "garbage": "garbage",
}


def parse_fault_spec(text: str) -> FaultModel:
    """A ``FaultModel`` from ``"flip=1e-4,drop=1e-3,dup=1e-3,garbage=1e-4,seed=7,garbage_len=1-32"``.

    Raises ValueError with one line naming the bad item.
    """
    seed = 0
    kwargs: dict[str, object] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if not sep or not value:
            raise ValueError(f"fault item {item!r} needs a value, e.g. drop=1e-3")
        try:
            if key == "seed":
                seed = int(value, 0)
            elif key == "garbage_len":
                low, _, high = value.partition("-")
                kwargs["garbage_len"] = (int(low), int(high or low))
            elif key in _SPEC_KEYS:
                kwargs[_SPEC_KEYS[key]] = float(value)
            else:
                known = ", ".join(sorted({*_SPEC_KEYS, "seed", "garbage_len"}))
                raise ValueError(f"unknown fault {key!r} (known: {known})")
        except ValueError as exc:
            if str(exc).startswith("unknown fault"):
                raise
            raise ValueError(f"fault item {item!r} has a bad value") from None
    return FaultModel(seed, **kwargs)  # type: ignore[arg-type]
