"""D-Link SEAMA ("sealed magic") image: one record of metadata and a payload, MD5-checked.

A record is big-endian: magic 0x5EA3A417, a reserved 16-bit word, the metadata
length (16 bits), the payload length (32 bits), then — when there is a payload —
its MD5, then the metadata (NUL-separated ``key=value`` strings) and the
payload.  The metadata becomes the layer's details; the payload is written as
one file for recursion.  :mod:`cra_fw.unpack.handlers.dlob` reads the Alpha
Networks variant that puts a signature-only record first.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.checksums import digest
from cra_fw.unpack.native import NativeHandler, Region

MAGIC = b"\x5e\xa3\xa4\x17"
MAX_META = 4096


@dataclass(frozen=True)
class Record:
    start: int
    meta: dict[str, str]
    payload: int  # offset of the payload
    size: int
    md5: str  # "ok", "mismatch", "truncated" or "" when there is no payload

    @property
    def end(self) -> int:
        return self.payload + self.size


def read_record(data: mmap.mmap | bytes, pos: int) -> Record | None:
    """The SEAMA record at ``pos``, or None when the bytes there are not one."""
    head = bytes(data[pos : pos + 12])
    if len(head) < 12 or head[:4] != MAGIC:
        return None
    _reserved, metasize, size = struct.unpack_from(">HHI", head, 4)
    if metasize > MAX_META:
        return None
    digest_at = pos + 12
    meta_at = digest_at + (16 if size else 0)
    raw_meta = bytes(data[meta_at : meta_at + metasize])
    if len(raw_meta) != metasize:
        return None
    meta: dict[str, str] = {}
    for item in raw_meta.split(b"\0"):
        if b"=" in item:
            key, value = item.split(b"=", 1)
            if not key or not all(0x20 <= c < 0x7F for c in key + value):
                return None
            meta[key.decode()[:64]] = value.decode()[:200]
    payload = meta_at + metasize
    check = ""
    if size:
        available = min(size, len(data) - payload)
        if available < size:
            check = "truncated"
        else:
            ok = digest(data, payload, payload + size, "md5") == bytes(data[digest_at : digest_at + 16])
            check = "ok" if ok else "mismatch"
    return Record(pos, meta, payload, size, check)


def record_details(record: Record) -> dict[str, str]:
    details = {f"meta.{key}": value for key, value in record.meta.items()}
    details["payload_size"] = str(record.size)
    details["md5"] = record.md5
    return details


def payload_name(record: Record) -> str:
    kind = "".join(c if c.isalnum() or c in "-_" else "_" for c in record.meta.get("type", ""))[:32]
    return f"{kind or 'payload'}.bin"


class SeamaHandler(NativeHandler):
    name = "seama"

    def find(self, data: mmap.mmap) -> list[Region]:
        return self.scan(data, MAGIC, lambda pos: self._region(data, pos))

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        record = read_record(data, pos)
        if record is None or not record.size:
            return None
        end = min(record.end, len(data))
        error = "payload truncated" if record.md5 == "truncated" else ""
        members = ((payload_name(record), record.payload, end - record.payload),)
        return Region(pos, end, error=error, details=record_details(record), members=members)

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
