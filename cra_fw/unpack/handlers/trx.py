"""Broadcom TRX container (v1 and v2): a named layer with its fields, CRC checked, partitions as files.

Layout (little-endian): magic "HDR0", total length, CRC-32 of everything from
the flags word to the end (the register starts at 0xffffffff and is not
inverted at the end), 16 bits of flags and 16 bits of version, then three
(v1) or four (v2) partition offsets from the start of the header, 0 when
unused.  For v2 the CRC is computed as the CFE bootloader does, with the
eight "stable/try" bytes (22..29) of the fourth partition's bin header set to
0xff.  Each partition is written as ``partitionN.bin`` for recursion.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.checksums import crc32
from cra_fw.unpack.native import NativeHandler, Region

MAGIC = b"HDR0"
MAX_LEN = 1 << 30


def _crc(data: mmap.mmap, start: int, end: int, patch: tuple[int, int] | None) -> int:
    if patch is None or not start <= patch[0] < patch[1] <= end:
        return crc32(data, start, end) ^ 0xFFFFFFFF
    crc = crc32(data, start, patch[0])
    crc = crc32(b"\xff" * (patch[1] - patch[0]), 0, patch[1] - patch[0], crc)
    return crc32(data, patch[1], end, crc) ^ 0xFFFFFFFF


class TrxHandler(NativeHandler):
    name = "trx"

    def find(self, data: mmap.mmap) -> list[Region]:
        return self.scan(data, MAGIC, lambda pos: self._region(data, pos))

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        head = bytes(data[pos : pos + 32])
        if len(head) < 28:
            return None
        length, crc, flag_version = struct.unpack_from("<III", head, 4)
        version, flags = flag_version >> 16, flag_version & 0xFFFF
        if version not in (1, 2) or not 28 <= length <= MAX_LEN:
            return None
        count = 3 if version == 1 else 4
        if len(head) < 16 + 4 * count:
            return None
        offsets = list(struct.unpack_from(f"<{count}I", head, 16))
        header = 16 + 4 * count
        used = [o for o in offsets if o]
        if not used or any(not header <= o < length for o in used) or used != sorted(used):
            return None
        end = pos + length
        details = {
            "version": str(version),
            "flags": f"{flags:#06x}",
            "length": str(length),
            "partitions": ",".join(str(o) for o in offsets),
        }
        bounds = [*used, length]
        members = tuple(
            (f"partition{offsets.index(o)}.bin", pos + o, min(bounds[i + 1], len(data) - pos) - o)
            for i, o in enumerate(used)
            if pos + o < len(data)
        )
        if end > len(data):
            details["crc"] = "truncated"
            return Region(
                pos,
                len(data),
                error=f"TRX truncated: header says {length} bytes",
                details=details,
                members=members,
            )
        patch = None
        if version == 2 and offsets[3]:
            patch = (pos + offsets[3] + 22, pos + offsets[3] + 30)
        details["crc"] = "ok" if _crc(data, pos + 12, end, patch) == crc else "mismatch"
        return Region(pos, end, details=details, members=members)

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
