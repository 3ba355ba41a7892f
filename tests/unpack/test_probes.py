"""Fast probes find exactly what the regular expressions they replace find."""

from __future__ import annotations

import mmap
import random

from cra_fw.unpack import sniff
from cra_fw.unpack.handlers import tplink

EMBEDDED_SAMPLES = (
    b"hsqs",
    b"sqsh",
    b"UBI#",
    b"\x27\x05\x19\x56",
    b"\xd0\x0d\xfe\xed",
    b"\x1f\x8b\x08\x00",
    b"\x1f\x8b\x08\x20",  # flags byte out of range: no match
    b"\xfd7zXZ\x00",
    b"PK\x03\x04",
    b"\x85\x19\x01\x20",
    b"\x85\x19\x04\x20",  # not a JFFS2 node type: no match
    b"\x19\x85\xe0\x20",
    b"HDR0",
    b"070701",
    b"07070",  # too short: no match
)


def _mapped(data: bytes) -> mmap.mmap:
    m = mmap.mmap(-1, max(1, len(data)))
    m.write(data)
    m.seek(0)
    return m


def test_embedded_magic_search_equals_the_regex():
    rng = random.Random(2)
    seen = {True: 0, False: 0}
    for i in range(300):
        data = bytearray(rng.randbytes(rng.choice([100, 5000, 70000])))
        if i % 2:
            magic = EMBEDDED_SAMPLES[i // 2 % len(EMBEDDED_SAMPLES)]
            pos = rng.randrange(len(data) - len(magic))
            data[pos : pos + len(magic)] = magic
        with _mapped(bytes(data)) as m:
            expected = sniff.EMBEDDED.search(m) is not None
            assert sniff._embedded(m) is expected, i
            seen[expected] += 1
    assert seen[True] > 50 and seen[False] > 50  # both outcomes exercised


def test_tplink_anchor_positions_equal_finditer():
    rng = random.Random(5)
    for trial in range(300):
        parts = []
        for _ in range(rng.randrange(1, 40)):
            kind = rng.random()
            if kind < 0.3:  # a version word, a printable string, maybe its terminator
                text = bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randrange(0, 60)))
                parts.append(
                    bytes([rng.choice([1, 2, 3])]) + b"\0\0\0" + text + rng.choice([b"\0", b"\x01", b""])
                )
            elif kind < 0.5:
                parts.append(b"\0" * rng.randrange(1, 50))
            elif kind < 0.6:  # overlapping candidates
                parts.append(b"\x01\x00\x00\x00\x01\x00\x00\x00ab\x00")
            else:
                parts.append(rng.randbytes(rng.randrange(1, 100)))
        with _mapped(b"".join(parts)) as m:
            expected = [match.start() for match in tplink.ANCHOR.finditer(m)]
            assert list(tplink._anchors(m)) == expected, trial
