"""Alpha Networks "DLOB" image (D-Link DIR-300 rev B and others): a signature record, then a SEAMA record.

The first record carries no payload, only ``signature=...`` (the board the
image is for, e.g. ``wrgn49_dlob_dir300b5``); the second is an ordinary SEAMA
record (see :mod:`cra_fw.unpack.handlers.seama`) whose metadata names the
target partition (``dev=/dev/mtdblock/2``) and type, and whose payload holds
the kernel and root filesystem.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.handlers.seama import MAGIC, payload_name, read_record, record_details
from cra_fw.unpack.native import NativeHandler, Region


class DlobHandler(NativeHandler):
    name = "dlob"

    def find(self, data: mmap.mmap) -> list[Region]:
        return self.scan(data, MAGIC, lambda pos: self._region(data, pos))

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        first = read_record(data, pos)
        if first is None or first.size or "signature" not in first.meta:
            return None
        image = read_record(data, first.payload)
        if image is None or not image.size:
            return None
        end = min(image.end, len(data))
        details = {"signature": first.meta["signature"], **record_details(image)}
        error = "payload truncated" if image.md5 == "truncated" else ""
        members = ((payload_name(image), image.payload, end - image.payload),)
        return Region(pos, end, error=error, details=details, members=members)

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
