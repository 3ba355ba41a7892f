"""ZyXEL "ZNBG" image trailer (NBG routers; OpenWrt's zyimage writes the same): a named layer.

60 bytes appended to the image: the magic "ZNBG", a 32-bit device id, a
48-byte firmware version string ("V1.00(AAVX.0)C0") and a CRC-32 of
everything before the trailer (register started at 0xffffffff, not inverted at
the end).  The vendor's tool writes the device id and CRC big-endian, OpenWrt's
little-endian; both orders are tried and the one whose CRC matches is reported.
The layer covers the image and its trailer; the image becomes one file.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.checksums import crc32
from cra_fw.unpack.native import NativeHandler, Region

MAGIC = b"ZNBG"
TRAILER = 60
MAX_CANDIDATES = 8  # each costs a CRC pass over the file before it


class ZyxelHandler(NativeHandler):
    name = "zyxel"

    def find(self, data: mmap.mmap) -> list[Region]:
        # a trailer: only one whose CRC covers the file from its start, or one that ends the file
        pos = data.rfind(MAGIC)
        for _ in range(MAX_CANDIDATES):
            if pos <= 0:
                return []
            region = self._region(data, pos)
            if region is not None:
                return [region]
            pos = data.rfind(MAGIC, 0, pos)
        return []

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        trailer = bytes(data[pos : pos + TRAILER])
        if len(trailer) < TRAILER:
            return None
        raw_version = trailer[8:56].split(b"\0", 1)[0]
        if not raw_version or not all(0x20 <= c < 0x7F for c in raw_version):
            return None
        crc = crc32(data, 0, pos) ^ 0xFFFFFFFF
        order = next((o for o in ("<", ">") if struct.unpack_from(o + "I", trailer, 56)[0] == crc), None)
        if order is None and pos + TRAILER != len(data):
            return None
        details = {
            "firmware_version": raw_version.decode("ascii"),
            "device_id": f"{struct.unpack_from((order or '>') + 'I', trailer, 4)[0]:#010x}",
            "byte_order": {"<": "little", ">": "big", None: "unknown"}[order],
            "crc": "ok" if order else "mismatch",
        }
        return Region(0, pos + TRAILER, details=details, members=(("image.bin", 0, pos),))

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
