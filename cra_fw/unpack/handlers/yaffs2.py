"""A YAFFS2 image (NAND dump with spare areas) at the start of a file, via ``unyaffs``.

Neither backend knows YAFFS2.  Recognised by its first object header: the
object type (file, symlink, directory, hardlink, special), parent object 1
(the root), the unused 0xFFFF checksum field and a printable name.
"""

from __future__ import annotations

import mmap
import shutil
import struct
import subprocess
from pathlib import Path

from cra_fw.unpack.native import NativeHandler, Region


class Yaffs2Handler(NativeHandler):
    name = "yaffs2"
    TYPES = range(1, 6)

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < 2048 + 16:
            return []
        for endian, order in (("little", "<"), ("big", ">")):
            obj_type, parent = struct.unpack_from(order + "II", data, 0)
            if obj_type not in self.TYPES or parent != 1 or data[8:10] != b"\xff\xff":
                continue
            name = bytes(data[10:266]).split(b"\0", 1)[0]
            if not name or not all(0x20 <= c < 0x7F for c in name):
                continue
            return [Region(0, len(data), details={"endianness": endian})]
        return []

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        tool = shutil.which("unyaffs")
        if tool is None:
            raise RuntimeError("unyaffs is missing: apt-get install unyaffs")
        outdir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([tool, str(path), str(outdir)], capture_output=True, check=False, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"unyaffs failed: {proc.stderr.decode('utf-8', 'replace').strip()[:200]}")
