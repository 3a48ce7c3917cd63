"""What a UART receives when the sender runs at another baud rate (8N1), as a pure function.

The sender puts each byte on the line as a 10-bit frame: a start bit (0), eight data
bits least significant first, a stop bit (1); the idle line is 1 (kd-protocol.md §3.1:
8N1). A receiver at its own rate waits for a falling edge, checks the start bit half a
bit later, samples each data bit in its middle and then the stop bit. A stop bit read as
0 is a framing error: Linux (termios without IGNPAR/PARMRK, pyserial's raw mode) delivers
such a byte as 0x00. After the stop-bit sample the receiver hunts for the next falling
edge. A start bit that is already 1 at its middle is a glitch: hunting goes on.

    line  ‾‾‾‾\\_S_|d0|d1|d2|d3|d4|d5|d6|d7|‾P‾|_S_|d0 ...   (sender, T_tx a bit)
    rx        ^ edge  x  x  x  x  x  x  x  x  x    samples at (k + 1/2) * T_rx

Time is kept in integer units of 1 / (2 * tx_baud * rx_baud) seconds, so every bit and
half bit is a whole number of units and no rounding accumulates.
Not modelled: noise, clock jitter, the 16550's majority-of-three sampling.
"""

from __future__ import annotations

__all__ = ["resample_at_wrong_baud", "BaudMismatch", "frame_bits"]


def frame_bits(data: bytes) -> list[int]:
    """Line levels of ``data`` sent back to back as 8N1 frames, one entry per bit time."""
    bits: list[int] = []
    for value in data:
        bits.append(0)
        bits.extend((value >> i) & 1 for i in range(8))
        bits.append(1)
    return bits


def resample_at_wrong_baud(data: bytes, tx_baud: int, rx_baud: int) -> bytes:
    """Bytes a receiver at ``rx_baud`` reads when ``data`` is sent at ``tx_baud`` after idle."""
    if tx_baud <= 0 or rx_baud <= 0:
        raise ValueError("baud rates must be positive")
    if tx_baud == rx_baud:
        return bytes(data)
    bits = frame_bits(data)
    # Durations in units of 1 / (2 * tx_baud * rx_baud) s: half bits stay whole numbers.
    tx_bit, rx_bit = 2 * rx_baud, 2 * tx_baud

    def level(t: int) -> int:
        index = t // tx_bit
        return bits[index] if index < len(bits) else 1

    out = bytearray()
    search_from = 0  # the receiver looks for a 1 -> 0 edge at or after this time
    end = len(bits) * tx_bit
    while True:
        # Edges only happen at the sender's bit boundaries.
        boundary = -(-search_from // tx_bit)  # ceil
        edge = None
        for index in range(max(boundary, 0), len(bits)):
            before = bits[index - 1] if index > 0 else 1
            if before == 1 and bits[index] == 0 and index * tx_bit >= search_from:
                edge = index * tx_bit
                break
        if edge is None:
            break
        if level(edge + rx_bit // 2) != 0:
            search_from = edge + 1  # a glitch, not a start bit
            continue
        value = 0
        for k in range(8):
            value |= level(edge + (2 * (k + 1) + 1) * rx_bit // 2) << k
        stop_at = edge + 19 * rx_bit // 2
        out.append(value if level(stop_at) == 1 else 0x00)
        search_from = stop_at
        if search_from >= end:
            break
    return bytes(out)


class BaudMismatch:
    """A line model (``apply``) for ``FaultyPort``: every chunk arrives at the wrong rate.

    Each ``apply`` call is one burst sent after an idle line, as each ``write`` of a
    sender is in practice.
    """

    def __init__(self, tx_baud: int, rx_baud: int) -> None:
        self.tx_baud = tx_baud
        self.rx_baud = rx_baud

    def __repr__(self) -> str:
        return f"BaudMismatch(tx_baud={self.tx_baud}, rx_baud={self.rx_baud})"

    def apply(self, data: bytes) -> bytes:
        return resample_at_wrong_baud(data, self.tx_baud, self.rx_baud)
