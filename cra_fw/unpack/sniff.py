"""Decide cheaply whether an extracted file may hold more layers.

Only files that pass are handed to an extraction backend: ELF files, scripts
and small files are leaves.  A magic at offset 0 is enough; larger opaque
files are searched whole for the magics of filesystems and images that
firmware embeds at aligned offsets.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from cra_fw.parsers.magic import HEAD_MAGICS

# searched anywhere in large opaque files (flash dumps, vendor blobs)
EMBEDDED = re.compile(
    rb"hsqs|sqsh|UBI#|\x27\x05\x19\x56|\xd0\x0d\xfe\xed|\x1f\x8b\x08[\x00-\x1f]|\xfd7zXZ\x00|"
    rb"PK\x03\x04|\x85\x19[\x01-\x03\xe0]\x20|\x19\x85\x20[\x01-\x03\xe0]|HDR0|070701"
)
LEAF_HEADS = (b"\x7fELF", b"#!", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"SQLite format 3", b"\0asm")
MIN_SIZE = 64
EMBEDDED_MIN_SIZE = 64 * 1024


def worth_unpacking(path: Path, size: int) -> bool:
    """True when ``path`` may contain a layer; never follows symlinks."""
    if size < MIN_SIZE:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        with os.fdopen(fd, "rb", closefd=False) as fh:
            head = fh.read(0x8010)
        if head.startswith(LEAF_HEADS):
            return False
        for offset, magic in HEAD_MAGICS:
            if head[offset : offset + len(magic)] == magic:
                return True
        if looks_like_lzma(head) or looks_like_mcu_image(head):
            return True
        if size < EMBEDDED_MIN_SIZE or _looks_textual(head):
            return False
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as data:
            return _embedded(data)
    except (OSError, ValueError):
        return False
    finally:
        os.close(fd)


@cache
def _embedded_scanner() -> Callable[[mmap.mmap], bool] | None:
    """``EMBEDDED`` compiled by Hyperscan (pyperscan, unblob's dependency): one pass at memory
    speed, where Python's regex engine tries every byte (0.2 s for 22 MB of random data)."""
    try:
        from pyperscan import BlockDatabase, Pattern, Scan
    except ImportError:
        return None
    database = BlockDatabase(Pattern(EMBEDDED.pattern))

    def found(_context: object, _tag: object, _start: int, _end: int) -> Scan:
        return Scan.Terminate

    def search(data: mmap.mmap) -> bool:
        return database.build(None, found).scan(data) == Scan.Terminate

    return search


def _embedded(data: mmap.mmap) -> bool:
    search = _embedded_scanner()
    return search(data) if search is not None else EMBEDDED.search(data) is not None


def _looks_textual(head: bytes) -> bool:
    sample = head[:4096]
    if not sample:
        return True
    if b"\0" in sample:
        return False
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    return printable / len(sample) > 0.95


MCU_HEADS = (
    b"\x3d\xb8\xf3\x96",  # MCUboot (little-endian)
    b"\x96\xf3\xb8\x3d",  # MCUboot (big-endian)
    b"UF2\nWQ]\x9e",  # UF2 block
    b"\xaa\x50",  # ESP-IDF partition table entry
)
_INTEL_HEX = re.compile(rb":[0-9A-Fa-f]{10}|S[0-3][0-9A-Fa-f]{8}")  # Intel HEX or Motorola S-record


def looks_like_mcu_image(head: bytes) -> bool:
    """Microcontroller images: an ESP image header (magic, 1-16 segments, flash mode),
    MCUboot, UF2, an ESP partition table or an Intel HEX record."""
    if len(head) >= 24 and head[0] in (0xE9, 0xEA) and 1 <= head[1] <= 16 and head[2] <= 5:
        return True
    if head[:4] in (b"\xfe\xff\xff\xff", b"\xfc\xff\xff\xff") and len(head) > 8 and head[8] in (0xFE, 0xFF):
        return True  # ESP-IDF NVS page header (active / full page)
    return head.startswith(MCU_HEADS) or _INTEL_HEX.match(head) is not None


def looks_like_lzma(head: bytes) -> bool:
    """An LZMA-alone header: sane properties byte, power-of-two dictionary, plausible size."""
    if len(head) < 13 or head[0] >= 225:
        return False
    dictionary = int.from_bytes(head[1:5], "little")
    if dictionary < 1 << 12 or dictionary > 1 << 28 or dictionary & (dictionary - 1):
        return False
    size = int.from_bytes(head[5:13], "little")
    return size == 0xFFFFFFFFFFFFFFFF or 0 < size < 1 << 34
