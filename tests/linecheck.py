"""What a noisy line can do to a payload that the KD checksum cannot see.

The checksum is a byte sum (kd-protocol.md §1.3). A byte duplicated on the line and a
later (or earlier) byte of the same value dropped keep both the length and the sum, so
no receiver can reject the packet: the bytes between the two faults arrive shifted by
one. Tests over a noisy line accept exactly that damage, nothing else.
"""

from __future__ import annotations

__all__ = ["checksum_blind_spot"]


def checksum_blind_spot(got: bytes, expected: bytes) -> bool:
    """True if ``got`` is ``expected`` with one stretch rotated by one byte, the mark
    of a duplicate and a drop of the same value inside one packet; or, as the data of
    a reply, the data shifted left into a header that lost a byte and restored by a
    duplicate at ``j``: ``expected[1:j+1] + expected[j:j+1] + expected[j+1:]``."""
    if got == expected or len(got) != len(expected):
        return False
    if any(got[:j] == expected[1:j + 1] and got[j] == expected[j]
           and got[j + 1:] == expected[j + 1:] for j in range(1, len(got))):
        return True
    first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
    last = len(got) - next(i for i, (a, b) in enumerate(zip(got[::-1], expected[::-1]))
                           if a != b)
    seen, want = got[first:last], expected[first:last]
    # Duplicate first: P x x Q R for P x Q x R. Drop first: P Q x x R for P x Q x R.
    return seen == want[-1:] + want[:-1] or seen == want[1:] + want[:1]
