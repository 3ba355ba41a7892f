"""A stand-alone ESP-IDF partition table (``partition-table.bin``): a layer with no files."""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.parsers import ParseError, esp_partition
from cra_fw.unpack.native import NativeHandler, Region


class EspPartitionTableHandler(NativeHandler):
    name = "esp-partition-table"

    def find(self, data: mmap.mmap) -> list[Region]:
        if bytes(data[:2]) != esp_partition.ENTRY_MAGIC:
            return []
        try:
            table = esp_partition.parse(data, 0)  # type: ignore[arg-type]  # mmap slices like bytes
        except ParseError:
            return []
        if table.md5_ok is None and len(table.partitions) < 2:
            return []
        details = {
            "partitions": "; ".join(p.describe() for p in table.partitions),
            "md5": {True: "ok", False: "bad", None: "absent"}[table.md5_ok],
        }
        encrypted = ",".join(p.label for p in table.partitions if p.encrypted)
        if encrypted:
            details["encrypted_partitions"] = encrypted
        error = "partition table MD5 does not match its entries" if table.md5_ok is False else ""
        return [Region(0, table.length, container=False, error=error, details=details)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        return None
