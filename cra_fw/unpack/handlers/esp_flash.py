"""A whole ESP32-family or ESP8266 SPI flash dump (``esptool read-flash``, ``merge-bin``).

ESP32 family: the 2nd-stage bootloader at 0x0 / 0x1000 / 0x2000 and a partition table
(0x8000 by default) say where everything is; each partition is written as one file
(``<label>@<offset>.<subtype>``) so recursion unpacks the app images, NVS and file
systems one level down.  Erased (all 0xFF) partitions are listed, not written.

ESP8266 (NONOS / RTOS SDK 2.x, no partition table): boot at 0x0, ``user1`` at 0x1000
(and ``user2`` in the second half for OTA layouts), RF calibration, ``esp_init_data``
and the SDK's system parameters (Wi-Fi configuration) in the last five sectors; any
other written sectors are kept as ``data@<offset>.bin`` (vendor settings live there).
"""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.parsers import ParseError, esp_image, esp_partition
from cra_fw.parsers.esp_partition import PartitionTable
from cra_fw.regions import copy_region
from cra_fw.unpack.handlers.esp_image import parse_at
from cra_fw.unpack.native import NativeHandler, Region

SECTOR = 0x1000
BOOTLOADER_OFFSETS = (0x0, 0x1000, 0x2000)
MAX_PARTITIONS = 64
ESP8266_TAIL = (("rf_cal", 5), ("esp_init_data", 4), ("system_param", 3))


def _erased(data: mmap.mmap, start: int, end: int) -> bool:
    step = 1 << 16
    for pos in range(start, end, step):
        chunk = data[pos : min(end, pos + step)]
        if chunk.count(0xFF) != len(chunk):
            return False
    return True


def _members_esp32(
    data: mmap.mmap, table: PartitionTable, boot: int
) -> tuple[list[tuple[str, int, int]], list[str]]:
    size = len(data)
    members = [(f"bootloader@{boot:#x}.bin", boot, min(table.offset, size))]
    members.append(
        (
            f"partition-table@{table.offset:#x}.bin",
            table.offset,
            min(size, table.offset + esp_partition.MAX_TABLE),
        )
    )
    empty = []
    for part in table.partitions[:MAX_PARTITIONS]:
        start, end = part.offset, min(size, part.offset + part.size)
        if start >= size or end <= start:
            empty.append(f"{part.label}(beyond dump)")
            continue
        if _erased(data, start, end):
            empty.append(part.label)
            continue
        members.append((f"{part.label or 'unnamed'}@{start:#x}.{part.subtype_name}", start, end))
    return members, empty


def _members_esp8266(data: mmap.mmap) -> list[tuple[str, int, int]]:
    size = len(data)
    members: list[tuple[str, int, int]] = [("boot@0x0.bin", 0, SECTOR)]
    user1 = parse_at(data, SECTOR)
    covered = [(0, SECTOR)]
    if user1 is not None:
        end = min(size, (user1.end + SECTOR - 1) // SECTOR * SECTOR)
        members.append(("user1@0x1000.bin", SECTOR, end))
        covered.append((SECTOR, end))
        second = size // 2 + SECTOR
        user2 = parse_at(data, second) if second < size else None
        if user2 is not None:
            end2 = min(size, (user2.end + SECTOR - 1) // SECTOR * SECTOR)
            members.append((f"user2@{second:#x}.bin", second, end2))
            covered.append((second, end2))
    for name, sectors_from_end in ESP8266_TAIL:
        start = size - sectors_from_end * SECTOR
        end = size if name == "system_param" else start + SECTOR
        if start > SECTOR and not _erased(data, start, end):
            members.append((f"{name}@{start:#x}.bin", start, end))
        covered.append((start, end))
    # other written sectors: vendor configuration, certificates, file systems
    pos = SECTOR
    while pos < size:
        if any(a <= pos < b for a, b in covered) or _erased(data, pos, pos + SECTOR):
            pos += SECTOR
            continue
        start = pos
        while (
            pos < size and not any(a <= pos < b for a, b in covered) and not _erased(data, pos, pos + SECTOR)
        ):
            pos += SECTOR
        members.append((f"data@{start:#x}.bin", start, min(pos, size)))
    members.sort(key=lambda m: m[1])
    return members


class EspFlashHandler(NativeHandler):
    name = "esp-flash"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < 0x10000:
            return []
        region = self._esp32(data) or self._esp8266(data)
        return [region] if region is not None else []

    def _esp32(self, data: mmap.mmap) -> Region | None:
        boot = next(
            (o for o in BOOTLOADER_OFFSETS if o + 24 <= len(data) and data[o] == esp_image.MAGIC), None
        )
        if boot is None:
            return None
        image = parse_at(data, boot)
        if image is None or image.format != "esp32":
            return None
        pos = esp_partition.find(data)  # type: ignore[arg-type]  # mmap slices like bytes
        if pos <= boot:
            return None
        try:
            table = esp_partition.parse(data, pos)  # type: ignore[arg-type]
        except ParseError:
            return None
        members, empty = _members_esp32(data, table, boot)
        details = {
            "chip": image.chip,
            "layout": "esp-idf partition table",
            "bootloader_offset": f"{boot:#x}",
            "partition_table_offset": f"{pos:#x}",
            "partition_table_md5": {True: "ok", False: "bad", None: "absent"}[table.md5_ok],
            "partitions": "; ".join(p.describe() for p in table.partitions),
            "encrypted_partitions": ",".join(p.label for p in table.partitions if p.encrypted),
            "empty_partitions": ",".join(empty),
        }
        return Region(
            0,
            len(data),
            details={k: v for k, v in details.items() if v},
            members=tuple((name, start, end - start) for name, start, end in members),
        )

    def _esp8266(self, data: mmap.mmap) -> Region | None:
        boot = parse_at(data, 0)
        if boot is None or boot.format != "esp8266-v1":
            return None
        user1 = parse_at(data, SECTOR)
        if user1 is None:
            return None
        members = _members_esp8266(data)
        details = {
            "chip": "esp8266",
            "layout": "esp8266 sdk (boot + user1/user2)",
            "flash_size": boot.flash_size,
            "regions": "; ".join(
                f"{name.split('@')[0]} {start:#x}+{end - start:#x}" for name, start, end in members
            ),
        }
        return Region(0, len(data), details=details, members=tuple((n, s, e - s) for n, s, e in members))

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        for name, start, size in region.members:
            copy_region(path, start, start + size, outdir / name)
