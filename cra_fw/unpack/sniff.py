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
from pathlib import Path

# (offset, magic) pairs that identify a container at the start of a file
HEAD_MAGICS: tuple[tuple[int, bytes], ...] = (
    (0, b"\x1f\x8b\x08"),  # gzip
    (0, b"\xfd7zXZ\x00"),  # xz
    (0, b"BZh"),  # bzip2
    (0, b"\x28\xb5\x2f\xfd"),  # zstd
    (0, b"\x04\x22\x4d\x18"),  # lz4
    (0, b"\x89LZO\x00"),  # lzop
    (0, b"PK\x03\x04"),  # zip
    (0, b"7z\xbc\xaf\x27\x1c"),  # 7z
    (0, b"Rar!"),  # rar
    (0, b"070701"),
    (0, b"070702"),
    (0, b"070707"),
    (0, b"\xc7\x71"),  # cpio
    (257, b"ustar"),  # tar
    (0, b"hsqs"),
    (0, b"sqsh"),
    (0, b"shsq"),
    (0, b"qshs"),  # squashfs
    (0, b"\x85\x19"),
    (0, b"\x19\x85"),  # jffs2
    (0, b"UBI#"),  # ubi
    (0, b"\x31\x18\x10\x06"),  # ubifs
    (0, b"\x27\x05\x19\x56"),  # uImage
    (0, b"\xd0\x0d\xfe\xed"),  # FDT / FIT
    (0x438, b"\x53\xef"),  # ext2/3/4
    (1024, b"\xe2\xe1\xf5\xe0"),  # erofs
    (0, b"\x45\x3d\xcd\x28"),  # cramfs
    (0, b"-rom1fs-"),  # romfs
    (0, b"HDR0"),  # trx
    (0, b"!<arch>\n"),  # ar / ipk
    (0, b"\x3a\xff\x26\xed"),  # android sparse
    (0x8001, b"CD001"),  # iso9660
    (0x36, b"FAT1"),  # FAT12/16 boot sector (ESP-IDF fat data partitions)
    (0x52, b"FAT32"),
    (8, b"littlefs"),  # LittleFS superblock name
)

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
            return EMBEDDED.search(data) is not None
    except (OSError, ValueError):
        return False
    finally:
        os.close(fd)


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
