"""Quantenna Wi-Fi SoC U-Boot image: a small vendor header in front of the ARC code.

Header (read by hand on the Icotera i4882 image): u32 0x55, a 16-byte version text
(``U-BOOT v-undef``), the code's first instructions, and at 0x34 the build time as a
decimal Unix timestamp.  The layer's file is the whole image (the code is not
relocated), so identification reads the ``U-Boot 2009.06-...`` banner inside.
"""

from __future__ import annotations

import mmap
import re
from datetime import UTC, datetime
from pathlib import Path

from cra_fw.regions import copy_region
from cra_fw.unpack.native import NativeHandler, Region

MAGIC = b"\x55\x00\x00\x00U-BOOT "
STAMP = re.compile(rb"(\d{10})\x00")


class QuantennaUbootHandler(NativeHandler):
    name = "quantenna-uboot"

    def find(self, data: mmap.mmap) -> list[Region]:
        if bytes(data[: len(MAGIC)]) != MAGIC or len(data) < 0x100:
            return []
        label = bytes(data[4:20]).split(b"\0", 1)[0].decode("latin-1")
        details = {"label": label}
        stamp = STAMP.match(bytes(data[0x34:0x40]))
        if stamp:
            details["build_time"] = datetime.fromtimestamp(int(stamp.group(1)), UTC).strftime(
                "%Y-%m-%d %H:%M:%S UTC"
            )
        return [Region(0, len(data), details=details)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        copy_region(path, region.start, region.end, outdir / "u-boot.bin")
