"""OpenWrt "combined extended image" (CE01): OpenMesh factory images, a text header and named files.

Written by OpenWrt's ``scripts/combined-ext-image.sh`` (OpenMesh OM2P, OM5P, MR600,
... factory images): "CE", the format version as two hex digits ("01"), the device
type space-padded to 32 characters, the number of files as two hex digits, then per
file its name (32 characters, space-padded), its length (8 hex digits) and the MD5
of its bytes (32 hex digits).  The header is zero-padded to 64 KiB and the files
follow back to back (``fwupgrade.cfg``, ``kernel``, ``rootfs``).  Each file's MD5
is recomputed; each file is written under its own name for recursion.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.checksums import digest
from cra_fw.unpack.native import NativeHandler, Region, safe_name

MAGIC = b"CE01"
HEADER = 0x10000
ENTRY = 32 + 8 + 32
MAX_FILES = 32
_ENTRY = re.compile(rb"([\x20-\x7e]{32})([0-9a-f]{8})([0-9a-f]{32})")


class CombinedExtHandler(NativeHandler):
    name = "combined-ext"

    def find(self, data: mmap.mmap) -> list[Region]:
        return self.scan(data, MAGIC, lambda pos: self._region(data, pos))

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        head = bytes(data[pos : pos + 4 + 32 + 2 + MAX_FILES * ENTRY])
        device, count = head[4:36], head[36:38]
        if not re.fullmatch(rb"[\x21-\x7e][\x20-\x7e]{31}", device) or not re.fullmatch(
            rb"[0-9a-f]{2}", count
        ):
            return None
        files = int(count, 16)
        table_end = 38 + files * ENTRY
        if not 0 < files <= MAX_FILES or len(head) < table_end or pos + HEADER > len(data):
            return None
        if data[pos + table_end : pos + HEADER].strip(b"\0"):
            return None  # the header is zero-padded to 64 KiB
        details = {"version": "1", "device": device.decode().strip()}
        members: list[tuple[str, int, int]] = []
        checks: list[str] = []
        start = pos + HEADER
        for index in range(files):
            match = _ENTRY.fullmatch(head[38 + index * ENTRY : 38 + (index + 1) * ENTRY])
            if match is None:
                return None
            name = match.group(1).decode().strip() or f"file{index}"
            size = int(match.group(2), 16)
            available = max(0, min(size, len(data) - start))
            if available < size:
                verdict = "truncated"
            else:
                ok = digest(data, start, start + size, "md5").hex() == match.group(3).decode()
                verdict = "ok" if ok else "mismatch"
            checks.append(f"{name}:{size}:{verdict}")
            if available:
                members.append((safe_name(name), start, available))
            start += size
        details["files"] = ",".join(checks)
        end = min(start, len(data))
        error = f"image truncated: header says {start - pos} bytes" if start > len(data) else ""
        return Region(pos, end, error=error, details=details, members=tuple(members))

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
