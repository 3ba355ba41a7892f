"""Alpha Networks / Ralink "--PaCkImGs--" section header (D-Link DIR-300 rev B and others): a named layer.

32 bytes before the root filesystem: the tag "--PaCkImGs--", four zero bytes,
the length of the section that follows (big-endian: the root filesystem
padded to 4 KiB; binwalk reads this field little-endian, which on the D-Link
images points past their end) and twelve zero bytes.  The section becomes one
file for recursion.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.native import NativeHandler, Region

MAGIC = b"--PaCkImGs--"
HEADER = 32


class PackImgsHandler(NativeHandler):
    name = "packimgs"

    def find(self, data: mmap.mmap) -> list[Region]:
        return self.scan(data, MAGIC, lambda pos: self._region(data, pos))

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        head = bytes(data[pos : pos + HEADER])
        if len(head) < HEADER or head[12:16] != b"\0" * 4:
            return None
        (size,) = struct.unpack_from(">I", head, 16)
        body = pos + HEADER
        if not size:
            return None
        end = body + size
        details = {"section_size": str(size)}
        error = ""
        if end > len(data):
            error = f"section truncated: header says {size} bytes"
            end = len(data)
        return Region(pos, end, error=error, details=details, members=(("section.bin", body, end - body),))

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
