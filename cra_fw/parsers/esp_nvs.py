"""ESP-IDF NVS (non-volatile storage) partition reader: namespaces and typed entries.

Layout (ESP-IDF ``nvs_flash``, ``nvs_partition_gen``): 4 KiB pages; a page header (u32
state, u32 sequence number, u8 format version 0xFF/0xFE, CRC-32 at 28), a 32-byte entry
state bitmap (2 bits per entry: 0b10 written), then 126 entries of 32 bytes: u8
namespace index, u8 type, u8 span, u8 chunk index, u32 CRC, 16-byte key, 8-byte data.
Namespace names are U8 entries in namespace 0.  Strings and blob chunks keep their size
in the data field and their bytes in the following ``span - 1`` entries; a v2 blob is an
index entry (0x48) plus data chunks (0x42) joined in chunk order.

Pages whose header is not a known state are counted as unreadable (an encrypted NVS
reads as random bytes: the caller says so rather than guessing).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from cra_fw.parsers import ParseError, cstr

PAGE = 4096
ENTRY = 32
ENTRIES_PER_PAGE = 126
FIRST_ENTRY = 64
STATES = {0xFFFFFFFE: "active", 0xFFFFFFFC: "full", 0xFFFFFFF8: "freeing", 0xFFFFFFF0: "corrupt"}
EMPTY = 0xFFFFFFFF
TYPES = {
    0x01: "u8",
    0x11: "i8",
    0x02: "u16",
    0x12: "i16",
    0x04: "u32",
    0x14: "i32",
    0x08: "u64",
    0x18: "i64",
    0x21: "string",
    0x41: "blob",
    0x42: "blob_data",
    0x48: "blob_index",
}
_INT = {0x01: "<B", 0x11: "<b", 0x02: "<H", 0x12: "<h", 0x04: "<I", 0x14: "<i", 0x08: "<Q", 0x18: "<q"}
MAX_VALUE = 512 * 1024


@dataclass(frozen=True)
class NvsEntry:
    namespace: str
    key: str
    type: str
    value: bytes  # integers as decimal text, strings without the NUL, blobs joined
    offset: int  # absolute offset of the (first) entry


@dataclass(frozen=True)
class Nvs:
    entries: tuple[NvsEntry, ...]
    pages: int
    pages_used: int
    pages_unreadable: int
    version: int  # 1 or 2 (multi-page blobs)
    garbled_entries: int = 0  # written entries with no readable key: NVS encryption (XTS) looks like this

    @property
    def encrypted(self) -> bool:
        return self.garbled_entries > 0 and self.garbled_entries >= len(self.entries)


def looks_like_nvs(data: bytes, offset: int = 0) -> bool:
    """A first page with a known state, a valid header CRC and a known version byte."""
    if offset + PAGE > len(data):
        return False
    state, _seq, version = struct.unpack_from("<IIB", data, offset)
    if state not in STATES or version not in (0xFF, 0xFE):
        return False
    (crc,) = struct.unpack_from("<I", data, offset + 28)
    return crc == zlib.crc32(bytes(data[offset + 4 : offset + 28]), 0xFFFFFFFF) & 0xFFFFFFFF


def parse(data: bytes, offset: int = 0, length: int | None = None) -> Nvs:
    """Read the NVS partition at ``offset`` (``length`` bytes, default: to the end)."""
    end = len(data) if length is None else min(len(data), offset + length)
    if not looks_like_nvs(data, offset):
        raise ParseError("no NVS page header")
    namespaces: dict[int, str] = {0: ""}
    raw: list[tuple[int, int, int, str, bytes, int]] = []  # (ns, type, chunk, key, value, offset)
    pages = used = unreadable = garbled = 0
    version = 1
    for page in range(offset, end - PAGE + 1, PAGE):
        pages += 1
        state, _seq, ver = struct.unpack_from("<IIB", data, page)
        if state == EMPTY:
            continue
        if state not in STATES:
            unreadable += 1
            continue
        used += 1
        if ver == 0xFE:
            version = 2
        bitmap = bytes(data[page + 32 : page + 64])
        idx = 0
        while idx < ENTRIES_PER_PAGE:
            bits = (bitmap[idx // 4] >> ((idx % 4) * 2)) & 0x3
            pos = page + FIRST_ENTRY + idx * ENTRY
            if bits != 0b10:
                idx += 1
                continue
            ns, type_, span, chunk = struct.unpack_from("<BBBB", data, pos)
            key = cstr(bytes(data[pos + 8 : pos + 24]))
            if not key or type_ not in TYPES:
                garbled += 1
                idx += 1
                continue
            span = max(1, min(span, ENTRIES_PER_PAGE - idx))
            body = bytes(data[pos + 24 : pos + 32])
            if type_ in _INT:
                (number,) = struct.unpack_from(_INT[type_], body)
                if ns == 0 and type_ == 0x01:
                    namespaces[number] = key
                else:
                    raw.append((ns, type_, chunk, key, str(number).encode(), pos))
            elif type_ in (0x21, 0x41, 0x42):
                (size,) = struct.unpack_from("<H", body)
                size = min(size, (span - 1) * ENTRY, MAX_VALUE)
                value = bytes(data[pos + ENTRY : pos + ENTRY + size])
                if type_ == 0x21:
                    value = value.split(b"\0", 1)[0]
                raw.append((ns, type_, chunk, key, value, pos))
            elif type_ == 0x48:
                pass  # the index only counts chunks; the data entries carry the bytes
            idx += span
    entries: dict[tuple[str, str], NvsEntry] = {}
    blobs: dict[tuple[str, str], list[tuple[int, bytes, int]]] = {}
    for ns, type_, chunk, key, value, pos in raw:
        name = namespaces.get(ns, f"ns{ns}")
        if type_ == 0x42:
            blobs.setdefault((name, key), []).append((chunk, value, pos))
            continue
        entries[(name, key)] = NvsEntry(name, key, TYPES.get(type_, hex(type_)), value, pos)
    for (name, key), chunks in blobs.items():
        chunks.sort()
        joined = b"".join(v for _c, v, _p in chunks)[:MAX_VALUE]
        entries[(name, key)] = NvsEntry(name, key, "blob", joined, chunks[0][2])
    ordered = sorted(entries.values(), key=lambda e: e.offset)
    return Nvs(tuple(ordered), pages, used, unreadable, version, garbled)
