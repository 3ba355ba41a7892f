"""OpenWrt image metadata and signature (fwtool trailers): a named layer with the build's identity.

OpenWrt's sysupgrade images end with chunks that ``fwtool`` appends, each
closed by a 16-byte big-endian trailer: magic "FWx0", a CRC-32 of the whole
file up to the trailer (register started at 0xffffffff, not inverted at the
end), a type (1 = metadata, 0 = signature), three pad bytes and the chunk's
size including the trailer.  A metadata chunk starts with an 8-byte header
(version 0, flags) and holds JSON: the boards the image supports and the
build's distribution, version, revision and target.  A signature chunk holds a
usign signature (reported, not verified here).  The layers are identified,
not unpacked: the facts are in their details.
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path

from cra_fw.unpack.checksums import crc32
from cra_fw.unpack.native import NativeHandler, Region

MAGIC = b"FWx0"
TRAILER = 16
MAX_CHUNK = 64 * 1024  # fwtool's own limits are 30 KiB of metadata and 1 KiB of signature
MAX_CHUNKS = 8
TYPES = {0: "signature", 1: "metadata"}


def _text(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)[:300]
    return str(value)[:300]


def _metadata(raw: bytes) -> dict[str, str] | None:
    if len(raw) < 8 or raw[:4] != b"\0\0\0\0":
        return None
    try:
        doc = json.loads(raw[8:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    details: dict[str, str] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                details[f"{key}.{sub}"[:64]] = _text(inner)
        else:
            details[str(key)[:64]] = _text(value)
    return details


class FwtoolHandler(NativeHandler):
    name = "fwtool"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        end = len(data)
        # chunks are appended one after another: walk back from the end of the file
        while len(out) < MAX_CHUNKS and end >= TRAILER and data[end - TRAILER : end - TRAILER + 4] == MAGIC:
            region = self._region(data, end - TRAILER)
            if region is None:
                break
            out.append(region)
            end = region.start
        return sorted(out, key=lambda r: r.start)

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        crc, kind, size = struct.unpack_from(">IB3xI", data, pos + 4)
        if kind not in TYPES or not TRAILER < size <= min(MAX_CHUNK, pos + TRAILER):
            return None
        start = pos + TRAILER - size
        raw = bytes(data[start:pos])
        if kind == 1:
            details = _metadata(raw)
            if details is None:
                return None
        else:
            first = raw.split(b"\n", 1)[0].decode("utf-8", "replace")[:200]
            details = {"signature": first, "verified": "no"}
        details = {"type": TYPES[kind], **details}
        details["crc"] = "ok" if crc32(data, 0, pos) ^ 0xFFFFFFFF == crc else "mismatch"
        return Region(start, pos + TRAILER, container=False, details=details)

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        return None  # identified, not unpacked: the facts are in the details
