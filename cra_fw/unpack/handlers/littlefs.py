"""LittleFS v2 images (ESP-IDF/Arduino/Tasmota ``littlefs`` data partitions, Zephyr storage).

Read with cra-fw's own bounded reader (``cra_fw/parsers/littlefs.py``); every regular file is
written under its path, so configuration files, certificates and keys on the device's file
system are identified and checked like any other file.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.parsers import ParseError, littlefs
from cra_fw.unpack.native import NativeHandler, Region, mapped, safe_name


class LittleFsHandler(NativeHandler):
    name = "littlefs"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < 1024 or littlefs.MAGIC not in bytes(data[8:16]):
            return []
        try:
            sb = littlefs.superblock(data)  # type: ignore[arg-type]  # mmap slices like bytes
        except ParseError:
            return []
        end = min(len(data), sb.block_size * sb.block_count)
        details = {
            "version": sb.version,
            "block_size": str(sb.block_size),
            "block_count": str(sb.block_count),
        }
        return [Region(0, end, details=details)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            _sb, files = littlefs.read_files(data)  # type: ignore[arg-type]
            outdir.mkdir(parents=True, exist_ok=True)
            for item in files:
                parts = [safe_name(p) for p in item.path.strip("/").split("/") if p]
                if not parts:
                    continue
                target = outdir.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(item.data)
