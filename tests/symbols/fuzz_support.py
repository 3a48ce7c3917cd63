"""Seeded mutation of fixture files for the parser fuzz tests."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

_BOUNDARIES = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def mutations(seeds: list[bytes], count: int, seed: int) -> Iterator[bytes]:
    """``count`` mutated inputs drawn from ``seeds``, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            choice = rng.random()
            if not data:
                data += bytes([rng.randrange(256)])
            elif choice < 0.35:
                at = rng.randrange(len(data))
                data[at] = rng.randrange(256)
            elif choice < 0.65 and len(data) >= 4:
                at = rng.randrange(0, len(data) - 3) & ~3 if rng.random() < 0.7 else rng.randrange(len(data) - 3)
                value = rng.choice(_BOUNDARIES) if rng.random() < 0.7 else rng.randrange(len(data) * 2 + 1)
                struct.pack_into("<I", data, at, value & 0xFFFFFFFF)
            elif choice < 0.75 and len(data) >= 2:
                at = rng.randrange(len(data) - 1)
                struct.pack_into("<H", data, at, rng.choice(_BOUNDARIES) & 0xFFFF)
            elif choice < 0.85:
                del data[rng.randrange(len(data)):]
            elif choice < 0.92:
                start = rng.randrange(len(data))
                chunk = data[start:start + rng.randint(1, 64)]
                at = rng.randrange(len(data))
                data[at:at] = chunk
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        yield bytes(data)


def run_chunk(target, seeds: list[bytes], count: int, seed: int, expected: type[Exception]) -> dict:
    """Feed ``count`` mutations to ``target``; report unexpected errors, slowest input, peak RSS."""
    import resource
    import time

    unexpected: list[str] = []
    slowest = 0.0
    fed = 0
    for data in mutations(seeds, count, seed):
        started = time.perf_counter()
        try:
            target(data)
        except expected:
            pass
        except Exception as exc:  # the point of the fuzz: anything else is a finding
            if len(unexpected) < 5:
                unexpected.append(f"{type(exc).__name__}: {exc} (input {data[:64].hex()}..., {len(data)} bytes)")
        slowest = max(slowest, time.perf_counter() - started)
        fed += 1
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"fed": fed, "unexpected": unexpected, "slowest": slowest, "peak_kb": peak_kb}
