"""A raw VxWorks memory image (no header: code and data as the boot loader copies them).

Recognised by the kernel's own identification strings: the runtime name and version
(``VxWorks\\0...VxWorks 6.7\\0<build date>``) or the WIND kernel banner (``WIND version
2.13``).  The layer's one file is the image itself, so identification and the checks
read it like any unpacked file; the version and build date go into the details.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

from cra_fw.regions import copy_region
from cra_fw.unpack.native import NativeHandler, Region

MIN_SIZE = 128 * 1024
RUNTIME = re.compile(
    rb"\x00VxWorks\x00{1,8}VxWorks ?(\d+\.\d+(?:\.\d+)?)\x00{1,8}([A-Z][a-z]{2} \d\d \d{4}, \d\d:\d\d:\d\d)?"
)
WIND = re.compile(rb"WIND version (\d+\.\d+(?:\.\d+)?)")


class VxWorksHandler(NativeHandler):
    name = "vxworks"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < MIN_SIZE or bytes(data[:4]) == b"\x7fELF":
            return []
        runtime = RUNTIME.search(data)
        wind = WIND.search(data)
        if runtime is None and wind is None:
            return []
        details = {"image": "raw memory image (no header)"}
        if runtime is not None:
            details["vxworks_version"] = runtime.group(1).decode()
            if runtime.group(2):
                details["build_date"] = runtime.group(2).decode()
            details["version_offset"] = f"{runtime.start() + 1:#x}"
        if wind is not None:
            details["wind_version"] = wind.group(1).decode()
        return [Region(0, len(data), details=details)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        copy_region(path, region.start, region.end, outdir / "vxworks.bin")
