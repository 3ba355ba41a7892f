"""LittleFS v2 reader (the file system ESP-IDF, Arduino, Zephyr and Tasmota use on flash).

On-disk format (littlefs ``SPEC.md``): metadata pairs of blocks; each block starts with a
u32 revision, then commits of big-endian 32-bit tags XOR-chained from 0xFFFFFFFF (valid
bit, 11-bit type, 10-bit id, 10-bit length) each followed by its data.  Name tags (0x001
file, 0x002 dir, 0x0FF superblock) and struct tags (0x200 dir pair, 0x201 inline data,
0x202 CTZ skip-list head + size) describe entries; splice tags create/delete ids; a hard
tail (0x601) continues the same directory in another pair.  The superblock (name
"littlefs", inline struct: version, block size, block count) lives in pair (0, 1), which
is also the root directory.  File data in CTZ lists: block i starts with ctz(i)+1 pointers
(block 0: none), pointer 0 naming block i-1.

Read-only and bounded: depth, entries, blocks followed and bytes returned are capped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cra_fw.parsers import ParseError

MAGIC = b"littlefs"
MAX_DEPTH = 16
MAX_ENTRIES = 4096
MAX_FILE = 16 << 20


@dataclass(frozen=True)
class LfsFile:
    path: str
    data: bytes


@dataclass(frozen=True)
class Superblock:
    version: str
    block_size: int
    block_count: int


def superblock(data: bytes, offset: int = 0) -> Superblock:
    """The superblock in block 0 (or block 1, read with the block size it names)."""
    for guess in (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536):
        base = offset + guess
        if base + 32 > len(data) or bytes(data[base + 8 : base + 16]) != MAGIC:
            continue
        version, block_size, block_count = struct.unpack_from("<III", data, base + 20)
        if block_size < 128 or block_size & (block_size - 1) or guess not in (0, block_size):
            continue
        return Superblock(f"{version >> 16}.{version & 0xFFFF}", block_size, block_count)
    raise ParseError("no littlefs superblock")


class _Reader:
    def __init__(self, data: bytes, offset: int, sb: Superblock) -> None:
        self.data, self.offset, self.bs = data, offset, sb.block_size
        self.count = min(sb.block_count, (len(data) - offset) // sb.block_size)
        self.entries = 0

    def block(self, n: int) -> bytes:
        if not 0 <= n < self.count:
            raise ParseError(f"block {n} outside the image")
        start = self.offset + n * self.bs
        return bytes(self.data[start : start + self.bs])

    def _commits(self, n: int) -> tuple[int, list[tuple[int, int, int, bytes]]]:
        """(revision, tags as (type, id, length, payload)) of one metadata block."""
        blk = self.block(n)
        (rev,) = struct.unpack_from("<I", blk, 0)
        tags = []
        off, ptag = 4, 0xFFFFFFFF
        while off + 4 <= self.bs:
            tag = struct.unpack_from(">I", blk, off)[0] ^ ptag
            if tag & 0x80000000:
                break
            length = tag & 0x3FF
            dsize = 4 + (0 if length == 0x3FF else length)
            if off + dsize > self.bs:
                break
            type_ = (tag >> 20) & 0x7FF
            tags.append((type_, (tag >> 10) & 0x3FF, length, blk[off + 4 : off + dsize]))
            ptag = tag
            if type_ & 0x700 == 0x500:  # CRC tag closes a commit; its chunk bit flips the next valid bit
                ptag ^= (type_ & 1) << 31
            off += dsize
        return rev, tags

    def pair(self, pair: tuple[int, int]) -> tuple[list[dict], tuple[int, int] | None]:
        """Entries of one metadata pair (newer block) and its hard tail."""
        revs = []
        for n in pair:
            try:
                revs.append(self._commits(n))
            except ParseError:
                continue
        if not revs:
            raise ParseError(f"metadata pair {pair} unreadable")
        # the newer revision of the two (sequence comparison, as littlefs does)
        if len(revs) == 2 and 0 < ((revs[1][0] - revs[0][0]) & 0xFFFFFFFF) < 0x80000000:
            tags = revs[1][1]
        else:
            tags = revs[0][1]
        entries: list[dict] = []
        tail = None
        for type_, id_, length, payload in tags:
            group = type_ & 0x700
            if type_ == 0x401:  # create
                entries.insert(min(id_, len(entries)), {})
            elif type_ == 0x4FF:  # delete
                if id_ < len(entries):
                    entries.pop(id_)
            elif group == 0x000 and id_ < 0x3FF:
                while len(entries) <= id_:
                    entries.append({})
                entries[id_]["kind"] = {0x001: "file", 0x002: "dir", 0x0FF: "superblock"}.get(type_, "other")
                entries[id_]["name"] = payload[:length].decode("utf-8", "replace")
            elif group == 0x200 and id_ < 0x3FF:
                while len(entries) <= id_:
                    entries.append({})
                entries[id_]["struct"] = (type_, payload[: length if length != 0x3FF else 0])
            elif type_ == 0x601 and len(payload) >= 8:
                tail = struct.unpack_from("<II", payload)
            elif type_ == 0x600 and len(payload) >= 8:
                pass  # soft tail: the next directory in the global list, not this one
        return entries, tail

    def directory(self, pair: tuple[int, int], prefix: str, depth: int, out: list[LfsFile]) -> None:
        if depth > MAX_DEPTH:
            return
        seen: set[tuple[int, int]] = set()
        current: tuple[int, int] | None = pair
        while current is not None and current not in seen and len(seen) < 64:
            seen.add(current)
            entries, current = self.pair(current)
            for entry in entries:
                self.entries += 1
                if self.entries > MAX_ENTRIES:
                    return
                name, kind, st = entry.get("name", ""), entry.get("kind"), entry.get("struct")
                if not name or "/" in name or name in (".", "..") or st is None:
                    continue
                path = f"{prefix}/{name}"
                type_, payload = st
                if kind == "dir" and type_ == 0x200 and len(payload) >= 8:
                    self.directory(struct.unpack_from("<II", payload), path, depth + 1, out)
                elif kind == "file" and type_ == 0x201:
                    out.append(LfsFile(path, payload))
                elif kind == "file" and type_ == 0x202 and len(payload) >= 8:
                    head, size = struct.unpack_from("<II", payload)
                    out.append(LfsFile(path, self.ctz(head, size)))

    def ctz(self, head: int, size: int) -> bytes:
        size = min(size, MAX_FILE)
        if size == 0:
            return b""
        caps: list[int] = []
        total = 0
        while total < size and len(caps) <= self.count:
            i = len(caps)
            pointers = 0 if i == 0 else (i & -i).bit_length()
            caps.append(pointers)
            total += self.bs - 4 * pointers
        blocks = [head]
        for _ in range(len(caps) - 1):
            (prev,) = struct.unpack_from("<I", self.block(blocks[-1]), 0)
            blocks.append(prev)
        out = bytearray()
        for index, block in zip(range(len(caps)), reversed(blocks), strict=True):
            out += self.block(block)[4 * caps[index] :]
        return bytes(out[:size])


def read_files(data: bytes, offset: int = 0) -> tuple[Superblock, list[LfsFile]]:
    """Superblock and every regular file (path, bytes) of the littlefs image at ``offset``."""
    sb = superblock(data, offset)
    reader = _Reader(data, offset, sb)
    files: list[LfsFile] = []
    reader.directory((0, 1), "", 0, files)
    return sb, files
