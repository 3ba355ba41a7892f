"""Legacy U-Boot image (uImage): 64-byte big-endian header, CRC-checked, then the payload."""

from __future__ import annotations

import mmap
import struct
import zlib
from pathlib import Path

from cra_fw.regions import copy_region
from cra_fw.unpack.formats import UIMAGE_TYPE
from cra_fw.unpack.native import NativeHandler, Region, mapped

HEADER = struct.Struct(">IIIIIIIBBBB32s")


def _header(data: mmap.mmap, pos: int) -> tuple | None:
    """The header's fields when a valid one (header CRC matches) starts at ``pos``."""
    if pos + 64 > len(data):
        return None
    raw = bytes(data[pos : pos + 64])
    fields = HEADER.unpack(raw)
    if zlib.crc32(raw[:4] + b"\0\0\0\0" + raw[8:]) & 0xFFFFFFFF != fields[1]:
        return None
    return fields


class UImageHandler(NativeHandler):
    name = "uimage"
    MAGIC = b"\x27\x05\x19\x56"

    def find(self, data: mmap.mmap) -> list[Region]:
        def parse(pos: int) -> Region | None:
            fields = _header(data, pos)
            if fields is None:
                return None
            end = pos + 64 + fields[3]
            if end > len(data):
                return Region(
                    pos, len(data), error=f"uImage payload truncated: header says {fields[3]} bytes"
                )
            return Region(pos, end)

        return self.scan(data, self.MAGIC, parse)

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            fields = _header(data, region.start)
            if fields is None:
                return
            outdir.mkdir(parents=True, exist_ok=True)
            image_type = UIMAGE_TYPE.get(fields[9], f"type{fields[9]}")
            body_start = region.start + 64
            if image_type != "multi":
                copy_region(path, body_start, region.end, outdir / f"{image_type}.bin")
                return
            sizes = []
            pos = body_start
            while pos + 4 <= region.end and len(sizes) < 64:
                (n,) = struct.unpack_from(">I", data, pos)
                pos += 4
                if n == 0:
                    break
                sizes.append(n)
            for idx, n in enumerate(sizes):
                (outdir / f"image{idx}.bin").write_bytes(data[pos : min(pos + n, region.end)])
                pos += (n + 3) & ~3
