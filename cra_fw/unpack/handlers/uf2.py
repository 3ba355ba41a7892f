"""UF2 (USB Flashing Format): 512-byte blocks with a target address each.

The blocks' payloads are placed at their addresses, per family, and each contiguous
range becomes ``<family>_0x<address>.bin``.  The family id (flag 0x2000) names the chip
(ids from Microsoft's uf2families.json); blocks flagged "not main flash" are skipped,
as a bootloader does.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cra_fw.unpack.handlers.memory_map import MemoryMap
from cra_fw.unpack.native import NativeHandler, Region, mapped

MAGIC0 = 0x0A324655
MAGIC1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
BLOCK = 512
HEAD = struct.Struct("<8I")
FLAG_NOT_MAIN_FLASH = 0x1
FLAG_FILE_CONTAINER = 0x1000
FLAG_FAMILY = 0x2000

FAMILIES = {
    0x16573617: "atmega32",
    0x1851780A: "saml21",
    0x1B57745F: "nrf52",
    0x1C5F21B0: "esp32",
    0x1E1F432D: "stm32l1",
    0x202E3A91: "stm32l0",
    0x21460FF0: "stm32wl",
    0x2ABC77EC: "lpc55",
    0x300F5633: "stm32g0",
    0x31D228C6: "gd32f350",
    0x04240BDF: "stm32l5",
    0x4C71240A: "stm32g4",
    0x4FB2D5BD: "imxrt10xx",
    0x53B80F00: "stm32f7",
    0x55114460: "samd51",
    0x57755A57: "stm32f4",
    0x5D1A0A2E: "stm32f2",
    0x5EE21072: "stm32f1",
    0x621E937A: "nrf52833",
    0x647824B6: "stm32f0",
    0x68ED2B88: "samd21",
    0x6B846188: "stm32f3",
    0x6D0922FA: "stm32f407",
    0x6DB66082: "stm32h7",
    0x70D16653: "stm32wb",
    0x7EAB61ED: "esp8266",
    0x8FB060FE: "stm32f407vg",
    0xADA52840: "nrf52840",
    0xBFDD4EEE: "esp32s2",
    0xC47E5767: "esp32s3",
    0xD42BA06C: "esp32c3",
    0x2B88D29C: "esp32c2",
    0x332726F6: "esp32h2",
    0x540DDF62: "esp32c6",
    0x3D308E94: "esp32p4",
    0xF71C0343: "esp32c5",
    0x77D850C4: "esp32c61",
    0xB6DD00AF: "esp32h21",
    0x9E0BAA8A: "esp32h4",
    0xE48BFF56: "rp2040",
    0xE48BFF57: "rp2xxx-absolute",
    0xE48BFF58: "rp2xxx-data",
    0xE48BFF59: "rp2350-arm-s",
    0xE48BFF5A: "rp2350-riscv",
    0xE48BFF5B: "rp2350-arm-ns",
    0x00FF6919: "stm32l4",
    0x9AF03E33: "gd32vf103",
}


def family_name(family: int | None) -> str:
    if family is None:
        return "no-family"
    return FAMILIES.get(family, f"family-{family:#010x}")


def _blocks(data: mmap.mmap):
    pos = 0
    while pos + BLOCK <= len(data):
        m0, m1, flags, addr, size, block_no, num_blocks, family = HEAD.unpack_from(data, pos)
        (m_end,) = struct.unpack_from("<I", data, pos + BLOCK - 4)
        if m0 != MAGIC0 or m1 != MAGIC1 or m_end != MAGIC_END or size > 476:
            return
        yield pos, flags, addr, size, block_no, num_blocks, family
        pos += BLOCK


def _collect(data: mmap.mmap) -> tuple[dict[int | None, MemoryMap], dict[str, str], int]:
    maps: dict[int | None, MemoryMap] = {}
    count = skipped = 0
    end = 0
    declared = set()
    for pos, flags, addr, size, _no, num_blocks, family in _blocks(data):
        count += 1
        end = pos + BLOCK
        declared.add(num_blocks)
        if flags & (FLAG_NOT_MAIN_FLASH | FLAG_FILE_CONTAINER):
            skipped += 1
            continue
        key = family if flags & FLAG_FAMILY else None
        maps.setdefault(key, MemoryMap()).add(addr, bytes(data[pos + 32 : pos + 32 + size]))
    details = {
        "blocks": str(count),
        "families": ",".join(family_name(f) for f in maps),
        "ranges": " ".join(f"{family_name(f)}:{m.describe()}" for f, m in maps.items()),
    }
    if skipped:
        details["skipped_blocks"] = str(skipped)
    if len(maps) == 1:
        details["chip"] = family_name(next(iter(maps)))
    if len(declared) == 1 and next(iter(declared)) * len(maps or [None]) < count:
        details["note"] = "more blocks than the header count"
    return maps, details, end


class Uf2Handler(NativeHandler):
    name = "uf2"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < BLOCK or HEAD.unpack_from(data, 0)[:2] != (MAGIC0, MAGIC1):
            return []
        try:
            maps, details, end = _collect(data)
        except ValueError as exc:
            return [Region(0, len(data), error=str(exc))]
        if not end:
            return []
        return [Region(0, end, details=details)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            maps, _details, _end = _collect(data)
        for family, mem in maps.items():
            mem.write(outdir, prefix=f"{family_name(family)}_")
