"""Checksums that vendor firmware headers carry, computed over a span of a mapped file.

Every function reads the span in blocks, so a header that claims a large image
costs one pass over the bytes that are really there and no more memory than a block.
"""

from __future__ import annotations

import array
import hashlib
import mmap
import sys
import zlib
from itertools import accumulate

BLOCK = 1 << 20
Data = mmap.mmap | bytes


def _blocks(data: Data, start: int, end: int):  # noqa: ANN202 - a generator of bytes
    end = min(end, len(data))
    for pos in range(start, end, BLOCK):
        yield bytes(data[pos : min(pos + BLOCK, end)])


def crc32(data: Data, start: int, end: int, crc: int = 0) -> int:
    """zlib's CRC-32 of ``data[start:end]`` (continuing from ``crc``).

    Tools that start the register at 0xffffffff and never invert it at the end
    (TRX, OpenWrt's fwtool, ZyXEL's zyimage) store ``crc32(...) ^ 0xffffffff``.
    """
    for block in _blocks(data, start, end):
        crc = zlib.crc32(block, crc)
    return crc


def digest(data: Data, start: int, end: int, algorithm: str = "md5", prefix: bytes = b"") -> bytes:
    """Hash of ``prefix`` followed by ``data[start:end]``."""
    h = hashlib.new(algorithm, usedforsecurity=False)
    h.update(prefix)
    for block in _blocks(data, start, end):
        h.update(block)
    return h.digest()


def netgear_sums(data: Data, start: int, end: int) -> tuple[int, int]:
    """Netgear's running sums over a span: c0 = sum of the bytes, c1 = sum of c0 after each byte.

    Both are kept exact here; callers reduce them with :func:`netgear_fold` (which wraps at
    32 bits first, as the tool's registers do).  Spans combine: for a span A followed by B,
    c0 = c0A + c0B and c1 = c1A + len(B) * c0A + c1B.
    """
    c0 = c1 = 0
    for block in _blocks(data, start, end):
        c1 += len(block) * c0 + sum(accumulate(block))
        c0 += sum(block)
    return c0, c1


def netgear_fold(c0: int, c1: int) -> int:
    """The 32-bit Netgear checksum (CHK headers) from :func:`netgear_sums`."""

    def fold(value: int) -> int:
        value &= 0xFFFFFFFF
        b = (value & 0xFFFF) + (value >> 16)
        return ((b >> 16) + b) & 0xFFFF

    return (fold(c1) << 16) | fold(c0)


def word_sum16(data: Data, start: int, end: int) -> int:
    """Sum of the big-endian 16-bit words of a span (an odd last byte is the high byte), mod 2**16."""
    total = 0
    for block in _blocks(data, start, end):
        if len(block) % 2:
            block += b"\0"
        words = array.array("H")
        words.frombytes(block)
        if sys.byteorder == "little":
            words.byteswap()
        total += sum(words)
    return total & 0xFFFF
