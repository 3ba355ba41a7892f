"""ext2/3/4 at the start of a file, dumped with e2fsprogs' debugfs (modes restored afterwards).

Native because binwalk's ext path (mount, then 7z) needs privileges or loses
empty folders and links; with this both backends read ext the same way.
"""

from __future__ import annotations

import mmap
import shutil
import struct
import subprocess
from pathlib import Path

from cra_fw.regions import copy_region
from cra_fw.unpack.native import NativeHandler, Region


class ExtHandler(NativeHandler):
    name = "ext"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < 0x468 or data[0x438:0x43A] != b"\x53\xef":
            return []
        (blocks,) = struct.unpack_from("<I", data, 0x404)
        (log_block,) = struct.unpack_from("<I", data, 0x418)
        if log_block > 6:
            return []
        size = blocks * (1024 << log_block)
        if not 0 < size <= len(data):
            return []
        return [Region(0, size)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        debugfs = shutil.which("debugfs")
        if debugfs is None:
            raise RuntimeError("debugfs is missing: apt-get install e2fsprogs")
        outdir.mkdir(parents=True, exist_ok=True)
        source = path
        if region.end != path.stat().st_size:
            source = outdir.parent / f"{region.start:08x}.ext.carved"
            copy_region(path, region.start, region.end, source)
        try:
            subprocess.run(
                [debugfs, "-R", f"rdump / {outdir}", str(source)],
                capture_output=True,
                check=False,
                timeout=600,
            )
        finally:
            if source != path:
                source.unlink(missing_ok=True)
