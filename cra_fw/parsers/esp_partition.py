"""ESP-IDF partition table reader (``partition_table.bin``, at flash 0x8000 by default).

Entries are 32 bytes: magic 0xAA 0x50, type, subtype, u32 offset, u32 size, 16-byte
label, u32 flags (bit 0 encrypted, bit 1 read-only).  An entry starting 0xEB 0xEB
carries the MD5 of the entries before it; 0xFF bytes end the table (at most 0xC00
bytes, i.e. 95 entries plus the MD5 entry).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cra_fw.parsers import ParseError, cstr

ENTRY_MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb"
ENTRY_SIZE = 32
MAX_TABLE = 0xC00
DEFAULT_OFFSET = 0x8000

TYPES = {0: "app", 1: "data", 2: "bootloader", 3: "partition_table"}
DATA_SUBTYPES = {
    0x00: "ota",
    0x01: "phy",
    0x02: "nvs",
    0x03: "coredump",
    0x04: "nvs_keys",
    0x05: "efuse",
    0x06: "undefined",
    0x80: "esphttpd",
    0x81: "fat",
    0x82: "spiffs",
    0x83: "littlefs",
}
FLAG_ENCRYPTED = 0x1
FLAG_READONLY = 0x2


@dataclass(frozen=True)
class Partition:
    label: str
    type: int
    subtype: int
    offset: int  # flash offset
    size: int
    flags: int

    @property
    def type_name(self) -> str:
        return TYPES.get(self.type, f"{self.type:#04x}")

    @property
    def subtype_name(self) -> str:
        if self.type == 0:
            if self.subtype == 0:
                return "factory"
            if 0x10 <= self.subtype < 0x20:
                return f"ota_{self.subtype - 0x10}"
            if self.subtype == 0x20:
                return "test"
        elif self.type == 1 and self.subtype in DATA_SUBTYPES:
            return DATA_SUBTYPES[self.subtype]
        elif self.type in (2, 3):
            return "primary" if self.subtype == 0 else "ota"
        return f"{self.subtype:#04x}"

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)

    def describe(self) -> str:
        text = f"{self.label} {self.type_name}/{self.subtype_name} {self.offset:#x}+{self.size:#x}"
        return text + (" encrypted" if self.encrypted else "")


@dataclass(frozen=True)
class PartitionTable:
    offset: int  # absolute offset in the buffer
    partitions: tuple[Partition, ...]
    md5_ok: bool | None  # None when the table has no MD5 entry
    length: int  # bytes of entries incl. the MD5 entry


def parse(data: bytes, offset: int = 0) -> PartitionTable:
    """Read the partition table at ``offset``; ParseError unless it has at least one entry."""
    parts: list[Partition] = []
    pos = offset
    md5_ok: bool | None = None
    limit = min(len(data), offset + MAX_TABLE)
    while pos + ENTRY_SIZE <= limit:
        head = bytes(data[pos : pos + 2])
        if head == ENTRY_MAGIC:
            type_, subtype, start, size = struct.unpack_from("<BBII", data, pos + 2)
            label = cstr(bytes(data[pos + 12 : pos + 28]))
            (flags,) = struct.unpack_from("<I", data, pos + 28)
            parts.append(Partition(label, type_, subtype, start, size, flags))
            pos += ENTRY_SIZE
        elif head == MD5_MAGIC:
            stored = bytes(data[pos + 16 : pos + 32])
            md5_ok = hashlib.md5(bytes(data[offset:pos]), usedforsecurity=False).digest() == stored
            pos += ENTRY_SIZE
            break
        else:
            break
    if not parts:
        raise ParseError("no partition table entry")
    return PartitionTable(offset, tuple(parts), md5_ok, pos - offset)


def find(data: bytes) -> int:
    """Offset of a partition table in a flash dump (0x8000 first, then any 4 KiB boundary), or -1."""
    candidates = [DEFAULT_OFFSET] + list(range(0, len(data), 0x1000))
    for pos in candidates:
        if pos + ENTRY_SIZE <= len(data) and bytes(data[pos : pos + 2]) == ENTRY_MAGIC:
            try:
                table = parse(data, pos)
            except ParseError:
                continue
            if table.md5_ok or len(table.partitions) >= 2:
                return pos
    return -1
