"""UBI images and UBIFS volumes, read with ubi_reader.

Native so that both backends yield the same ubi > ubifs chain (binwalk would
flatten a UBI image straight into files).
"""

from __future__ import annotations

import mmap
import re
import struct
from pathlib import Path

from cra_fw.unpack.native import NativeHandler, Region, mapped


class UbiHandler(NativeHandler):
    """Consecutive erase blocks starting with 'UBI#'; each volume is written as an image file."""

    name = "ubi"
    MAGIC = b"UBI#"

    def find(self, data: mmap.mmap) -> list[Region]:
        first = data.find(self.MAGIC)
        if first == -1:
            return []
        second = data.find(self.MAGIC, first + 64)
        peb = second - first if second != -1 else len(data) - first
        if peb <= 0 or peb & (peb - 1) or peb < 4096:
            return []
        end = first
        while end + 4 <= len(data) and data[end : end + 4] == self.MAGIC:
            end += peb
        return [Region(first, min(end, len(data)))]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        from ubireader import settings
        from ubireader.ubi import ubi
        from ubireader.ubi_io import ubi_file

        settings.warn_only_block_read_errors = True
        outdir.mkdir(parents=True, exist_ok=True)
        with mapped(path) as data:
            second = data.find(self.MAGIC, region.start + 64)
        peb = second - region.start if second != -1 else region.end - region.start
        ufile = ubi_file(str(path), peb, region.start, region.end)
        try:
            image_obj = ubi(ufile)
            for image in image_obj.images:
                for name, volume in image.volumes.items():
                    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)) or "volume"
                    with open(outdir / f"{safe}.ubifs", "wb") as out:
                        for block in volume.reader(image_obj):
                            out.write(block)
        finally:
            ufile.close()


class UbifsHandler(NativeHandler):
    """A UBIFS volume image that starts with its superblock node, extracted keeping permission bits."""

    name = "ubifs"
    MAGIC = b"\x31\x18\x10\x06"

    def find(self, data: mmap.mmap) -> list[Region]:
        if data[:4] != self.MAGIC or len(data) < 90 or data[20] != 6:
            return []
        leb_size, leb_cnt = struct.unpack_from("<II", data, 36)
        end = min(len(data), leb_size * leb_cnt) if leb_size and leb_cnt else len(data)
        return [Region(0, end)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        from ubireader import settings
        from ubireader.ubi_io import ubi_file
        from ubireader.ubifs import ubifs
        from ubireader.ubifs.output import extract_files

        settings.warn_only_block_read_errors = True
        outdir.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as fh:
            fh.seek(36)
            (leb_size,) = struct.unpack("<I", fh.read(4))
        ufile = ubi_file(str(path), leb_size, region.start, region.end)
        try:
            extract_files(ubifs(ufile), str(outdir), perms=True)
        finally:
            ufile.close()
