"""Ubiquiti firmware image ("UBNT" from the vendor, "OPEN" from OpenWrt's mkfwimage): a named layer.

Layout (big-endian): the magic, a 256-byte version string
("XM.ar7240.v5.6.3.28591.151130.1749"), a CRC-32 of magic and version, four
pad bytes; then blocks, each "PART" (or "EXEC") with a 16-byte name, 12 pad
bytes, memory address, index, flash base address, entry address, data size
and partition size, the data, and a CRC-32 of block header plus data with
four pad bytes; and last "END." with a CRC-32 of everything before it (or
"ENDS" with a 256-byte RSA signature instead).  The CRCs are zlib's.  Each
block's data becomes one file, named after the block.
"""

from __future__ import annotations

import mmap
import re
import struct
import zlib
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.checksums import crc32
from cra_fw.unpack.native import NativeHandler, Region, safe_name

MAGICS = (b"UBNT", b"OPEN")
HEADER = 268  # magic, version[256], crc, pad
BLOCK = 56  # magic, name[16], pad[12], six 32-bit fields
MAX_BLOCKS = 16
MAX_DATA = 1 << 30
# board.soc.vMAJOR.MINOR.PATCH... as the vendor writes it
VERSION = re.compile(r"^([A-Za-z0-9]+)\.([A-Za-z0-9_-]+)\.v(\d+\.\d+\.\d+)")


def _verdict(ok: bool) -> str:
    return "ok" if ok else "mismatch"


class UbiquitiHandler(NativeHandler):
    name = "ubiquiti"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        for magic in MAGICS:
            for region in self.scan(data, magic, lambda pos: self._region(data, pos)):
                if not any(r.start <= region.start < r.end for r in out):
                    out.append(region)
        return sorted(out, key=lambda r: r.start)

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        head = bytes(data[pos : pos + HEADER])
        if len(head) < HEADER or data[pos + HEADER : pos + HEADER + 4] not in (b"PART", b"EXEC"):
            return None
        raw_version = head[4:260].split(b"\0", 1)[0]
        if not raw_version or not all(0x20 <= c < 0x7F for c in raw_version):
            return None
        (header_crc,) = struct.unpack_from(">I", head, 260)
        version = raw_version.decode("ascii")
        details = {"version": version, "header_crc": _verdict(zlib.crc32(head[:260]) == header_crc)}
        parsed = VERSION.match(version)
        if parsed:
            details["board"], details["soc"], details["firmware_version"] = parsed.groups()
        members: list[tuple[str, int, int]] = []
        blocks: list[str] = []
        bad: list[str] = []
        cur = pos + HEADER
        error = ""
        truncated = False
        while True:
            kind = bytes(data[cur : cur + 4])
            if kind in (b"END.", b"ENDS"):
                break
            if kind not in (b"PART", b"EXEC") or len(blocks) >= MAX_BLOCKS:
                error = f"no end block after {len(blocks)} blocks (found {kind!r} at {cur - pos:#x})"
                break
            block = bytes(data[cur : cur + BLOCK])
            if len(block) < BLOCK:
                error, truncated = "image truncated inside a block header", True
                break
            raw_name = block[4:20].split(b"\0", 1)[0].decode("latin-1")
            _mem, index, base, _entry, size, _part = struct.unpack_from(">6I", block, 32)
            if size > MAX_DATA:
                error = f"block {raw_name!r} claims {size} bytes"
                break
            body = cur + BLOCK
            name = safe_name(raw_name or f"block{len(blocks)}")
            if any(m[0] == f"{name}.bin" for m in members):
                name = f"{name}-{len(blocks)}"
            members.append((f"{name}.bin", body, min(size, len(data) - body)))
            if body + size + 8 > len(data):
                error, truncated = f"image truncated inside block {raw_name!r}", True
                break
            (block_crc,) = struct.unpack_from(">I", data, body + size)
            if crc32(data, cur, body + size) != block_crc:
                bad.append(raw_name)
            blocks.append(f"{raw_name}:{index}:{base:#010x}:{size}")
            cur = body + size + 8
        details["blocks"] = ",".join(blocks)
        details["block_crc"] = "mismatch: " + ",".join(bad) if bad else "ok"
        if error:
            details["end"] = "missing"
            end = len(data) if truncated else cur
            return Region(pos, end, error=error, details=details, members=tuple(members))
        if kind == b"END.":
            tail = bytes(data[cur : cur + 12])
            if len(tail) < 12:
                return Region(pos, len(data), error="image truncated in the end block", details=details)
            (end_crc,) = struct.unpack_from(">I", tail, 4)
            details["end"] = "crc " + _verdict(crc32(data, pos, cur) == end_crc)
            end = cur + 12
        else:
            details["end"] = "rsa signature (not checked)"
            end = min(cur + 264, len(data))
        return Region(pos, end, details=details, members=tuple(members))

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
